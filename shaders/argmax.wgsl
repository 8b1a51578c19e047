// SPDX-License-Identifier: MIT OR Apache-2.0
// The index of each row's largest value (jnp.argmax's: the first of equal
// largest values; NaN is skipped, where jnp.argmax would take it), written
// as an f32 (exact below 2^24: vocabularies are smaller) into an f32 tensor
// of one column. Greedy decoding reads back this one value per row, not
// the logits. The first of equal values wins whatever the order of the
// comparisons, so a long row is split into blocks of BLOCK chunks, one
// workgroup each (a row of a vocabulary is more than one workgroup's work,
// and a CPU driver runs a workgroup on one core): stage 1 writes each
// block's (value, index) pair, stage 2 merges a row's pairs. A row of one
// block runs stage 0, both in one. In a workgroup, invocation i scans
// chunks (or pairs) i, i + 64, ... in order, then the 64 results are
// merged as a tree. Stay in sync with `Graph::argmax` (src/gpu/norm.rs).
// CPU twin: `cpu::norm::argmax`.

#import storage

struct ArgmaxDims {
    cols: u32,     // values per row
    chunks: u32,   // 16-byte chunks per padded row of x (stage 2: of the pairs)
    rows: u32,
    y_stride: u32, // 32-bit words per padded row of y
    stage: u32,    // 0: whole rows, 1: blocks, 2: merge the blocks' pairs
    blocks: u32,   // blocks per row (stages 1 and 2)
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> dims: ArgmaxDims;
// Stage 2 reads stage 1's pairs (value, index as an f32) through the same
// binding, in the f32 variant.
@group(0) @binding(1) var<storage, read> x_buf: array<Chunk>;
@group(0) @binding(2) var<storage, read_write> y_buf: array<u32>;

// Chunks a stage 1 workgroup scans: 4096 values of f32.
const BLOCK: u32 = 1024u;

// No index yet: loses to every real one (rows are shorter than 2^24), and
// an f32 holds it exactly.
const NO_INDEX: u32 = 0x1000000u;

var<workgroup> best_value: array<f32, 64>;
var<workgroup> best_index: array<u32, 64>;

// Whether (v, i) goes before (w, j): larger, or equal and first.
fn better(v: f32, i: u32, w: f32, j: u32) -> bool {
    return v > w || (v == w && i < j);
}

@compute @workgroup_size(64)
fn main(@builtin(local_invocation_index) lid: u32,
        @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) groups: vec3<u32>) {
    let w = wid.x + wid.y * groups.x;
    let per_row = select(1u, dims.blocks, dims.stage == 1u);
    let row = w / per_row;
    // Uniform control flow: a whole workgroup leaves together.
    if (row >= dims.rows) {
        return;
    }
    var value = -bitcast<f32>(0x7f800000u);
    var index = NO_INDEX;
    if (dims.stage == 2u) {
        let pairs = row * dims.chunks;
        for (var p = lid; p < dims.blocks; p += 64u) {
            let v = x_buf[pairs + 2u * p / VALUES_PER_VEC];
            let j = 2u * p % VALUES_PER_VEC;
            let pair_value = f32(chunk_value(v, j));
            let pair_index = u32(f32(chunk_value(v, j + 1u)));
            if (better(pair_value, pair_index, value, index)) {
                value = pair_value;
                index = pair_index;
            }
        }
    } else {
        let block = w % per_row;
        let first = select(0u, block * BLOCK, dims.stage == 1u);
        let end = select(dims.chunks, min(dims.chunks, first + BLOCK), dims.stage == 1u);
        for (var c = first + lid; c < end; c += 64u) {
            let v = x_buf[row * dims.chunks + c];
            for (var j = 0u; j < VALUES_PER_VEC; j++) {
                let col = c * VALUES_PER_VEC + j;
                let x = f32(chunk_value(v, j));
                // x == x: not NaN.
                if (col < dims.cols && x == x && better(x, col, value, index)) {
                    value = x;
                    index = col;
                }
            }
        }
    }
    best_value[lid] = value;
    best_index[lid] = index;
    workgroupBarrier();
    for (var half = 32u; half > 0u; half = half / 2u) {
        if (lid < half) {
            let v = best_value[lid + half];
            let j = best_index[lid + half];
            if (better(v, j, best_value[lid], best_index[lid])) {
                best_value[lid] = v;
                best_index[lid] = j;
            }
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        if (dims.stage == 1u) {
            // The block's pair; a block of NaN alone keeps the sentinel.
            let at = row * dims.y_stride + 2u * (w % per_row);
            y_buf[at] = bitcast<u32>(best_value[0]);
            y_buf[at + 1u] = bitcast<u32>(f32(best_index[0]));
        } else {
            // A row of NaN alone: index 0, as jnp.argmax gives.
            let i = select(best_index[0], 0u, best_index[0] == NO_INDEX);
            y_buf[row * dims.y_stride] = bitcast<u32>(f32(i));
        }
    }
}

// SPDX-License-Identifier: MIT OR Apache-2.0
// The index of each row's largest value (jnp.argmax's: the first of equal
// largest values; NaN is skipped, where jnp.argmax would take it), one workgroup per row, written as
// an f32 (exact below 2^24: vocabularies are smaller) into an f32 tensor
// of one column. Greedy decoding reads back this one value per row, not
// the logits. Invocation i scans chunks i, i + 64, ... in order, then the
// 64 (value, index) pairs are reduced as a tree, the smaller index winning
// ties. Stay in sync with `Graph::argmax` (src/gpu/norm.rs). CPU twin:
// `cpu::norm::argmax`.

#import storage

struct ArgmaxDims {
    cols: u32,   // values per row
    chunks: u32, // 16-byte chunks per padded row of x
    rows: u32,
    y_stride: u32, // f32 values per padded row of y
}

@group(0) @binding(0) var<uniform> dims: ArgmaxDims;
@group(0) @binding(1) var<storage, read> x_buf: array<Chunk>;
@group(0) @binding(2) var<storage, read_write> y_buf: array<u32>;

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
    let row = wid.x + wid.y * groups.x;
    // Uniform control flow: a whole workgroup leaves together.
    if (row >= dims.rows) {
        return;
    }
    var value = -bitcast<f32>(0x7f800000u);
    // No index yet: loses to every real one.
    var index = 0xffffffffu;
    for (var c = lid; c < dims.chunks; c += 64u) {
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
    best_value[lid] = value;
    best_index[lid] = index;
    workgroupBarrier();
    for (var half = 32u; half > 0u; half = half / 2u) {
        if (lid < half) {
            let w = best_value[lid + half];
            let j = best_index[lid + half];
            if (better(w, j, best_value[lid], best_index[lid])) {
                best_value[lid] = w;
                best_index[lid] = j;
            }
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        // A row of NaN alone: index 0, as jnp.argmax gives.
        let i = select(best_index[0], 0u, best_index[0] == 0xffffffffu);
        y_buf[row * dims.y_stride] = bitcast<u32>(f32(i));
    }
}

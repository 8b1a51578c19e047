// SPDX-License-Identifier: MIT OR Apache-2.0
// Keras's Softmax layer over the last axis, one workgroup per row, as
// jax.nn.softmax computes it in the compute dtype: masked values replaced
// by Keras's large negative number (-3e4 in float16, -1e9 otherwise,
// rounded to the format), m = max, e = round(exp(round(x - m))), s =
// round(sum e) (summed in f32, as jnp.sum upcasts), y = round(e / s), and
// masked positions 0 (a fully masked row is 0, as Keras zeroes it); padding
// columns written 0. MASKED = 1 reads an f32 mask tensor of x's rows and
// columns (a value > 0.5 keeps its position).
//
// Sums and the maximum: invocation i reduces chunks i, i + 64, ... in
// order, then the 64 partial results as a tree (shared/workgroup_reduce).
// Stay in sync with `Graph::softmax` (src/gpu/norm.rs). CPU twin:
// `cpu::norm::softmax`.

#import storage
#import elementwise
#import workgroup_reduce

override MASKED: u32 = 0u;

struct SoftmaxDims {
    cols: u32,        // values per row
    chunks: u32,      // 16-byte chunks per padded row of x
    rows: u32,
    mask_stride: u32, // f32 values per padded row of the mask
    large_negative: f32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> dims: SoftmaxDims;
@group(0) @binding(1) var<storage, read> x_buf: array<Chunk>;
@group(0) @binding(2) var<storage, read> mask: array<f32>;
@group(0) @binding(3) var<storage, read_write> y_buf: array<OutWord>;

const THREADS: u32 = REDUCE_THREADS;

fn kept(row: u32, j: u32) -> bool {
    return MASKED == 0u || mask[row * dims.mask_stride + j] > 0.5;
}

// Value j of the row (in chunk c), masked; -inf past the columns.
fn masked_value(row: u32, v: Chunk, c: u32, j: u32) -> f32 {
    let col = c * VALUES_PER_VEC + j;
    if (col >= dims.cols) {
        return -bitcast<f32>(0x7f800000u);
    }
    return select(dims.large_negative, f32(chunk_value(v, j)), kept(row, col));
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
    let base = row * dims.chunks;
    var m = -bitcast<f32>(0x7f800000u);
    for (var c = lid; c < dims.chunks; c += THREADS) {
        let v = x_buf[base + c];
        for (var j = 0u; j < VALUES_PER_VEC; j++) {
            m = max(m, masked_value(row, v, c, j));
        }
    }
    let top = workgroup_reduce(lid, m, true);
    var sum = 0.0;
    for (var c = lid; c < dims.chunks; c += THREADS) {
        let v = x_buf[base + c];
        for (var j = 0u; j < VALUES_PER_VEC; j++) {
            if (c * VALUES_PER_VEC + j < dims.cols) {
                sum = sum + round_compute(exp(round_compute(masked_value(row, v, c, j) - top)));
            }
        }
    }
    let total = round_compute(workgroup_reduce(lid, sum, false));
    for (var c = lid; c < dims.chunks; c += THREADS) {
        let v = x_buf[base + c];
        for (var p = 0u; p < VALUES_PER_VEC / 2u; p++) {
            var out = vec2<f32>(0.0);
            for (var h = 0u; h < 2u; h++) {
                let j = 2u * p + h;
                let col = c * VALUES_PER_VEC + j;
                if (col < dims.cols && kept(row, col)) {
                    let e = round_compute(exp(round_compute(masked_value(row, v, c, j) - top)));
                    out[h] = e / total;
                }
            }
            store_chunk_pair(base + c, p, Scalar(out.x), Scalar(out.y));
        }
    }
}

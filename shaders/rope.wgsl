// SPDX-License-Identifier: MIT OR Apache-2.0
// KerasHub's RotaryEmbedding (rotary_dim = head_dim) over x [batch * seq,
// heads * head_dim], row r at position p = start + r % seq:
//   cos_e = round(cos(p * inv_freq[j % half])), sin_e likewise,
//   rot[j] = -x[j + half] (j < half), x[j - half] (j >= half),
//   y[j] = round(round(x[j] * cos_e) + round(rot[j] * sin_e)),
// rounding to the compute dtype as Keras's compute-dtype ops do. The f32
// cos and sin come from the host's table (cos for positions 0.., then sin:
// `cpu::rope::table`), so no driver's cos is involved. Padding columns
// written 0. One invocation per 16-byte chunk of y. Stay in sync with
// `Graph::rope` (src/gpu/rope.rs). CPU twin: `cpu::rope::rope`.

#import storage
#import elementwise

struct RopeDims {
    chunks: u32,         // 16-byte chunks of x (and y)
    chunks_per_row: u32,
    cols: u32,           // heads * head_dim
    seq: u32,
    start: u32,          // the position of each sequence's first row
    half: u32,           // head_dim / 2
    sin_at: u32,         // the sin table's first value (positions * half)
    _pad: u32,
}

@group(0) @binding(0) var<uniform> dims: RopeDims;
@group(0) @binding(1) var<storage, read> x_buf: array<Chunk>;
// cos[positions, half], then sin[positions, half], in f32.
@group(0) @binding(2) var<storage, read> table: array<f32>;
@group(0) @binding(3) var<storage, read_write> y_buf: array<OutWord>;

fn x_at(row: u32, col: u32) -> f32 {
    let v = x_buf[row * dims.chunks_per_row + col / VALUES_PER_VEC];
    return f32(chunk_value(v, col % VALUES_PER_VEC));
}

fn value(c: u32, j: u32) -> Scalar {
    let row = c / dims.chunks_per_row;
    let col = (c % dims.chunks_per_row) * VALUES_PER_VEC + j;
    if (col >= dims.cols) {
        return Scalar(0.0);
    }
    let d = col % (2u * dims.half); // the feature within its head
    let i = d % dims.half;
    let at = (dims.start + row % dims.seq) * dims.half + i;
    let cos_e = round_compute(table[at]);
    let sin_e = round_compute(table[dims.sin_at + at]);
    var rot: f32;
    if (d < dims.half) {
        rot = -x_at(row, col + dims.half);
    } else {
        rot = x_at(row, col - dims.half);
    }
    // The store rounds the sum.
    return Scalar(round_compute(x_at(row, col) * cos_e) + round_compute(rot * sin_e));
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>,
        @builtin(num_workgroups) groups: vec3<u32>) {
    let c = chunk_index(gid, groups);
    if (c >= dims.chunks) {
        return;
    }
    for (var p = 0u; p < VALUES_PER_VEC / 2u; p++) {
        store_chunk_pair(c, p, value(c, 2u * p), value(c, 2u * p + 1u));
    }
}

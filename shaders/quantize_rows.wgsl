// SPDX-License-Identifier: MIT OR Apache-2.0
// Keras's int8 activation quantizer (`AbsMaxQuantizer(axis=-1)`) on the GPU:
// per row, scale = 127 / (max|x| + 1e-7), q = clip(round(x * scale), -127,
// 127) (round half to even), packed four per u32 along k (lowest k in the
// lowest byte), as `dot4I8Packed` reads them. One workgroup per row.
// CPU twin: `quant::abs_max::quantize_rows`.

#import storage

struct QuantDims {
    m: u32,
    k_vecs: u32,      // x chunks per padded row
    q_row_words: u32, // u32 per row of q (k padded / 4)
    _pad: u32,
}

@group(0) @binding(0) var<uniform> qdims: QuantDims;
@group(0) @binding(1) var<storage, read> x_buf: array<Chunk>;
@group(0) @binding(2) var<storage, read_write> q_buf: array<u32>;
@group(0) @binding(3) var<storage, read_write> scale_buf: array<f32>;

var<workgroup> partial: array<f32, 64>;

fn x_value(row: u32, i: u32) -> f32 {
    return f32(chunk_value(x_buf[row * qdims.k_vecs + i / VALUES_PER_VEC], i % VALUES_PER_VEC));
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let row = wg.x;
    if (row >= qdims.m) {
        return;
    }
    var amax = 0.0;
    for (var c = lid; c < qdims.k_vecs * VALUES_PER_VEC; c += 64u) {
        amax = max(amax, abs(x_value(row, c)));
    }
    partial[lid] = amax;
    workgroupBarrier();
    for (var stride = 32u; stride > 0u; stride /= 2u) {
        if (lid < stride) {
            partial[lid] = max(partial[lid], partial[lid + stride]);
        }
        workgroupBarrier();
    }
    let scale = 127.0 / (partial[0] + 1e-7);
    for (var w = lid; w < qdims.q_row_words; w += 64u) {
        var q: vec4<i32>;
        for (var t = 0u; t < 4u; t++) {
            q[t] = i32(clamp(round(x_value(row, 4u * w + t) * scale), -127.0, 127.0));
        }
        q_buf[row * qdims.q_row_words + w] = pack4xI8(q);
    }
    if (lid == 0u) {
        scale_buf[row] = scale;
    }
}

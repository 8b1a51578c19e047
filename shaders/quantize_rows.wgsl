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

// Chunk i of a row of x. Each chunk is loaded once and all its values used:
// loads are costly on CPU drivers (lavapipe loops over the lanes).
fn x_chunk(row: u32, i: u32) -> Chunk {
    return x_buf[row * qdims.k_vecs + i];
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let row = wg.x;
    if (row >= qdims.m) {
        return;
    }
    // Values 4 part .. 4 part + 3 of a chunk: parts per chunk 1 (f32), 2 (16-bit formats).
    let chunk_parts = VALUES_PER_VEC / 4u;
    var amax = 0.0;
    for (var c = lid; c < qdims.k_vecs; c += 64u) {
        let chunk = x_chunk(row, c);
        for (var part = 0u; part < chunk_parts; part++) {
            let v = abs(chunk_part(chunk, part));
            amax = max(amax, max(max(v.x, v.y), max(v.z, v.w)));
        }
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
    // One word of q per part.
    for (var c = lid; c < qdims.k_vecs; c += 64u) {
        let chunk = x_chunk(row, c);
        for (var part = 0u; part < chunk_parts; part++) {
            let q = clamp(round(chunk_part(chunk, part) * scale), vec4<f32>(-127.0), vec4<f32>(127.0));
            q_buf[row * qdims.q_row_words + c * chunk_parts + part] = pack4xI8(vec4<i32>(q));
        }
    }
    if (lid == 0u) {
        scale_buf[row] = scale;
    }
}

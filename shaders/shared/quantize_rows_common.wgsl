// SPDX-License-Identifier: MIT OR Apache-2.0
// Keras's int8 activation quantizer (`AbsMaxQuantizer(axis=-1)`), the part
// both quantizer kernels share: per row, scale = 127 / (max|x| + 1e-7),
// q = clip(round(x * scale), -127, 127) (round half to even), packed four
// per u32 along k (lowest k in the lowest byte), as `dot4I8Packed` reads
// them. CPU twin: `quant::abs_max::quantize_rows`.

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

// Values 4 part .. 4 part + 3 of a chunk: parts per chunk 1 (f32), 2 (16-bit formats).
const CHUNK_PARTS: u32 = VALUES_PER_VEC / 4u;

// Chunk i of a row of x. Each chunk is loaded once per pass and all its
// values used: loads are costly on CPU drivers (lavapipe loops over the lanes).
fn x_chunk(row: u32, i: u32) -> Chunk {
    return x_buf[row * qdims.k_vecs + i];
}

// The largest |x| of a chunk, at least `amax`.
fn chunk_abs_max(amax: f32, chunk: Chunk) -> f32 {
    var m = amax;
    for (var part = 0u; part < CHUNK_PARTS; part++) {
        let v = abs(chunk_part(chunk, part));
        m = max(m, max(max(v.x, v.y), max(v.z, v.w)));
    }
    return m;
}

// The row's scale from its largest |x|.
fn row_scale(amax: f32) -> f32 {
    return 127.0 / (amax + 1e-7);
}

// Chunk c of a row quantized into its words of q (one per part).
fn store_quantized(row: u32, c: u32, chunk: Chunk, scale: f32) {
    for (var part = 0u; part < CHUNK_PARTS; part++) {
        let q = clamp(round(chunk_part(chunk, part) * scale), vec4<f32>(-127.0), vec4<f32>(127.0));
        q_buf[row * qdims.q_row_words + c * CHUNK_PARTS + part] = pack4xI8(vec4<i32>(q));
    }
}

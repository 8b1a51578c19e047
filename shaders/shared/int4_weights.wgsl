// SPDX-License-Identifier: MIT OR Apache-2.0
// Bindings and decoders of the weight-only Dense kernels (dense_int4.wgsl,
// dense_int4_tiled.wgsl): int4 weights eight per u32 along k (lowest k in
// the lowest nibble), or int8 four per u32 (WEIGHT_BITS 8); per-column
// scales, or per group with zero points (GROUPED). Stay in sync with
// `Int4Dims` and the upload in src/gpu/int4.rs.

override GROUPED: bool = false;
// 8: the same kernel for Keras's int8 Dense without an activation quantizer
// (weight-only int8: four per u32 along k, per-column scales, never grouped).
override WEIGHT_BITS: u32 = 4u;

struct Int4Dims {
    m: u32,
    n: u32,
    k_vecs: u32,      // vec4<u32> per row of W^T: k padded / 32 (int8: / 16)
    y_row_words: u32, // OutWords per row of y
    block: u32,       // group size along k (grouped)
    n_padded: u32,    // row length of the scale and zero tables
    groups: u32,      // groups along k (grouped)
    _pad: u32,
}

@group(0) @binding(0) var<uniform> dims: Int4Dims;
// x: [m, k padded] in the storage format.
@group(0) @binding(1) var<storage, read> x_buf: array<Chunk>;
// W^T: [n rounded up to even, k_vecs] vectors of four words of eight int4
// (or four int8).
@group(0) @binding(2) var<storage, read> w_buf: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read> bias_buf: array<Scalar>;
@group(0) @binding(4) var<storage, read_write> y_buf: array<OutWord>;
// Scales: [n_padded] per channel, or [groups, n_padded].
@group(0) @binding(5) var<storage, read> scale_buf: array<f32>;
// Zero points [groups, n_padded], int8 four per u32 (unused per channel).
@group(0) @binding(6) var<storage, read> zero_buf: array<u32>;

#import dense_output

// Nibbles 4h .. 4h+3 of a word as signed values.
fn nibbles(word: u32, h: u32) -> vec4<f32> {
    let s = vec4<u32>(28u, 24u, 20u, 16u) - vec4<u32>(16u * h);
    return vec4<f32>(bitcast<vec4<i32>>(vec4<u32>(word) << s) >> vec4<u32>(28u));
}

// The four int8 of a word (lowest byte first) as f32.
fn bytes_i8(word: u32) -> vec4<f32> {
    return vec4<f32>(unpack4xI8(word));
}

fn zero_point(g: u32, j: u32) -> f32 {
    let idx = g * dims.n_padded + j;
    return f32((i32(zero_buf[idx / 4u] << (24u - 8u * (idx % 4u)))) >> 24u);
}

// The group of k (grouped); a last partial group keeps the last index.
fn group_of(k: u32) -> u32 {
    return min(k / dims.block, dims.groups - 1u);
}

// A weight of output j at k dequantized with its group: scale · (q - zero).
fn grouped_weight(q: f32, k: u32, j: u32) -> f32 {
    let g = group_of(k);
    return scale_buf[g * dims.n_padded + j] * (q - zero_point(g, j));
}

// The value stored for output j from its sum: per channel x · q / s_w;
// grouped, the weights were already dequantized.
fn weight_only_output(sum: f32, j: u32) -> Scalar {
    if (GROUPED) {
        return finish(Scalar(sum), j);
    }
    return finish(Scalar(sum / scale_buf[j]), j);
}

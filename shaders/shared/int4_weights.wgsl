// SPDX-License-Identifier: MIT OR Apache-2.0
// Bindings and decoders of the weight-only Dense kernels (dense_int4.wgsl,
// dense_int4_tiled.wgsl): int4 weights eight per u32 along k (lowest k in
// the lowest nibble), or int8 four per u32 (WEIGHT_BITS 8); per-column
// scales, or per group with zero points (GROUPING). Stay in sync with
// `Int4Dims` and the upload in src/gpu/int4.rs.

// How weights are scaled (`grouping` in src/gpu/int4.rs): per channel, or
// grouped along k with scales and zero points; grouped in blocks of whole
// 32-k steps, the matrix-vector kernel scales once per group. A pipeline
// each: CPU drivers run both sides of a branch.
const PER_CHANNEL: u32 = 0u;
const GROUPS_ANY: u32 = 1u;
const GROUPS_OF_STEPS: u32 = 2u;
override GROUPING: u32 = PER_CHANNEL;
// 8: the same kernel for Keras's int8 Dense without an activation quantizer
// (weight-only int8: four per u32 along k, per-column scales, never grouped).
override WEIGHT_BITS: u32 = 4u;

struct Int4Dims {
    m: u32,
    n: u32,
    k_vecs: u32,      // vec4<u32> per row of W^T: k padded / 32 (int8: / 16)
    y_row_words: u32, // OutWords per row of y
    block: u32,       // group size along k (grouped)
    n_padded: u32,    // row length of the scale and zero tables (a multiple of 8)
    groups: u32,      // groups along k (grouped)
    _pad: u32,
}

@group(0) @binding(0) var<uniform> dims: Int4Dims;
// x and W^T (bindings 1 and 2): weight_buffers.wgsl, or chunk_texture.wgsl.
@group(0) @binding(3) var<storage, read> bias_buf: array<Scalar>;
@group(0) @binding(4) var<storage, read_write> y_buf: array<OutWord>;
// Scales: [n_padded] per channel, or [groups, n_padded], read as vec4 so
// that eight outputs' scales are two loads (each load is costly on CPU
// drivers: lavapipe loops over the lanes).
@group(0) @binding(5) var<storage, read> scale_buf: array<vec4<f32>>;
// Zero points [groups, n_padded], int8 four per u32, two u32 per vec2
// (unused per channel).
@group(0) @binding(6) var<storage, read> zero_buf: array<vec2<u32>>;

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

// Scale i of the table.
fn scale_at(i: u32) -> f32 {
    return scale_buf[i / 4u][i % 4u];
}

fn zero_point(g: u32, j: u32) -> f32 {
    let idx = g * dims.n_padded + j;
    let word = zero_buf[idx / 8u][(idx / 4u) % 2u];
    return f32((i32(word << (24u - 8u * (idx % 4u)))) >> 24u);
}

// Scales and zero points of group g for the eight outputs n0 .. n0+7 (n0 a
// multiple of 8): a for the first four, b for the others.
struct GroupTables8 {
    scale_a: vec4<f32>,
    scale_b: vec4<f32>,
    zero_a: vec4<f32>,
    zero_b: vec4<f32>,
}

fn group_tables8(g: u32, n0: u32) -> GroupTables8 {
    let i = (g * dims.n_padded + n0) / 4u;
    let zeros = zero_buf[i / 2u];
    return GroupTables8(scale_buf[i], scale_buf[i + 1u],
                        vec4<f32>(unpack4xI8(zeros.x)), vec4<f32>(unpack4xI8(zeros.y)));
}

// The group of k (grouped); a last partial group keeps the last index.
fn group_of(k: u32) -> u32 {
    return min(k / dims.block, dims.groups - 1u);
}

// A weight of output j at k dequantized with its group: scale · (q - zero).
fn grouped_weight(q: f32, k: u32, j: u32) -> f32 {
    let g = group_of(k);
    return scale_at(g * dims.n_padded + j) * (q - zero_point(g, j));
}

// The value stored for output j from its sum: per channel x · q / s_w;
// grouped, the weights were already dequantized.
fn weight_only_output(sum: f32, j: u32) -> Scalar {
    if (GROUPING != PER_CHANNEL) {
        return finish(Scalar(sum), j);
    }
    return finish(Scalar(sum / scale_at(j)), j);
}

// SPDX-License-Identifier: MIT OR Apache-2.0
// W^T of the float and int8 matrix-vector kernels for CPU drivers, read in
// 32-byte loads (vec4<u64>, SHADER_INT64) and laid out for the lanes of a
// SIMD group. CPU drivers pay per load instruction and lane, whatever its
// width, so two chunks per load halve the loads; and a SIMD group's 8 lanes
// run 8 invocations of 8 outputs each, so that in row-major W^T one step
// reads 64 rows far apart, more streams than the hardware prefetcher
// follows. Here the pairs of chunks the 8 lanes load at one step for one
// of their outputs are adjacent (`lanes_layout` in src/gpu/dense.rs):
// pair p of output j = (g * 8 + lane) * 8 + o sits at
// ((g * pairs + p) * 8 + o) * 8 + lane. The same bytes as
// shared/dense_weights.wgsl's chunks; only where `WeightChunk` is vec4<u32>
// (int8 codes, or a storage format of words).

// W^T: [n rounded up to 64, k_padded] in the storage format or int8 codes,
// two chunks per element, in the lanes layout (rows hold whole pairs of
// chunks: k_padded is a multiple of 32 values of a byte or more).
@group(0) @binding(2) var<storage, read> w_buf: array<vec4<u64>>;

// Elements between one pair of chunks of an output and its next.
const PAIR_STRIDE: u32 = 64u;

// Where the pairs of W^T rows j start (element index units: see w_pair).
fn w_starts(j: vec4<u32>) -> vec4<u32> {
    let group_pairs = (j / 64u) * (dims.k_vecs / 2u) * PAIR_STRIDE;
    return group_pairs + (j % 8u) * 8u + (j / 8u) % 8u;
}

// Chunks i and i + 1 (i even) of the W^T row that starts at `start`, from
// one load.
fn w_pair(start: u32, i: u32) -> array<WeightChunk, 2> {
    let w = w_buf[start + (i / 2u) * PAIR_STRIDE];
    return array<WeightChunk, 2>(
        vec4<u32>(u32(w.x), u32(w.x >> 32u), u32(w.y), u32(w.y >> 32u)),
        vec4<u32>(u32(w.z), u32(w.z >> 32u), u32(w.w), u32(w.w >> 32u)));
}

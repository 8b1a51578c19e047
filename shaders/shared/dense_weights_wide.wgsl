// SPDX-License-Identifier: MIT OR Apache-2.0
// W^T of the float and int8 matrix-vector kernels read in 32-byte loads
// (vec4<u64>, SHADER_INT64): CPU drivers pay per load instruction and lane, whatever
// its width, so two chunks per load halve the loads. The same bytes as
// shared/dense_weights.wgsl's chunks; only where `WeightChunk` is vec4<u32>
// (int8 codes, or a storage format of words).

// W^T: [n rounded up to even, k_padded] in the storage format or int8
// codes, two chunks per element (rows hold whole pairs of chunks: k_padded
// is a multiple of 32 values of a byte or more).
@group(0) @binding(2) var<storage, read> w_buf: array<vec4<u64>>;

// Chunks i and i + 1 of W^T (i even), from one load.
fn w_pair(i: u32) -> array<WeightChunk, 2> {
    let w = w_buf[i / 2u];
    return array<WeightChunk, 2>(
        vec4<u32>(u32(w.x), u32(w.x >> 32u), u32(w.y), u32(w.y >> 32u)),
        vec4<u32>(u32(w.z), u32(w.z >> 32u), u32(w.w), u32(w.w >> 32u)));
}

// SPDX-License-Identifier: MIT OR Apache-2.0
// W^T of the float Dense kernels read in 32-byte loads (vec4<u64>,
// SHADER_INT64): CPU drivers pay per load instruction and lane, whatever
// its width, so two chunks per load halve the loads. The same bytes as
// shared/dense_weights.wgsl's chunks; only for storage formats whose Chunk
// is vec4<u32>.

// W^T: [n rounded up to even, k_padded] in the storage format, two chunks
// per element (rows hold an even number of chunks: k_padded is a multiple
// of 64 values).
@group(0) @binding(2) var<storage, read> w_buf: array<vec4<u64>>;

// Chunks i and i + 1 of W^T (i even), from one load.
fn w_pair(i: u32) -> array<Chunk, 2> {
    let w = w_buf[i / 2u];
    return array<Chunk, 2>(
        vec4<u32>(u32(w.x), u32(w.x >> 32u), u32(w.y), u32(w.y >> 32u)),
        vec4<u32>(u32(w.z), u32(w.z >> 32u), u32(w.w), u32(w.w >> 32u)));
}

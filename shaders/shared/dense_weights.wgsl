// SPDX-License-Identifier: MIT OR Apache-2.0
// W^T of the Dense kernels that read it from a storage buffer in 16-byte
// chunks (float and int8). The bindings file names the element:
// `WeightChunk`, the storage format's Chunk or int8 codes' vec4<u32>.

// W^T: [n rounded up to even, k_padded] in the storage format, or int8
// codes (row j = output j).
@group(0) @binding(2) var<storage, read> w_buf: array<WeightChunk>;

// Where W^T rows j start.
fn w_starts(j: vec4<u32>) -> vec4<u32> {
    return j * dims.k_vecs;
}

// Chunks i and i + 1 (i even: rows hold an even number of chunks) of the
// W^T row that starts at `start`.
fn w_pair(start: u32, i: u32) -> array<WeightChunk, 2> {
    return array<WeightChunk, 2>(w_buf[start + i], w_buf[start + i + 1u]);
}

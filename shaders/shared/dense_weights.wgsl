// SPDX-License-Identifier: MIT OR Apache-2.0
// W^T of the float Dense kernels, read in 16-byte chunks.

// W^T: [n rounded up to even, k_padded] in the storage format (row j = output j).
@group(0) @binding(2) var<storage, read> w_buf: array<Chunk>;

// Chunks i and i + 1 of W^T (i even: rows hold an even number of chunks).
fn w_pair(i: u32) -> array<Chunk, 2> {
    return array<Chunk, 2>(w_buf[i], w_buf[i + 1u]);
}

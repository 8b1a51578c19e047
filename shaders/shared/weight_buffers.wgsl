// SPDX-License-Identifier: MIT OR Apache-2.0
// x and W^T of the quantized Dense kernels that read them from storage
// buffers (int4_weights.wgsl and float8_weights.wgsl declare the other
// bindings; the register tiles read chunk textures instead).

// x: [m, k padded] in the storage format.
@group(0) @binding(1) var<storage, read> x_buf: array<Chunk>;
// W^T: [n rounded up to even, k_vecs] vectors of four words: eight int4,
// four int8 or four float8 codes each.
@group(0) @binding(2) var<storage, read> w_buf: array<vec4<u32>>;

// SPDX-License-Identifier: MIT OR Apache-2.0
// Bindings of the float Dense kernels. Stay in sync with `DenseDims` and
// `Kernel::bindings` in src/gpu/, and with the argument order of
// src/cpu/dense.rs.

#import dense_dims
// x: [m, k_padded] in the storage format.
@group(0) @binding(1) var<storage, read> x_buf: array<Chunk>;
// W^T (binding 2), in the storage format: shared/dense_weights.wgsl or
// dense_weights_wide.wgsl.
alias WeightChunk = Chunk;
// bias: [n rounded up to even], Scalar (already rounded to the compute dtype).
@group(0) @binding(3) var<storage, read> bias_buf: array<Scalar>;
// y: [m, y_row_words] in the storage format.
@group(0) @binding(4) var<storage, read_write> y_buf: array<OutWord>;

#import dense_output

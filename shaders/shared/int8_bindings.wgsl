// SPDX-License-Identifier: MIT OR Apache-2.0
// Bindings of the int8 Dense kernels (dense_int8.wgsl, dense_int8_wide.wgsl,
// dense_int8_tiled.wgsl).
// Stay in sync with `Kernel::bindings` and the host side in src/gpu/int8.rs.

// Write the raw i32 accumulators instead of y (for tests of the twin).
override WRITE_ACCUMULATOR: bool = false;

struct Int8Dims {
    m: u32,
    n: u32,
    k_vecs: u32,      // 16-byte chunks per padded row of q and of W^T
    y_row_words: u32, // OutWords per row of y
}

@group(0) @binding(0) var<uniform> dims: Int8Dims;
// Quantized x: [m, k padded], four int8 per u32.
@group(0) @binding(1) var<storage, read> q_buf: array<vec4<u32>>;
// W^T (binding 2), four int8 per u32 along k: shared/dense_weights.wgsl or
// dense_weights_wide.wgsl.
alias WeightChunk = vec4<u32>;
// bias: [n rounded up to even], Scalar.
@group(0) @binding(3) var<storage, read> bias_buf: array<Scalar>;
// y: [m, y_row_words] in the storage format (i32 accumulators when WRITE_ACCUMULATOR).
@group(0) @binding(4) var<storage, read_write> y_buf: array<OutWord>;
// Per-row activation scales [m] and per-column weight scales [n rounded up to even].
@group(0) @binding(5) var<storage, read> x_scale: array<f32>;
@group(0) @binding(6) var<storage, read> w_scale: array<f32>;

#import dense_output

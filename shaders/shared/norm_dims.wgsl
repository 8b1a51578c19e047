// SPDX-License-Identifier: MIT OR Apache-2.0
// The uniform of the norm kernels (layer_norm.wgsl, add_layer_norm.wgsl);
// stay in sync with `Graph::layer_norm` (src/gpu/norm.rs).

struct NormDims {
    cols: u32,     // values per row
    chunks: u32,   // 16-byte chunks per padded row
    rows: u32,
    epsilon: f32,
}

// SPDX-License-Identifier: MIT OR Apache-2.0
// The uniform of the float Dense kernels (binding 0). Stays in sync with the
// uniform `record_dense` writes in src/gpu/dense.rs.

struct DenseDims {
    m: u32,          // rows of x and y
    n: u32,          // outputs (units)
    k_vecs: u32,     // 16-byte chunks per padded row of x and of W^T
    y_row_words: u32 // OutWords per row of y
}

@group(0) @binding(0) var<uniform> dims: DenseDims;

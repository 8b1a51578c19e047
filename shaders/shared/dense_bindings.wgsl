// SPDX-License-Identifier: MIT OR Apache-2.0
// Bindings of every Dense kernel. Stay in sync with `DenseDims` and the bind
// group layout in src/gpu/dense.rs, and with the argument order of
// src/cpu/dense.rs.

struct DenseDims {
    m: u32,          // rows of x and y
    n: u32,          // outputs (units)
    k_vecs: u32,     // 16-byte chunks per padded row of x and of W^T
    y_row_words: u32 // OutWords per row of y
}

@group(0) @binding(0) var<uniform> dims: DenseDims;
// x: [m, k_padded] in the storage format.
@group(0) @binding(1) var<storage, read> x_buf: array<Chunk>;
// W^T: [n rounded up to even, k_padded] in the storage format (row j = output j).
@group(0) @binding(2) var<storage, read> w_buf: array<Chunk>;
// bias: [n rounded up to even], Scalar (already rounded to the compute dtype).
@group(0) @binding(3) var<storage, read> bias_buf: array<Scalar>;
// y: [m, y_row_words] in the storage format.
@group(0) @binding(4) var<storage, read_write> y_buf: array<OutWord>;

fn finish(acc: Scalar, n: u32) -> Scalar {
    return activate(acc + bias_buf[n]);
}

// Stores outputs n0 and n0 + 1 of a row; n0 is even. A missing odd output
// is not written (f32) or written as +0 (16-bit padding half).
fn store_out_pair(row: u32, n0: u32, a: Scalar, b: Scalar) {
    let has_b = n0 + 1u < dims.n;
    let words = pack_out_pair(a, select(Scalar(0.0), b, has_b));
    let base = row * dims.y_row_words + n0 / 2u * OUT_WORDS_PER_PAIR;
    y_buf[base] = words.x;
    if (OUT_WORDS_PER_PAIR == 2u && has_b) {
        y_buf[base + 1u] = words.y;
    }
}

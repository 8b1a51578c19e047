// SPDX-License-Identifier: MIT OR Apache-2.0
// The end of every Dense kernel: bias, activation, and the store of a pair
// of outputs in the storage format. The kernel provides `dims` (with `n`
// and `y_row_words`), `bias_buf` and `y_buf`.

// Rows of W^T (and entries of the bias): N rounded up to even, as
// `DenseLayout::n_padded` lays them out.
fn w_rows() -> u32 {
    return (dims.n + 1u) / 2u * 2u;
}

// The W^T rows of outputs n0 .. n0+3: rows past the last one are read again
// from it, and their results dropped by store_outputs4.
fn rows4(n0: u32) -> vec4<u32> {
    return min(vec4<u32>(n0) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(w_rows() - 1u));
}

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

// Stores outputs n0 .. n0+3 of a row (n0 even), those below dims.n.
fn store_outputs4(row: u32, n0: u32, a: Scalar, b: Scalar, c: Scalar, d: Scalar) {
    store_out_pair(row, n0, a, b);
    if (n0 + 2u < dims.n) {
        store_out_pair(row, n0 + 2u, c, d);
    }
}

// Stores outputs n0 .. n0+7 of a row (n0 even), those below dims.n.
fn store_outputs8(row: u32, n0: u32, v: array<Scalar, 8>) {
    if (n0 < dims.n) {
        store_outputs4(row, n0, v[0], v[1], v[2], v[3]);
    }
    if (n0 + 4u < dims.n) {
        store_outputs4(row, n0 + 4u, v[4], v[5], v[6], v[7]);
    }
}

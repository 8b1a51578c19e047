// SPDX-License-Identifier: MIT OR Apache-2.0
//! The packed layouts of Dense weights on the GPU, defined once here; the
//! WGSL readers (`shaders/shared/int4_weights.wgsl`, `int8_bindings.wgsl`,
//! `float8_weights.wgsl`) must stay in sync.
//!
//! Every Dense kernel reads W transposed (W^T: one row of k values per
//! output), k padded with zeros to a multiple of [`K_ALIGN`], the outputs
//! rounded up to even (a zero row when odd). Quantized values are packed
//! along k, the lowest k in the lowest bits of a 32-bit word:
//! - int8 and float8 codes, four per word. Worked example: `[1, -2, 3, -4]`
//!   is the word `0xfc03_fe01`.
//! - int4, eight per word, two's-complement nibbles. Worked example:
//!   `[1, -2, 3, -4, 0, 0, 0, 7]` is the word `0x7000_c3e1`.
//!
//! Scales and zero points are tables of [`table_columns`] columns (the
//! outputs rounded up to eight, one matrix-vector invocation's outputs),
//! one row per group along k: f32 scales, int8 zero points four per word.

/// k (and every tensor's row) is padded with zeros to a multiple of this:
/// the tiled kernels' tile depth, a whole number of 16-byte chunks in every
/// storage format, of eight-nibble words and of four-byte words.
pub const K_ALIGN: usize = 32;

/// int8 values (or float8 codes) four per u32, the lowest index in the lowest byte.
pub fn pack_i8_words(values: &[i8]) -> Vec<u32> {
    values
        .chunks(4)
        .map(|q| {
            q.iter()
                .enumerate()
                .fold(0u32, |w, (i, &v)| w | (u32::from(v as u8) << (8 * i)))
        })
        .collect()
}

/// int4 values (in [-8, 7]) eight per u32, the lowest index in the lowest nibble.
pub fn pack_i4_words(values: &[i8]) -> Vec<u32> {
    values
        .chunks(8)
        .map(|q| {
            q.iter().enumerate().fold(0u32, |w, (i, &v)| {
                w | (u32::from(v as u8 & 0x0f) << (4 * i))
            })
        })
        .collect()
}

/// W^T of a `[k, n]` matrix of small integers (`value(i, j)`), each of the
/// `n_padded` columns padded with zeros to `k_padded` and packed along k by
/// `pack` ([`pack_i8_words`] or [`pack_i4_words`]); columns past `n` are zeros.
pub fn pack_transposed(
    (k, n): (usize, usize),
    (k_padded, n_padded): (usize, usize),
    value: impl Fn(usize, usize) -> i8,
    pack: fn(&[i8]) -> Vec<u32>,
) -> Vec<u32> {
    let mut column = vec![0i8; k_padded];
    let mut words = Vec::new();
    for j in 0..n_padded {
        column.fill(0);
        if j < n {
            for (i, c) in column.iter_mut().take(k).enumerate() {
                *c = value(i, j);
            }
        }
        words.extend(pack(&column));
    }
    words
}

/// Columns of the scale and zero-point tables of an `n`-output layer: n
/// rounded up to a multiple of 8, one kernel invocation's outputs, so that
/// its eight scales are two `vec4<f32>` and its zero points one `vec2<u32>`.
pub const fn table_columns(n: usize) -> usize {
    n.div_ceil(8) * 8
}

/// Columns `start .. start + len` of every row of `table` (rows of
/// `columns`; columns past the table's are `fill`), each row padded with
/// `fill` to [`table_columns`]`(len)`: a part's scales or zero points.
pub fn table_part<V: Copy>(
    table: &[V],
    columns: usize,
    (start, len): (usize, usize),
    fill: V,
) -> Vec<V> {
    let width = table_columns(len);
    table
        .chunks(columns)
        .flat_map(|row| {
            (start..start + width).map(move |j| {
                if j < start + len {
                    row.get(j).copied().unwrap_or(fill)
                } else {
                    fill
                }
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packing_puts_the_lowest_k_in_the_lowest_bits() {
        assert_eq!(pack_i8_words(&[1, -2, 3, -4]), [0xfc03_fe01]);
        assert_eq!(pack_i8_words(&[5]), [5]);
        assert_eq!(pack_i4_words(&[1, -2, 3, -4, 0, 0, 0, 7]), [0x7000_c3e1]);
        assert_eq!(pack_i4_words(&[-8]), [0x8]);
    }

    #[test]
    fn a_transposed_column_is_one_row_of_words() {
        // [k=2, n=3] -> W^T rows of k padded to 4, n padded to 4.
        let w = [1i8, 2, 3, 4, 5, 6];
        let words = pack_transposed((2, 3), (4, 4), |i, j| w[i * 3 + j], pack_i8_words);
        assert_eq!(words, [0x0000_0401, 0x0000_0502, 0x0000_0603, 0]);
        assert_eq!(
            table_part(&[1, 2, 3, 4, 5, 6, 7, 8, 9], 9, (8, 1), 0),
            [9, 0, 0, 0, 0, 0, 0, 0]
        );
    }
}

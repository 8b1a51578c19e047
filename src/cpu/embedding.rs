// SPDX-License-Identifier: MIT OR Apache-2.0
//! CPU twin of shaders/embedding.wgsl: table rows by id (or by position),
//! dequantized in f32 from scales rounded to the compute format, rounded
//! to the format.

use crate::error::{Error, Result};
use crate::format::embedding::embedding_layout;
use crate::format::{DenseKernel, HostFloat, StorageFormat};

/// Keras's Embedding of `ids` (integer-valued, below the vocabulary) from
/// `table`, the [`DenseKernel`] of the table's transpose, in `format`:
/// `[ids.len(), output_dim]`.
pub fn embedding<T: HostFloat>(
    table: &DenseKernel,
    format: StorageFormat,
    ids: &[f32],
) -> Result<Vec<T>> {
    let (dim, vocab) = (table.k(), table.n());
    let layout = embedding_layout(table, format)?;
    let bits = layout.bits;
    let per_word = 32 / bits;
    let mut y = Vec::with_capacity(ids.len() * dim);
    for &id in ids {
        if !(id >= 0.0 && id < vocab as f32 && id.fract() == 0.0) {
            return Err(Error::InvalidArgument(format!(
                "an embedding id of {id}; ids are integers from 0 to {}",
                vocab - 1
            )));
        }
        let row = id as usize;
        for j in 0..dim {
            let word = layout.words[row * layout.row_words + j / per_word];
            let q = || {
                let shift = (j % per_word) * bits;
                // Sign-extend the field, as the shader's shifts do.
                (((word >> shift) << (32 - bits)) as i32 >> (32 - bits)) as f32
            };
            let v = match layout.mode {
                0 => f32::from_bits(word),
                1 | 2 => q() / layout.scales[row],
                _ => {
                    let g = row * dim.div_ceil(layout.block) + j / layout.block;
                    (q() - layout.zeros[g]) * layout.scales[g]
                }
            };
            y.push(T::from_f64(format.round(f64::from(v))));
        }
    }
    Ok(y)
}

/// KerasHub's PositionEmbedding as shaders/embedding.wgsl gathers it by
/// position: `rows` rows (`batch seq`), row r being row `start + r % seq`
/// of `table` (the [`DenseKernel`] of the `[max_positions, dim]` table's
/// transpose, float), rounded to `format`: `[rows, dim]`.
pub fn positions(
    table: &DenseKernel,
    format: StorageFormat,
    rows: usize,
    seq: usize,
    start: usize,
) -> Result<Vec<f32>> {
    let mode = embedding_layout(table, format)?.mode;
    crate::ops::check_positions(mode, table.n(), rows, seq, start)?;
    // The twin gathers through f32 ids, exact up to 2^24.
    if table.n() > 1 << 24 {
        return Err(Error::Unsupported(format!(
            "a position table of {} rows; the twin takes up to 2^24",
            table.n()
        )));
    }
    let ids: Vec<f32> = (0..rows).map(|r| (start + r % seq) as f32).collect();
    embedding(table, format, &ids)
}

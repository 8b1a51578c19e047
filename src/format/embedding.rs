// SPDX-License-Identifier: MIT OR Apache-2.0
//! An Embedding's table laid out by vocabulary row, as the gather kernel
//! (shaders/embedding.wgsl) and its CPU twin read it, from the
//! [`DenseKernel`] of the table's transpose.

use crate::error::{Error, Result};
use crate::format::{DenseKernel, KernelValues, StorageFormat};

/// The table by vocabulary row as the kernel reads it: its `MODE`, words
/// per row, words, scales and zero points (rounded to `format`, as Keras
/// reads them autocast), and group size.
pub struct EmbeddingLayout {
    /// shaders/embedding.wgsl's `MODE`: 0 float, 1 int8, 2 int4, 3 grouped int4.
    pub mode: u32,
    /// Bits per value in `words`: 32 (f32), 8 or 4.
    pub bits: usize,
    /// Words per vocabulary row.
    pub row_words: usize,
    /// The table's words, row after row (f32 bits, or packed 8- or 4-bit
    /// values, the first in the lowest bits).
    pub words: Vec<u32>,
    /// Scales per row (`[vocab]`), or per row and group (`[vocab, groups]`).
    pub scales: Vec<f32>,
    /// Zero points per row and group (grouped int4 only).
    pub zeros: Vec<f32>,
    /// Columns per group (grouped int4 only).
    pub block: usize,
}

/// `table` (the transpose, `[dim, vocab]`) laid out by vocabulary row.
pub fn embedding_layout(table: &DenseKernel, format: StorageFormat) -> Result<EmbeddingLayout> {
    let (dim, vocab) = (table.k(), table.n());
    let at = |j: usize, v: usize| j * vocab + v;
    let round = |s: &[f32]| -> Vec<f32> {
        s.iter()
            .map(|&v| format.round(f64::from(v)) as f32)
            .collect()
    };
    // Packs `bits`-bit values of each vocabulary row into words, the first
    // in the lowest bits.
    let pack = |q: &[i8], bits: usize| -> (usize, usize, Vec<u32>) {
        let per_word = 32 / bits;
        let row_words = dim.div_ceil(per_word);
        let mut words = vec![0u32; vocab * row_words];
        let mask = (1u32 << bits) - 1;
        for v in 0..vocab {
            for j in 0..dim {
                let nibble = (q[at(j, v)] as u8 as u32) & mask;
                words[v * row_words + j / per_word] |= nibble << ((j % per_word) * bits);
            }
        }
        (bits, row_words, words)
    };
    Ok(match table.values() {
        KernelValues::Float(w) => {
            let mut words = Vec::with_capacity(vocab * dim);
            for v in 0..vocab {
                words.extend((0..dim).map(|j| (w.get(at(j, v)) as f32).to_bits()));
            }
            EmbeddingLayout {
                mode: 0,
                bits: 32,
                row_words: dim,
                words,
                scales: Vec::new(),
                zeros: Vec::new(),
                block: 0,
            }
        }
        KernelValues::Int8 { q, scale, .. } => {
            let (bits, row_words, words) = pack(q, 8);
            EmbeddingLayout {
                mode: 1,
                bits,
                row_words,
                words,
                scales: round(scale),
                zeros: Vec::new(),
                block: 0,
            }
        }
        KernelValues::Int4 {
            q,
            scale,
            zero,
            block,
            ..
        } => {
            let (bits, row_words, words) = pack(q, 4);
            match (zero, block) {
                (Some(zero), Some(b)) => {
                    // [groups, vocab] to [vocab, groups], as rows are gathered.
                    let groups = table.groups();
                    let by_row = |s: &[f32]| -> Vec<f32> {
                        (0..vocab * groups)
                            .map(|i| s[(i % groups) * vocab + i / groups])
                            .collect()
                    };
                    let zeros: Vec<f32> = zero.iter().map(|&z| f32::from(z)).collect();
                    EmbeddingLayout {
                        mode: 3,
                        bits,
                        row_words,
                        words,
                        scales: round(&by_row(scale)),
                        zeros: by_row(&zeros),
                        block: b.get() as usize,
                    }
                }
                _ => EmbeddingLayout {
                    mode: 2,
                    bits,
                    row_words,
                    words,
                    scales: round(scale),
                    zeros: Vec::new(),
                    block: 0,
                },
            }
        }
        KernelValues::Float8 { .. } => {
            return Err(Error::Unsupported(
                "a float8 Embedding (Keras has no float8 Embedding)".to_owned(),
            ));
        }
    })
}

/// Bytes of `table` (an Embedding's transpose) on the GPU, as
/// [`embedding_layout`] lays it out, without building it.
pub fn table_bytes(table: &DenseKernel) -> Result<u64> {
    let (dim, vocab) = (table.k() as u64, table.n() as u64);
    let words = |per_word: u64| vocab * dim.div_ceil(per_word) * 4;
    Ok(match table.values() {
        KernelValues::Float(_) => words(1),
        KernelValues::Int8 { .. } => words(4) + vocab * 4,
        KernelValues::Int4 { zero: None, .. } => words(8) + vocab * 4,
        KernelValues::Int4 { .. } => words(8) + 2 * vocab * table.groups() as u64 * 4,
        KernelValues::Float8 { .. } => {
            return Err(Error::Unsupported(
                "a float8 Embedding (Keras has no float8 Embedding)".to_owned(),
            ));
        }
    })
}

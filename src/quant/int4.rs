// SPDX-License-Identifier: MIT OR Apache-2.0
//! Keras's grouped int4 with zero points
//! (`abs_max_quantize_grouped_with_zero_point`, the NumPy path that
//! `Dense.quantize("int4")` takes) and its nibble packing (`pack_int4`).

use crate::error::{Error, Result};
use crate::quant::EPSILON;
use crate::quant::abs_max::IntRange;

/// A kernel quantized in groups of `block_size` input rows.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupedInt4 {
    /// Quantized values `[k, n]`, in [-8, 7].
    pub q: Vec<i8>,
    /// Scales `[groups, n]` (dequantize: `(q - zero) * scale`).
    pub scale: Vec<f32>,
    /// Zero points `[groups, n]`, in [-8, 7].
    pub zero: Vec<i8>,
    /// Number of groups, `ceil(k / block_size)`.
    pub groups: usize,
}

/// Quantizes `w` (`[k, n]`) in groups of `block_size` rows; rows past `k`
/// count as zeros, as Keras pads them. Per group g and column j:
/// `scale = (max - min + 1e-7) / 15`,
/// `zero = clip(round(-min / scale) - 8, -8, 7)`,
/// `q = clip(round(w / scale) + zero, -8, 7)`, all in f32.
pub fn quantize_grouped(w: &[f32], k: usize, n: usize, block_size: usize) -> Result<GroupedInt4> {
    if block_size == 0 || w.len() != k * n {
        return Err(Error::Shape(format!(
            "a kernel of {} values is not [{k}, {n}], or block_size {block_size} is 0",
            w.len()
        )));
    }
    let IntRange { lo, hi } = IntRange::INT4;
    let (lo, hi) = (f32::from(lo), f32::from(hi));
    let groups = k.div_ceil(block_size);
    let mut scale = vec![0f32; groups * n];
    let mut zero_f = vec![0f32; groups * n];
    for g in 0..groups {
        for j in 0..n {
            let rows = g * block_size..(g + 1) * block_size;
            let value = |i: usize| if i < k { w[i * n + j] } else { 0.0 };
            let (min, max) = rows
                .map(value)
                .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), v| {
                    (a.min(v), b.max(v))
                });
            let s = (max - min + EPSILON) / (hi - lo);
            let z = ((-min / s).round_ties_even() + lo).clamp(lo, hi);
            scale[g * n + j] = s;
            zero_f[g * n + j] = z;
        }
    }
    let q = (0..k * n)
        .map(|idx| {
            let gj = (idx / n) / block_size * n + idx % n;
            ((w[idx] / scale[gj]).round_ties_even() + zero_f[gj]).clamp(lo, hi) as i8
        })
        .collect();
    let zero = zero_f.iter().map(|&z| z as i8).collect();
    Ok(GroupedInt4 {
        q,
        scale,
        zero,
        groups,
    })
}

/// Keras's `pack_int4(q, axis=-1)` for a `[k, n]` matrix: two adjacent
/// columns per byte, the even column in the low nibble, two's-complement
/// nibbles, an odd column count padded with 0. Returns `[k, ceil(n / 2)]`.
///
/// Worked example: the row `[-3, 7, 2]` packs to `[0x7d, 0x02]`
/// (`-3` is the nibble `0xd`).
pub fn pack_int4_columns(q: &[i8], k: usize, n: usize) -> Vec<i8> {
    let half = n.div_ceil(2);
    let mut out = Vec::with_capacity(k * half);
    if n == 0 {
        return out;
    }
    for row in q.chunks_exact(n).take(k) {
        for pair in row.chunks(2) {
            let low = (pair[0] as u8) & 0x0f;
            let high = (pair.get(1).copied().unwrap_or(0) as u8) & 0x0f;
            out.push((low | (high << 4)) as i8);
        }
    }
    out
}

/// The inverse of [`pack_int4_columns`]: `[k, ceil(n / 2)]` back to `[k, n]`.
pub fn unpack_int4_columns(packed: &[i8], k: usize, n: usize) -> Vec<i8> {
    let half = n.div_ceil(2);
    let mut out = Vec::with_capacity(k * n);
    if half == 0 {
        return out;
    }
    for row in packed.chunks_exact(half).take(k) {
        for (c, &byte) in row.iter().enumerate() {
            let b = byte as u8;
            // Shift left then arithmetic right to sign-extend each nibble.
            out.push(((b << 4) as i8) >> 4);
            if 2 * c + 1 < n {
                out.push((b as i8) >> 4);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packing_matches_the_keras_docstring() {
        // keras.quantizers.pack_int4([[-3, 7, 2], [-8, 1, 0]], axis=1)
        let packed = pack_int4_columns(&[-3, 7, 2, -8, 1, 0], 2, 3);
        assert_eq!(packed, [0x7d_u8 as i8, 0x02, 0x18, 0x00]);
        assert_eq!(unpack_int4_columns(&packed, 2, 3), [-3, 7, 2, -8, 1, 0]);
    }
}

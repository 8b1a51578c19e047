// SPDX-License-Identifier: MIT OR Apache-2.0
//! Keras's `abs_max_quantize`: `scale = hi / (max|v| + 1e-7)`,
//! `q = clip(round_half_even(v * scale), lo, hi)`. The scale is a
//! multiplier; dequantize by dividing.

use crate::error::{Error, Result};
use crate::quant::{EPSILON, nan_max};

/// A signed integer range, as Keras's `value_range`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntRange {
    /// The smallest quantized value.
    pub lo: i8,
    /// The largest quantized value.
    pub hi: i8,
}

impl IntRange {
    /// int8 as Keras uses it: symmetric, [-127, 127].
    pub const INT8: IntRange = IntRange { lo: -127, hi: 127 };
    /// int4: [-8, 7].
    pub const INT4: IntRange = IntRange { lo: -8, hi: 7 };
}

/// The scale of a group of values: `hi / (max|v| + 1e-7)` in f32.
pub fn abs_max_scale(values: impl Iterator<Item = f32>, range: IntRange) -> f32 {
    let max_abs = nan_max(values.map(f32::abs), 0.0);
    f32::from(range.hi) / (max_abs + EPSILON)
}

/// One value: `clip(round_half_even(v * scale), lo, hi)`.
pub fn quantize_value(v: f32, scale: f32, range: IntRange) -> i8 {
    let q = (v * scale).round_ties_even();
    // NaN (which Keras's cast leaves undefined) becomes 0 here.
    if q.is_nan() {
        0
    } else {
        q.clamp(f32::from(range.lo), f32::from(range.hi)) as i8
    }
}

/// A kernel `[k, n]` (Keras's layout) quantized per output column, as
/// `Dense.quantize("int8")` (and per-channel `"int4"`) does: the quantized
/// values `[k, n]` and one scale per column `[n]`.
pub fn quantize_kernel_per_column(
    w: &[f32],
    k: usize,
    n: usize,
    range: IntRange,
) -> Result<(Vec<i8>, Vec<f32>)> {
    if w.len() != k * n {
        return Err(Error::Shape(format!(
            "a kernel of {} values is not [{k}, {n}]",
            w.len()
        )));
    }
    let scales: Vec<f32> = (0..n)
        .map(|j| abs_max_scale((0..k).map(|i| w[i * n + j]), range))
        .collect();
    let q = w
        .iter()
        .enumerate()
        .map(|(idx, &v)| quantize_value(v, scales[idx % n], range))
        .collect();
    Ok((q, scales))
}

/// Activations `[m, k]` quantized per row (Keras's `AbsMaxQuantizer(axis=-1)`):
/// the quantized values and one scale per row.
pub fn quantize_rows(
    x: &[f32],
    m: usize,
    k: usize,
    range: IntRange,
) -> Result<(Vec<i8>, Vec<f32>)> {
    if x.len() != m * k || k == 0 {
        return Err(Error::Shape(format!(
            "x of {} values is not [{m}, {k}] with k >= 1",
            x.len()
        )));
    }
    let mut q = Vec::with_capacity(m * k);
    let mut scales = Vec::with_capacity(m);
    for row in x.chunks_exact(k) {
        let scale = abs_max_scale(row.iter().copied(), range);
        q.extend(row.iter().map(|&v| quantize_value(v, scale, range)));
        scales.push(scale);
    }
    Ok((q, scales))
}

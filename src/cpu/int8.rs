// SPDX-License-Identifier: MIT OR Apache-2.0
//! CPU twin of shaders/quantize_rows.wgsl + shaders/dense_int8.wgsl:
//! Keras's int8 Dense.

use crate::cpu::{check_dense_inputs, finish, rounded_f32};
use crate::error::Result;
use crate::gpu::dense::Activation;
use crate::gpu::formats::{HostFloat, StorageFormat};
use crate::quant::abs_max::{IntRange, quantize_kernel_per_column, quantize_rows};

/// The int8 sums and scales of one product.
pub type Int8Accumulators = (Vec<i32>, Vec<f32>, Vec<f32>);

/// The exact i32 sums `xq · Wq` `[m, n]` and the scales `(s_x [m], s_w [n])`.
/// `x` is first rounded to `format` (the compute dtype), as uploaded.
pub fn int8_accumulators<T: HostFloat>(
    format: StorageFormat,
    x: &[T],
    w: &[T],
    (m, k, n): (usize, usize, usize),
) -> Result<Int8Accumulators> {
    check_dense_inputs(x.len(), w.len(), None, (m, k, n))?;
    let x32 = rounded_f32(format, x);
    let w32: Vec<f32> = w.iter().map(|v| v.to_f64() as f32).collect();
    let (xq, sx) = quantize_rows(&x32, m, k, IntRange::INT8)?;
    let (wq, sw) = quantize_kernel_per_column(&w32, k, n, IntRange::INT8)?;
    let mut acc = vec![0i32; m * n];
    for i in 0..m {
        for j in 0..n {
            acc[i * n + j] = (0..k)
                .map(|t| i32::from(xq[i * k + t]) * i32::from(wq[t * n + j]))
                .sum();
        }
    }
    Ok((acc, sx, sw))
}

/// Keras's int8 Dense: `y = f32(acc) / (s_w * s_x)`, plus bias (rounded to
/// `format`), activation, rounded to `format`.
pub fn dense_int8<T: HostFloat>(
    format: StorageFormat,
    activation: Activation,
    x: &[T],
    w: &[T],
    bias: Option<&[T]>,
    (m, k, n): (usize, usize, usize),
) -> Result<Vec<T>> {
    check_dense_inputs(x.len(), w.len(), bias.map(<[T]>::len), (m, k, n))?;
    let (acc, sx, sw) = int8_accumulators(format, x, w, (m, k, n))?;
    Ok((0..m * n)
        .map(|idx| {
            let (i, j) = (idx / n, idx % n);
            let y = acc[idx] as f32 / (sw[j] * sx[i]);
            let b = bias.map_or(0.0, |b| format.round(b[j].to_f64()) as f32);
            finish(format, activation, y, b)
        })
        .collect())
}

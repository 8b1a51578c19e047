// SPDX-License-Identifier: MIT OR Apache-2.0
//! CPU twin of shaders/dense_int4.wgsl: Keras's int4 Dense, and its int8
//! Dense without an activation quantizer (the same kernel, 8-bit weights).

use std::num::NonZeroU32;

use crate::cpu::check_dense_inputs;
use crate::cpu::dense::{activate, lanes4_sum};
use crate::error::Result;
use crate::gpu::dense::Activation;
use crate::gpu::formats::{HostFloat, StorageFormat};
use crate::quant::abs_max::{IntRange, quantize_kernel_per_column};
use crate::quant::int4::quantize_grouped;

/// Keras's int4 Dense: per channel `y = (x · q) / s_w`, grouped
/// `y = x · ((q - zero) * scale)`; sums in four lanes (lane l takes
/// k = l mod 4), then bias (rounded to `format`), activation, rounded to
/// `format`. `x` is first rounded to `format`, as uploaded.
pub fn dense_int4<T: HostFloat>(
    format: StorageFormat,
    activation: Activation,
    x: &[T],
    w: &[T],
    bias: Option<&[T]>,
    dims: (usize, usize, usize),
    block: Option<NonZeroU32>,
) -> Result<Vec<T>> {
    weight_only(
        format,
        activation,
        x,
        w,
        bias,
        dims,
        (IntRange::INT4, block),
    )
}

/// Keras's int8 Dense without an activation quantizer (the int4 kernel with
/// 8-bit weights): `y = (x · q) / s_w`, as [`dense_int4`] per channel.
pub fn dense_int8_weight_only<T: HostFloat>(
    format: StorageFormat,
    activation: Activation,
    x: &[T],
    w: &[T],
    bias: Option<&[T]>,
    dims: (usize, usize, usize),
) -> Result<Vec<T>> {
    weight_only(format, activation, x, w, bias, dims, (IntRange::INT8, None))
}

fn weight_only<T: HostFloat>(
    format: StorageFormat,
    activation: Activation,
    x: &[T],
    w: &[T],
    bias: Option<&[T]>,
    (m, k, n): (usize, usize, usize),
    (range, block): (IntRange, Option<NonZeroU32>),
) -> Result<Vec<T>> {
    check_dense_inputs(x.len(), w.len(), bias.map(<[T]>::len), (m, k, n))?;
    let x: Vec<f32> = x.iter().map(|v| format.round(v.to_f64()) as f32).collect();
    let w32: Vec<f32> = w.iter().map(|v| v.to_f64() as f32).collect();
    // The weight each product uses: q per channel, dequantized when grouped.
    let (weights, col_scale): (Vec<f32>, Option<Vec<f32>>) = match block {
        None => {
            let (q, s) = quantize_kernel_per_column(&w32, k, n, range)?;
            (q.iter().map(|&v| f32::from(v)).collect(), Some(s))
        }
        Some(b) => {
            let b = b.get() as usize;
            let g = quantize_grouped(&w32, k, n, b)?;
            let deq = (0..k * n)
                .map(|idx| {
                    let gj = (idx / n) / b * n + idx % n;
                    g.scale[gj] * (f32::from(g.q[idx]) - f32::from(g.zero[gj]))
                })
                .collect();
            (deq, None)
        }
    };
    let mut y = Vec::with_capacity(m * n);
    for i in 0..m {
        for j in 0..n {
            let sum = lanes4_sum(k, |t| x[i * k + t] * weights[t * n + j]);
            let value = col_scale.as_ref().map_or(sum, |s| sum / s[j]);
            let b = bias.map_or(0.0, |b| format.round(b[j].to_f64()) as f32);
            y.push(T::from_f64(
                format.round(f64::from(activate(activation, value + b))),
            ));
        }
    }
    Ok(y)
}

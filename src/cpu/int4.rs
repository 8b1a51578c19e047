// SPDX-License-Identifier: MIT OR Apache-2.0
//! CPU twin of shaders/dense_int4.wgsl: Keras's int4 Dense, and its int8
//! Dense without an activation quantizer (the same kernel, 8-bit weights).

use std::num::NonZeroU32;

use crate::cpu::dense::kernel_sum;
use crate::cpu::{check_dense_inputs, finish, rounded_f32};
use crate::error::Result;
use crate::gpu::dense::Activation;
use crate::gpu::formats::{HostFloat, StorageFormat};
use crate::gpu::shaders::Kernel;
use crate::quant::abs_max::{IntRange, quantize_kernel_per_column};
use crate::quant::int4::{GroupedInt4, quantize_grouped};

/// Keras's int4 Dense: per channel `y = (x · q) / s_w`, grouped
/// `y = x · ((q - zero) * scale)`, summed in `kernel`'s order
/// ([`Kernel::DenseInt4`]: four lanes, lane l taking k = l mod 4, grouped
/// weights scaled per group for blocks that are multiples of 32; [`Kernel::DenseInt4Tiled`]:
/// k in order), then bias (rounded to `format`), activation, rounded to
/// `format`. `x` is first rounded to `format`, as uploaded.
#[allow(clippy::too_many_arguments)] // the shared twin signature plus the group size
pub fn dense_int4<T: HostFloat>(
    format: StorageFormat,
    kernel: Kernel,
    activation: Activation,
    x: &[T],
    w: &[T],
    bias: Option<&[T]>,
    dims: (usize, usize, usize),
    block: Option<NonZeroU32>,
) -> Result<Vec<T>> {
    weight_only(
        format,
        kernel,
        activation,
        x,
        w,
        bias,
        dims,
        (IntRange::INT4, block),
    )
}

/// Keras's int8 Dense without an activation quantizer (the int4 kernel with
/// 8-bit weights): `y = (x · q) / s_w`, as [`dense_int4`] per channel
/// ([`Kernel::DenseInt8WeightOnly`] or [`Kernel::DenseInt8WeightOnlyTiled`]).
pub fn dense_int8_weight_only<T: HostFloat>(
    format: StorageFormat,
    kernel: Kernel,
    activation: Activation,
    x: &[T],
    w: &[T],
    bias: Option<&[T]>,
    dims: (usize, usize, usize),
) -> Result<Vec<T>> {
    weight_only(
        format,
        kernel,
        activation,
        x,
        w,
        bias,
        dims,
        (IntRange::INT8, None),
    )
}

#[allow(clippy::too_many_arguments)]
fn weight_only<T: HostFloat>(
    format: StorageFormat,
    kernel: Kernel,
    activation: Activation,
    x: &[T],
    w: &[T],
    bias: Option<&[T]>,
    (m, k, n): (usize, usize, usize),
    (range, block): (IntRange, Option<NonZeroU32>),
) -> Result<Vec<T>> {
    check_dense_inputs(x.len(), w.len(), bias.map(<[T]>::len), (m, k, n))?;
    let x = rounded_f32(format, x);
    let w32: Vec<f32> = w.iter().map(|v| v.to_f64() as f32).collect();
    // The sum of row i for output j, in the kernel's lanes and order.
    let sums: Box<dyn Fn(usize, usize) -> f32> = match block {
        None => {
            let (q, s) = quantize_kernel_per_column(&w32, k, n, range)?;
            Box::new(move |i, j| {
                kernel_sum(kernel, k, |t| x[i * k + t] * f32::from(q[t * n + j])) / s[j]
            })
        }
        Some(b) => {
            let b = b.get() as usize;
            let g = quantize_grouped(&w32, k, n, b)?;
            if b.is_multiple_of(STEP_K) && !kernel.is_tiled() {
                Box::new(move |i, j| grouped_by_blocks(&x[i * k..(i + 1) * k], &g, (n, j, b)))
            } else {
                Box::new(move |i, j| {
                    kernel_sum(kernel, k, |t| {
                        let gj = t / b * n + j;
                        x[i * k + t]
                            * (g.scale[gj] * (f32::from(g.q[t * n + j]) - f32::from(g.zero[gj])))
                    })
                })
            }
        }
    };
    let mut y = Vec::with_capacity(m * n);
    for i in 0..m {
        for j in 0..n {
            let value = sums(i, j);
            let b = bias.map_or(0.0, |b| format.round(b[j].to_f64()) as f32);
            y.push(finish(format, activation, value, b));
        }
    }
    Ok(y)
}

/// k per step of the int4 kernel: one `vec4<u32>` of eight-nibble words.
const STEP_K: usize = 32;

/// Grouped int4 with a block that is a multiple of [`STEP_K`]: per group
/// and lane, `x · q` and `Σx` apart, then `acc += scale · (x·q - zero · Σx)`
/// (the kernel's order; the same value as `x · ((q - zero) · scale)`).
fn grouped_by_blocks(x: &[f32], g: &GroupedInt4, (n, j, block): (usize, usize, usize)) -> f32 {
    let mut acc = [0f32; 4];
    for (b, xs_block) in x.chunks(block).enumerate() {
        let (mut p, mut xs) = ([0f32; 4], [0f32; 4]);
        for (e, &xv) in xs_block.iter().enumerate() {
            let t = b * block + e;
            p[e % 4] += xv * f32::from(g.q[t * n + j]);
            xs[e % 4] += xv;
        }
        let gj = b * n + j;
        let (scale, zero) = (g.scale[gj], f32::from(g.zero[gj]));
        for l in 0..4 {
            acc[l] += scale * (p[l] - zero * xs[l]);
        }
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3])
}

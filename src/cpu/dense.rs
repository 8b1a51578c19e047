// SPDX-License-Identifier: MIT OR Apache-2.0
//! CPU twin of every Dense kernel (shaders/dense_*.wgsl and
//! shaders/quantize_rows.wgsl): the same [`DenseKernel`] the GPU uploads,
//! the same order of summation as the kernel's shape, the same rounding.
//!
//! `x` is first rounded to the compute format, as uploaded. Then, per
//! weight format:
//! - float: products of the rounded weights, summed in f32 (f64 for the
//!   f64 format);
//! - int8: Keras's activation quantizer per row, exact i32 sums of `xq ·
//!   q`, `y = f32(acc) / (s_w · s_x)`; weight-only `y = (x · q) / s_w`;
//! - int4 per channel `y = (x · q) / s_w`; grouped `y = x · ((q - zero) ·
//!   scale)`, scaled once per group for blocks of whole 32-k steps in the
//!   matrix-vector shape;
//! - float8: `y = qdq(x, s_x) · qdq(W, s_w)` in the compute dtype;
//!
//! then the bias (rounded to the compute format; float8 as Keras rounds
//! it), the activation, and the result rounded to the compute format.

use std::ops::{Add, Mul};

use crate::error::{Error, Result};
use crate::format::{DenseKernel, FloatValues, HostFloat, KernelValues, StorageFormat};
use crate::ops::{Activation, DenseShape};
use crate::quant::abs_max::{IntRange, quantize_rows};
use crate::quant::float8::{Float8, dense_bias as float8_bias, quantize_dequantize};
use crate::size;

/// The twin's erf, the same polynomial as `erf_approx` in activation.wgsl.
fn erf_approx(x: f32) -> f32 {
    let t = 1.0 / (1.0 + 0.327_591_1 * x.abs());
    let poly = t
        * (0.254_829_6
            + t * (-0.284_496_74 + t * (1.421_413_7 + t * (-1.453_152_1 + t * 1.061_405_4))));
    let y = 1.0 - poly * (-x * x).exp();
    if x >= 0.0 { y } else { -y }
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// The activation as the f32 kernels compute it.
pub fn activate(activation: Activation, x: f32) -> f32 {
    match activation {
        Activation::Linear => x,
        Activation::Relu => x.max(0.0),
        Activation::Gelu => 0.5 * x * (1.0 + erf_approx(x * std::f32::consts::FRAC_1_SQRT_2)),
        Activation::Silu => x * sigmoid(x),
        Activation::Sigmoid => sigmoid(x),
        Activation::Tanh => x.tanh(),
        Activation::Elu => {
            if x > 0.0 {
                x
            } else {
                expm1_approx(x.min(0.0))
            }
        }
        Activation::Selu => {
            1.050_701
                * if x > 0.0 {
                    x
                } else {
                    1.673_263_2 * expm1_approx(x.min(0.0))
                }
        }
        Activation::Celu => x.max(0.0) + expm1_approx(x.min(0.0)).min(0.0),
        Activation::Softplus => softplus(x),
        Activation::Softsign => x / (x.abs() + 1.0),
        Activation::Relu6 => x.clamp(0.0, 6.0),
        Activation::LeakyRelu => {
            if x >= 0.0 {
                x
            } else {
                0.2 * x
            }
        }
        Activation::HardSigmoid => hard_sigmoid(x),
        Activation::HardSilu => x * hard_sigmoid(x),
        Activation::HardTanh => x.clamp(-1.0, 1.0),
        Activation::Exponential => x.exp(),
        Activation::Mish => x * softplus(x).tanh(),
        Activation::LogSigmoid => -softplus(-x),
        Activation::TanhShrink => x - x.tanh(),
        Activation::Squareplus => (x + (x * x + 4.0).sqrt()) * 0.5,
        Activation::SparsePlus => {
            if x <= -1.0 {
                0.0
            } else if x >= 1.0 {
                x
            } else {
                (x + 1.0) * (x + 1.0) * 0.25
            }
        }
        Activation::HardShrink => {
            if x.abs() > 0.5 {
                x
            } else {
                0.0
            }
        }
        Activation::SoftShrink => {
            if x > 0.5 {
                x - 0.5
            } else if x < -0.5 {
                x + 0.5
            } else {
                0.0
            }
        }
        Activation::GeluApproximate => gelu_approximate(x),
    }
}

/// shaders/shared/activation.wgsl's `gelu_approximate`: jax's
/// `x * 0.5 * (1 + tanh(u))` with `u = sqrt(2 / pi) * (x + 0.044715 x^3)`,
/// as `x * sigmoid(2u)` (the same function): tanh from exp, accurate near
/// 0, where drivers' tanh is loose.
fn gelu_approximate(x: f32) -> f32 {
    let u = 0.797_884_6 * (x + 0.044_715 * (x * x * x));
    x / (1.0 + (-2.0 * u).exp())
}

/// shaders/shared/activation.wgsl's `expm1`: the series near 0.
fn expm1_approx(x: f32) -> f32 {
    if x.abs() < 1e-3 {
        x + x * x * 0.5 + x * x * x * (1.0 / 6.0)
    } else {
        x.exp() - 1.0
    }
}

/// shaders/shared/activation.wgsl's `log1p`: the series near 0.
fn log1p_approx(x: f32) -> f32 {
    if x.abs() < 1e-3 {
        x - x * x * 0.5 + x * x * x * (1.0 / 3.0)
    } else {
        (1.0 + x).ln()
    }
}

/// jax.nn.softplus, `logaddexp(x, 0)`, as the shader computes it.
fn softplus(x: f32) -> f32 {
    x.max(0.0) + log1p_approx((-x.abs()).exp())
}

fn hard_sigmoid(x: f32) -> f32 {
    (x + 3.0).clamp(0.0, 6.0) / 6.0
}

/// The sum of `k` f32 products in `shape`'s order: four lanes, lane l
/// taking every k = l (mod 4), then (l0 + l1) + (l2 + l3) (matrix-vector);
/// k in order (tiled).
pub(crate) fn kernel_sum(shape: DenseShape, k: usize, product: impl Fn(usize) -> f32) -> f32 {
    match shape {
        DenseShape::Tiled => (0..k).fold(0.0, |acc, t| acc + product(t)),
        DenseShape::MatVec => {
            let mut lanes = [0f32; 4];
            for t in 0..k {
                lanes[t % 4] += product(t);
            }
            (lanes[0] + lanes[1]) + (lanes[2] + lanes[3])
        }
    }
}

/// k per step of the quantized matrix-vector kernels: one `vec4<u32>` of
/// eight-nibble words.
const STEP_K: usize = 32;

/// Dense forward of `m` rows of `x` (`[m, k]`, row-major) as the GPU
/// computes it for `kernel` with activations and outputs in `format`, in
/// `shape`'s order; `y` is `[m, n]`.
pub fn dense<T: HostFloat>(
    kernel: &DenseKernel,
    format: StorageFormat,
    shape: DenseShape,
    activation: Activation,
    x: &[T],
    m: usize,
) -> Result<Vec<T>> {
    let (k, n) = (kernel.k(), kernel.n());
    check_rows(x.len(), m, k)?;
    if format == StorageFormat::F64 && !matches!(activation, Activation::Linear | Activation::Relu)
    {
        return Err(Error::Unsupported(format!(
            "the f64 Dense kernel applies linear and relu only, not {activation:?}"
        )));
    }
    if let KernelValues::Float(w) = kernel.values() {
        return Ok(match format {
            StorageFormat::F64 => float_dense::<f64, T>(kernel, w, format, shape, activation, x, m),
            _ => float_dense::<f32, T>(kernel, w, format, shape, activation, x, m),
        });
    }
    if format == StorageFormat::F64 {
        return Err(Error::Unsupported(format!(
            "{} Dense computes in f32, f16 or bf16, not f64",
            kernel.format().name()
        )));
    }
    let x = rounded_f32(format, x);
    let bias = |j: usize| -> f32 {
        kernel.bias().map_or(0.0, |b| match kernel.values() {
            KernelValues::Float8 { .. } => float8_bias(format, b.get(j)),
            _ => format.round(b.get(j)) as f32,
        })
    };
    // The value of output j of row i before the bias.
    let value: Box<dyn Fn(usize, usize) -> f32 + '_> = match kernel.values() {
        KernelValues::Float(_) => unreachable!("handled above"),
        KernelValues::Int8 {
            q,
            scale,
            quantized_inputs: true,
        }
        | KernelValues::Int4 {
            q,
            scale,
            quantized_inputs: true,
            ..
        } => {
            let (acc, sx) = int8_sums(&x, q, (m, k, n))?;
            Box::new(move |i, j| acc[i * n + j] as f32 / (scale[j] * sx[i]))
        }
        KernelValues::Int8 { q, scale, .. }
        | KernelValues::Int4 {
            q,
            scale,
            zero: None,
            ..
        } => {
            let x = &x;
            Box::new(move |i, j| {
                kernel_sum(shape, k, |t| x[i * k + t] * f32::from(q[t * n + j])) / scale[j]
            })
        }
        KernelValues::Int4 {
            q,
            scale,
            zero: Some(zero),
            block,
            ..
        } => {
            let b = block.map_or(k, |b| b.get() as usize);
            let x = &x;
            if b.is_multiple_of(STEP_K) && shape == DenseShape::MatVec {
                Box::new(move |i, j| {
                    grouped_by_blocks(&x[i * k..(i + 1) * k], (q, scale, zero), (n, j, b))
                })
            } else {
                Box::new(move |i, j| {
                    kernel_sum(shape, k, |t| {
                        let gj = t / b * n + j;
                        x[i * k + t] * (scale[gj] * (f32::from(q[t * n + j]) - f32::from(zero[gj])))
                    })
                })
            }
        }
        KernelValues::Float8 {
            w,
            scales,
            format: weights8,
        } => {
            // Keras's quantize_and_dequantize in the compute dtype: the
            // scale cast to it, the division and the product rounded to it;
            // x and the kernel are read autocast to the compute dtype.
            let c = move |v: f32| format.round(f64::from(v)) as f32;
            let qdq = move |v: f32, scale: f32, format8: Float8| {
                let q = c(v / scale);
                if q.is_nan() {
                    return q;
                }
                c(quantize_dequantize(q, 1.0, format8) * scale)
            };
            let (sx, sw) = (c(scales.inputs), c(scales.kernel));
            let xq: Vec<f32> = x.iter().map(|&v| qdq(c(v), sx, Float8::E4M3Fn)).collect();
            let wq: Vec<f32> = w.iter().map(|&v| qdq(c(v), sw, *weights8)).collect();
            Box::new(move |i, j| kernel_sum(shape, k, |t| xq[i * k + t] * wq[t * n + j]))
        }
    };
    let mut y = Vec::with_capacity(m * n);
    for i in 0..m {
        for j in 0..n {
            y.push(finish(format, activation, value(i, j), bias(j)));
        }
    }
    Ok(y)
}

/// Keras's `quantize_and_dequantize(v, scale, format8)` in the compute
/// dtype `format`, as the float8 kernels compute it: `v` read autocast to
/// the compute dtype, the scale cast to it, the division and the product
/// rounded to it; NaN stays NaN, infinity saturates.
pub fn float8_qdq(format: StorageFormat, format8: Float8, scale: f32, v: f32) -> f32 {
    let c = |v: f32| format.round(f64::from(v)) as f32;
    let scale = c(scale);
    let q = c(c(v) / scale);
    if q.is_nan() {
        return q;
    }
    c(quantize_dequantize(q, 1.0, format8) * scale)
}

/// The exact i32 sums `xq · q` `[m, n]` of a kernel that quantizes its
/// activations to int8 (int8 weights, or per-channel int4 ones), and the activations' scales `[m]` (the kernel's own
/// scales are [`KernelValues::Int8`]'s). `x` is first rounded to `format`.
pub fn int8_accumulators<T: HostFloat>(
    kernel: &DenseKernel,
    format: StorageFormat,
    x: &[T],
    m: usize,
) -> Result<(Vec<i32>, Vec<f32>)> {
    let (k, n) = (kernel.k(), kernel.n());
    check_rows(x.len(), m, k)?;
    match kernel.values() {
        KernelValues::Int8 {
            q,
            quantized_inputs: true,
            ..
        }
        | KernelValues::Int4 {
            q,
            quantized_inputs: true,
            ..
        } => int8_sums(&rounded_f32(format, x), q, (m, k, n)),
        _ => Err(Error::Unsupported(format!(
            "int8 accumulators of a {} kernel",
            kernel.format().name()
        ))),
    }
}

fn int8_sums(
    x: &[f32],
    q: &[i8],
    (m, k, n): (usize, usize, usize),
) -> Result<(Vec<i32>, Vec<f32>)> {
    let (xq, sx) = quantize_rows(x, m, k, IntRange::INT8)?;
    let mut acc = vec![0i32; m * n];
    for i in 0..m {
        for j in 0..n {
            acc[i * n + j] = (0..k)
                .map(|t| i32::from(xq[i * k + t]) * i32::from(q[t * n + j]))
                .sum();
        }
    }
    Ok((acc, sx))
}

/// Grouped int4 with a block that is a multiple of [`STEP_K`]: per group
/// and lane, `x · q` and `Σx` apart, then `acc += scale · (x·q - zero · Σx)`
/// (the kernel's order; the same value as `x · ((q - zero) · scale)`).
fn grouped_by_blocks(
    x: &[f32],
    (q, scale, zero): (&[i8], &[f32], &[i8]),
    (n, j, block): (usize, usize, usize),
) -> f32 {
    let mut acc = [0f32; 4];
    for (b, xs_block) in x.chunks(block).enumerate() {
        let (mut p, mut xs) = ([0f32; 4], [0f32; 4]);
        for (e, &xv) in xs_block.iter().enumerate() {
            let t = b * block + e;
            p[e % 4] += xv * f32::from(q[t * n + j]);
            xs[e % 4] += xv;
        }
        let gj = b * n + j;
        let (s, z) = (scale[gj], f32::from(zero[gj]));
        for l in 0..4 {
            acc[l] += s * (p[l] - z * xs[l]);
        }
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3])
}

/// The arithmetic type of a float kernel: f32, or f64 for the f64 format.
trait Real: Copy + Default + Add<Output = Self> + Mul<Output = Self> {
    fn of(v: f64) -> Self;
    fn get(self) -> f64;
    fn activate(self, activation: Activation) -> Self;
}

impl Real for f32 {
    fn of(v: f64) -> Self {
        v as f32
    }
    fn get(self) -> f64 {
        f64::from(self)
    }
    fn activate(self, activation: Activation) -> Self {
        activate(activation, self)
    }
}

impl Real for f64 {
    fn of(v: f64) -> Self {
        v
    }
    fn get(self) -> f64 {
        self
    }
    /// activation_f64.wgsl: relu, else linear (the host refuses the others).
    fn activate(self, activation: Activation) -> Self {
        if activation == Activation::Relu {
            self.max(0.0)
        } else {
            self
        }
    }
}

/// A float kernel: inputs rounded to `format` as the upload rounds them,
/// products summed in the kernel's order (four lanes in f32, two in f64,
/// for the matrix-vector shape), bias added, activation applied, the result
/// rounded to `format`.
fn float_dense<R: Real, T: HostFloat>(
    kernel: &DenseKernel,
    w: &FloatValues,
    format: StorageFormat,
    shape: DenseShape,
    activation: Activation,
    x: &[T],
    m: usize,
) -> Vec<T> {
    let (k, n) = (kernel.k(), kernel.n());
    let r = |v: f64| R::of(format.round(v));
    let x: Vec<R> = x.iter().map(|e| r(e.to_f64())).collect();
    let w: Vec<R> = (0..w.len()).map(|i| r(w.get(i))).collect();
    let bias: Option<Vec<R>> = kernel
        .bias()
        .map(|b| (0..b.len()).map(|i| r(b.get(i))).collect());
    let lanes = if format == StorageFormat::F64 { 2 } else { 4 };
    let mut y = Vec::with_capacity(m * n);
    for row in 0..m {
        for col in 0..n {
            let product = |i: usize| x[row * k + i] * w[i * n + col];
            let sum = match shape {
                DenseShape::MatVec => {
                    let mut acc = [R::default(); 4];
                    for i in 0..k {
                        acc[i % lanes] = acc[i % lanes] + product(i);
                    }
                    if lanes == 2 {
                        acc[0] + acc[1]
                    } else {
                        (acc[0] + acc[1]) + (acc[2] + acc[3])
                    }
                }
                DenseShape::Tiled => (0..k).fold(R::default(), |acc, i| acc + product(i)),
            };
            let b = bias.as_ref().map_or(R::default(), |b| b[col]);
            let out = (sum + b).activate(activation);
            y.push(T::from_f64(format.round(out.get())));
        }
    }
    y
}

/// `Err` unless `x` holds `m` (at least 1) rows of `k`.
fn check_rows(len: usize, m: usize, k: usize) -> Result<()> {
    size::nonzero(&[("m", m)], "x")?;
    let want = size::mul(m, k, &|| format!("x of {m} rows of {k}"))?;
    if len != want {
        return Err(Error::Shape(format!(
            "x has {len} values, but m={m} rows of k={k} need {want}"
        )));
    }
    Ok(())
}

/// `v` rounded to `format`, as uploaded, in f32.
fn rounded_f32<T: HostFloat>(format: StorageFormat, v: &[T]) -> Vec<f32> {
    v.iter().map(|e| format.round(e.to_f64()) as f32).collect()
}

/// The end of the quantized Dense twins: `value + bias`, the activation,
/// the result rounded to `format` (the kernels' `finish` and store).
fn finish<T: HostFloat>(format: StorageFormat, activation: Activation, value: f32, bias: f32) -> T {
    T::from_f64(format.round(f64::from(activate(activation, value + bias))))
}

// SPDX-License-Identifier: MIT OR Apache-2.0
//! CPU twins of shaders/dense_matvec.wgsl and shaders/dense_tiled.wgsl.

use std::ops::{Add, Mul};

use crate::cpu::check_dense_inputs;
use crate::error::Result;
use crate::gpu::dense::Activation;
use crate::gpu::formats::{HostFloat, StorageFormat};
use crate::gpu::shaders::Kernel;

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
    }
}

/// The matrix-vector kernels' sum of `k` f32 products: four lanes, lane l
/// taking every k = l (mod 4) in order, then (l0 + l1) + (l2 + l3).
pub(crate) fn lanes4_sum(k: usize, product: impl Fn(usize) -> f32) -> f32 {
    let mut lanes = [0f32; 4];
    for t in 0..k {
        lanes[t % 4] += product(t);
    }
    (lanes[0] + lanes[1]) + (lanes[2] + lanes[3])
}

/// The sum of `k` f32 products as the quantized `kernel` orders it: in four
/// lanes ([`lanes4_sum`]) for the matrix-vector kernels, k in order for the
/// tiled ones.
pub(crate) fn kernel_sum(kernel: Kernel, k: usize, product: impl Fn(usize) -> f32) -> f32 {
    if kernel.is_tiled() {
        (0..k).fold(0.0, |acc, t| acc + product(t))
    } else {
        lanes4_sum(k, product)
    }
}

/// The arithmetic type of a kernel: f32, or f64 for the f64 format.
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

/// Dense forward as `kernel` computes it: inputs rounded to `format` as the
/// upload does, products summed in the kernel's order (f32, or f64 for the
/// f64 format), bias added, activation applied, the result rounded to `format`.
///
/// `x` is `[m, k]`, `w` is `[k, n]` (Keras's layout), `bias` is `[n]`.
pub fn dense<T: HostFloat>(
    format: StorageFormat,
    kernel: Kernel,
    activation: Activation,
    x: &[T],
    w: &[T],
    bias: Option<&[T]>,
    dims: (usize, usize, usize),
) -> Result<Vec<T>> {
    check_dense_inputs(x.len(), w.len(), bias.map(<[T]>::len), dims)?;
    Ok(match format {
        StorageFormat::F64 => dense_in::<f64, T>(format, kernel, activation, x, w, bias, dims),
        _ => dense_in::<f32, T>(format, kernel, activation, x, w, bias, dims),
    })
}

fn dense_in<R: Real, T: HostFloat>(
    format: StorageFormat,
    kernel: Kernel,
    activation: Activation,
    x: &[T],
    w: &[T],
    bias: Option<&[T]>,
    (m, k, n): (usize, usize, usize),
) -> Vec<T> {
    let rounded =
        |v: &[T]| -> Vec<R> { v.iter().map(|&e| R::of(format.round(e.to_f64()))).collect() };
    let (x, w) = (rounded(x), rounded(w));
    let bias = bias.map(rounded);
    // The matrix-vector kernel sums in lanes, lane l taking every k = l (mod
    // lanes), then (l0 + l1) + (l2 + l3); the tiled kernel sums k in order.
    let lanes = if format == StorageFormat::F64 { 2 } else { 4 };
    let mut y = Vec::with_capacity(m * n);
    for row in 0..m {
        for col in 0..n {
            let product = |i: usize| x[row * k + i] * w[i * n + col];
            let sum = if kernel == Kernel::DenseMatVec {
                let mut acc = [R::default(); 4];
                for i in 0..k {
                    acc[i % lanes] = acc[i % lanes] + product(i);
                }
                if lanes == 2 {
                    acc[0] + acc[1]
                } else {
                    (acc[0] + acc[1]) + (acc[2] + acc[3])
                }
            } else {
                (0..k).fold(R::default(), |acc, i| acc + product(i))
            };
            let b = bias.as_ref().map_or(R::default(), |b| b[col]);
            let out = (sum + b).activate(activation);
            y.push(T::from_f64(format.round(out.get())));
        }
    }
    y
}

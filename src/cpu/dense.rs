// SPDX-License-Identifier: MIT OR Apache-2.0
//! CPU twins of shaders/dense_matvec.wgsl and shaders/dense_tiled.wgsl.

use crate::gpu::dense::Activation;
use crate::gpu::formats::StorageFormat;
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

/// The activation as the kernel computes it, in f32.
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

/// Dense forward as `kernel` computes it: inputs rounded to `format` as the
/// upload does, products summed in the kernel's order in f32, bias added,
/// activation applied, the result rounded to `format`.
///
/// `x` is `[m, k]`, `w` is `[k, n]` (Keras's layout), `bias` is `[n]`.
pub fn dense(
    format: StorageFormat,
    kernel: Kernel,
    activation: Activation,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    (m, k, n): (usize, usize, usize),
) -> Vec<f32> {
    let x: Vec<f32> = x.iter().map(|&v| format.round(v)).collect();
    let w: Vec<f32> = w.iter().map(|&v| format.round(v)).collect();
    let mut y = Vec::with_capacity(m * n);
    for row in 0..m {
        for col in 0..n {
            let product = |i: usize| x[row * k + i] * w[i * n + col];
            let sum = match kernel {
                // Four lanes, lane l taking every k = l (mod 4), then (l0 + l1) + (l2 + l3).
                Kernel::DenseMatVec => {
                    let mut lanes = [0f32; 4];
                    for i in 0..k {
                        lanes[i % 4] += product(i);
                    }
                    (lanes[0] + lanes[1]) + (lanes[2] + lanes[3])
                }
                // The tiled kernel sums k in order (other kernels are not Dense).
                _ => (0..k).fold(0f32, |acc, i| acc + product(i)),
            };
            let b = bias.map_or(0.0, |b| format.round(b[col]));
            y.push(format.round(activate(activation, sum + b)));
        }
    }
    y
}

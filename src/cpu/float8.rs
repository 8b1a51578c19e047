// SPDX-License-Identifier: MIT OR Apache-2.0
//! CPU twin of shaders/dense_float8.wgsl: Keras's float8 Dense (inference).

use crate::cpu::dense::kernel_sum;
use crate::cpu::{check_dense_inputs, finish};
use crate::error::Result;
use crate::gpu::dense::Activation;
use crate::gpu::float8::{Float8Scales, float8_bias};
use crate::gpu::formats::{HostFloat, StorageFormat};
use crate::gpu::shaders::Kernel;
use crate::quant::float8::{Float8, quantize_dequantize};

/// `y = qdq(x, s_x) · qdq(W, s_w) + bias`, activation, rounded to `format`;
/// the weights in `weights8` (e4m3fn as Keras, or e5m2), the activations e4m3fn;
/// summed in `kernel`'s order ([`Kernel::DenseFloat8`]: four lanes, lane l
/// taking k = l mod 4; [`Kernel::DenseFloat8Tiled`]: k in order). `x` is
/// first rounded to `format`, as uploaded.
#[allow(clippy::too_many_arguments)] // the shared twin signature plus the scales
pub fn dense_float8<T: HostFloat>(
    format: StorageFormat,
    kernel: Kernel,
    activation: Activation,
    x: &[T],
    w: &[T],
    bias: Option<&[T]>,
    (m, k, n): (usize, usize, usize),
    (scales, weights8): (Float8Scales, Float8),
) -> Result<Vec<T>> {
    check_dense_inputs(x.len(), w.len(), bias.map(<[T]>::len), (m, k, n))?;
    // Keras's quantize_and_dequantize in the compute dtype: the scale cast
    // to it, the division and the product rounded to it.
    let c = |v: f32| format.round(f64::from(v)) as f32;
    let qdq = |v: f32, scale: f32, format8: Float8| {
        let q = c(v / scale);
        if q.is_nan() {
            return q;
        }
        c(quantize_dequantize(q, 1.0, format8) * scale)
    };
    let (sx, sw) = (c(scales.inputs), c(scales.kernel));
    // Both x and the kernel are read autocast to the compute dtype.
    let x: Vec<f32> = x
        .iter()
        .map(|v| qdq(c(v.to_f64() as f32), sx, Float8::E4M3Fn))
        .collect();
    let w: Vec<f32> = w
        .iter()
        .map(|v| qdq(c(v.to_f64() as f32), sw, weights8))
        .collect();
    let mut y = Vec::with_capacity(m * n);
    for i in 0..m {
        for j in 0..n {
            let sum = kernel_sum(kernel, k, |t| x[i * k + t] * w[t * n + j]);
            let b = bias.map_or(0.0, |b| float8_bias(format, b[j].to_f64()));
            y.push(finish(format, activation, sum, b));
        }
    }
    Ok(y)
}

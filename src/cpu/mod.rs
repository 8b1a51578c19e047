// SPDX-License-Identifier: MIT OR Apache-2.0
//! CPU twins of the GPU kernels: the same inputs, the same order of
//! summation, the same rounding, so that a GPU result can be checked
//! against a value computed the same way.

pub mod cast;
pub mod dense;
pub mod float8;
pub mod int4;
pub mod int8;
pub mod probes;

use crate::error::{Error, Result};
use crate::gpu::dense::Activation;
use crate::gpu::formats::{HostFloat, StorageFormat};

/// `Err` unless `x` is `[m, k]`, `w` is `[k, n]` and `bias`, if any, `[n]`.
pub(crate) fn check_dense_inputs(
    x_len: usize,
    w_len: usize,
    bias_len: Option<usize>,
    (m, k, n): (usize, usize, usize),
) -> Result<()> {
    if x_len != m * k || w_len != k * n || bias_len.is_some_and(|b| b != n) {
        return Err(Error::Shape(format!(
            "x has {x_len} values, w {w_len}, bias {bias_len:?}: not [{m}, {k}], [{k}, {n}], [{n}]"
        )));
    }
    Ok(())
}

/// `v` rounded to `format`, as uploaded, in f32.
pub(crate) fn rounded_f32<T: HostFloat>(format: StorageFormat, v: &[T]) -> Vec<f32> {
    v.iter().map(|e| format.round(e.to_f64()) as f32).collect()
}

/// The end of the quantized Dense twins: `value + bias`, the activation,
/// the result rounded to `format` (the kernels' `finish` and store).
pub(crate) fn finish<T: HostFloat>(
    format: StorageFormat,
    activation: Activation,
    value: f32,
    bias: f32,
) -> T {
    T::from_f64(format.round(f64::from(dense::activate(activation, value + bias))))
}

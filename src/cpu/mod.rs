// SPDX-License-Identifier: MIT OR Apache-2.0
//! CPU twins of the GPU kernels: the same inputs, the same order of
//! summation, the same rounding, so that a GPU result can be checked
//! against a value computed the same way.

pub mod cast;
pub mod dense;

use crate::error::{Error, Result};

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
pub mod float8;
pub mod int4;
pub mod int8;

// SPDX-License-Identifier: MIT OR Apache-2.0
//! CPU twin of shaders/add.wgsl: the sum or product of two values in the
//! arithmetic type (f32, or f64 for the f64 format), rounded to the
//! storage format.

use crate::error::{Error, Result};
use crate::format::{HostFloat, StorageFormat};
use crate::ops::Binary;

/// `a + b` element by element, as the GPU computes it in `format`: both
/// rounded to `format` (as uploaded), added, the sum rounded to `format`.
pub fn add<T: HostFloat>(format: StorageFormat, a: &[T], b: &[T]) -> Result<Vec<T>> {
    binary(format, Binary::Add, a, b)
}

/// `a op b` element by element, as the GPU computes it in `format`.
pub fn binary<T: HostFloat>(format: StorageFormat, op: Binary, a: &[T], b: &[T]) -> Result<Vec<T>> {
    if a.len() != b.len() {
        return Err(Error::Shape(format!(
            "an add of {} values and {} values; both must have the same shape",
            a.len(),
            b.len()
        )));
    }
    Ok(a.iter()
        .zip(b)
        .map(|(a, b)| {
            let (a, b) = (format.round(a.to_f64()), format.round(b.to_f64()));
            let sum = match (format == StorageFormat::F64, op) {
                (true, Binary::Add) => a + b,
                (true, Binary::Multiply) => a * b,
                (false, Binary::Add) => f64::from(a as f32 + b as f32),
                (false, Binary::Multiply) => f64::from(a as f32 * b as f32),
            };
            T::from_f64(format.round(sum))
        })
        .collect())
}

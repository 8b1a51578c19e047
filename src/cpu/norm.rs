// SPDX-License-Identifier: MIT OR Apache-2.0
//! CPU twins of shaders/layer_norm.wgsl, shaders/softmax.wgsl and
//! shaders/activate.wgsl (an activation, a scaling): the same sums in the
//! same order, f32 arithmetic, rounded to the storage format.

use crate::cpu::dense::activate as activate_value;
use crate::cpu::{REDUCE_THREADS, workgroup_reduce};
use crate::error::{Error, Result};
use crate::format::packing::K_ALIGN;
use crate::format::{HostFloat, StorageFormat};
use crate::ops::Activation;

/// Invocations of a LayerNormalization workgroup (`THREADS` in the shader).
const THREADS: usize = REDUCE_THREADS;

/// Keras's LayerNormalization of `rows` rows of `gamma.len()` values
/// stored in `format`, as the GPU computes it: each invocation's partial
/// sum over its chunks, the 64 partial sums added as a tree, mean = sum /
/// n, variance = sum((x - mean)^2) / n, inv = gamma / sqrt(variance +
/// epsilon), y = x * inv + (beta - mean * inv), rounded to `format`.
pub fn layer_norm<T: HostFloat>(
    format: StorageFormat,
    x: &[T],
    gamma: &[f32],
    beta: &[f32],
    epsilon: f32,
) -> Result<Vec<T>> {
    if beta.len() != gamma.len() {
        return Err(Error::Shape(format!(
            "a LayerNormalization of {} gamma and {} beta values",
            gamma.len(),
            beta.len()
        )));
    }
    normalize(format, x, gamma, Some(beta), epsilon)
}

/// Keras's RMSNormalization of rows of `scale.len()` values stored in
/// `format`, as the GPU computes it (the layer norm's kernel without its
/// mean): rstd = 1 / sqrt(sum(x^2) / n + epsilon), y = (x * rstd) *
/// scale, rounded to `format`.
pub fn rms_norm<T: HostFloat>(
    format: StorageFormat,
    x: &[T],
    scale: &[f32],
    epsilon: f32,
) -> Result<Vec<T>> {
    normalize(format, x, scale, None, epsilon)
}

/// shaders/layer_norm.wgsl: centred with `beta`, or RMS without.
fn normalize<T: HostFloat>(
    format: StorageFormat,
    x: &[T],
    gamma: &[f32],
    beta: Option<&[f32]>,
    epsilon: f32,
) -> Result<Vec<T>> {
    let cols = gamma.len();
    if cols == 0 || !x.len().is_multiple_of(cols) || format == StorageFormat::F64 {
        return Err(Error::Shape(format!(
            "a normalization of {} values and {cols} scales in {format:?}",
            x.len()
        )));
    }
    let per_chunk = format.values_per_chunk();
    let chunks = cols.div_ceil(K_ALIGN) * K_ALIGN / per_chunk;
    let mut y = Vec::with_capacity(x.len());
    for row in x.chunks_exact(cols) {
        let v: Vec<f32> = row
            .iter()
            .map(|v| format.round(v.to_f64()) as f32)
            .collect();
        let value = |j: usize| v.get(j).copied().unwrap_or(0.0);
        let n = cols as f32;
        // Each invocation's chunks in order, then the tree.
        let reduce = |term: &dyn Fn(usize) -> f32, only_cols: bool| {
            workgroup_reduce(
                |i| {
                    (i..chunks)
                        .step_by(THREADS)
                        .flat_map(|c| (0..per_chunk).map(move |j| c * per_chunk + j))
                        .filter(|&j| !only_cols || j < cols)
                        .fold(0.0f32, |acc, j| acc + term(j))
                },
                false,
            )
        };
        // RMS: the kernel's sum stays 0, and so its mean.
        let mean = if beta.is_some() {
            reduce(&value, false) / n
        } else {
            0.0
        };
        let variance = reduce(
            &|j| {
                let d = value(j) - mean;
                d * d
            },
            true,
        ) / n;
        let rstd = 1.0 / (variance + epsilon).sqrt();
        y.extend((0..cols).map(|j| {
            let out = match beta {
                Some(beta) => {
                    let inv = rstd * gamma[j];
                    value(j) * inv + (beta[j] - mean * inv)
                }
                None => value(j) * rstd * gamma[j],
            };
            T::from_f64(format.round(f64::from(out)))
        }));
    }
    Ok(y)
}

/// `activation` applied to every value of `x` stored in `format`, as
/// shaders/activate.wgsl does: in f32, rounded to `format`.
pub fn activate<T: HostFloat>(format: StorageFormat, activation: Activation, x: &[T]) -> Vec<T> {
    x.iter()
        .map(|v| {
            let v = format.round(v.to_f64()) as f32;
            T::from_f64(format.round(f64::from(activate_value(activation, v))))
        })
        .collect()
}

/// `x * factor` for `x` stored in `format`, as shaders/activate.wgsl
/// computes it for `Graph::scale`: the product in f32, rounded to `format`.
pub fn scale<T: HostFloat>(format: StorageFormat, x: &[T], factor: f32) -> Vec<T> {
    x.iter()
        .map(|v| {
            let v = format.round(v.to_f64()) as f32;
            T::from_f64(format.round(f64::from(v * factor)))
        })
        .collect()
}

/// The index of the largest value of each row of `cols` values (the first
/// of equal ones, NaN skipped; 0 for a row of NaN): the twin of
/// `Graph::argmax`.
pub fn argmax<T: HostFloat>(x: &[T], cols: usize) -> Result<Vec<usize>> {
    if cols == 0 || !x.len().is_multiple_of(cols) {
        return Err(Error::Shape(format!(
            "an argmax over rows of {cols} values of {} values",
            x.len()
        )));
    }
    Ok(x.chunks_exact(cols)
        .map(|row| {
            let mut best: Option<(f64, usize)> = None;
            for (i, v) in row.iter().enumerate() {
                let v = v.to_f64();
                if !v.is_nan() && best.is_none_or(|(b, _)| v > b) {
                    best = Some((v, i));
                }
            }
            best.map_or(0, |(_, i)| i)
        })
        .collect())
}

/// Keras's Softmax layer over rows of `cols` values stored in `format`, as
/// shaders/softmax.wgsl computes it: masked values (`mask` > 0.5 keeps)
/// replaced by [`crate::ops::large_negative`], m = max, e =
/// round(exp(round(x - m))), s = round(sum of e, each invocation's chunks in
/// order then the tree), y = round(e / s), masked positions 0.
pub fn softmax<T: HostFloat>(
    format: StorageFormat,
    x: &[T],
    cols: usize,
    mask: Option<&[f32]>,
) -> Result<Vec<T>> {
    if cols == 0
        || !x.len().is_multiple_of(cols)
        || format == StorageFormat::F64
        || mask.is_some_and(|m| m.len() != x.len())
    {
        return Err(Error::Shape(format!(
            "a Softmax of {} values in rows of {cols} in {format:?} with a mask of {:?} values",
            x.len(),
            mask.map(<[f32]>::len)
        )));
    }
    let round = |v: f32| format.round(f64::from(v)) as f32;
    let negative = crate::ops::large_negative(format);
    let per_chunk = format.values_per_chunk();
    let chunks = cols.div_ceil(K_ALIGN) * K_ALIGN / per_chunk;
    let mut y = Vec::with_capacity(x.len());
    for (r, row) in x.chunks_exact(cols).enumerate() {
        let kept = |j: usize| mask.is_none_or(|m| m[r * cols + j] > 0.5);
        let value = |j: usize| -> f32 {
            if j >= cols {
                f32::NEG_INFINITY
            } else if kept(j) {
                round(row[j].to_f64() as f32)
            } else {
                negative
            }
        };
        let mine = |i: usize| {
            (i..chunks)
                .step_by(THREADS)
                .flat_map(|c| (0..per_chunk).map(move |j| c * per_chunk + j))
        };
        let top = workgroup_reduce(
            |i| mine(i).fold(f32::NEG_INFINITY, |m, j| m.max(value(j))),
            true,
        );
        let e = |j: usize| round(round(value(j) - top).exp());
        let total = round(workgroup_reduce(
            |i| mine(i).filter(|&j| j < cols).fold(0.0f32, |s, j| s + e(j)),
            false,
        ));
        y.extend((0..cols).map(|j| {
            let out = if kept(j) { e(j) / total } else { 0.0 };
            T::from_f64(format.round(f64::from(out)))
        }));
    }
    Ok(y)
}

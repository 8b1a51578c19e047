// SPDX-License-Identifier: MIT OR Apache-2.0
//! CPU twin of shaders/rope.wgsl (KerasHub's RotaryEmbedding), and the f32
//! table of cosines and sines both sides read: the angles and their
//! cos and sin in f32, rounded to the compute format, each product and the
//! sum rounded as Keras's compute-dtype arithmetic rounds them.

use crate::error::{Error, Result};
use crate::format::StorageFormat;
use crate::ops::RopeShape;

/// The f32 cosines and sines of `f32(p) * inv_freq[i]` for positions `p` in
/// `0..positions` and `i` in `0..inv_freq.len()`, each `[positions, half]`
/// by position (KerasHub: `einsum("i,j->ij", positions, inverse_freq)` in
/// float32, then `cos` and `sin`). Rust's f32 `cos` and `sin`: the GPU
/// reads this table ([`crate::gpu::context::GpuContext::upload_rope`]), so
/// both sides use the same values.
pub fn table(inv_freq: &[f32], positions: usize) -> (Vec<f32>, Vec<f32>) {
    let angles = (0..positions).flat_map(|p| inv_freq.iter().map(move |&f| p as f32 * f));
    angles.map(|a| (a.cos(), a.sin())).unzip()
}

/// KerasHub's RotaryEmbedding of `x` (`[batch seq, heads head_dim]`) as
/// shaders/rope.wgsl computes it in `format`: row r at position `start + r
/// % seq`, `inv_freq` one frequency per pair of features (`head_dim / 2`
/// of them: KerasHub's `inverse_freq`, scaling included); `y[j] =
/// round(round(x[j] * cos) + round(rot[j] * sin))` with `cos` and `sin`
/// from [`table`] rounded to `format` and `rot` the halves of the head
/// swapped, the first negated.
pub fn rope(
    format: StorageFormat,
    shape: RopeShape,
    inv_freq: &[f32],
    x: &[f32],
) -> Result<Vec<f32>> {
    shape.check()?;
    let (rows, cols) = shape.x_dims()?;
    let half = shape.head_dim / 2;
    if inv_freq.len() != half {
        return Err(Error::Shape(format!(
            "a rotary embedding of head_dim {} with {} inverse frequencies; it takes one per \
             pair of features, head_dim / 2 = {half}",
            shape.head_dim,
            inv_freq.len()
        )));
    }
    if x.len() != rows * cols {
        return Err(Error::Shape(format!(
            "a rotary embedding of {} values; {shape:?} takes {rows} x {cols}",
            x.len()
        )));
    }
    let positions = crate::size::add(shape.start, shape.seq, &|| {
        format!("the positions of {shape:?}")
    })?;
    let (cos, sin) = table(inv_freq, positions);
    let round = |v: f32| format.round(f64::from(v)) as f32;
    let x: Vec<f32> = x.iter().map(|&v| round(v)).collect();
    let mut y = Vec::with_capacity(x.len());
    for r in 0..rows {
        let p = shape.start + r % shape.seq;
        for col in 0..cols {
            let d = col % shape.head_dim;
            let at = p * half + d % half;
            let (c, s) = (round(cos[at]), round(sin[at]));
            let rot = if d < half {
                -x[r * cols + col + half]
            } else {
                x[r * cols + col - half]
            };
            y.push(round(round(x[r * cols + col] * c) + round(rot * s)));
        }
    }
    Ok(y)
}

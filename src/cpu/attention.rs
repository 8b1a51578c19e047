// SPDX-License-Identifier: MIT OR Apache-2.0
//! CPU twin of shaders/attention.wgsl: the same logits, the same softmax
//! sums in the same order, the probabilities rounded to the storage
//! format, the weighted sum of values in key order; on Keras's explicit
//! path the same roundings of the scaled query, the scores and the
//! softmax's steps.

use crate::cpu::{REDUCE_THREADS, workgroup_reduce};
use crate::error::{Error, Result};
use crate::format::StorageFormat;
use crate::ops::AttentionShape;

const THREADS: usize = REDUCE_THREADS;
const MASKED: f32 = -0.7 * f32::MAX;

/// `softmax(mask(q . k * scale)) . v` per head as the GPU computes it in
/// `format`: `q` is `[batch tq, heads key_dim]` (rows by columns), `k`
/// `[batch tk, heads key_dim]`, `v` `[batch tk, heads value_dim]` (values
/// already in `format`), `mask` `[batch tq, tk]` of 1 and 0. Returns
/// `[batch tq, heads value_dim]`.
pub fn attention(
    format: StorageFormat,
    shape: AttentionShape,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    mask: Option<&[f32]>,
) -> Result<Vec<f32>> {
    shape.check()?;
    let AttentionShape {
        batch,
        tq,
        tk,
        heads,
        key_dim,
        value_dim,
        scale,
        causal,
        explicit,
    } = shape;
    let (qk_cols, v_cols) = (heads * key_dim, heads * value_dim);
    if q.len() != batch * tq * qk_cols
        || k.len() != batch * tk * qk_cols
        || v.len() != batch * tk * v_cols
        || mask.is_some_and(|m| m.len() != batch * tq * tk)
    {
        return Err(Error::Shape(format!(
            "attention inputs of {}, {}, {} values for {shape:?}",
            q.len(),
            k.len(),
            v.len()
        )));
    }
    let round = |x: f32| format.round(f64::from(x)) as f32;
    let (scale, negative) = if explicit {
        (round(scale), crate::ops::large_negative(format))
    } else {
        (scale, MASKED)
    };
    // exp(l - m), rounded as the explicit path's Softmax layer rounds it.
    let weight = |l: f32, m: f32| {
        if explicit {
            round(round(l - m).exp())
        } else {
            (l - m).exp()
        }
    };
    let mut y = vec![0.0f32; batch * tq * v_cols];
    for b in 0..batch {
        for t in 0..tq {
            let qr = b * tq + t;
            for n in 0..heads {
                let kept =
                    |s: usize| !(causal && s > t) && mask.is_none_or(|m| m[qr * tk + s] != 0.0);
                let logit = |s: usize| -> f32 {
                    let mut dot = 0.0f32;
                    for h in 0..key_dim {
                        let x = q[qr * qk_cols + n * key_dim + h];
                        let x = if explicit { round(x * scale) } else { x };
                        dot += x * k[(b * tk + s) * qk_cols + n * key_dim + h];
                    }
                    match (kept(s), explicit) {
                        (false, _) => negative,
                        (true, true) => round(dot),
                        (true, false) => dot * scale,
                    }
                };
                let logits: Vec<f32> = (0..tk).map(logit).collect();
                let tree = |parts: Vec<f32>, max: bool| workgroup_reduce(|i| parts[i], max);
                let part = |i: usize, init: f32, f: &dyn Fn(f32, f32) -> f32| {
                    (i..tk)
                        .step_by(THREADS)
                        .fold(init, |acc, s| f(acc, logits[s]))
                };
                let m = tree(
                    (0..THREADS)
                        .map(|i| part(i, f32::NEG_INFINITY, &f32::max))
                        .collect(),
                    true,
                );
                let total = tree(
                    (0..THREADS)
                        .map(|i| part(i, 0.0, &|acc, l| acc + weight(l, m)))
                        .collect(),
                    false,
                );
                let total = if explicit { round(total) } else { total };
                let probs: Vec<f32> = (0..tk)
                    .map(|s| {
                        if explicit && !kept(s) {
                            0.0
                        } else {
                            round(weight(logits[s], m) / total)
                        }
                    })
                    .collect();
                for d in 0..value_dim {
                    let col = n * value_dim + d;
                    let acc = (0..tk).fold(0.0f32, |acc, s| {
                        acc + probs[s] * v[(b * tk + s) * v_cols + col]
                    });
                    y[qr * v_cols + col] = round(acc);
                }
            }
        }
    }
    Ok(y)
}

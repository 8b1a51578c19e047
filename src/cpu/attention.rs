// SPDX-License-Identifier: MIT OR Apache-2.0
//! CPU twin of shaders/attention.wgsl: the same logits, the same softmax
//! sums in the same order, the probabilities rounded to the storage
//! format, the weighted sum of values in key order; on Keras's explicit
//! path the same roundings of the scaled query, the scores and the
//! softmax's steps (or, with its Softmax in float32, of the probabilities
//! only).

use crate::cpu::{REDUCE_THREADS, workgroup_reduce};
use crate::error::{Error, Result};
use crate::format::StorageFormat;
use crate::ops::AttentionShape;

const THREADS: usize = REDUCE_THREADS;
const MASKED: f32 = -0.7 * f32::MAX;

/// `softmax(mask(q . k * scale)) . v` per head as the GPU computes it in
/// `format`: `q` is `[batch tq, heads key_dim]` (rows by columns), `k`
/// `[batch tk, kv_heads key_dim]`, `v` `[batch tk, kv_heads value_dim]`
/// (values already in `format`; query head n reads key/value head `n /
/// (heads / kv_heads)`), `mask` of 1 and 0, `[batch tq, tk]`, or `[batch,
/// tk]` with [`AttentionShape::key_mask`]. Returns `[batch tq, heads
/// value_dim]`.
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
        kv_heads,
        key_dim,
        value_dim,
        scale,
        causal,
        explicit,
        key_mask,
        softmax_f32,
    } = shape;
    let (q_cols, k_cols, v_cols) = (heads * key_dim, kv_heads * key_dim, kv_heads * value_dim);
    let y_cols = heads * value_dim;
    let mask_rows = if key_mask { batch } else { batch * tq };
    if q.len() != batch * tq * q_cols
        || k.len() != batch * tk * k_cols
        || v.len() != batch * tk * v_cols
        || mask.is_some_and(|m| m.len() != mask_rows * tk)
    {
        return Err(Error::Shape(format!(
            "attention inputs of {}, {}, {} values and a mask of {:?} for {shape:?}",
            q.len(),
            k.len(),
            v.len(),
            mask.map(<[f32]>::len)
        )));
    }
    let round = |x: f32| format.round(f64::from(x)) as f32;
    let (scale, negative) = if explicit {
        (round(scale), shape.masked_score(format))
    } else {
        (scale, MASKED)
    };
    // The explicit path's Softmax layer rounds each step, unless it runs in float32.
    let rounded = explicit && !softmax_f32;
    // exp(l - m), rounded as the explicit path's Softmax layer rounds it.
    let weight = |l: f32, m: f32| {
        if rounded {
            round(round(l - m).exp())
        } else {
            (l - m).exp()
        }
    };
    let group = heads / kv_heads;
    let mut y = vec![0.0f32; batch * tq * y_cols];
    for b in 0..batch {
        for t in 0..tq {
            let qr = b * tq + t;
            let mask_row = if key_mask { b } else { qr };
            for n in 0..heads {
                let g = n / group;
                let kept = |s: usize| {
                    !(causal && s > t) && mask.is_none_or(|m| m[mask_row * tk + s] != 0.0)
                };
                let logit = |s: usize| -> f32 {
                    let mut dot = 0.0f32;
                    for h in 0..key_dim {
                        let x = q[qr * q_cols + n * key_dim + h];
                        let x = if explicit { round(x * scale) } else { x };
                        dot += x * k[(b * tk + s) * k_cols + g * key_dim + h];
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
                let total = if rounded { round(total) } else { total };
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
                    let acc = (0..tk).fold(0.0f32, |acc, s| {
                        acc + probs[s] * v[(b * tk + s) * v_cols + g * value_dim + d]
                    });
                    y[qr * y_cols + n * value_dim + d] = round(acc);
                }
            }
        }
    }
    Ok(y)
}

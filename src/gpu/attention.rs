// SPDX-License-Identifier: MIT OR Apache-2.0
//! MultiHeadAttention's core on the GPU (shaders/attention.wgsl): the
//! masked softmax of the scaled products of queries and keys, times the
//! values, one workgroup per query row and head; grouped-query heads,
//! padding masks over keys, and Keras's explicit path with its Softmax in
//! the compute dtype or in float32.

use crate::error::{Error, Result};
use crate::format::StorageFormat;
use crate::gpu::kernels::Kernel;
use crate::gpu::pipelines::PipelineKey;
use crate::gpu::recorder::{Bind, Graph, Step, TensorId};
use crate::gpu::tensor::{elementwise_variant, groups_2d};
use crate::ops::AttentionShape;
use crate::size;

impl Graph {
    /// `softmax(mask(q . k * scale)) . v` per head: `q` is `[batch tq,
    /// heads key_dim]` (rows by columns), `k` `[batch tk, kv_heads
    /// key_dim]`, `v` `[batch tk, kv_heads value_dim]`, all in one format;
    /// `mask`, where given, an f32 tensor of 1 (attend) and 0, `[batch tq,
    /// tk]`, or `[batch, tk]` with [`AttentionShape::key_mask`]. Returns
    /// `[batch tq, heads value_dim]` in that format.
    pub fn attention(
        &mut self,
        q: TensorId,
        k: TensorId,
        v: TensorId,
        mask: Option<TensorId>,
        shape: AttentionShape,
    ) -> Result<TensorId> {
        self.op(|g| {
            shape.check()?;
            let (qs, ks, vs) = (g.shape(q)?, g.shape(k)?, g.shape(v)?);
            let format = qs.format();
            let want = |rows: usize, heads: usize, cols: usize| -> Result<(usize, usize)> {
                Ok((
                    size::mul(shape.batch, rows, &|| "attention rows".to_owned())?,
                    size::mul(heads, cols, &|| "attention features".to_owned())?,
                ))
            };
            let (heads, kv_heads) = (shape.heads, shape.kv_heads);
            let expect = [
                ("queries", qs, want(shape.tq, heads, shape.key_dim)?),
                ("keys", ks, want(shape.tk, kv_heads, shape.key_dim)?),
                ("values", vs, want(shape.tk, kv_heads, shape.value_dim)?),
            ];
            for (what, s, (rows, cols)) in expect {
                if (s.rows(), s.cols()) != (rows, cols) || s.format() != format {
                    return Err(Error::Shape(format!(
                        "attention {what} of {} x {} in {:?}; {shape:?} needs {rows} x {cols} \
                         in {format:?}",
                        s.rows(),
                        s.cols(),
                        s.format()
                    )));
                }
            }
            if format == StorageFormat::F64 {
                return Err(Error::Unsupported(
                    "attention over float64 tensors (the kernel computes in f32)".to_owned(),
                ));
            }
            if let Some(m) = mask {
                let ms = g.shape(m)?;
                let (rows, what) = if shape.key_mask {
                    (shape.batch, "a key mask, one row per sequence")
                } else {
                    (qs.rows(), "one row per query")
                };
                if (ms.rows(), ms.cols(), ms.format()) != (rows, shape.tk, StorageFormat::F32) {
                    return Err(Error::Shape(format!(
                        "an attention mask of {} x {} in {:?}; it must be f32 {rows} x {} \
                         ({what})",
                        ms.rows(),
                        ms.cols(),
                        ms.format(),
                        shape.tk
                    )));
                }
            }
            let y = g.tensor(crate::gpu::tensor::TensorShape::new(
                qs.rows(),
                shape.heads * shape.value_dim,
                format,
            )?);
            let what = || "an attention's dimensions".to_owned();
            let workgroups = size::mul(qs.rows(), shape.heads, &what)?;
            g.push(Step {
                key: PipelineKey {
                    kernel: Kernel::Attention,
                    storage: elementwise_variant(format),
                    specialization: 0,
                    mode: 0,
                },
                label: "attention".to_owned(),
                uniform: [
                    size::to_u32(workgroups, &what)?,
                    size::to_u32(shape.tq, &what)?,
                    size::to_u32(shape.tk, &what)?,
                    // Both below 2^16 (AttentionShape::check).
                    (heads as u32) | ((kv_heads as u32) << 16),
                    (shape.key_dim as u32) | ((shape.value_dim as u32) << 16),
                    u32::from(shape.causal)
                        | (u32::from(mask.is_some()) << 1)
                        | (u32::from(shape.explicit) << 2)
                        | (u32::from(shape.key_mask) << 3)
                        | (u32::from(shape.softmax_f32) << 4),
                    shape.scale.to_bits(),
                    shape.masked_score(format).to_bits(),
                ],
                bindings: vec![
                    Bind::Tensor(q),
                    Bind::Tensor(k),
                    Bind::Tensor(v),
                    // Without a mask the kernel reads none: q stands in.
                    Bind::Tensor(mask.unwrap_or(q)),
                    Bind::Tensor(y),
                ],
                groups: groups_2d(workgroups as u64 * 64)?,
            });
            Ok(y)
        })
    }

    /// The attention of one new query row over a KV cache that holds the
    /// keys and values of positions 0 to the run's position
    /// ([`Forward::run_at`](crate::gpu::recorder::Forward::run_at)): a
    /// decode step of one sequence. `shape` has `batch` 1, `tq` 1 and `tk`
    /// the rows of the caches (their capacity), no causal flag and no mask;
    /// each run attends to keys 0..=position.
    pub fn attention_over_cache(
        &mut self,
        q: TensorId,
        k_cache: TensorId,
        v_cache: TensorId,
        shape: AttentionShape,
    ) -> Result<TensorId> {
        self.op(|g| {
            if (shape.batch, shape.tq, shape.causal, shape.key_mask) != (1, 1, false, false) {
                return Err(Error::InvalidArgument(format!(
                    "a decode step's attention is over one query row of one sequence, without \
                     a causal flag or a key mask; got {shape:?}"
                )));
            }
            let y = g.attention(q, k_cache, v_cache, None, shape)?;
            // Word 2, tk: position + 1 keys.
            g.set_last_uniform(2, 1)?;
            g.follow_position(2, 1)?;
            Ok(y)
        })
    }
}

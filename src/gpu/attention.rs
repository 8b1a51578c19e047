// SPDX-License-Identifier: MIT OR Apache-2.0
//! MultiHeadAttention's core on the GPU (shaders/attention.wgsl): the
//! masked softmax of the scaled products of queries and keys, times the
//! values, one workgroup per query row and head.

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
    /// heads key_dim]` (rows by columns), `k` `[batch tk, heads key_dim]`,
    /// `v` `[batch tk, heads value_dim]`, all in one format; `mask`, where
    /// given, an f32 tensor `[batch tq, tk]` of 1 (attend) and 0. Returns
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
            let want = |rows: usize, cols: usize| -> Result<(usize, usize)> {
                Ok((
                    size::mul(shape.batch, rows, &|| "attention rows".to_owned())?,
                    size::mul(shape.heads, cols, &|| "attention features".to_owned())?,
                ))
            };
            let expect = [
                ("queries", qs, want(shape.tq, shape.key_dim)?),
                ("keys", ks, want(shape.tk, shape.key_dim)?),
                ("values", vs, want(shape.tk, shape.value_dim)?),
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
                if (ms.rows(), ms.cols(), ms.format()) != (qs.rows(), shape.tk, StorageFormat::F32)
                {
                    return Err(Error::Shape(format!(
                        "an attention mask of {} x {} in {:?}; it must be f32 {} x {}",
                        ms.rows(),
                        ms.cols(),
                        ms.format(),
                        qs.rows(),
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
                    size::to_u32(shape.heads, &what)?,
                    (shape.key_dim as u32) | ((shape.value_dim as u32) << 16),
                    u32::from(shape.causal)
                        | (u32::from(mask.is_some()) << 1)
                        | (u32::from(shape.explicit) << 2),
                    shape.scale.to_bits(),
                    crate::ops::large_negative(format).to_bits(),
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
}

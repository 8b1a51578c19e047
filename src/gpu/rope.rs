// SPDX-License-Identifier: MIT OR Apache-2.0
//! KerasHub's RotaryEmbedding on the GPU (shaders/rope.wgsl): each head's
//! two halves rotated by the cosines and sines of its token's position,
//! from a table of f32 values the host computes once
//! ([`crate::cpu::rope::table`]) and the kernel rounds to the compute dtype.

use crate::error::{Error, Result};
use crate::format::StorageFormat;
use crate::gpu::context::GpuContext;
use crate::gpu::kernels::Kernel;
use crate::gpu::pipelines::PipelineKey;
use crate::gpu::recorder::{Bind, Graph, Step, TensorId};
use crate::gpu::tensor::{elementwise_variant, groups_2d};
use crate::ops::RopeShape;
use crate::size;

/// A rotary embedding's cosines and sines on the GPU: f32 `[positions,
/// half]` of each, for positions `0..positions` (a model's longest
/// sequence, cache included).
#[derive(Debug, Clone)]
pub struct RopeTable {
    table: wgpu::Buffer,
    positions: usize,
    half: usize,
}

impl RopeTable {
    /// The positions it covers (`0..positions`).
    pub fn positions(&self) -> usize {
        self.positions
    }

    /// Frequencies per position (`head_dim / 2`).
    pub fn half(&self) -> usize {
        self.half
    }

    /// Bytes on the GPU.
    pub fn gpu_bytes(&self) -> u64 {
        self.table.size()
    }
}

impl GpuContext {
    /// Uploads the cosines and sines of `f32(p) * inv_freq[i]` for positions
    /// `p` in `0..positions` ([`crate::cpu::rope::table`]): `inv_freq` is
    /// KerasHub's `inverse_freq`, one per pair of a head's features
    /// (`head_dim / 2`), scaling included.
    pub fn upload_rope(&self, inv_freq: &[f32], positions: usize) -> Result<RopeTable> {
        size::nonzero(
            &[("frequencies", inv_freq.len()), ("positions", positions)],
            "a rotary embedding table",
        )?;
        if let Some(bad) = inv_freq.iter().find(|f| !f.is_finite()) {
            return Err(Error::InvalidArgument(format!(
                "a rotary embedding inverse frequency of {bad}; they must be finite"
            )));
        }
        let values = size::mul(positions, inv_freq.len(), &|| {
            format!(
                "a rotary table of {positions} positions x {}",
                inv_freq.len()
            )
        })?;
        // The kernel indexes the table with u32 (cos and sin: twice).
        size::to_u32(
            size::mul(values, 2, &|| "a rotary table".to_owned())?,
            &|| "a rotary table's values".to_owned(),
        )?;
        let (cos, sin) = crate::cpu::rope::table(inv_freq, positions);
        let words: Vec<u32> = cos.iter().chain(&sin).map(|v| v.to_bits()).collect();
        Ok(RopeTable {
            table: self.storage_buffer("rotary embedding table", &words)?,
            positions,
            half: inv_freq.len(),
        })
    }
}

impl Graph {
    /// KerasHub's RotaryEmbedding of `x` (`[batch seq, heads head_dim]`,
    /// f32, f16 or bf16), row r at position `shape.start + r % shape.seq`,
    /// in `x`'s format ([`crate::cpu::rope::rope`] is its twin).
    pub fn rope(&mut self, x: TensorId, table: &RopeTable, shape: RopeShape) -> Result<TensorId> {
        self.op(|g| {
            shape.check()?;
            let (rows, cols) = shape.x_dims()?;
            let xs = g.shape(x)?;
            if (xs.rows(), xs.cols()) != (rows, cols) {
                return Err(Error::Shape(format!(
                    "a rotary embedding of {} x {}; {shape:?} needs {rows} x {cols}",
                    xs.rows(),
                    xs.cols()
                )));
            }
            if xs.format() == StorageFormat::F64 {
                return Err(Error::Unsupported(
                    "a rotary embedding of float64 tensors (the kernel computes in f32)".to_owned(),
                ));
            }
            if table.half * 2 != shape.head_dim {
                return Err(Error::Shape(format!(
                    "a rotary table of {} frequencies for heads of {}; it needs head_dim / 2 = {}",
                    table.half,
                    shape.head_dim,
                    shape.head_dim / 2
                )));
            }
            let end = size::add(shape.start, shape.seq, &|| format!("{shape:?}"))?;
            if end > table.positions {
                return Err(Error::Shape(format!(
                    "a rotary embedding of positions {} to {}; the table covers 0 to {}: upload \
                     one for at least {end} positions",
                    shape.start,
                    end - 1,
                    table.positions - 1
                )));
            }
            let y = g.tensor(xs);
            let what = || "a rotary embedding's sizes".to_owned();
            let chunks = xs.bytes() as usize / 16;
            g.push(Step {
                key: PipelineKey {
                    kernel: Kernel::Rope,
                    storage: elementwise_variant(xs.format()),
                    specialization: 0,
                    mode: 0,
                },
                label: "rope".to_owned(),
                uniform: [
                    size::to_u32(chunks, &what)?,
                    size::to_u32(chunks / rows, &what)?,
                    size::to_u32(cols, &what)?,
                    size::to_u32(shape.seq, &what)?,
                    size::to_u32(shape.start, &what)?,
                    size::to_u32(table.half, &what)?,
                    // Below 2^32 (upload_rope).
                    (table.positions * table.half) as u32,
                    0,
                ],
                bindings: vec![
                    Bind::Tensor(x),
                    Bind::Buffer(table.table.clone()),
                    Bind::Tensor(y),
                ],
                groups: groups_2d(chunks as u64)?,
            });
            Ok(y)
        })
    }

    /// [`Graph::rope`] with each run's position added to `shape.start`
    /// ([`Forward::run_at`](crate::gpu::recorder::Forward::run_at)): a
    /// decode step's rotary offset. Checked for position 0 here; the
    /// caller keeps the positions within the table.
    pub fn rope_at_position(
        &mut self,
        x: TensorId,
        table: &RopeTable,
        shape: RopeShape,
    ) -> Result<TensorId> {
        self.op(|g| {
            let y = g.rope(x, table, shape)?;
            // Word 4: start.
            g.follow_position(4, 1)?;
            Ok(y)
        })
    }
}

// SPDX-License-Identifier: MIT OR Apache-2.0
//! Keras's Embedding on the GPU (shaders/embedding.wgsl): a gather of table
//! rows by id, dequantized as Keras dequantizes int8 and int4 tables.
//!
//! The table arrives as the [`DenseKernel`] of its transpose (`[output_dim,
//! input_dim]`: a vocabulary row is an output column, so Keras's per-row
//! scales are a Dense kernel's per-output ones, and the same kernel is the
//! output head of a model that ties its embeddings). The upload lays it out
//! by vocabulary row, as the gather reads it.
//!
//! The same kernel gathers KerasHub's PositionEmbedding, whose rows are
//! the tokens' positions rather than ids ([`Graph::positions`]).

use crate::error::{Error, Result};
use crate::format::embedding::embedding_layout;
use crate::format::{DenseKernel, StorageFormat};
use crate::gpu::context::GpuContext;
use crate::gpu::kernels::Kernel;
use crate::gpu::pipelines::PipelineKey;
use crate::gpu::recorder::{Bind, Graph, Step, TensorId};
use crate::gpu::tensor::{TensorShape, elementwise_variant, groups_2d};
use crate::size;

/// shaders/embedding.wgsl's `POSITIONS`: rows by the ids tensor.
const GATHER_BY_ID: u32 = 0;
/// shaders/embedding.wgsl's `POSITIONS`: rows by position, no ids.
const GATHER_BY_POSITION: u32 = 1;

/// An Embedding's table on the GPU, by vocabulary row.
#[derive(Debug, Clone)]
pub struct EmbeddingWeights {
    table: wgpu::Buffer,
    scales: wgpu::Buffer,
    zeros: wgpu::Buffer,
    vocab: usize,
    dim: usize,
    row_words: usize,
    mode: u32,
    block: usize,
}

impl EmbeddingWeights {
    /// Table rows (`input_dim`).
    pub fn vocab(&self) -> usize {
        self.vocab
    }

    /// Values per row (`output_dim`).
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Bytes on the GPU.
    pub fn gpu_bytes(&self) -> u64 {
        self.table.size() + self.scales.size() + self.zeros.size()
    }
}

impl GpuContext {
    /// Uploads an Embedding table (the [`DenseKernel`] of its transpose)
    /// for lookups in `format`, the layer's compute format (f32, f16 or
    /// bf16).
    pub fn upload_embedding(
        &self,
        table: &DenseKernel,
        format: StorageFormat,
    ) -> Result<EmbeddingWeights> {
        if format == StorageFormat::F64 {
            return Err(Error::Unsupported(
                "a float64 Embedding (the kernel computes in f32)".to_owned(),
            ));
        }
        let layout = embedding_layout(table, format)?;
        // Bindings are never empty: a word stands in for an unused one.
        let f32_words = |v: &[f32]| -> Vec<u32> {
            let mut w: Vec<u32> = v.iter().map(|x| x.to_bits()).collect();
            if w.is_empty() {
                w.push(0);
            }
            w
        };
        Ok(EmbeddingWeights {
            table: self.storage_buffer("embedding table", &layout.words)?,
            scales: self.storage_buffer("embedding scales", &f32_words(&layout.scales))?,
            zeros: self.storage_buffer("embedding zero points", &f32_words(&layout.zeros))?,
            vocab: table.n(),
            dim: table.k(),
            row_words: layout.row_words,
            mode: layout.mode,
            block: layout.block,
        })
    }
}

impl Graph {
    /// The rows of `table` at `ids` (an f32 tensor of ids, `ids_cols` per
    /// row: one output row per id, in order), in `format`.
    pub fn embedding(
        &mut self,
        ids: TensorId,
        table: &EmbeddingWeights,
        format: StorageFormat,
    ) -> Result<TensorId> {
        self.op(|g| {
            let ids_shape = g.shape(ids)?;
            if ids_shape.format() != StorageFormat::F32 {
                return Err(Error::Shape(format!(
                    "embedding ids in {:?}; ids are an f32 tensor",
                    ids_shape.format()
                )));
            }
            let shape = TensorShape::new(ids_shape.len(), table.dim, format)?;
            let y = g.tensor(shape);
            let what = || "an embedding's sizes".to_owned();
            let chunks_per_row = shape.bytes() as usize / 16 / shape.rows();
            let chunks = shape.bytes() as usize / 16;
            g.push(Step {
                key: PipelineKey {
                    kernel: Kernel::Embedding,
                    storage: elementwise_variant(format),
                    specialization: GATHER_BY_ID,
                    mode: table.mode,
                },
                label: "embedding".to_owned(),
                uniform: [
                    size::to_u32(table.dim, &what)?,
                    size::to_u32(chunks_per_row, &what)?,
                    size::to_u32(chunks, &what)?,
                    size::to_u32(ids_shape.cols(), &what)?,
                    size::to_u32(ids_shape.stride(), &what)?,
                    size::to_u32(table.vocab, &what)?,
                    size::to_u32(table.row_words, &what)?,
                    size::to_u32(table.block, &what)?,
                ],
                bindings: vec![
                    Bind::Tensor(ids),
                    Bind::Buffer(table.table.clone()),
                    Bind::Buffer(table.scales.clone()),
                    Bind::Buffer(table.zeros.clone()),
                    Bind::Tensor(y),
                ],
                groups: groups_2d(chunks as u64)?,
            });
            Ok(y)
        })
    }

    /// KerasHub's PositionEmbedding: as many rows as `like` (which gives
    /// only the row count: `batch seq` rows), row r being the table's row
    /// `start + r % seq`, rounded to `format` (f32, f16 or bf16; the
    /// format the table was uploaded for). `table` is a float table
    /// (`[max_positions, dim]`, uploaded as the [`DenseKernel`] of its
    /// transpose like an Embedding's; Keras never quantizes it).
    pub fn positions(
        &mut self,
        like: TensorId,
        table: &EmbeddingWeights,
        seq: usize,
        start: usize,
        format: StorageFormat,
    ) -> Result<TensorId> {
        self.op(|g| {
            let rows = g.shape(like)?.rows();
            crate::ops::check_positions(table.mode, table.vocab, rows, seq, start)?;
            let shape = TensorShape::new(rows, table.dim, format)?;
            let y = g.tensor(shape);
            let what = || "a position embedding's sizes".to_owned();
            let chunks = shape.bytes() as usize / 16;
            g.push(Step {
                key: PipelineKey {
                    kernel: Kernel::Embedding,
                    storage: elementwise_variant(format),
                    specialization: GATHER_BY_POSITION,
                    mode: table.mode,
                },
                label: "position embedding".to_owned(),
                uniform: [
                    size::to_u32(table.dim, &what)?,
                    size::to_u32(chunks / rows, &what)?,
                    size::to_u32(chunks, &what)?,
                    // The ids' fields, by position: seq and start.
                    size::to_u32(seq, &what)?,
                    size::to_u32(start, &what)?,
                    size::to_u32(table.vocab, &what)?,
                    size::to_u32(table.row_words, &what)?,
                    0,
                ],
                bindings: vec![
                    // No ids are read: the scales' buffer stands in.
                    Bind::Buffer(table.scales.clone()),
                    Bind::Buffer(table.table.clone()),
                    Bind::Buffer(table.scales.clone()),
                    Bind::Buffer(table.zeros.clone()),
                    Bind::Tensor(y),
                ],
                groups: groups_2d(chunks as u64)?,
            });
            Ok(y)
        })
    }

    /// [`Graph::positions`] with each run's position added to `start`
    /// ([`Forward::run_at`](crate::gpu::recorder::Forward::run_at)): a
    /// decode step's position embedding. Checked for position 0 here; the
    /// caller keeps the positions within the table.
    pub fn positions_at_position(
        &mut self,
        like: TensorId,
        table: &EmbeddingWeights,
        seq: usize,
        format: StorageFormat,
    ) -> Result<TensorId> {
        self.op(|g| {
            let y = g.positions(like, table, seq, 0, format)?;
            // Word 4: start.
            g.follow_position(4, 1)?;
            Ok(y)
        })
    }
}

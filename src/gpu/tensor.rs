// SPDX-License-Identifier: MIT OR Apache-2.0
//! Device tensors: `rows` rows of `cols` values in one storage format on
//! the GPU, each row padded with zeros to [`TensorShape::stride`] values
//! (a multiple of [`K_ALIGN`]), which is the row layout every Dense kernel
//! reads its input in and writes its output in, so one layer's output is
//! the next one's input as it lies.
//!
//! The padding stays zero: buffers start zeroed, every kernel writes only
//! its tensor's columns (or zeros past them), and a recorded forward's
//! pool hands a buffer on only to tensors of the same columns and format
//! ([`crate::gpu::recorder`]).

use crate::error::{Error, Result};
use crate::format::packing::K_ALIGN;
use crate::format::{HostFloat, StorageFormat};
use crate::gpu::context::GpuContext;
use crate::gpu::kernels::Kernel;
use crate::gpu::pipelines::PipelineKey;
use crate::gpu::recorder::{Bind, Graph, Step, TensorId};
use crate::gpu::shaders::StorageVariant;
use crate::ops::Binary;
use crate::size;

/// The shape of a device tensor: rows (the batch times the sequence, for
/// a layer's activations), values per row (features), and how they are
/// stored. Made by [`TensorShape::new`], which checks the sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TensorShape {
    rows: usize,
    cols: usize,
    format: StorageFormat,
}

impl TensorShape {
    /// A shape of `rows` x `cols` in `format`; `Err` for a zero dimension or
    /// a size this machine cannot address.
    pub fn new(rows: usize, cols: usize, format: StorageFormat) -> Result<Self> {
        size::nonzero(&[("rows", rows), ("cols", cols)], "a tensor")?;
        let shape = TensorShape { rows, cols, format };
        let stride = size::round_up(cols, K_ALIGN, &|| format!("a row of {cols} values"))?;
        let values = size::mul(rows, stride, &|| format!("a tensor of {rows} x {cols}"))?;
        size::bytes(values, format.bytes_per_value(), &|| {
            format!("a tensor of {rows} x {cols}")
        })?;
        Ok(shape)
    }

    /// Rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Values per row (the padding not counted).
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// How the values are stored.
    pub fn format(&self) -> StorageFormat {
        self.format
    }

    /// Values per row in memory: `cols` rounded up to a multiple of
    /// [`K_ALIGN`], the padding zeros.
    pub fn stride(&self) -> usize {
        self.cols.div_ceil(K_ALIGN) * K_ALIGN
    }

    /// 32-bit words per row in memory.
    pub fn row_words(&self) -> usize {
        self.stride() * self.format.bytes_per_value() / 4
    }

    /// Bytes of the tensor in memory (padding included).
    pub fn bytes(&self) -> u64 {
        (self.rows * self.stride() * self.format.bytes_per_value()) as u64
    }

    /// `rows x cols` values.
    pub fn len(&self) -> usize {
        self.rows * self.cols
    }

    /// Whether it holds no value (never: every dimension is at least 1).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Host values `[rows, cols]` as the tensor's words, rows padded with zeros.
    pub(crate) fn encode<T: HostFloat>(&self, values: &[T]) -> Result<Vec<u32>> {
        self.check_len(values.len())?;
        let mut words = Vec::with_capacity(self.rows * self.row_words());
        let mut row = Vec::with_capacity(self.stride());
        for chunk in values.chunks_exact(self.cols) {
            row.clear();
            row.extend(chunk.iter().map(|v| v.to_f64()));
            row.resize(self.stride(), 0.0);
            words.extend(self.format.encode(&row));
        }
        Ok(words)
    }

    /// The tensor's words back to host values `[rows, cols]`.
    pub(crate) fn decode<T: HostFloat>(&self, words: &[u32]) -> Vec<T> {
        words
            .chunks_exact(self.row_words())
            .take(self.rows)
            .flat_map(|row| self.format.decode::<T>(row, self.cols))
            .collect()
    }

    /// The words of each row that hold its columns (the padding dropped).
    pub(crate) fn unpadded_words(&self, words: &[u32]) -> Vec<u32> {
        let used = self.format.words_for(self.cols);
        words
            .chunks_exact(self.row_words())
            .take(self.rows)
            .flat_map(|row| row[..used].iter().copied())
            .collect()
    }

    fn check_len(&self, len: usize) -> Result<()> {
        if len != self.len() {
            return Err(Error::Shape(format!(
                "{len} values given, but {} rows of {} need {}",
                self.rows,
                self.cols,
                self.len()
            )));
        }
        Ok(())
    }
}

/// A tensor on the GPU, read back only when asked.
#[derive(Debug, Clone)]
pub struct Tensor {
    pub(crate) buffer: wgpu::Buffer,
    shape: TensorShape,
}

impl Tensor {
    /// Its shape.
    pub fn shape(&self) -> TensorShape {
        self.shape
    }
}

/// Every device tensor's buffer: bound by kernels, written by the host,
/// copied out for reading.
pub(crate) const TENSOR_USAGE: wgpu::BufferUsages = wgpu::BufferUsages::STORAGE
    .union(wgpu::BufferUsages::COPY_DST)
    .union(wgpu::BufferUsages::COPY_SRC);

impl GpuContext {
    /// A tensor of `shape` holding `values` (`[rows, cols]`, row-major).
    pub fn tensor<T: HostFloat>(&self, values: &[T], shape: TensorShape) -> Result<Tensor> {
        let words = shape.encode(values)?;
        self.tensor_of_words(&words, shape)
    }

    /// A tensor of `shape` filled with zeros (an output to write into).
    pub fn zeros(&self, shape: TensorShape) -> Result<Tensor> {
        self.check_binding("tensor", shape.bytes())?;
        Ok(Tensor {
            buffer: self.create_buffer("tensor", shape.bytes(), TENSOR_USAGE)?,
            shape,
        })
    }

    /// A tensor of `shape` from its words, padded rows included.
    pub(crate) fn tensor_of_words(&self, words: &[u32], shape: TensorShape) -> Result<Tensor> {
        self.check_binding("tensor", shape.bytes())?;
        debug_assert_eq!(words.len() * 4, shape.bytes() as usize);
        Ok(Tensor {
            buffer: self.upload("tensor", bytemuck::cast_slice(words), TENSOR_USAGE)?,
            shape,
        })
    }

    /// A tensor's values back on the host, `[rows, cols]`.
    pub fn read_tensor<T: HostFloat>(&self, tensor: &Tensor) -> Result<Vec<T>> {
        Ok(tensor.shape.decode(&self.read_back(&tensor.buffer)?))
    }
}

/// The uniform of shaders/add.wgsl (`AddDims`): 16-byte chunks per tensor.
const ADD_CHUNK_BYTES: u64 = 16;

/// The storage variant that reads and writes a tensor format in the
/// element-wise kernels (f16 as packed words: every adapter has them).
pub(crate) fn elementwise_variant(format: StorageFormat) -> StorageVariant {
    match format {
        StorageFormat::F32 => StorageVariant::F32,
        StorageFormat::F16 => StorageVariant::F16Packed,
        StorageFormat::BF16 => StorageVariant::BF16Packed,
        StorageFormat::F64 => StorageVariant::F64,
    }
}

/// Workgroups of 64 invocations for `invocations`, spread over two
/// dimensions when one is not enough.
pub(crate) fn groups_2d(invocations: u64) -> Result<(u32, u32)> {
    let groups = invocations.div_ceil(64).max(1);
    let x = groups.min(65_535);
    let y = groups.div_ceil(x);
    if y > 65_535 {
        return Err(Error::Shape(format!(
            "{invocations} invocations need more than 65535 x 65535 workgroups"
        )));
    }
    Ok((x as u32, y as u32))
}

impl Graph {
    /// `a + b` element by element (a residual add): both of the same
    /// shape; the sum in the arithmetic type, rounded to the format.
    pub fn add(&mut self, a: TensorId, b: TensorId) -> Result<TensorId> {
        self.binary(Binary::Add, a, b)
    }

    /// `a op b` element by element (Keras's `Add`, `Multiply`): both of the
    /// same shape; the result in the arithmetic type, rounded to the format.
    pub fn binary(&mut self, op: Binary, a: TensorId, b: TensorId) -> Result<TensorId> {
        self.op(|g| g.record_binary(op, a, b))
    }

    fn record_binary(&mut self, op: Binary, a: TensorId, b: TensorId) -> Result<TensorId> {
        let (shape, other) = (self.shape(a)?, self.shape(b)?);
        if other != shape {
            return Err(Error::Shape(format!(
                "{op:?} of a {shape:?} tensor and a {other:?} one; both must have the same shape"
            )));
        }
        let y = self.tensor(shape);
        let chunks = shape.bytes() / ADD_CHUNK_BYTES;
        self.push(Step {
            key: PipelineKey {
                kernel: Kernel::Add,
                storage: elementwise_variant(shape.format()),
                specialization: op as u32,
                mode: 0,
            },
            label: format!("{op:?}").to_lowercase(),
            uniform: [
                size::to_u32(chunks as usize, &|| "an add's chunks".to_owned())?,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
            ],
            bindings: vec![Bind::Tensor(a), Bind::Tensor(b), Bind::Tensor(y)],
            groups: groups_2d(chunks)?,
        });
        Ok(y)
    }
}

// SPDX-License-Identifier: MIT OR Apache-2.0
//! Casts between f32, f16 and bf16 tensors on the GPU (round to nearest
//! even; infinities and NaN kept, overflow to infinity), for converting
//! weights or activations without a trip through the host, and Keras's
//! `Reshape` (the same kernel moving each value to its row and column in
//! the new row length: rows are padded, so a new row length moves values).

use crate::error::{Error, Result};
use crate::format::StorageFormat;
use crate::gpu::context::GpuContext;
use crate::gpu::kernels::Kernel;
use crate::gpu::pipelines::PipelineKey;
use crate::gpu::recorder::{Bind, Graph, Step, TensorId};
use crate::gpu::tensor::{TensorShape, elementwise_variant, groups_2d};
use crate::size;

/// The `IN_FORMAT` value of shaders/cast.wgsl; `None` for f64, which the
/// cast kernel does not handle.
fn in_format_code(format: StorageFormat) -> Option<u32> {
    match format {
        StorageFormat::F32 => Some(0),
        StorageFormat::F16 => Some(1),
        StorageFormat::BF16 => Some(2),
        StorageFormat::F64 => None,
    }
}

impl Graph {
    /// `x` cast to `to` (a tensor of the same rows and columns): whole
    /// padded rows, so the padding stays zero.
    pub fn cast(&mut self, x: TensorId, to: StorageFormat) -> Result<TensorId> {
        self.op(|g| {
            let cols = g.shape(x)?.cols();
            g.record_cast(x, to, cols)
        })
    }

    /// `x`'s values in row-major order as rows of `cols` values (Keras's
    /// `Reshape`, whose last axis is `cols`), in `x`'s format; `x` itself
    /// where its rows already have `cols` values.
    pub fn reshape(&mut self, x: TensorId, cols: usize) -> Result<TensorId> {
        self.op(|g| {
            let from = g.shape(x)?;
            if from.cols() == cols {
                return Ok(x);
            }
            if cols == 0 || from.len() % cols != 0 {
                return Err(Error::Shape(format!(
                    "a reshape of {} x {} values into rows of {cols}",
                    from.rows(),
                    from.cols()
                )));
            }
            g.record_cast(x, from.format(), cols)
        })
    }

    /// Rows `start..start + count` of `x`, in its format (the last
    /// position's hidden state, for a language model's head).
    pub fn rows(&mut self, x: TensorId, start: usize, count: usize) -> Result<TensorId> {
        self.op(|g| {
            let from = g.shape(x)?;
            let end = size::add(start, count, &|| "a row range".to_owned())?;
            if count == 0 || end > from.rows() {
                return Err(Error::Shape(format!(
                    "rows {start}..{end} of a tensor of {} rows",
                    from.rows()
                )));
            }
            let y = g.tensor(TensorShape::new(count, from.cols(), from.format())?);
            g.copy_rows(x, y, start, 0, count)?;
            Ok(y)
        })
    }

    /// Writes the rows of `x` into `into` (a tensor of the same columns
    /// and format, such as a KV cache), from row `row` on.
    pub fn write_rows(&mut self, x: TensorId, into: TensorId, row: usize) -> Result<()> {
        self.op(|g| {
            let (xs, is) = (g.shape(x)?, g.shape(into)?);
            let end = size::add(row, xs.rows(), &|| "a row range".to_owned())?;
            if (xs.cols(), xs.format()) != (is.cols(), is.format()) || end > is.rows() {
                return Err(Error::Shape(format!(
                    "{} rows of {} {:?} values written from row {row} into a tensor of {} rows \
                     of {} {:?}",
                    xs.rows(),
                    xs.cols(),
                    xs.format(),
                    is.rows(),
                    is.cols(),
                    is.format()
                )));
            }
            g.copy_rows(x, into, 0, row, xs.rows())
        })
    }

    /// [`Graph::write_rows`] from row `position` of each run on
    /// ([`Forward::run_at`](crate::gpu::recorder::Forward::run_at)): a
    /// decode step's keys and values into their cache. Checked for
    /// position 0 here; the caller keeps the position below the rows of
    /// `into` minus the rows of `x`.
    pub fn write_rows_at_position(&mut self, x: TensorId, into: TensorId) -> Result<()> {
        self.op(|g| {
            g.write_rows(x, into, 0)?;
            let stride = size::to_u32(g.shape(into)?.stride(), &|| "a row".to_owned())?;
            // Word 6: out_offset, in values.
            g.follow_position(6, stride)
        })
    }

    /// The plain cast kernel copying `count` rows of `x` from row `from`
    /// into `y` from row `to` (same columns and format).
    fn copy_rows(
        &mut self,
        x: TensorId,
        y: TensorId,
        from: usize,
        to: usize,
        count: usize,
    ) -> Result<()> {
        let shape = self.shape(x)?;
        let code = in_format_code(shape.format()).ok_or_else(|| {
            Error::Unsupported("copying rows of float64 tensors (the cast kernel)".to_owned())
        })?;
        let what = || "a row copy's values".to_owned();
        let stride = shape.stride();
        let values = size::mul(count, stride, &what)?;
        self.push(Step {
            key: PipelineKey {
                kernel: Kernel::Cast,
                storage: elementwise_variant(shape.format()),
                specialization: code,
                mode: 0,
            },
            label: format!("copy {count} rows"),
            uniform: [
                size::to_u32(values, &what)?,
                size::to_u32(shape.cols(), &what)?,
                size::to_u32(stride, &what)?,
                size::to_u32(shape.cols(), &what)?,
                size::to_u32(stride, &what)?,
                size::to_u32(size::mul(from, stride, &what)?, &what)?,
                size::to_u32(size::mul(to, stride, &what)?, &what)?,
                0,
            ],
            bindings: vec![Bind::Tensor(x), Bind::Tensor(y)],
            groups: groups_2d(values.div_ceil(2) as u64)?,
        });
        Ok(())
    }

    fn record_cast(&mut self, x: TensorId, to: StorageFormat, cols: usize) -> Result<TensorId> {
        let from = self.shape(x)?;
        let (Some(code), Some(_)) = (in_format_code(from.format()), in_format_code(to)) else {
            return Err(Error::Unsupported(format!(
                "the cast kernel converts between f32, f16 and bf16, not {:?} -> {to:?}",
                from.format()
            )));
        };
        let shape = TensorShape::new(from.len() / cols, cols, to)?;
        let y = self.tensor(shape);
        let reshape = cols != from.cols();
        // Every value of every padded row, a pair per invocation.
        let count = shape.rows() * shape.stride();
        let what = || "a cast's values".to_owned();
        self.push(Step {
            key: PipelineKey {
                kernel: Kernel::Cast,
                storage: elementwise_variant(to),
                specialization: code,
                mode: u32::from(reshape),
            },
            label: if reshape {
                format!(
                    "reshape {:?} rows of {} to rows of {cols}",
                    from.format(),
                    from.cols()
                )
            } else {
                format!("cast {:?} to {to:?}", from.format())
            },
            uniform: [
                size::to_u32(count, &what)?,
                size::to_u32(from.cols(), &what)?,
                size::to_u32(from.stride(), &what)?,
                size::to_u32(cols, &what)?,
                size::to_u32(shape.stride(), &what)?,
                0,
                0,
                0,
            ],
            bindings: vec![Bind::Tensor(x), Bind::Tensor(y)],
            groups: groups_2d(count.div_ceil(2) as u64)?,
        });
        Ok(y)
    }
}

impl GpuContext {
    /// Casts `count` values held in `words` (in format `from`, packed as
    /// [`StorageFormat::encode`] packs them) to format `to`, on the GPU, and
    /// returns the words of the result.
    pub fn cast(
        &mut self,
        from: StorageFormat,
        to: StorageFormat,
        words: &[u32],
        count: usize,
    ) -> Result<Vec<u32>> {
        if count == 0 || words.len() != from.words_for(count) {
            return Err(Error::Shape(format!(
                "{count} {from:?} values take {} words, got {}; count must be at least 1",
                from.words_for(count),
                words.len()
            )));
        }
        let shape = TensorShape::new(1, count, from)?;
        let mut padded = words.to_vec();
        padded.resize(shape.row_words(), 0);
        let mut graph = Graph::new();
        let x = graph.input(shape);
        let y = graph.cast(x, to)?;
        graph.output(y)?;
        let out = graph.build(self)?.run_words(self, &[padded])?;
        Ok(TensorShape::new(1, count, to)?.unpadded_words(&out[0]))
    }
}

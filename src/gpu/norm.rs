// SPDX-License-Identifier: MIT OR Apache-2.0
//! Row-wise and element-wise ops of a model that are not Dense: Keras's
//! LayerNormalization (shaders/layer_norm.wgsl; with the residual add
//! before it, shaders/add_layer_norm.wgsl), Softmax layer
//! (shaders/softmax.wgsl), a stand-alone activation
//! (shaders/activate.wgsl, Keras's `Activation` layer) and a scaling by a
//! constant (the same kernel).

use crate::error::{Error, Result};
use crate::format::StorageFormat;
use crate::gpu::context::GpuContext;
use crate::gpu::kernels::Kernel;
use crate::gpu::pipelines::PipelineKey;
use crate::gpu::recorder::{Bind, Graph, Step, TensorId};
use crate::gpu::shaders::StorageVariant;
use crate::gpu::tensor::{elementwise_variant, groups_2d};
use crate::ops::{Activation, Binary};
use crate::size;

/// A LayerNormalization's gamma and beta on the GPU (f32, as Keras
/// computes norms in float32), and its epsilon.
#[derive(Debug, Clone)]
pub struct NormWeights {
    params: wgpu::Buffer,
    cols: usize,
    epsilon: f32,
    rms: bool,
}

impl NormWeights {
    /// The features it normalizes.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Bytes on the GPU.
    pub fn gpu_bytes(&self) -> u64 {
        self.params.size()
    }
}

impl GpuContext {
    /// Uploads a LayerNormalization of `gamma.len()` features (`beta` the
    /// same length): Keras's `center=False` is a zero beta, `scale=False`
    /// a gamma of ones.
    pub fn upload_layer_norm(
        &self,
        gamma: &[f32],
        beta: &[f32],
        epsilon: f32,
    ) -> Result<NormWeights> {
        if gamma.len() != beta.len() || gamma.is_empty() {
            return Err(Error::Shape(format!(
                "a LayerNormalization with {} gamma and {} beta values; both need one per feature",
                gamma.len(),
                beta.len()
            )));
        }
        if !(epsilon.is_finite() && epsilon >= 0.0) {
            return Err(Error::InvalidArgument(format!(
                "a LayerNormalization epsilon of {epsilon}; it must be finite and not negative"
            )));
        }
        let words: Vec<u32> = gamma.iter().chain(beta).map(|v| v.to_bits()).collect();
        Ok(NormWeights {
            params: self.storage_buffer("layer norm gamma and beta", &words)?,
            cols: gamma.len(),
            epsilon,
            rms: false,
        })
    }

    /// Uploads a Keras RMSNormalization of `scale.len()` features (its
    /// `scale` as the layer reads it: rounded to the compute dtype).
    pub fn upload_rms_norm(&self, scale: &[f32], epsilon: f32) -> Result<NormWeights> {
        let zeros = vec![0.0; scale.len()];
        Ok(NormWeights {
            rms: true,
            ..self.upload_layer_norm(scale, &zeros, epsilon)?
        })
    }
}

/// The storage formats the norm and activation kernels read and write
/// (f32 arithmetic): f32, f16, bf16.
fn f32_arithmetic(format: StorageFormat, what: &str) -> Result<()> {
    if format == StorageFormat::F64 {
        return Err(Error::Unsupported(format!(
            "{what} of float64 tensors: the kernel computes in f32 (f32, f16 and bf16 tensors)"
        )));
    }
    Ok(())
}

/// The tensors `step` adds where it is the residual add (in `storage`)
/// that writes `sum`: the add a LayerNormalization of `sum` recorded right
/// after it takes into its own dispatch (shaders/add_layer_norm.wgsl).
fn added(step: &Step, sum: TensorId, storage: StorageVariant) -> Option<(TensorId, TensorId)> {
    let is_add = step.key.kernel == Kernel::Add
        && step.key.storage == storage
        && step.key.specialization == Binary::Add as u32;
    match step.bindings.as_slice() {
        [Bind::Tensor(a), Bind::Tensor(b), Bind::Tensor(y)] if is_add && *y == sum => {
            Some((*a, *b))
        }
        _ => None,
    }
}

/// The norm's output of `step` where it is a fused add and norm
/// ([`Kernel::AddLayerNorm`]), whose output an int8 Dense may have it
/// quantize too ([`Kernel::AddLayerNormQuantize`]).
pub(crate) fn add_norm_output(step: &Step) -> Option<TensorId> {
    match (step.key.kernel, step.bindings.as_slice()) {
        (Kernel::AddLayerNorm, [_, _, _, Bind::Tensor(y), _]) => Some(*y),
        _ => None,
    }
}

/// The chunks one workgroup of the argmax scans where a row is split
/// (shaders/argmax.wgsl's BLOCK): 4096 values of f32.
const ARGMAX_BLOCK_CHUNKS: usize = 1024;

impl Graph {
    /// Keras's LayerNormalization of `x` over its last axis, written in
    /// `x`'s format. Where the dispatch recorded last is the residual add
    /// that writes `x`, both run as one (shaders/add_layer_norm.wgsl), with
    /// the same numbers: a dispatch less per transformer block's norm.
    pub fn layer_norm(&mut self, x: TensorId, norm: &NormWeights) -> Result<TensorId> {
        self.op(|g| {
            let shape = g.shape(x)?;
            f32_arithmetic(shape.format(), "a LayerNormalization")?;
            if shape.cols() != norm.cols {
                return Err(Error::Shape(format!(
                    "a LayerNormalization of {} features given rows of {}",
                    norm.cols,
                    shape.cols()
                )));
            }
            let y = g.tensor(shape);
            let what = || "a LayerNormalization's rows".to_owned();
            let rows = size::to_u32(shape.rows(), &what)?;
            let chunks = size::to_u32(shape.bytes() as usize / 16 / shape.rows(), &what)?;
            let cols = size::to_u32(shape.cols(), &what)?;
            // One workgroup of 64 per row.
            let groups = groups_2d(u64::from(rows) * 64)?;
            let label = if norm.rms { "rms norm" } else { "layer norm" };
            let storage = elementwise_variant(shape.format());
            // The residual add that made x, just before: one dispatch for both.
            let (kernel, label, inputs) = match g.last_step().and_then(|s| added(s, x, storage)) {
                Some((a, b)) => {
                    g.pop_step();
                    let inputs = vec![Bind::Tensor(a), Bind::Tensor(b)];
                    (Kernel::AddLayerNorm, format!("add + {label}"), inputs)
                }
                None => (Kernel::LayerNorm, label.to_owned(), vec![Bind::Tensor(x)]),
            };
            let mut bindings = inputs;
            bindings.extend([Bind::Buffer(norm.params.clone()), Bind::Tensor(y)]);
            if kernel == Kernel::AddLayerNorm {
                bindings.push(Bind::Tensor(x));
            }
            g.push(Step {
                key: PipelineKey {
                    kernel,
                    storage,
                    specialization: 0,
                    mode: u32::from(norm.rms),
                },
                label,
                uniform: [cols, chunks, rows, norm.epsilon.to_bits(), 0, 0, 0, 0],
                bindings,
                groups,
            });
            Ok(y)
        })
    }

    /// `activation` applied to every value of `x`, written in `x`'s format.
    pub fn activate(&mut self, x: TensorId, activation: Activation) -> Result<TensorId> {
        self.op(|g| g.activate_times(x, activation, None))
    }

    /// `x * factor`, each product rounded to `x`'s format (Gemma's `x *
    /// ops.cast(sqrt(hidden_dim), x.dtype)`: pass the factor already
    /// rounded to that format, as Keras casts it).
    pub fn scale(&mut self, x: TensorId, factor: f32) -> Result<TensorId> {
        if !factor.is_finite() {
            return Err(Error::InvalidArgument(format!(
                "a scale by {factor}; the factor must be finite"
            )));
        }
        self.op(|g| g.activate_times(x, Activation::Linear, Some(factor)))
    }

    /// shaders/activate.wgsl: `activation(x) * factor` (a scaling), or
    /// `activation(x)` (times 1, exact).
    fn activate_times(
        &mut self,
        x: TensorId,
        activation: Activation,
        scaling: Option<f32>,
    ) -> Result<TensorId> {
        let shape = self.shape(x)?;
        let what = if scaling.is_some() {
            "a scale"
        } else {
            "an activation"
        };
        f32_arithmetic(shape.format(), what)?;
        let factor = scaling.unwrap_or(1.0);
        let y = self.tensor(shape);
        let what = || "an activation's chunks".to_owned();
        let chunks = shape.bytes() / 16;
        let label = match scaling {
            Some(f) => format!("scale {f}"),
            None => format!("activation {}", activation.keras_name()),
        };
        self.push(Step {
            key: PipelineKey {
                kernel: Kernel::Activate,
                storage: elementwise_variant(shape.format()),
                specialization: activation as u32,
                mode: 0,
            },
            label,
            uniform: [
                size::to_u32(chunks as usize, &what)?,
                size::to_u32(shape.bytes() as usize / 16 / shape.rows(), &what)?,
                size::to_u32(shape.cols(), &what)?,
                factor.to_bits(),
                0,
                0,
                0,
                0,
            ],
            bindings: vec![Bind::Tensor(x), Bind::Tensor(y)],
            groups: groups_2d(chunks)?,
        });
        Ok(y)
    }

    /// Keras's Softmax layer over the last axis of `x`, written in `x`'s
    /// format; `mask`, where given, an f32 tensor of `x`'s rows and columns
    /// (a value > 0.5 keeps its position; masked positions are 0).
    pub fn softmax(&mut self, x: TensorId, mask: Option<TensorId>) -> Result<TensorId> {
        self.op(|g| {
            let shape = g.shape(x)?;
            f32_arithmetic(shape.format(), "a Softmax")?;
            let mut mask_stride = 0;
            if let Some(m) = mask {
                let ms = g.shape(m)?;
                if (ms.rows(), ms.cols(), ms.format())
                    != (shape.rows(), shape.cols(), StorageFormat::F32)
                {
                    return Err(Error::Shape(format!(
                        "a Softmax mask of {} x {} in {:?} for inputs of {} x {}; the mask is \
                         an f32 tensor of the inputs' shape",
                        ms.rows(),
                        ms.cols(),
                        ms.format(),
                        shape.rows(),
                        shape.cols()
                    )));
                }
                mask_stride = ms.stride();
            }
            let y = g.tensor(shape);
            let what = || "a Softmax's rows".to_owned();
            let rows = size::to_u32(shape.rows(), &what)?;
            let chunks = size::to_u32(shape.bytes() as usize / 16 / shape.rows(), &what)?;
            g.push(Step {
                key: PipelineKey {
                    kernel: Kernel::Softmax,
                    storage: elementwise_variant(shape.format()),
                    specialization: 0,
                    mode: u32::from(mask.is_some()),
                },
                label: "softmax".to_owned(),
                uniform: [
                    size::to_u32(shape.cols(), &what)?,
                    chunks,
                    rows,
                    size::to_u32(mask_stride, &what)?,
                    crate::ops::large_negative(shape.format()).to_bits(),
                    0,
                    0,
                    0,
                ],
                // Without a mask, x stands in for the unread binding.
                bindings: vec![
                    Bind::Tensor(x),
                    Bind::Tensor(mask.unwrap_or(x)),
                    Bind::Tensor(y),
                ],
                // One workgroup of 64 per row.
                groups: groups_2d(u64::from(rows) * 64)?,
            });
            Ok(y)
        })
    }

    /// The index of the largest value of each row of `x` (the first of
    /// equal ones; NaN skipped), as an f32 tensor of one column: greedy
    /// decoding's next token, read back as one value instead of the row.
    pub fn argmax(&mut self, x: TensorId) -> Result<TensorId> {
        self.op(|g| {
            let shape = g.shape(x)?;
            f32_arithmetic(shape.format(), "an argmax")?;
            if shape.cols() >= 1 << 24 {
                return Err(Error::Shape(format!(
                    "an argmax over rows of {} values; the index is written as an f32, exact \
                     below 2^24",
                    shape.cols()
                )));
            }
            let y = g.tensor(crate::gpu::tensor::TensorShape::new(
                shape.rows(),
                1,
                StorageFormat::F32,
            )?);
            let what = || "an argmax's rows".to_owned();
            let rows = size::to_u32(shape.rows(), &what)?;
            let chunks = shape.bytes() as usize / 16 / shape.rows();
            let blocks = chunks.div_ceil(ARGMAX_BLOCK_CHUNKS);
            let key = |format: StorageFormat| PipelineKey {
                kernel: Kernel::Argmax,
                storage: elementwise_variant(format),
                specialization: 0,
                mode: 0,
            };
            let uniform = |chunks: usize, stride: usize, stage: u32| -> Result<[u32; 8]> {
                Ok([
                    size::to_u32(shape.cols(), &what)?,
                    size::to_u32(chunks, &what)?,
                    rows,
                    size::to_u32(stride, &what)?,
                    stage,
                    size::to_u32(blocks, &what)?,
                    0,
                    0,
                ])
            };
            let y_stride = g.shape(y)?.stride();
            if blocks == 1 {
                g.push(Step {
                    key: key(shape.format()),
                    label: "argmax".to_owned(),
                    uniform: uniform(chunks, y_stride, 0)?,
                    bindings: vec![Bind::Tensor(x), Bind::Tensor(y)],
                    // One workgroup of 64 per row.
                    groups: groups_2d(u64::from(rows) * 64)?,
                });
                return Ok(y);
            }
            // Each block's (value, index) pair, then the pairs merged.
            let pairs = g.tensor(crate::gpu::tensor::TensorShape::new(
                shape.rows(),
                2 * blocks,
                StorageFormat::F32,
            )?);
            let pair_shape = g.shape(pairs)?;
            g.push(Step {
                key: key(shape.format()),
                label: "argmax blocks".to_owned(),
                uniform: uniform(chunks, pair_shape.stride(), 1)?,
                bindings: vec![Bind::Tensor(x), Bind::Tensor(pairs)],
                groups: groups_2d(u64::from(rows) * blocks as u64 * 64)?,
            });
            g.push(Step {
                key: key(StorageFormat::F32),
                label: "argmax".to_owned(),
                uniform: uniform(pair_shape.stride() / 4, y_stride, 2)?,
                bindings: vec![Bind::Tensor(pairs), Bind::Tensor(y)],
                groups: groups_2d(u64::from(rows) * 64)?,
            });
            Ok(y)
        })
    }
}

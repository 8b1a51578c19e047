// SPDX-License-Identifier: MIT OR Apache-2.0
//! A plan: for each layer of a model, the policy its path looks up, the
//! kernel variant and buffer layout that policy gets on this adapter, why,
//! and the bytes its weights take on the GPU. Then running it.

use std::collections::BTreeSet;
use std::fmt;

use crate::cpu::dense::dense as cpu_dense;
use crate::cpu::float8::dense_float8 as cpu_dense_float8;
use crate::cpu::int4::{
    dense_int4 as cpu_dense_int4, dense_int8_weight_only as cpu_dense_int8_weight_only,
};
use crate::cpu::int8::dense_int8 as cpu_dense_int8;
use crate::error::{Error, Result};
use crate::gpu::context::{Capabilities, GpuContext};
use crate::gpu::dense::{Activation, DenseLayout, DenseWeights, check_activation, weight_bindings};
use crate::gpu::dispatch::PreparedDispatch;
use crate::gpu::float8::{Float8Scales, Float8Weights};
use crate::gpu::formats::HostFloat;
use crate::gpu::int4::{WeightOnlyWeights, grouping};
use crate::gpu::int8::Int8Weights;
use crate::gpu::pipelines::PipelineKey;
use crate::gpu::shaders::Kernel;
use crate::policy::any::Policy;
use crate::policy::map::DTypePolicyMap;
use crate::quant::float8::Float8;
use crate::routing::{DenseChoice, select_dense_with};

/// A Dense layer to plan: its path, `rows` of input, `k` inputs, `n` units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DenseLayerSpec {
    /// The layer's path (Keras's `Layer.path`).
    pub path: String,
    /// Rows of input per call (1 for decoding one token).
    pub rows: usize,
    /// Input features.
    pub k: usize,
    /// Output features (units).
    pub n: usize,
    /// The activation applied in the kernel.
    pub activation: Activation,
    /// For an int8 policy, Keras's int8 Dense without an activation
    /// quantizer (`Int8QuantizationConfig(activation_quantizer=None)`):
    /// int8 weights, activations in the compute dtype.
    pub int8_weight_only: bool,
}

/// One planned layer.
#[derive(Debug, Clone)]
pub struct PlanRow {
    /// The layer.
    pub spec: DenseLayerSpec,
    /// Which key of the map decided (`exact key '...'`, `regex '...'`, `default`).
    pub matched: String,
    /// The policy it got.
    pub policy: Policy,
    /// The kernel variant and why.
    pub choice: DenseChoice,
    /// Where its values sit on the GPU.
    pub layout: DenseLayout,
    /// Storage bindings its weights take: more than one for weights above
    /// the adapter's limit for one binding (split by outputs, a dispatch
    /// each).
    pub bindings: usize,
}

impl PlanRow {
    /// The pipeline this layer runs.
    pub fn pipeline(&self) -> PipelineKey {
        PipelineKey {
            kernel: self.choice.kernel,
            storage: self.choice.storage,
            specialization: self.spec.activation as u32,
            mode: grouping(self.choice.kernel, self.choice.int4_block),
        }
    }

    /// Bytes of weights and bias on the GPU.
    pub fn weight_bytes(&self) -> u64 {
        self.layout.weight_bytes() + self.layout.bias_bytes()
    }

    /// Uploads this layer's kernel (`[k, n]`) and bias in its layout.
    pub fn upload<T: HostFloat>(
        &self,
        ctx: &GpuContext,
        w: &[T],
        bias: Option<&[T]>,
    ) -> Result<LayerWeights> {
        let (storage, k, n) = (self.choice.storage, self.spec.k, self.spec.n);
        let weights = match self.choice.kernel {
            Kernel::DenseInt8 | Kernel::DenseInt8Tiled => ctx
                .upload_dense_int8(storage, w, bias, k, n)
                .map(LayerWeights::Int8),
            Kernel::DenseInt4 | Kernel::DenseInt4Tiled => ctx
                .upload_dense_int4(storage, w, bias, (k, n), self.choice.int4_block)
                .map(LayerWeights::WeightOnly),
            Kernel::DenseInt8WeightOnly | Kernel::DenseInt8WeightOnlyTiled => ctx
                .upload_dense_int8_weight_only(storage, w, bias, (k, n))
                .map(LayerWeights::WeightOnly),
            // A freshly quantized Keras layer's scales (1.0); trained scales
            // go through `GpuContext::upload_dense_float8`.
            Kernel::DenseFloat8 | Kernel::DenseFloat8Tiled => ctx
                .upload_dense_float8(storage, w, bias, (k, n), Float8Scales::default())
                .map(LayerWeights::Float8),
            _ => ctx
                .upload_dense(storage, w, bias, k, n)
                .map(LayerWeights::Float),
        };
        weights.map_err(|e| self.error(e))
    }

    /// Runs the layer on the GPU: `x` is `[rows, k]`.
    pub fn run<T: HostFloat>(
        &self,
        ctx: &mut GpuContext,
        weights: &LayerWeights,
        x: &[T],
    ) -> Result<Vec<T>> {
        let (activation, rows) = (self.spec.activation, self.spec.rows);
        let y = match weights {
            LayerWeights::Float(w) => ctx.dense(w, self.choice.kernel, activation, x, rows),
            LayerWeights::Int8(w) => ctx.dense_int8(w, self.choice.kernel, activation, x, rows),
            LayerWeights::WeightOnly(w) => {
                ctx.dense_int4(w, self.choice.kernel, activation, x, rows)
            }
            LayerWeights::Float8(w) => ctx.dense_float8(w, self.choice.kernel, activation, x, rows),
        };
        y.map_err(|e| self.error(e))
    }

    /// Uploads `x` (`[rows, k]`) and binds the layer's kernel (and the int8
    /// activation quantizer's pass), ready to run again and again.
    pub fn prepare<T: HostFloat>(
        &self,
        ctx: &mut GpuContext,
        weights: &LayerWeights,
        x: &[T],
    ) -> Result<PreparedLayer> {
        let (activation, rows) = (self.spec.activation, self.spec.rows);
        let kernel = self.choice.kernel;
        let prepared = match weights {
            LayerWeights::Float(w) => {
                ctx.prepare_dense(w, kernel, activation, x, rows)
                    .map(|p| PreparedLayer {
                        passes: p.passes,
                        bytes: p.bytes,
                    })
            }
            LayerWeights::Int8(w) => {
                ctx.prepare_dense_int8(w, kernel, activation, x, rows)
                    .map(|p| PreparedLayer {
                        passes: p.passes,
                        bytes: p.bytes,
                    })
            }
            LayerWeights::WeightOnly(w) => ctx
                .prepare_dense_int4(w, kernel, activation, x, rows)
                .map(|p| PreparedLayer {
                    passes: p.passes,
                    bytes: p.bytes,
                }),
            LayerWeights::Float8(w) => ctx
                .prepare_dense_float8(w, kernel, activation, x, rows)
                .map(|p| PreparedLayer {
                    passes: p.passes,
                    bytes: p.bytes,
                }),
        };
        prepared.map_err(|e| self.error(e))
    }

    /// Runs the layer's CPU twin on the same inputs.
    pub fn run_cpu<T: HostFloat>(&self, w: &[T], bias: Option<&[T]>, x: &[T]) -> Result<Vec<T>> {
        let s = &self.spec;
        let dims = (s.rows, s.k, s.n);
        let format = self.layout.format;
        match self.choice.kernel {
            Kernel::DenseInt8 | Kernel::DenseInt8Tiled => {
                cpu_dense_int8(format, s.activation, x, w, bias, dims)
            }
            kernel @ (Kernel::DenseInt8WeightOnly | Kernel::DenseInt8WeightOnlyTiled) => {
                cpu_dense_int8_weight_only(format, kernel, s.activation, x, w, bias, dims)
            }
            kernel @ (Kernel::DenseInt4 | Kernel::DenseInt4Tiled) => cpu_dense_int4(
                format,
                kernel,
                s.activation,
                x,
                w,
                bias,
                dims,
                self.choice.int4_block,
            ),
            kernel @ (Kernel::DenseFloat8 | Kernel::DenseFloat8Tiled) => cpu_dense_float8(
                format,
                kernel,
                s.activation,
                x,
                w,
                bias,
                dims,
                (Float8Scales::default(), Float8::E4M3Fn),
            ),
            kernel => cpu_dense(format, kernel, s.activation, x, w, bias, dims),
        }
    }

    fn error(&self, e: crate::gpu::GpuError) -> Error {
        Error::Layer {
            path: self.spec.path.clone(),
            source: e,
        }
    }
}

/// A planned layer bound to its inputs, for timing: the passes of one call
/// and the bytes they read plus write.
pub struct PreparedLayer {
    /// The dispatches of one call, in order.
    pub passes: Vec<PreparedDispatch>,
    /// Bytes one call reads plus writes.
    pub bytes: u64,
}

/// A layer's weights on the GPU, in the form its kernel reads.
pub enum LayerWeights {
    /// Float weights (f32, f16, bf16, f64).
    Float(DenseWeights),
    /// int8 weights with per-column scales.
    Int8(Int8Weights),
    /// int4 weights with scales (and zero points when grouped), or
    /// weight-only int8.
    WeightOnly(WeightOnlyWeights),
    /// float8 e4m3 codes with per-tensor scales.
    Float8(Float8Weights),
}

impl LayerWeights {
    /// Bytes the layer's buffers take on the GPU (weights, scales, zero
    /// points, bias).
    pub fn gpu_bytes(&self) -> u64 {
        match self {
            LayerWeights::Float(w) => w.gpu_bytes(),
            LayerWeights::Int8(w) => w.gpu_bytes(),
            LayerWeights::WeightOnly(w) => w.gpu_bytes(),
            LayerWeights::Float8(w) => w.gpu_bytes(),
        }
    }
}

/// The plan of a whole model on one adapter.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The adapter planned for.
    pub adapter: String,
    /// One row per layer, in the order given.
    pub rows: Vec<PlanRow>,
}

impl Plan {
    /// Looks every layer up in `map` and chooses its kernel for `caps`.
    /// The first layer that cannot run is an error naming its path.
    pub fn new(
        map: &DTypePolicyMap,
        layers: &[DenseLayerSpec],
        caps: &Capabilities,
    ) -> Result<Plan> {
        let rows = layers
            .iter()
            .map(|spec| {
                let found = map.lookup(&spec.path)?;
                let choice =
                    select_dense_with(found.policy, spec.rows, caps, spec.int8_weight_only)
                        .and_then(|choice| {
                            check_activation(choice.storage, spec.activation)
                                .map(|()| choice)
                                .map_err(|e| Error::Unsupported {
                                    path: String::new(),
                                    reason: e.to_string(),
                                })
                        });
                let choice = choice.map_err(|e| match e {
                    Error::Unsupported { reason, .. } => Error::Unsupported {
                        path: spec.path.clone(),
                        reason,
                    },
                    other => other,
                })?;
                let layout = choice.layout(spec.k, spec.n);
                let limit = caps.max_storage_buffer_binding_size;
                let bindings = weight_bindings(&layout, limit).map_err(|e| Error::Unsupported {
                    path: spec.path.clone(),
                    reason: e.to_string(),
                })?;
                Ok(PlanRow {
                    layout,
                    bindings,
                    spec: spec.clone(),
                    matched: found.matched.to_string(),
                    policy: found.policy.clone(),
                    choice,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Plan {
            adapter: caps.adapter_name.clone(),
            rows,
        })
    }

    /// The distinct pipelines the plan needs: each is compiled once,
    /// whatever the number of layers that run it.
    pub fn pipelines(&self) -> BTreeSet<PipelineKey> {
        let mut keys: BTreeSet<PipelineKey> = self.rows.iter().map(PlanRow::pipeline).collect();
        // Both int8 kernels run after the activation quantizer's pass.
        for row in self
            .rows
            .iter()
            .filter(|r| matches!(r.choice.kernel, Kernel::DenseInt8 | Kernel::DenseInt8Tiled))
        {
            keys.insert(PipelineKey {
                kernel: Kernel::QuantizeRows,
                storage: row.choice.storage,
                specialization: 0,
                mode: 0,
            });
        }
        keys
    }

    /// Bytes of every layer's weights and biases on the GPU.
    pub fn weight_bytes(&self) -> u64 {
        self.rows.iter().map(PlanRow::weight_bytes).sum()
    }
}

impl fmt::Display for Plan {
    /// The plan as a table, one layer a line, the reasons after it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "plan for {}", self.adapter)?;
        let header = [
            "layer",
            "matched",
            "policy",
            "variant",
            "kernel",
            "layout",
            "weight bytes",
        ];
        let cells: Vec<[String; 7]> = self
            .rows
            .iter()
            .map(|row| {
                let kernel = row.choice.kernel.short_name();
                [
                    row.spec.path.clone(),
                    row.matched.clone(),
                    row.policy.name().to_owned(),
                    row.choice.storage.name().to_owned(),
                    kernel.to_owned(),
                    if row.bindings > 1 {
                        format!("{} in {} bindings", row.layout, row.bindings)
                    } else {
                        row.layout.to_string()
                    },
                    row.weight_bytes().to_string(),
                ]
            })
            .collect();
        let mut widths = header.map(str::len);
        for line in &cells {
            for (w, cell) in widths.iter_mut().zip(line) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let header = header.map(str::to_owned);
        for line in std::iter::once(&header).chain(&cells) {
            for (i, (cell, w)) in line.iter().zip(widths).enumerate() {
                if i == 6 {
                    writeln!(f, "{cell:>w$}")?;
                } else {
                    write!(f, "{cell:<w$}  ")?;
                }
            }
        }
        writeln!(
            f,
            "{} layers, {} distinct pipelines, {} weight bytes",
            self.rows.len(),
            self.pipelines().len(),
            self.weight_bytes()
        )?;
        writeln!(f, "why:")?;
        let mut seen = BTreeSet::new();
        for row in &self.rows {
            if seen.insert(&row.choice.reason) {
                writeln!(f, "  {}", row.choice.reason)?;
            }
        }
        Ok(())
    }
}

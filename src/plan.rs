// SPDX-License-Identifier: MIT OR Apache-2.0
//! A plan: for each layer of a model, the policy its path looks up, the
//! kernel variant and buffer layout that policy gets on this adapter, why,
//! and the bytes its weights take on the GPU. The plan describes; it does
//! not run: a row quantizes and uploads a layer's kernel, and records the
//! layer into a [`Graph`], which runs as one forward.

use std::collections::BTreeSet;
use std::fmt;

use crate::error::{Error, Result};
use crate::format::{DenseKernel, HostFloat};
use crate::gpu::context::{Capabilities, GpuContext};
use crate::gpu::dense::{DenseLayout, DenseWeights, Family, check_activation, quantizer_for};
use crate::gpu::pipelines::PipelineKey;
use crate::gpu::recorder::{Forward, Graph, TensorId};
use crate::gpu::tensor::TensorShape;
use crate::ops::Activation;
use crate::policy::any::Policy;
use crate::policy::map::DTypePolicyMap;
use crate::routing::{DenseChoice, select_dense_with};
use crate::size;

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
    /// Bytes of the second copy of W^T that a CPU driver's matrix-vector
    /// kernel reads, laid out for its SIMD lanes
    /// ([`DenseLayout::lanes_bytes`]); 0 elsewhere.
    pub lanes_bytes: u64,
}

impl PlanRow {
    /// The pipeline this layer's product runs.
    pub fn pipeline(&self) -> PipelineKey {
        self.choice.pipeline(self.spec.activation)
    }

    /// Every pipeline the layer runs: its product, and for int8
    /// activations the quantizer's pass before it.
    pub fn pipelines(&self) -> Vec<PipelineKey> {
        let mut keys = vec![self.pipeline()];
        if Family::of(self.choice.format) == Family::Int8 {
            keys.push(PipelineKey {
                kernel: quantizer_for(self.pipeline().kernel),
                storage: self.choice.storage,
                specialization: 0,
                mode: 0,
            });
        }
        keys
    }

    /// Bytes of weights, their tables and bias on the GPU.
    pub fn weight_bytes(&self) -> u64 {
        self.layout.weight_bytes().saturating_add(self.lanes_bytes)
    }

    /// The layer's float kernel (`[k, n]`, Keras's layout) and bias in the
    /// weight format its policy gives, through Keras's quantizers.
    pub fn quantize<T: HostFloat>(&self, w: &[T], bias: Option<&[T]>) -> Result<DenseKernel> {
        DenseKernel::quantize(self.choice.format, w, bias, (self.spec.k, self.spec.n))
            .map_err(|e| e.in_layer(&self.spec.path))
    }

    /// Uploads the layer's kernel, which must be of the layer's shape and
    /// weight format.
    pub fn upload(&self, ctx: &GpuContext, kernel: &DenseKernel) -> Result<DenseWeights> {
        self.check_kernel(kernel)?;
        ctx.upload_dense(self.choice.storage, kernel)
            .map_err(|e| e.in_layer(&self.spec.path))
    }

    /// Records the layer into `graph`: `x` (rows of `k`) in, y (rows of
    /// `n`) out.
    pub fn record(
        &self,
        graph: &mut Graph,
        weights: &DenseWeights,
        x: TensorId,
    ) -> Result<TensorId> {
        graph
            .dense(weights, self.choice.shape, self.spec.activation, x)
            .map_err(|e| e.in_layer(&self.spec.path))
    }

    /// The layer alone as a forward on the GPU (`rows` of x in, y out),
    /// built once to run or time many times.
    pub fn forward(&self, ctx: &mut GpuContext, weights: &DenseWeights) -> Result<Forward> {
        let s = &self.spec;
        ctx.dense_forward(weights, self.choice.shape, s.activation, s.rows)
            .map_err(|e| e.in_layer(&s.path))
    }

    /// Runs the layer alone on the GPU: `x` is `[rows, k]`.
    pub fn run<T: HostFloat>(
        &self,
        ctx: &mut GpuContext,
        weights: &DenseWeights,
        x: &[T],
    ) -> Result<Vec<T>> {
        let s = &self.spec;
        ctx.dense(weights, self.choice.shape, s.activation, x, s.rows)
            .map_err(|e| e.in_layer(&s.path))
    }

    /// Runs the layer's CPU twin on the same kernel and inputs.
    pub fn run_cpu<T: HostFloat>(&self, kernel: &DenseKernel, x: &[T]) -> Result<Vec<T>> {
        self.check_kernel(kernel)?;
        let s = &self.spec;
        crate::cpu::dense::dense(
            kernel,
            self.layout.format,
            self.choice.shape,
            s.activation,
            x,
            s.rows,
        )
        .map_err(|e| e.in_layer(&s.path))
    }

    fn check_kernel(&self, kernel: &DenseKernel) -> Result<()> {
        let s = &self.spec;
        if (kernel.k(), kernel.n()) != (s.k, s.n) || kernel.format() != self.choice.format {
            return Err(Error::Shape(format!(
                "a {} kernel of {} x {} for a {} layer of {} x {}",
                kernel.format().name(),
                kernel.k(),
                kernel.n(),
                self.choice.format.name(),
                s.k,
                s.n
            ))
            .in_layer(&s.path));
        }
        Ok(())
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
    /// The first layer that cannot run (or whose shape is empty or too
    /// large) is an error naming its path.
    pub fn new(
        map: &DTypePolicyMap,
        layers: &[DenseLayerSpec],
        caps: &Capabilities,
    ) -> Result<Plan> {
        let rows = layers
            .iter()
            .map(|spec| plan_row(map, spec, caps).map_err(|e| e.in_layer(&spec.path)))
            .collect::<Result<Vec<_>>>()?;
        Ok(Plan {
            adapter: caps.adapter_name.clone(),
            rows,
        })
    }

    /// The distinct pipelines the plan needs: each is compiled once,
    /// whatever the number of layers that run it.
    pub fn pipelines(&self) -> BTreeSet<PipelineKey> {
        self.rows.iter().flat_map(PlanRow::pipelines).collect()
    }

    /// Compiles every pipeline the plan needs ahead of the first run.
    pub fn compile(&self, ctx: &mut GpuContext) -> Result<()> {
        for key in self.pipelines() {
            ctx.compile(key)?;
        }
        Ok(())
    }

    /// Bytes of every layer's weights and biases on the GPU.
    pub fn weight_bytes(&self) -> u64 {
        self.rows.iter().map(PlanRow::weight_bytes).sum()
    }
}

fn plan_row(map: &DTypePolicyMap, spec: &DenseLayerSpec, caps: &Capabilities) -> Result<PlanRow> {
    size::nonzero(
        &[("rows", spec.rows), ("k", spec.k), ("n", spec.n)],
        "the layer",
    )?;
    let found = map.lookup(&spec.path)?;
    let choice = select_dense_with(found.policy, spec.rows, caps, spec.int8_weight_only)?;
    check_activation(choice.storage, spec.activation)?;
    let layout = choice.layout(spec.k, spec.n)?;
    // Its activations must be addressable too.
    TensorShape::new(spec.rows, spec.k, layout.format)?;
    TensorShape::new(spec.rows, spec.n, layout.format)?;
    let limit = caps.max_storage_buffer_binding_size;
    let bindings = layout.bindings(limit)?;
    let lanes_bytes = choice.weight_bytes(spec.k, spec.n, limit)? - layout.weight_bytes();
    Ok(PlanRow {
        layout,
        bindings,
        lanes_bytes,
        spec: spec.clone(),
        matched: found.matched.to_string(),
        policy: found.policy.clone(),
        choice,
    })
}

/// A table: columns as wide as their widest cell, the last one (bytes)
/// aligned right.
pub(crate) fn write_table<const N: usize>(
    f: &mut fmt::Formatter<'_>,
    header: &[&str; N],
    cells: &[[String; N]],
) -> fmt::Result {
    let mut widths = header.map(str::len);
    for line in cells {
        for (w, cell) in widths.iter_mut().zip(line) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let header = header.map(str::to_owned);
    for line in std::iter::once(&header).chain(cells) {
        for (i, (cell, w)) in line.iter().zip(widths).enumerate() {
            if i == N - 1 {
                writeln!(f, "{cell:>w$}")?;
            } else {
                write!(f, "{cell:<w$}  ")?;
            }
        }
    }
    Ok(())
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
                [
                    row.spec.path.clone(),
                    row.matched.clone(),
                    row.policy.name().to_owned(),
                    row.choice.storage.name().to_owned(),
                    row.choice.kernel().short_name().to_owned(),
                    if row.bindings > 1 {
                        format!("{} in {} bindings", row.layout, row.bindings)
                    } else {
                        row.layout.to_string()
                    },
                    row.weight_bytes().to_string(),
                ]
            })
            .collect();
        write_table(f, &header, &cells)?;
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

// SPDX-License-Identifier: MIT OR Apache-2.0
//! The example decoder of the main job, its tests and its benchmarks: four
//! blocks of attention projections (query, key, value, output) and an MLP
//! (up with gelu, down), then the output head: 25 Dense layers, each routed
//! by its path in a policy map, chained into one recorded forward. Each
//! block adds its attention projections' result and its MLP's result to
//! the residual stream; an input whose format differs from its layer's
//! compute dtype is cast first, as Keras autocasts a layer's inputs. The
//! weights are deterministic ([`crate::bench::values`]), quantized to each
//! layer's format by Keras's quantizers.

use crate::error::Result;
use crate::format::{DenseKernel, StorageFormat};
use crate::gpu::context::{Capabilities, GpuContext};
use crate::gpu::dense::DenseWeights;
use crate::gpu::recorder::{Graph, TensorId};
use crate::ops::Activation;
use crate::plan::{DenseLayerSpec, Plan};
use crate::policy::map::DTypePolicyMap;
use crate::routing::select_dense;

/// Decoder blocks.
pub const BLOCKS: usize = 4;
/// The residual stream's features.
pub const WIDTH: usize = 512;
/// The MLP's hidden features (not a multiple of 32: exercises the padding).
pub const HIDDEN: usize = 1376;
/// The output head's features.
pub const VOCAB: usize = 1000;

/// The decoder's Dense layers for `rows` rows: per block four attention
/// projections and a two-layer MLP, then the output head (4 x 6 + 1 = 25).
/// Every layer quantizes its activations where its policy says int8,
/// except the key projections, which are Keras's int8 weight-only form.
pub fn layers(rows: usize) -> Vec<DenseLayerSpec> {
    let dense = |path: String, k, n, activation, int8_weight_only| DenseLayerSpec {
        path,
        rows,
        k,
        n,
        activation,
        int8_weight_only,
    };
    let mut out = Vec::new();
    for b in 0..BLOCKS {
        for proj in ["query", "key", "value", "output"] {
            out.push(dense(
                format!("decoder/block_{b}/attention/{proj}"),
                WIDTH,
                WIDTH,
                Activation::Linear,
                proj == "key",
            ));
        }
        out.push(dense(
            format!("decoder/block_{b}/mlp/up_proj"),
            WIDTH,
            HIDDEN,
            Activation::Gelu,
            false,
        ));
        out.push(dense(
            format!("decoder/block_{b}/mlp/down_proj"),
            HIDDEN,
            WIDTH,
            Activation::Linear,
            false,
        ));
    }
    out.push(dense(
        "lm_head".to_owned(),
        WIDTH,
        VOCAB,
        Activation::Linear,
        false,
    ));
    out
}

/// The decoder planned for one adapter, with its kernels.
pub struct Decoder {
    /// The plan: each layer's policy, kernel and layout.
    pub plan: Plan,
    /// Each layer's kernel, in its weight format.
    pub kernels: Vec<DenseKernel>,
    /// The residual stream's format: the map's default policy's compute dtype.
    pub stream: StorageFormat,
}

/// One layer's tensors in a recorded decoder: its input (cast to its
/// compute format) and its output.
#[derive(Debug, Clone, Copy)]
pub struct LayerTensors {
    /// What the layer reads.
    pub input: TensorId,
    /// What it writes.
    pub output: TensorId,
}

/// A decoder recorded with every layer's tensors kept
/// ([`Decoder::record_every_layer`]).
#[derive(Debug, Clone)]
pub struct KeptLayers {
    /// Each layer's tensors.
    pub layers: Vec<LayerTensors>,
    /// The forward's outputs, in the order they were marked.
    pub outputs: Vec<TensorId>,
}

impl KeptLayers {
    /// Layer `i`'s input and output among a run's outputs.
    pub fn of<'a, T>(&self, outputs: &'a [Vec<T>], i: usize) -> (&'a [T], &'a [T]) {
        let at = |id| {
            self.outputs
                .iter()
                .position(|k| *k == id)
                .unwrap_or_else(|| unreachable!("every layer's tensors were marked"))
        };
        let l = self.layers[i];
        (&outputs[at(l.input)], &outputs[at(l.output)])
    }
}

impl Decoder {
    /// Plans [`layers`]`(rows)` with `map` for `caps` and makes each
    /// layer's weights (seeded by its index, scaled for its fan-in) in its
    /// format.
    pub fn new(map: &DTypePolicyMap, caps: &Capabilities, rows: usize) -> Result<Decoder> {
        let plan = Plan::new(map, &layers(rows), caps)?;
        let kernels = plan
            .rows
            .iter()
            .enumerate()
            .map(|(i, row)| {
                let s = &row.spec;
                let scale = 1.0 / (s.k as f32).sqrt();
                let w = crate::bench::values(s.k * s.n, i as u64 * 2 + 1, scale);
                let b = crate::bench::values(s.n, i as u64 * 2 + 2, 1.0);
                row.quantize(&w, Some(&b))
            })
            .collect::<Result<Vec<_>>>()?;
        let stream = select_dense(map.default_policy(), rows, caps)?
            .storage
            .format();
        Ok(Decoder {
            plan,
            kernels,
            stream,
        })
    }

    /// Rows of the input.
    pub fn rows(&self) -> usize {
        self.plan.rows[0].spec.rows
    }

    /// A deterministic input `[rows, WIDTH]`.
    pub fn input(&self) -> Vec<f32> {
        crate::bench::values(self.rows() * WIDTH, 7, 1.0)
    }

    /// Uploads every layer's kernel in its layout.
    pub fn upload(&self, ctx: &GpuContext) -> Result<Vec<DenseWeights>> {
        self.plan
            .rows
            .iter()
            .zip(&self.kernels)
            .map(|(row, kernel)| row.upload(ctx, kernel))
            .collect()
    }

    /// Records the whole decoder into `graph` from `x` (`[rows, WIDTH]` in
    /// the stream's format): each layer's tensors, and the head's output
    /// last.
    pub fn record(
        &self,
        graph: &mut Graph,
        weights: &[DenseWeights],
        x: TensorId,
    ) -> Result<Vec<LayerTensors>> {
        let mut chain = Chain {
            graph,
            weights,
            decoder: self,
            layers: Vec::new(),
        };
        chain.forward(x)?;
        Ok(chain.layers)
    }

    /// [`Decoder::record`], with every layer's input and output marked as
    /// an output of the forward (each once), so that each layer can be
    /// checked against its twin on the input the GPU gave it.
    pub fn record_every_layer(
        &self,
        graph: &mut Graph,
        weights: &[DenseWeights],
        x: TensorId,
    ) -> Result<KeptLayers> {
        let layers = self.record(graph, weights, x)?;
        let mut outputs = Vec::new();
        for l in &layers {
            for id in [l.input, l.output] {
                if !outputs.contains(&id) {
                    outputs.push(id);
                    graph.output(id)?;
                }
            }
        }
        Ok(KeptLayers { layers, outputs })
    }

    /// The chained CPU twins from `x`: each layer's input and output as the
    /// twins compute them, in the layers' order.
    pub fn run_cpu(&self, x: &[f32]) -> Result<Vec<(Vec<f32>, Vec<f32>)>> {
        let mut twin = Twin {
            decoder: self,
            layers: Vec::new(),
        };
        twin.forward(x.to_vec())?;
        Ok(twin.layers)
    }

    /// The compute format of layer `i`.
    fn format(&self, i: usize) -> StorageFormat {
        self.plan.rows[i].layout.format
    }
}

/// The decoder's data flow, once, for both the GPU graph and the twins.
trait Flow {
    /// A value of the flow: a tensor, or host values.
    type Value: Clone;
    fn decoder(&self) -> &Decoder;
    /// Layer `i` on `x`, cast to its format first.
    fn layer(&mut self, i: usize, x: Self::Value, from: StorageFormat) -> Result<Self::Value>;
    /// `a + b`, both in the stream's format.
    fn add(&mut self, a: &Self::Value, b: Self::Value) -> Result<Self::Value>;
    /// `x` in format `from` cast to `to`.
    fn cast(
        &mut self,
        x: Self::Value,
        from: StorageFormat,
        to: StorageFormat,
    ) -> Result<Self::Value>;

    fn forward(&mut self, x: Self::Value) -> Result<Self::Value> {
        let stream = self.decoder().stream;
        let mut x = x;
        let mut i = 0;
        for _ in 0..BLOCKS {
            // Attention projections one after another, then the residual.
            let mut h = x.clone();
            let mut h_format = stream;
            for _ in 0..4 {
                h = self.layer(i, h, h_format)?;
                h_format = self.decoder().format(i);
                i += 1;
            }
            let h = self.cast(h, h_format, stream)?;
            x = self.add(&x, h)?;
            // The MLP, then the residual.
            let u = self.layer(i, x.clone(), stream)?;
            let d = self.layer(i + 1, u, self.decoder().format(i))?;
            let d = self.cast(d, self.decoder().format(i + 1), stream)?;
            x = self.add(&x, d)?;
            i += 2;
        }
        self.layer(i, x, stream)
    }
}

struct Chain<'a> {
    graph: &'a mut Graph,
    weights: &'a [DenseWeights],
    decoder: &'a Decoder,
    layers: Vec<LayerTensors>,
}

impl Flow for Chain<'_> {
    type Value = TensorId;

    fn decoder(&self) -> &Decoder {
        self.decoder
    }

    fn layer(&mut self, i: usize, x: TensorId, from: StorageFormat) -> Result<TensorId> {
        let input = self.cast(x, from, self.decoder.format(i))?;
        let output = self.decoder.plan.rows[i].record(self.graph, &self.weights[i], input)?;
        self.layers.push(LayerTensors { input, output });
        Ok(output)
    }

    fn add(&mut self, a: &TensorId, b: TensorId) -> Result<TensorId> {
        self.graph.add(*a, b)
    }

    fn cast(&mut self, x: TensorId, from: StorageFormat, to: StorageFormat) -> Result<TensorId> {
        if from == to {
            Ok(x)
        } else {
            self.graph.cast(x, to)
        }
    }
}

struct Twin<'a> {
    decoder: &'a Decoder,
    layers: Vec<(Vec<f32>, Vec<f32>)>,
}

impl Flow for Twin<'_> {
    type Value = Vec<f32>;

    fn decoder(&self) -> &Decoder {
        self.decoder
    }

    fn layer(&mut self, i: usize, x: Vec<f32>, from: StorageFormat) -> Result<Vec<f32>> {
        let input = self.cast(x, from, self.decoder.format(i))?;
        let output = self.decoder.plan.rows[i].run_cpu(&self.decoder.kernels[i], &input)?;
        self.layers.push((input, output.clone()));
        Ok(output)
    }

    fn add(&mut self, a: &Vec<f32>, b: Vec<f32>) -> Result<Vec<f32>> {
        crate::cpu::add::add(self.decoder.stream, a, &b)
    }

    fn cast(&mut self, x: Vec<f32>, from: StorageFormat, to: StorageFormat) -> Result<Vec<f32>> {
        if from == to {
            return Ok(x);
        }
        // The cast kernel's twin, on values: exact in f32, rounded to `to`.
        Ok(x.iter().map(|&v| to.round(f64::from(v)) as f32).collect())
    }
}

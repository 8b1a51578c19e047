// SPDX-License-Identifier: MIT OR Apache-2.0
//! KerasHub's causal language models (keras-hub 0.32.0): `GPT2CausalLM`,
//! `LlamaCausalLM`, `Llama3CausalLM` and `GemmaCausalLM`, each a backbone
//! ([`super::backbones`]) and the reverse projection of its
//! `ReversibleEmbedding` as the output head, loaded from a `.keras` file
//! or a preset folder; and generation on the GPU over a KV cache, as
//! KerasHub's `generate` runs it.
//!
//! Generation ([`GpuCausalLm`]): a prefill of the prompt (the tiled
//! kernels, a causal mask, the head on the last position only) writes
//! every attention layer's keys and values into a cache on the device, in
//! the format of its query projection (the layer's compute dtype); each later token is one decode step, a
//! forward recorded once for one position whose rotary offset, position
//! embedding row, cache row and attended keys follow the position it runs
//! at (a uniform write), read back as the next token (the argmax on the
//! GPU) or, when asked, its logits. A decode step makes no buffer, bind
//! group or pipeline.

use std::collections::HashMap;
use std::path::Path;

use serde_json::Value;

use super::{Generation, Layer, Model, Step, Uploads, backbones, snake_case};
use crate::error::{Error, Result};
use crate::format::StorageFormat;
use crate::gpu::context::GpuContext;
use crate::gpu::recorder::{Forward, Graph};
use crate::gpu::tensor::{Tensor, TensorShape};
use crate::io::archive::KerasArchive;
use crate::io::h5::WeightsFile;
use crate::layers::{self, LayerKind};
use crate::policy::map::DTypePolicyMap;
use crate::tokenizer::Tokenizer;

/// The causal LM classes read, with their backbones.
pub const SUPPORTED: [(&str, &str); 4] = [
    ("GPT2CausalLM", "GPT2Backbone"),
    ("LlamaCausalLM", "LlamaBackbone"),
    ("Llama3CausalLM", "Llama3Backbone"),
    ("GemmaCausalLM", "GemmaBackbone"),
];

/// A KerasHub causal LM: its backbone with the output head appended as
/// the model's last layer, whose output is the logits `[sequence,
/// vocabulary]`.
#[derive(Debug, Clone)]
pub struct CausalLm {
    /// The task class (`GPT2CausalLM`).
    pub class_name: String,
    /// The backbone and, as its last layer and only output, the head (a
    /// Dense layer at the path `token_embedding`, under the embedding's
    /// policy).
    pub model: Model,
    /// The head shares the token embedding's table (GPT-2, Gemma, a Llama
    /// with `tie_word_embeddings`).
    pub tied: bool,
    /// The preset's tokenizer, where the folder has one.
    pub tokenizer: Option<Tokenizer>,
}

impl CausalLm {
    /// Loads a causal LM from a `.keras` file (`causal_lm.save(path)`) or a
    /// preset folder (`causal_lm.save_to_preset(dir)`; a backbone's preset
    /// without `task.json` gets the causal LM of its backbone, as
    /// KerasHub's `CausalLM.from_preset` builds it); `map`, where given,
    /// decides every layer's policy by its path. `Err` for a file that is
    /// not a causal LM (a backbone alone has no head).
    pub fn load(path: impl AsRef<Path>, map: Option<&DTypePolicyMap>) -> Result<CausalLm> {
        let path = path.as_ref();
        let name = path.display().to_string();
        if path.is_dir() {
            return Self::load_preset(path, map);
        }
        let archive = KerasArchive::open(path)?;
        let weights =
            WeightsFile::from_bytes(archive.weights, &format!("{name}: model.weights.h5"))?;
        let (class, backbone) = task_parts(&archive.config, &name)?;
        // A task's file holds its backbone's variables under the
        // backbone's group (`layers/gpt2_backbone/layers/...`).
        let backbone_class = backbone
            .get("class_name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let prefix = format!("layers/{}/", snake_case(backbone_class));
        let rebased = WeightsFile {
            layers: weights
                .layers
                .into_iter()
                .filter_map(|(k, v)| k.strip_prefix(&prefix).map(|rest| (rest.to_owned(), v)))
                .collect(),
        };
        Self::from_parts(class, backbone, &rebased, map, None)
            .map_err(|e| Error::file(&name, e.to_string()))
    }

    fn load_preset(dir: &Path, map: Option<&DTypePolicyMap>) -> Result<CausalLm> {
        let name = dir.display().to_string();
        let read = super::read_preset(dir)?;
        let class = match &read.task {
            Some(task) => task_parts(task, &name)?.0.to_owned(),
            None => {
                let backbone = read
                    .config
                    .get("class_name")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                SUPPORTED
                    .iter()
                    .find(|(_, b)| *b == backbone)
                    .map(|(task, _)| (*task).to_owned())
                    .ok_or_else(|| no_head(&name, backbone))?
            }
        };
        let tokenizer = if dir.join("tokenizer.json").exists() {
            Some(Tokenizer::from_preset(dir)?)
        } else {
            None
        };
        Self::from_parts(&class, &read.config, &read.weights, map, tokenizer)
            .map_err(|e| Error::file(&name, e.to_string()))
    }

    /// A causal LM of class `class` on the backbone of `backbone` (its
    /// serialized config) and `weights` (the backbone's, at the root).
    fn from_parts(
        class: &str,
        backbone: &Value,
        weights: &WeightsFile,
        map: Option<&DTypePolicyMap>,
        tokenizer: Option<Tokenizer>,
    ) -> Result<CausalLm> {
        let backbone_class = backbone
            .get("class_name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !SUPPORTED.contains(&(class, backbone_class)) {
            return Err(Error::Unsupported(format!(
                "a {class} on a {backbone_class}; the causal LMs read are {}",
                SUPPORTED
                    .iter()
                    .map(|(t, b)| format!("{t} ({b})"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let inner = backbone.get("config").unwrap_or(&Value::Null);
        let tied = match backbone_class {
            "LlamaBackbone" | "Llama3Backbone" => inner
                .get("tie_word_embeddings")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            _ => true,
        };
        let mut model = backbones::backbone(backbone, weights, map)?;
        let head = head_layer(&model, tied, weights)?;
        model.layers.push(head);
        model.outputs = vec![model.layers.len() - 1];
        let lm = CausalLm {
            class_name: class.to_owned(),
            model,
            tied,
            tokenizer,
        };
        if let Some(t) = &lm.tokenizer
            && t.vocabulary_size() > lm.vocabulary_size()
        {
            return Err(Error::Shape(format!(
                "the tokenizer has {} tokens, the model's embedding {}",
                t.vocabulary_size(),
                lm.vocabulary_size()
            )));
        }
        Ok(lm)
    }

    /// The ids the model reads: its embedding's rows.
    pub fn vocabulary_size(&self) -> usize {
        match &self.model.layers[self.embedding()].kind {
            LayerKind::Embedding(e) => e.input_dim,
            _ => 0,
        }
    }

    /// Its parameters: every kernel, bias, table and norm scale, the
    /// head counted where it is not the embedding's table.
    pub fn parameters(&self) -> u64 {
        let kernel = |k: &crate::format::DenseKernel| {
            (k.k() * k.n() + k.bias().map_or(0, |b| b.len())) as u64
        };
        let head = self.head();
        self.model
            .layers
            .iter()
            .enumerate()
            .map(|(i, l)| match &l.kind {
                LayerKind::Dense(_) if i == head && self.tied => 0,
                LayerKind::Dense(d) => kernel(&d.kernel),
                LayerKind::EinsumDense(e) => kernel(&e.kernel),
                LayerKind::Embedding(e) => kernel(&e.table),
                LayerKind::PositionEmbedding(p) => kernel(&p.table),
                LayerKind::MultiHeadAttention(a) => {
                    a.projections.iter().map(|p| kernel(&p.kernel)).sum()
                }
                LayerKind::LayerNormalization(n) => (n.gamma.len() + n.beta.len()) as u64,
                LayerKind::RmsNormalization(n) => n.scale.len() as u64,
                _ => 0,
            })
            .sum()
    }

    /// The positions its position embedding holds (GPT-2's
    /// `max_sequence_length`); `None` for a model with a rotary embedding
    /// only, whose cache is bounded by memory alone.
    pub fn max_positions(&self) -> Option<usize> {
        self.model.layers.iter().find_map(|l| match &l.kind {
            LayerKind::PositionEmbedding(p) => Some(p.max_positions),
            _ => None,
        })
    }

    /// The index of the token embedding.
    fn embedding(&self) -> usize {
        self.model
            .layers
            .iter()
            .position(|l| l.path == "token_embedding")
            .unwrap_or(0)
    }

    /// The index of the head (the last layer).
    fn head(&self) -> usize {
        self.model.layers.len() - 1
    }

    /// Keras's `causal_lm.quantize(mode)`: every Dense, EinsumDense and
    /// Embedding of the backbone quantized ([`Model::quantize`]), and the
    /// head with them: a tied head reads the quantized table, an untied
    /// one is quantized as Keras quantizes `reverse_embeddings`. Returns
    /// the paths skipped.
    pub fn quantize(&mut self, mode: &str) -> Result<Vec<String>> {
        let skipped = self.model.quantize(mode, None)?;
        if self.tied {
            let embedding = self.embedding();
            let LayerKind::Embedding(e) = &self.model.layers[embedding].kind else {
                return Ok(skipped);
            };
            let kernel = e.table.with_quantized_inputs(true);
            let policy = self.model.layers[embedding].policy.clone();
            let head = self.head();
            let layer = &mut self.model.layers[head];
            layer.policy = policy;
            if let LayerKind::Dense(d) = &mut layer.kind {
                d.kernel = kernel;
            }
        } else {
            let head = self.head();
            if let LayerKind::Dense(d) = &mut self.model.layers[head].kind {
                d.kernel = d.kernel.with_quantized_inputs(true);
            }
        }
        Ok(skipped)
    }

    /// The logits `[ids.len(), vocabulary]` of every position, from the
    /// CPU twins of the layers (the reference the GPU's steps are checked
    /// against): the whole sequence in one forward, as Keras's `call`.
    pub fn logits_cpu(
        &self,
        caps: &crate::gpu::context::Capabilities,
        ids: &[u32],
    ) -> Result<Vec<f32>> {
        self.check_ids(ids)?;
        let mut model = self.model.clone();
        model.set_sequence_length(ids.len())?;
        let plan = model.plan(caps, 1)?;
        let (ids, mask) = model_inputs(ids);
        let mut out = model.run_cpu(&plan, &[&ids, &mask])?;
        Ok(out.remove(0))
    }

    /// `Err` naming the first id the vocabulary does not hold.
    fn check_ids(&self, ids: &[u32]) -> Result<()> {
        let vocab = self.vocabulary_size();
        if let Some(&bad) = ids.iter().find(|&&i| i as usize >= vocab) {
            return Err(Error::InvalidArgument(format!(
                "the token id {bad} is not in the vocabulary of {vocab} ids"
            )));
        }
        Ok(())
    }

    /// The Dense families its layers run on `caps`, with their storage
    /// variants ([`super::ModelPlan::dense_families`]).
    pub fn dense_families(
        &self,
        caps: &crate::gpu::context::Capabilities,
    ) -> Result<
        Vec<(
            crate::gpu::kernels::Kernel,
            crate::gpu::shaders::StorageVariant,
        )>,
    > {
        let mut model = self.model.clone();
        model.set_sequence_length(1)?;
        Ok(model.plan(caps, 1)?.dense_families())
    }

    /// Uploads the weights to `ctx`, makes a KV cache of `capacity`
    /// positions per attention layer and records the decode step.
    pub fn upload(&self, ctx: &mut GpuContext, capacity: usize) -> Result<GpuCausalLm> {
        if capacity == 0 {
            return Err(Error::InvalidArgument(
                "a KV cache of 0 positions".to_owned(),
            ));
        }
        if let Some(max) = self.max_positions()
            && capacity > max
        {
            return Err(Error::InvalidArgument(format!(
                "a KV cache of {capacity} positions; the model's position embedding holds {max} \
                 (prompt and new tokens together)"
            )));
        }
        let mut decode_model = self.model.clone();
        decode_model.set_sequence_length(1)?;
        let plan = decode_model.plan(ctx.capabilities(), 1)?;
        // Every cache checked against the adapter's bindings before the
        // first is made.
        let limit = ctx.capabilities().max_storage_buffer_binding_size;
        for (layer, row) in decode_model.layers.iter().zip(&plan.rows) {
            if let (LayerKind::MultiHeadAttention(a), Step::Attention(c)) = (&layer.kind, &row.step)
            {
                let format = c[0].storage.format();
                for cols in [a.kv_heads * a.key_dim, a.kv_heads * a.value_dim] {
                    let bytes = TensorShape::new(capacity, cols, format)?.bytes();
                    if bytes > limit {
                        return Err(Error::InvalidArgument(format!(
                            "a KV cache of {capacity} positions: '{}' needs {bytes} bytes per \
                             cache, more than this adapter binds ({limit}); ask for fewer \
                             positions",
                            layer.path
                        )));
                    }
                }
            }
        }
        let mut caches = Vec::new();
        for (i, (layer, row)) in decode_model.layers.iter().zip(&plan.rows).enumerate() {
            let (LayerKind::MultiHeadAttention(a), Step::Attention(c)) = (&layer.kind, &row.step)
            else {
                continue;
            };
            let format = c[0].storage.format();
            let keys = ctx.zeros(TensorShape::new(capacity, a.kv_heads * a.key_dim, format)?)?;
            let values = ctx.zeros(TensorShape::new(
                capacity,
                a.kv_heads * a.value_dim,
                format,
            )?)?;
            caches.push((i, keys, values));
        }
        let mut lm = GpuCausalLm {
            lm: self.clone(),
            uploads: Uploads::default(),
            caches,
            capacity,
            decode: HashMap::new(),
            prefill: HashMap::new(),
            position: 0,
            weight_bytes: plan.weight_bytes(),
        };
        lm.decode_forward(ctx, Read::Token)?;
        Ok(lm)
    }
}

/// A backbone's inputs for `ids`: the ids as f32 and a padding mask of
/// ones.
fn model_inputs(ids: &[u32]) -> (Vec<f32>, Vec<f32>) {
    (
        ids.iter().map(|&i| i as f32).collect(),
        vec![1.0; ids.len()],
    )
}

/// The task class and the serialized backbone of a task's config.
fn task_parts<'a>(config: &'a Value, name: &str) -> Result<(&'a str, &'a Value)> {
    let class = config
        .get("class_name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !SUPPORTED.iter().any(|(t, _)| *t == class) {
        return Err(no_head(name, class));
    }
    let backbone = config
        .get("config")
        .and_then(|c| c.get("backbone"))
        .filter(|b| b.is_object())
        .ok_or_else(|| Error::file(name, format!("the {class} config has no 'backbone'")))?;
    Ok((class, backbone))
}

fn no_head(name: &str, class: &str) -> Error {
    Error::file(
        name,
        format!(
            "a '{class}' is not a causal LM (a model with a language-model head): the classes \
             read are {}",
            SUPPORTED.map(|(t, _)| t).join(", ")
        ),
    )
}

/// The head as a Dense layer after the backbone's output: the reverse
/// projection of the token embedding, under its policy.
fn head_layer(model: &Model, tied: bool, weights: &WeightsFile) -> Result<Layer> {
    let embedding = model
        .layers
        .iter()
        .find(|l| l.path == "token_embedding")
        .ok_or_else(|| Error::Shape("the backbone has no token_embedding".to_owned()))?;
    let LayerKind::Embedding(table) = &embedding.kind else {
        return Err(Error::Shape(
            "the backbone's token_embedding is not an embedding".to_owned(),
        ));
    };
    let vars = weights
        .layer(&embedding.weights_path)
        .ok_or_else(|| Error::Shape(format!("no group '{}'", embedding.weights_path)))?;
    let format = crate::routing::weight_format(&embedding.policy, false)?;
    let kernel = layers::kerashub::reverse_projection(
        (table.input_dim, table.output_dim),
        tied,
        format,
        table,
        vars,
    )
    .map_err(|e| e.in_layer("token_embedding"))?;
    let output = *model
        .outputs
        .first()
        .ok_or_else(|| Error::Shape("the backbone has no output".to_owned()))?;
    let kind = LayerKind::Dense(layers::Dense {
        units: table.input_dim,
        activation: crate::ops::Activation::Linear,
        softmax: false,
        int8_weight_only: false,
        kernel,
    });
    let shape = kind.output_shape(&[model.layers[output].shape.clone()])?;
    Ok(Layer {
        name: "token_embedding".to_owned(),
        class_name: "ReversibleEmbedding".to_owned(),
        path: "token_embedding".to_owned(),
        weights_path: embedding.weights_path.clone(),
        policy: embedding.policy.clone(),
        policy_source: format!("{}, as the head's table", embedding.policy_source),
        kind,
        inputs: vec![output],
        shape,
    })
}

/// Prefill forwards kept (by prompt length) before they are dropped.
const MAX_PREFILLS: usize = 8;

/// What a step reads back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Read {
    /// The next token only (the greedy choice, made on the GPU).
    Token,
    /// The logits of the next token, `[vocabulary]`.
    Logits,
}

/// What one step gave.
#[derive(Debug, Clone, PartialEq)]
pub struct StepOutput {
    /// The greedy next token (the first of the largest logits).
    pub token: u32,
    /// Its logits, where [`Read::Logits`] asked for them.
    pub logits: Option<Vec<f32>>,
}

/// A causal LM on one adapter: its weights, a KV cache per attention
/// layer, and the forwards of its prefill (one per prompt length, made on
/// first use, the last few kept) and decode step.
pub struct GpuCausalLm {
    lm: CausalLm,
    uploads: Uploads,
    /// Each attention layer's (index, keys, values) cache.
    caches: Vec<(usize, Tensor, Tensor)>,
    capacity: usize,
    decode: HashMap<Read, Forward>,
    prefill: HashMap<(usize, Read), Forward>,
    /// Positions in the cache.
    position: usize,
    weight_bytes: u64,
}

impl GpuCausalLm {
    /// Positions the cache holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Positions written so far (the prompt and the tokens decoded).
    pub fn position(&self) -> usize {
        self.position
    }

    /// The model it runs.
    pub fn model(&self) -> &CausalLm {
        &self.lm
    }

    /// Bytes of the weights as uploaded.
    pub fn weight_bytes(&self) -> u64 {
        self.weight_bytes
    }

    /// Bytes of the KV caches.
    pub fn cache_bytes(&self) -> u64 {
        self.caches
            .iter()
            .map(|(_, k, v)| k.shape().bytes() + v.shape().bytes())
            .sum()
    }

    /// The decode step's forward reading back `read` (for timing and
    /// counting; it runs at the position last set).
    pub(crate) fn decode_forward(&mut self, ctx: &mut GpuContext, read: Read) -> Result<&Forward> {
        if !self.decode.contains_key(&read) {
            let forward = self.record(ctx, None, read)?;
            self.decode.insert(read, forward);
        }
        Ok(&self.decode[&read])
    }

    /// Records a prefill of `prompt` positions (`Some`) or the decode step.
    fn record(
        &mut self,
        ctx: &mut GpuContext,
        prompt: Option<usize>,
        read: Read,
    ) -> Result<Forward> {
        let mut model = self.lm.model.clone();
        model.set_sequence_length(prompt.unwrap_or(1))?;
        let mut plan = model.plan(ctx.capabilities(), 1)?;
        let head = self.lm.head();
        if prompt.is_some_and(|n| n > 1) {
            // A prefill's head runs on the last position: the decode
            // step's kernel for one row.
            let mut one = self.lm.model.clone();
            one.set_sequence_length(1)?;
            plan.rows[head] = one.plan(ctx.capabilities(), 1)?.rows.swap_remove(head);
        }
        let mut graph = Graph::new();
        let caches = self
            .caches
            .iter()
            .map(|(i, k, v)| (*i, graph.external(k), graph.external(v)))
            .collect();
        let generation = Generation {
            decode: prompt.is_none(),
            prompt: prompt.unwrap_or(1),
            capacity: self.capacity,
            head: self.lm.head(),
            caches,
        };
        let tensors =
            model.record_layers(ctx, &mut graph, &plan, &mut self.uploads, Some(&generation))?;
        let logits = tensors[self.lm.head()];
        let logits = super::to_format(&mut graph, logits, StorageFormat::F32)?;
        let token = graph.argmax(logits)?;
        graph.output(token)?;
        if read == Read::Logits {
            graph.output(logits)?;
        }
        graph.build(ctx)
    }

    /// Records the prefill of `prompt` positions and the decode step that
    /// read back `read`, where not yet recorded (pipelines compiled, bind
    /// groups made), so that a timed generation does not pay for them.
    pub fn prepare(&mut self, ctx: &mut GpuContext, prompt: usize, read: Read) -> Result<()> {
        let key = (prompt, read);
        if !self.prefill.contains_key(&key) {
            let forward = self.record(ctx, Some(prompt), read)?;
            // Each prompt length has its forward (and its activations'
            // buffers): a few are kept, not one per length ever seen.
            if self.prefill.len() >= MAX_PREFILLS {
                self.prefill.clear();
            }
            self.prefill.insert(key, forward);
        }
        self.decode_forward(ctx, read)?;
        Ok(())
    }

    /// Runs the prompt through the model from position 0 (the cache's
    /// earlier contents dropped) and returns the next token.
    pub fn prefill(
        &mut self,
        ctx: &mut GpuContext,
        prompt: &[u32],
        read: Read,
    ) -> Result<StepOutput> {
        if prompt.is_empty() {
            return Err(Error::InvalidArgument("an empty prompt".to_owned()));
        }
        if prompt.len() > self.capacity {
            return Err(Error::InvalidArgument(format!(
                "a prompt of {} tokens; the KV cache holds {} positions",
                prompt.len(),
                self.capacity
            )));
        }
        self.lm.check_ids(prompt)?;
        let key = (prompt.len(), read);
        self.prepare(ctx, prompt.len(), read)?;
        let (ids, mask) = model_inputs(prompt);
        let out = self.prefill[&key].run(ctx, &[&ids, &mask])?;
        self.position = prompt.len();
        Ok(step_output(out))
    }

    /// Feeds `token` at the next position and returns the token after it:
    /// one submission of the decode step.
    pub fn decode(&mut self, ctx: &mut GpuContext, token: u32, read: Read) -> Result<StepOutput> {
        if self.position == 0 {
            return Err(Error::InvalidArgument(
                "a decode step before any prefill".to_owned(),
            ));
        }
        if self.position >= self.capacity {
            return Err(Error::InvalidArgument(format!(
                "the KV cache is full ({} positions)",
                self.capacity
            )));
        }
        self.lm.check_ids(&[token])?;
        let position = self.position;
        let forward = self.decode_forward(ctx, read)?;
        let out = forward.run_at(ctx, &[&[token as f32][..], &[1.0f32][..]], position)?;
        self.position += 1;
        Ok(step_output(out))
    }

    /// Generates from `prompt` as `options` say, calling `on_token` with
    /// each new token as it comes (return `false` to stop); the tokens
    /// generated and the time spent.
    pub fn generate(
        &mut self,
        ctx: &mut GpuContext,
        prompt: &[u32],
        options: &GenerateOptions,
        mut on_token: impl FnMut(u32) -> bool,
    ) -> Result<Generated> {
        options.sampler.check()?;
        let total = prompt.len().checked_add(options.max_tokens);
        if total.is_none_or(|t| t > self.capacity) {
            return Err(Error::InvalidArgument(format!(
                "a prompt of {} tokens and {} more; the KV cache holds {} positions",
                prompt.len(),
                options.max_tokens,
                self.capacity
            )));
        }
        let read = if options.sampler == Sampler::Greedy {
            Read::Token
        } else {
            Read::Logits
        };
        // Recorded before the clock starts (the capacity is checked above).
        if !prompt.is_empty() {
            self.prepare(ctx, prompt.len(), read)?;
        }
        let mut rng = SplitMix64(options.seed);
        let mut tokens = Vec::with_capacity(options.max_tokens);
        let started = std::time::Instant::now();
        if options.max_tokens == 0 {
            return Ok(Generated {
                tokens,
                prompt_time: started.elapsed(),
                decode_time: std::time::Duration::ZERO,
            });
        }
        let first = self.prefill(ctx, prompt, read)?;
        let prompt_time = started.elapsed();
        let mut next = options.sampler.choose(&first, &mut rng)?;
        let decode_started = std::time::Instant::now();
        loop {
            tokens.push(next);
            let stop = options.stop_tokens.contains(&next);
            if !on_token(next) || stop || tokens.len() == options.max_tokens {
                break;
            }
            let out = self.decode(ctx, next, read)?;
            next = options.sampler.choose(&out, &mut rng)?;
        }
        Ok(Generated {
            tokens,
            prompt_time,
            decode_time: decode_started.elapsed(),
        })
    }
}

fn step_output(mut out: Vec<Vec<f32>>) -> StepOutput {
    let logits = (out.len() > 1).then(|| out.remove(1));
    StepOutput {
        token: out[0][0] as u32,
        logits,
    }
}

/// How the next token is chosen.
#[derive(Debug, Clone, PartialEq)]
pub enum Sampler {
    /// The largest logit (the first of equals), chosen on the GPU.
    Greedy,
    /// KerasHub's `TopKSampler`: a draw among the `k` largest logits.
    TopK {
        /// How many logits compete.
        k: usize,
        /// Logits are divided by it before the softmax.
        temperature: f32,
    },
    /// KerasHub's `TopPSampler`: a draw among the largest logits whose
    /// probabilities first sum to `p`.
    TopP {
        /// The probability mass kept.
        p: f32,
        /// Logits are divided by it before the softmax.
        temperature: f32,
    },
}

impl Sampler {
    /// `Err` naming a parameter KerasHub's sampler would not take: k of 0,
    /// p outside (0, 1], a temperature that is not positive and finite.
    pub fn check(&self) -> Result<()> {
        let (temperature, bad) = match *self {
            Sampler::Greedy => return Ok(()),
            Sampler::TopK { k, temperature } => {
                (temperature, (k == 0).then(|| "top-k's k is 0".to_owned()))
            }
            Sampler::TopP { p, temperature } => (
                temperature,
                (!(p > 0.0 && p <= 1.0)).then(|| format!("top-p's p is {p}, not in (0, 1]")),
            ),
        };
        let bad = bad.or_else(|| {
            (!(temperature > 0.0 && temperature.is_finite()))
                .then(|| format!("the temperature is {temperature}, not positive and finite"))
        });
        match bad {
            Some(what) => Err(Error::InvalidArgument(format!("a sampler whose {what}"))),
            None => Ok(()),
        }
    }

    /// The next token after `step`.
    fn choose(&self, step: &StepOutput, rng: &mut SplitMix64) -> Result<u32> {
        if *self == Sampler::Greedy {
            return Ok(step.token);
        }
        let logits = step
            .logits
            .as_deref()
            .ok_or_else(|| Error::InvalidArgument("a sampler without logits".to_owned()))?;
        Ok(self.sample(logits, rng.next_f64()) as u32)
    }

    /// The index `draw` (uniform in [0, 1)) picks from `logits`.
    pub fn sample(&self, logits: &[f32], draw: f64) -> usize {
        let (keep, temperature, p) = match *self {
            Sampler::Greedy => return argmax(logits),
            Sampler::TopK { k, temperature } => (k.max(1), temperature, 1.0),
            Sampler::TopP { p, temperature } => (logits.len(), temperature, f64::from(p)),
        };
        let mut order: Vec<usize> = (0..logits.len()).filter(|&i| !logits[i].is_nan()).collect();
        // Largest first; equal logits in id order (a stable sort).
        order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]));
        order.truncate(keep);
        let Some(&top) = order.first() else {
            return 0;
        };
        let t = f64::from(temperature).max(f64::MIN_POSITIVE);
        let largest = f64::from(logits[top]);
        // An infinite largest logit (a 16-bit overflow) holds all the mass:
        // the draw is among the infinite ones.
        let weights: Vec<f64> = order
            .iter()
            .map(|&i| {
                let l = f64::from(logits[i]);
                if largest.is_infinite() {
                    f64::from(u8::from(l == largest))
                } else {
                    ((l - largest) / t).exp()
                }
            })
            .collect();
        let sum: f64 = weights.iter().sum();
        // Top-p keeps the smallest head whose mass reaches p.
        let mut kept = 0;
        let mut mass = 0.0;
        for w in &weights {
            kept += 1;
            mass += w / sum;
            if mass >= p {
                break;
            }
        }
        let kept_sum: f64 = weights[..kept].iter().sum();
        let mut at = draw * kept_sum;
        for (i, w) in weights[..kept].iter().enumerate() {
            if at < *w {
                return order[i];
            }
            at -= w;
        }
        order[kept - 1]
    }
}

/// The first index of the largest value (NaN skipped), as the GPU's
/// argmax.
fn argmax(values: &[f32]) -> usize {
    crate::cpu::norm::argmax(values, values.len().max(1))
        .ok()
        .and_then(|v| v.first().copied())
        .unwrap_or(0)
}

/// How [`GpuCausalLm::generate`] runs.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateOptions {
    /// Tokens to generate at most.
    pub max_tokens: usize,
    /// How each token is chosen.
    pub sampler: Sampler,
    /// Tokens that end the generation (kept as its last token).
    pub stop_tokens: Vec<u32>,
    /// The sampler's seed.
    pub seed: u64,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions {
            max_tokens: 16,
            sampler: Sampler::Greedy,
            stop_tokens: Vec::new(),
            seed: 0,
        }
    }
}

/// What [`GpuCausalLm::generate`] made.
#[derive(Debug, Clone, PartialEq)]
pub struct Generated {
    /// The new tokens (the prompt not included).
    pub tokens: Vec<u32>,
    /// The prefill, to the first token chosen.
    pub prompt_time: std::time::Duration,
    /// The decode steps after it.
    pub decode_time: std::time::Duration,
}

/// A small seeded generator for the samplers (Vigna's SplitMix64).
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_f64(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

// SPDX-License-Identifier: MIT OR Apache-2.0
//! KerasHub's backbones (keras-hub 0.32.0): `GPT2Backbone`,
//! `LlamaBackbone`, `Llama3Backbone` and `GemmaBackbone` from their flat
//! configs, assembled from the layers they are made of, each at its Keras
//! path (`transformer_layer_0/self_attention/query`), so that a
//! DTypePolicyMap routes them, with its variables read from the weights
//! file's group for it (`layers/transformer_decoder/_self_attention_layer/
//! query_dense`). The ops between layers (residual adds, the SwiGLU and
//! GeGLU products, Gemma's embedding scale) are layers of the model too,
//! named after the block they are in and run under its policy.
//!
//! Each backbone takes `token_ids` and `padding_mask` (`[sequence]` per
//! sample; any length, see [`Model::set_sequence_length`]) and returns its
//! sequence output. Attention is causal and masked by the padding mask
//! over keys, as KerasHub's decoders combine them.

use std::collections::{BTreeSet, HashMap};

use serde_json::{Value, json};

use super::{Layer, Model, layer_policy, storage_format};
use crate::error::{Error, Result};
use crate::format::kernel::KernelAxes;
use crate::io::h5::{LayerVariables, WeightsFile};
use crate::layers::{self, Dense, LayerKind, MultiHeadAttention, kerashub};
use crate::ops::Activation;
use crate::policy::any::Policy;
use crate::policy::map::DTypePolicyMap;

/// The backbone classes read, by their KerasHub names.
pub const SUPPORTED: [&str; 4] = [
    "GPT2Backbone",
    "LlamaBackbone",
    "Llama3Backbone",
    "GemmaBackbone",
];

/// Whether a serialized model is a KerasHub class (`registered_name`
/// `keras_hub>...`).
pub fn is_kerashub(config: &Value) -> bool {
    config
        .get("registered_name")
        .and_then(Value::as_str)
        .is_some_and(|n| n.starts_with("keras_hub>"))
}

/// A backbone's flat config, read key by key with errors naming them.
struct Config<'a> {
    class: &'a str,
    inner: &'a Value,
}

impl Config<'_> {
    fn usize(&self, name: &str) -> Result<usize> {
        self.inner
            .get(name)
            .and_then(Value::as_u64)
            .and_then(|v| usize::try_from(v).ok())
            .filter(|&v| v > 0)
            .ok_or_else(|| {
                Error::Unsupported(format!(
                    "a {} whose '{name}' is {}, not a positive integer",
                    self.class,
                    self.inner.get(name).unwrap_or(&Value::Null)
                ))
            })
    }

    fn usize_or(&self, name: &str, default: usize) -> Result<usize> {
        match self.inner.get(name) {
            None | Some(Value::Null) => Ok(default),
            Some(_) => self.usize(name),
        }
    }

    fn f64_or(&self, name: &str, default: f64) -> Result<f64> {
        match self.inner.get(name) {
            None | Some(Value::Null) => Ok(default),
            Some(v) => v.as_f64().filter(|x| x.is_finite()).ok_or_else(|| {
                Error::Unsupported(format!("a {} whose '{name}' is {v}", self.class))
            }),
        }
    }

    fn optional_f64(&self, name: &str) -> Result<Option<f64>> {
        match self.inner.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(_) => self.f64_or(name, 0.0).map(Some),
        }
    }

    fn bool_or(&self, name: &str, default: bool) -> Result<bool> {
        match self.inner.get(name) {
            None | Some(Value::Null) => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(v) => Err(Error::Unsupported(format!(
                "a {} whose '{name}' is {v}, not true or false",
                self.class
            ))),
        }
    }

    /// An option this version does not run, unless it has its default.
    fn refuse(&self, name: &str, default: &Value, why: &str) -> Result<()> {
        match self.inner.get(name) {
            Some(v) if !v.is_null() && v != default => Err(Error::Unsupported(format!(
                "a {} with {name}={v}: {why}",
                self.class
            ))),
            _ => Ok(()),
        }
    }

    fn epsilon(&self, default: f64) -> Result<f32> {
        let e = self.f64_or("layer_norm_epsilon", default)?;
        if e < 0.0 {
            return Err(Error::Unsupported(format!(
                "a {} with layer_norm_epsilon={e}",
                self.class
            )));
        }
        Ok(e as f32)
    }

    fn divide(&self, (a, a_name): (usize, &str), (b, b_name): (usize, &str)) -> Result<usize> {
        if !a.is_multiple_of(b) {
            return Err(Error::Unsupported(format!(
                "a {} whose {a_name} ({a}) is not a multiple of {b_name} ({b})",
                self.class
            )));
        }
        Ok(a / b)
    }
}

/// Builds a backbone's layers: names their weight groups as Keras does
/// (the snake_case class plus a counter, then the attributes), reads
/// their variables, and gives each its policy.
struct Builder<'a> {
    weights: &'a WeightsFile,
    dtype: Option<&'a Value>,
    user: Option<&'a DTypePolicyMap>,
    /// The map that decides the attention projections' policies: the
    /// user's, else the config's where it is a map.
    projections_map: Option<DTypePolicyMap>,
    layers: Vec<Layer>,
    counts: HashMap<String, usize>,
    read: BTreeSet<String>,
}

impl<'a> Builder<'a> {
    fn new(
        weights: &'a WeightsFile,
        dtype: Option<&'a Value>,
        user: Option<&'a DTypePolicyMap>,
    ) -> Result<Self> {
        let projections_map = match (user, dtype) {
            (Some(m), _) => Some(m.clone()),
            (None, Some(v))
                if v.get("class_name").and_then(Value::as_str) == Some("DTypePolicyMap") =>
            {
                Some(DTypePolicyMap::from_keras_value(v)?)
            }
            _ => None,
        };
        Ok(Builder {
            weights,
            dtype,
            user,
            projections_map,
            layers: Vec::new(),
            counts: HashMap::new(),
            read: BTreeSet::new(),
        })
    }

    /// The next weights group of a child of class `snake`
    /// (`layers/transformer_decoder`, then `_1`, ...).
    fn group(&mut self, snake: &str) -> String {
        let n = self.counts.entry(snake.to_owned()).or_insert(0);
        let path = if *n == 0 {
            format!("layers/{snake}")
        } else {
            format!("layers/{snake}_{n}")
        };
        *n += 1;
        path
    }

    /// The variables of `group`, which must be in the file.
    fn vars(&mut self, group: &str) -> Result<LayerVariables> {
        let vars = self.weights.layer(group).ok_or_else(|| {
            Error::Shape(format!(
                "the weights file has no group '{group}' (missing or mismatched weights)"
            ))
        })?;
        self.read.insert(group.to_owned());
        Ok(vars.clone())
    }

    fn policy(&self, path: &str) -> Result<(Policy, String)> {
        layer_policy(self.dtype, path, self.user)
    }

    fn compute(&self, path: &str) -> Result<crate::format::StorageFormat> {
        storage_format(self.policy(path)?.0.compute_dtype())
    }

    /// Adds a layer at `path` with its policy (the policy of `policy_path`
    /// for an op between layers).
    fn push(
        &mut self,
        (path, class): (&str, &str),
        weights_path: &str,
        policy: (Policy, String),
        kind: LayerKind,
        inputs: Vec<usize>,
    ) -> Result<usize> {
        let shapes: Vec<Vec<usize>> = inputs
            .iter()
            .map(|&i| self.layers[i].shape.clone())
            .collect();
        let shape = kind.output_shape(&shapes).map_err(|e| e.in_layer(path))?;
        self.layers.push(Layer {
            name: path.rsplit('/').next().unwrap_or(path).to_owned(),
            class_name: class.to_owned(),
            path: path.to_owned(),
            weights_path: weights_path.to_owned(),
            policy: policy.0,
            policy_source: policy.1,
            kind,
            inputs,
            shape,
        });
        Ok(self.layers.len() - 1)
    }

    fn input(&mut self, name: &str) -> Result<usize> {
        let policy = ("float32".parse::<Policy>()?, "an input".to_owned());
        self.push(
            (name, "InputLayer"),
            "",
            policy,
            LayerKind::Input { shape: vec![1] },
            Vec::new(),
        )
    }

    /// An op between layers, under the policy of the block at `block`.
    fn op(
        &mut self,
        path: &str,
        block: &str,
        kind: LayerKind,
        inputs: Vec<usize>,
    ) -> Result<usize> {
        let (policy, source) = self.policy(block)?;
        let class = match &kind {
            LayerKind::Add => "Add",
            LayerKind::Multiply => "Multiply",
            LayerKind::Activation(_) => "Activation",
            _ => "Scale",
        };
        self.push(
            (path, class),
            "",
            (policy, format!("{source}, as the op of '{block}'")),
            kind,
            inputs,
        )
    }

    fn embedding(&mut self, (vocab, dim): (usize, usize), tied: bool, ids: usize) -> Result<usize> {
        let path = "token_embedding";
        let group = self.group("reversible_embedding");
        let vars = self.vars(&group)?;
        let policy = self.policy(path)?;
        let format = crate::routing::weight_format(&policy.0, false)?;
        let e = kerashub::reversible_embedding((vocab, dim), tied, format, &vars)
            .map_err(|e| e.in_layer(path))?;
        self.push(
            (path, "ReversibleEmbedding"),
            &group,
            policy,
            LayerKind::Embedding(Box::new(e)),
            vec![ids],
        )
    }

    fn layer_norm(&mut self, path: &str, group: &str, epsilon: f32, x: usize) -> Result<usize> {
        let vars = self.vars(group)?;
        let features = self.features(x)?;
        let n = layers::layer_normalization(&json!({ "epsilon": epsilon }), features, &vars)
            .map_err(|e| e.in_layer(path))?;
        let policy = self.policy(path)?;
        self.push(
            (path, "LayerNormalization"),
            group,
            policy,
            LayerKind::LayerNormalization(n),
            vec![x],
        )
    }

    fn rms_norm(
        &mut self,
        (path, class): (&str, &str),
        group: &str,
        (epsilon, plus_one): (f32, bool),
        x: usize,
    ) -> Result<usize> {
        let vars = self.vars(group)?;
        let features = self.features(x)?;
        let n =
            kerashub::rms_norm(epsilon, features, plus_one, &vars).map_err(|e| e.in_layer(path))?;
        let policy = self.policy(path)?;
        self.push(
            (path, class),
            group,
            policy,
            LayerKind::RmsNormalization(n),
            vec![x],
        )
    }

    /// A Dense (or an EinsumDense over the last axis, `axes`) at `path`.
    fn dense(
        &mut self,
        (path, class): (&str, &str),
        group: &str,
        (units, activation, use_bias): (usize, Activation, bool),
        axes: KernelAxes,
        x: usize,
    ) -> Result<usize> {
        let vars = self.vars(group)?;
        let k = self.features(x)?;
        let policy = self.policy(path)?;
        let format = crate::routing::weight_format(&policy.0, false)?;
        let kernel = layers::stored_or_quantized(&vars, use_bias, format, (k, units), axes)
            .map_err(|e| e.in_layer(path))?;
        let dense = Dense {
            units,
            activation,
            softmax: false,
            int8_weight_only: false,
            kernel,
        };
        self.push(
            (path, class),
            group,
            policy,
            LayerKind::Dense(dense),
            vec![x],
        )
    }

    /// An attention at `path` from its projections' groups (query, key,
    /// value, output) under `group`; its `x` is query, key and value.
    fn attention(
        &mut self,
        (path, group): (&str, &str),
        names: [&str; 4],
        shape: &AttentionConfig,
        (x, mask): (usize, usize),
    ) -> Result<usize> {
        let hidden = self.features(x)?;
        let (heads, kv, hd) = (shape.heads, shape.kv_heads, shape.head_dim);
        let compute = |b: &Self, sub: &str| b.compute(&format!("{path}/{sub}"));
        let mut projections = Vec::with_capacity(4);
        for (i, (sub, group_name)) in ["query", "key", "value", "attention_output"]
            .into_iter()
            .zip(names)
            .enumerate()
        {
            let vars = self.vars(&format!("{group}/{group_name}"))?;
            let heads_here = if i == 0 { heads } else { kv };
            let axes = match (i, shape.heads_first) {
                (3, _) => KernelAxes::HeadsIn {
                    heads,
                    head_dim: hd,
                },
                (_, true) => KernelAxes::HeadsFirst {
                    heads: heads_here,
                    head_dim: hd,
                    compute: compute(self, sub)?,
                },
                (_, false) => KernelAxes::HeadsOut {
                    heads: heads_here,
                    head_dim: hd,
                },
            };
            let what = || format!("{heads_here} heads of {hd} values");
            let (k, n) = if i == 3 {
                (crate::size::mul(heads, hd, &what)?, hidden)
            } else {
                (hidden, crate::size::mul(heads_here, hd, &what)?)
            };
            let sub_path = format!("{path}/{sub}");
            let policy = match &self.projections_map {
                Some(m) => m.lookup(&sub_path)?.policy.clone(),
                None => self.policy(&sub_path)?.0,
            };
            projections.push(kerashub::projection(
                sub_path,
                policy,
                &vars,
                false,
                (k, n),
                axes,
            )?);
        }
        let a = MultiHeadAttention {
            heads,
            kv_heads: kv,
            key_dim: hd,
            value_dim: hd,
            causal: true,
            masked: true,
            explicit: shape.explicit,
            key_mask: true,
            softmax_f32: shape.explicit,
            scale: shape.scale,
            rope: Some(kerashub::Rope {
                inv_freq: shape.rope.inverse_frequencies(hd),
            }),
            projections: projections.try_into().expect("four projections"),
        };
        let policy = self.policy(path)?;
        self.push(
            (path, shape.class),
            group,
            policy,
            LayerKind::MultiHeadAttention(Box::new(a)),
            vec![x, x, x, mask],
        )
    }

    fn features(&self, x: usize) -> Result<usize> {
        Ok(*self.layers[x].shape.last().expect("shapes are not empty"))
    }

    /// The model, once every group of the weights file was read.
    fn finish(self, class: &str, config: &Value, output: usize) -> Result<Model> {
        // Keras writes a group for every child; those without variables
        // (Add, Dropout, InputLayer) are nothing to read.
        if let Some((extra, _)) = self
            .weights
            .layers
            .iter()
            .find(|(g, v)| !v.vars.is_empty() && !self.read.contains(*g))
        {
            return Err(Error::Shape(format!(
                "the weights file holds '{extra}', which a {class} of this config does not have \
                 (mismatched weights)"
            )));
        }
        let inner = config.get("config").unwrap_or(&Value::Null);
        Ok(Model {
            name: inner
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or(class)
                .to_owned(),
            class_name: class.to_owned(),
            layers: self.layers,
            inputs: vec![0, 1],
            outputs: vec![output],
            config: config.clone(),
            dynamic_sequence: true,
        })
    }
}

/// What tells KerasHub's attentions apart.
struct AttentionConfig {
    class: &'static str,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
    /// Kernels `[heads, hidden, head_dim]` (Gemma's) instead of `[hidden,
    /// heads, head_dim]`.
    heads_first: bool,
    /// Gemma's explicit path (on CPU), softmax in float32; else
    /// `ops.dot_product_attention` (Llama's on jax).
    explicit: bool,
    scale: f32,
    rope: RopeConfig,
}

/// How a backbone's rotary embedding makes its frequencies (computed once
/// the projections' variables have shown the head size is the file's).
enum RopeConfig {
    /// `LlamaRotaryEmbedding`.
    Llama {
        max_wavelength: f64,
        scaling: Option<kerashub::Llama31Scaling>,
    },
    /// KerasHub's `RotaryEmbedding`, linear.
    Base {
        max_wavelength: f64,
        scaling_factor: f64,
    },
}

impl RopeConfig {
    fn inverse_frequencies(&self, head_dim: usize) -> Vec<f32> {
        match *self {
            RopeConfig::Llama {
                max_wavelength,
                scaling,
            } => kerashub::llama_inverse_frequencies(head_dim, max_wavelength, scaling),
            RopeConfig::Base {
                max_wavelength,
                scaling_factor,
            } => kerashub::rotary_inverse_frequencies(head_dim, max_wavelength, scaling_factor),
        }
    }
}

/// A KerasHub backbone from its `config.json` and weights; `user`, where
/// given, decides every sublayer's policy by its path.
pub fn backbone(
    config: &Value,
    weights: &WeightsFile,
    user: Option<&DTypePolicyMap>,
) -> Result<Model> {
    let class = config
        .get("class_name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let inner = config.get("config").unwrap_or(&Value::Null);
    let cfg = Config { class, inner };
    let mut b = Builder::new(weights, inner.get("dtype"), user)?;
    let output = match class {
        "GPT2Backbone" => gpt2(&mut b, &cfg)?,
        "LlamaBackbone" | "Llama3Backbone" => llama(&mut b, &cfg)?,
        "GemmaBackbone" => gemma(&mut b, &cfg)?,
        other => {
            return Err(Error::Unsupported(format!(
                "the KerasHub class '{other}'; the backbones read are {}",
                SUPPORTED.join(", ")
            )));
        }
    };
    b.finish(class, config, output)
}

fn gpt2(b: &mut Builder, cfg: &Config) -> Result<usize> {
    let vocab = cfg.usize("vocabulary_size")?;
    let blocks = cfg.usize("num_layers")?;
    let heads = cfg.usize("num_heads")?;
    let hidden = cfg.usize("hidden_dim")?;
    let inter = cfg.usize("intermediate_dim")?;
    let dropout = cfg.f64_or("dropout", 0.1)?;
    let max_positions = cfg.usize_or("max_sequence_length", 1024)?;
    let head_dim = cfg.divide((hidden, "hidden_dim"), (heads, "num_heads"))?;
    let ids = b.input("token_ids")?;
    let mask = b.input("padding_mask")?;
    let tokens = b.embedding((vocab, hidden), true, ids)?;
    let group = b.group("position_embedding");
    let vars = b.vars(&group)?;
    let table = kerashub::position_embedding((max_positions, hidden), &vars)
        .map_err(|e| e.in_layer("position_embedding"))?;
    let policy = b.policy("position_embedding")?;
    let positions = b.push(
        ("position_embedding", "PositionEmbedding"),
        &group,
        policy,
        LayerKind::PositionEmbedding(Box::new(table)),
        vec![tokens],
    )?;
    let mut x = b.op(
        "embeddings_add",
        "embeddings_add",
        LayerKind::Add,
        vec![tokens, positions],
    )?;
    for i in 0..blocks {
        let p = format!("transformer_layer_{i}");
        let g = b.group("transformer_decoder");
        let n1 = b.layer_norm(
            &format!("{p}/self_attention_layer_norm"),
            &format!("{g}/_self_attention_layer_norm"),
            1e-5,
            x,
        )?;
        let path = format!("{p}/self_attention");
        let attention_group = format!("{g}/_self_attention_layer");
        let mut groups = Vec::new();
        for name in ["query_dense", "key_dense", "value_dense", "output_dense"] {
            groups.push((name, b.vars(&format!("{attention_group}/{name}"))?));
        }
        let (policy, source) = b.policy(&path)?;
        let mut a = layers::multi_head_attention(
            &json!({"num_heads": heads, "key_dim": head_dim, "dropout": dropout}),
            &path,
            (hidden, hidden, hidden),
            (true, true),
            &policy,
            b.projections_map.as_ref(),
            |name| {
                groups
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| v.clone())
            },
        )
        .map_err(|e| e.in_layer(&path))?;
        a.key_mask = true;
        let attention = b.push(
            (&path, "CachedMultiHeadAttention"),
            &attention_group,
            (policy, source),
            LayerKind::MultiHeadAttention(Box::new(a)),
            vec![n1, n1, n1, mask],
        )?;
        let x1 = b.op(
            &format!("{p}/add_attention"),
            &p,
            LayerKind::Add,
            vec![attention, x],
        )?;
        let n2 = b.layer_norm(
            &format!("{p}/feedforward_layer_norm"),
            &format!("{g}/_feedforward_layer_norm"),
            1e-5,
            x1,
        )?;
        let h = b.dense(
            (&format!("{p}/feedforward_intermediate_dense"), "Dense"),
            &format!("{g}/_feedforward_intermediate_dense"),
            (inter, Activation::GeluApproximate, true),
            KernelAxes::Dense,
            n2,
        )?;
        let o = b.dense(
            (&format!("{p}/feedforward_output_dense"), "Dense"),
            &format!("{g}/_feedforward_output_dense"),
            (hidden, Activation::Linear, true),
            KernelAxes::Dense,
            h,
        )?;
        x = b.op(
            &format!("{p}/add_feedforward"),
            &p,
            LayerKind::Add,
            vec![o, x1],
        )?;
    }
    let group = b.group("layer_normalization");
    b.layer_norm("layer_norm", &group, 1e-5, x)
}

fn llama(b: &mut Builder, cfg: &Config) -> Result<usize> {
    let vocab = cfg.usize("vocabulary_size")?;
    let blocks = cfg.usize("num_layers")?;
    let heads = cfg.usize("num_query_heads")?;
    let kv_heads = cfg.usize("num_key_value_heads")?;
    let hidden = cfg.usize("hidden_dim")?;
    let inter = cfg.usize("intermediate_dim")?;
    let epsilon = cfg.epsilon(1e-6)?;
    let tied = cfg.bool_or("tie_word_embeddings", false)?;
    let head_dim = cfg.divide((hidden, "hidden_dim"), (heads, "num_query_heads"))?;
    cfg.divide(
        (heads, "num_query_heads"),
        (kv_heads, "num_key_value_heads"),
    )?;
    let scaling = [
        "rope_frequency_adjustment_factor",
        "rope_low_freq_factor",
        "rope_high_freq_factor",
        "rope_pretraining_sequence_length",
    ]
    .map(|name| cfg.optional_f64(name));
    let scaling = match scaling {
        [
            Ok(Some(factor)),
            Ok(Some(low)),
            Ok(Some(high)),
            Ok(Some(pretrain)),
        ] => Some(kerashub::Llama31Scaling {
            factor,
            low_freq_factor: low,
            high_freq_factor: high,
            pretraining_sequence_length: pretrain,
        }),
        [Ok(None), Ok(None), Ok(None), Ok(None)] => None,
        [a, b, c, d] => {
            a?;
            b?;
            c?;
            d?;
            return Err(Error::Unsupported(format!(
                "a {} with some of rope_frequency_adjustment_factor, rope_low_freq_factor, \
                 rope_high_freq_factor and rope_pretraining_sequence_length set: KerasHub takes \
                 all four or none",
                cfg.class
            )));
        }
    };
    let attention = AttentionConfig {
        class: "LlamaAttention",
        heads,
        kv_heads,
        head_dim,
        heads_first: false,
        explicit: false,
        scale: (1.0 / (head_dim as f64).sqrt()) as f32,
        rope: RopeConfig::Llama {
            max_wavelength: cfg.f64_or("rope_max_wavelength", 10000.0)?,
            scaling,
        },
    };
    let ids = b.input("token_ids")?;
    let mask = b.input("padding_mask")?;
    let mut x = b.embedding((vocab, hidden), tied, ids)?;
    for i in 0..blocks {
        x = gated_block(b, &LLAMA_BLOCK, i, (x, mask), &attention, (epsilon, inter))?;
    }
    let group = b.group("llama_layer_norm");
    b.rms_norm(
        ("sequence_output_layernorm", "LlamaLayerNorm"),
        &group,
        (epsilon, false),
        x,
    )
}

fn gemma(b: &mut Builder, cfg: &Config) -> Result<usize> {
    let vocab = cfg.usize("vocabulary_size")?;
    let blocks = cfg.usize("num_layers")?;
    let heads = cfg.usize("num_query_heads")?;
    let kv_heads = cfg.usize("num_key_value_heads")?;
    let hidden = cfg.usize("hidden_dim")?;
    let inter = cfg.usize("intermediate_dim")?;
    let head_dim = cfg.usize("head_dim")?;
    let epsilon = cfg.epsilon(1e-6)?;
    cfg.divide(
        (heads, "num_query_heads"),
        (kv_heads, "num_key_value_heads"),
    )?;
    let gating = cfg.divide((inter, "intermediate_dim"), (2, "2"))?;
    let not_yet = "this version runs Gemma 1's blocks (Gemma 2's options come later)";
    cfg.refuse("use_post_ffw_norm", &Value::Bool(false), not_yet)?;
    cfg.refuse("use_post_attention_norm", &Value::Bool(false), not_yet)?;
    cfg.refuse("attention_logit_soft_cap", &Value::Null, not_yet)?;
    cfg.refuse("final_logit_soft_cap", &Value::Null, not_yet)?;
    cfg.refuse("use_sliding_window_attention", &Value::Bool(false), not_yet)?;
    let normalize = if cfg.bool_or("query_head_dim_normalize", true)? {
        head_dim
    } else {
        hidden / heads
    };
    let attention = AttentionConfig {
        class: "CachedGemmaAttention",
        heads,
        kv_heads,
        head_dim,
        heads_first: true,
        explicit: true,
        // Keras: 1 / np.sqrt(...) in float64, cast to the query's dtype.
        scale: (1.0 / (normalize as f64).sqrt()) as f32,
        rope: RopeConfig::Base {
            max_wavelength: 10_000.0,
            scaling_factor: 1.0,
        },
    };
    let ids = b.input("token_ids")?;
    let mask = b.input("padding_mask")?;
    let tokens = b.embedding((vocab, hidden), true, ids)?;
    // `x * ops.cast(ops.sqrt(hidden_dim), x.dtype)`.
    let mut x = b.op(
        "token_embedding_scale",
        "token_embedding",
        LayerKind::Scale((hidden as f32).sqrt()),
        vec![tokens],
    )?;
    for i in 0..blocks {
        x = gated_block(b, &GEMMA_BLOCK, i, (x, mask), &attention, (epsilon, gating))?;
    }
    let group = b.group("rms_normalization");
    b.rms_norm(
        ("final_normalization", "RMSNormalization"),
        &group,
        (epsilon, true),
        x,
    )
}

/// The names of a Llama or Gemma decoder block's sublayers: (path, weights
/// group) under the block's, and what tells them apart.
struct GatedBlockNames {
    /// `transformer_layer` (`_0`, `_1`, ...).
    prefix: &'static str,
    /// The block's snake_case class, its weights group.
    class: &'static str,
    norm_class: &'static str,
    /// Gemma's `(1 + scale)`.
    plus_one: bool,
    norms: [(&'static str, &'static str); 2],
    attention: (&'static str, &'static str),
    projections: [&'static str; 4],
    /// The gate (activated), the other input of the product, the output.
    feedforward: [(&'static str, &'static str); 3],
    feedforward_class: &'static str,
    feedforward_axes: KernelAxes,
    activation: (Activation, &'static str),
}

const LLAMA_BLOCK: GatedBlockNames = GatedBlockNames {
    prefix: "transformer_layer",
    class: "llama_transformer_decoder",
    norm_class: "LlamaLayerNorm",
    plus_one: false,
    norms: [
        ("self_attention_layernorm", "_self_attention_layernorm"),
        ("feedforward_layernorm", "_feedforward_layernorm"),
    ],
    attention: ("self_attention", "_self_attention_layer"),
    projections: [
        "_query_dense",
        "_key_dense",
        "_value_dense",
        "_output_dense",
    ],
    feedforward: [
        ("feedforward_gate_dense", "_feedforward_gate_dense"),
        (
            "feedforward_intermediate_dense",
            "_feedforward_intermediate_dense",
        ),
        ("feedforward_output_dense", "_feedforward_output_dense"),
    ],
    feedforward_class: "Dense",
    feedforward_axes: KernelAxes::Dense,
    // Keras: the gate's output cast to float32, silu, cast back.
    activation: (Activation::Silu, "silu"),
};

const GEMMA_BLOCK: GatedBlockNames = GatedBlockNames {
    prefix: "decoder_block",
    class: "gemma_decoder_block",
    norm_class: "RMSNormalization",
    plus_one: true,
    norms: [
        ("pre_attention_norm", "pre_attention_norm"),
        ("pre_ffw_norm", "pre_ffw_norm"),
    ],
    attention: ("attention", "attention"),
    projections: ["query_dense", "key_dense", "value_dense", "output_dense"],
    feedforward: [
        ("ffw_gating", "gating_ffw"),
        ("ffw_gating_2", "gating_ffw_2"),
        ("ffw_linear", "ffw_linear"),
    ],
    feedforward_class: "EinsumDense",
    feedforward_axes: KernelAxes::Einsum { lead: 2 },
    // `keras.activations.gelu(x1, approximate=True) * x2`.
    activation: (Activation::GeluApproximate, "gelu"),
};

/// Block `i` of a Llama or Gemma backbone on `x`: a norm, the attention,
/// a residual add, a norm, the gated feed-forward (`down(act(gate(x)) *
/// up(x))`, `inter` wide), a residual add.
fn gated_block(
    b: &mut Builder,
    names: &GatedBlockNames,
    i: usize,
    (x, mask): (usize, usize),
    attention: &AttentionConfig,
    (epsilon, inter): (f32, usize),
) -> Result<usize> {
    let p = format!("{}_{i}", names.prefix);
    let g = b.group(names.class);
    let hidden = b.features(x)?;
    let norm = |b: &mut Builder, (path, group): (&str, &str), x| {
        b.rms_norm(
            (&format!("{p}/{path}"), names.norm_class),
            &format!("{g}/{group}"),
            (epsilon, names.plus_one),
            x,
        )
    };
    let n1 = norm(b, names.norms[0], x)?;
    let a = b.attention(
        (
            &format!("{p}/{}", names.attention.0),
            &format!("{g}/{}", names.attention.1),
        ),
        names.projections,
        attention,
        (n1, mask),
    )?;
    let x1 = b.op(
        &format!("{p}/add_attention"),
        &p,
        LayerKind::Add,
        vec![a, x],
    )?;
    let n2 = norm(b, names.norms[1], x1)?;
    let dense = |b: &mut Builder, (path, group): (&str, &str), units, x| {
        b.dense(
            (&format!("{p}/{path}"), names.feedforward_class),
            &format!("{g}/{group}"),
            (units, Activation::Linear, false),
            names.feedforward_axes,
            x,
        )
    };
    let gate = dense(b, names.feedforward[0], inter, n2)?;
    let (activation, name) = names.activation;
    let gate = b.op(
        &format!("{p}/{name}"),
        &p,
        LayerKind::Activation(activation),
        vec![gate],
    )?;
    let up = dense(b, names.feedforward[1], inter, n2)?;
    let product = b.op(
        &format!("{p}/multiply"),
        &p,
        LayerKind::Multiply,
        vec![up, gate],
    )?;
    let down = dense(b, names.feedforward[2], hidden, product)?;
    b.op(
        &format!("{p}/add_feedforward"),
        &p,
        LayerKind::Add,
        vec![down, x1],
    )
}

// SPDX-License-Identifier: MIT OR Apache-2.0
//! Keras models from `.keras` files: Sequential and Functional graphs of
//! Keras's layers, each with its Keras path and its policy, planned for an
//! adapter, recorded as one GPU forward, or run as the chain of CPU twins.
//!
//! A layer's policy comes from the map the user gives (looked up by the
//! layer's path), else from its own `dtype` in the config (a policy, or a
//! `DTypePolicyMap` that it looks its path up in), else from the global
//! policy. A quantized policy on a layer without a quantized form (a norm,
//! an activation) runs that layer under the policy's source float policy,
//! as Keras does, and the plan says so. Float inputs are cast to a layer's
//! compute dtype before it runs (Keras's autocast).

use std::collections::HashMap;

use serde_json::Value;

use crate::error::{Error, Result};
use crate::format::{HostFloat, StorageFormat};
use crate::gpu::context::{Capabilities, GpuContext};
use crate::gpu::recorder::{Forward, Graph, TensorId};
use crate::gpu::tensor::TensorShape;
use crate::io::archive::{ArchiveLimits, KerasArchive};
use crate::io::h5::{Array, LayerVariables, WeightsFile};
use crate::layers::{self, LayerKind};
use crate::policy::any::Policy;
use crate::policy::dtype::DType;
use crate::policy::map::DTypePolicyMap;
use crate::routing::{self, DenseChoice};

pub mod backbones;
pub mod causal_lm;

/// One layer of a model, with its Keras path and policy.
#[derive(Debug, Clone)]
pub struct Layer {
    /// `layer.name`.
    pub name: String,
    /// The Keras class (`Dense`).
    pub class_name: String,
    /// `layer.path` as Keras gives it for a loaded model: the layer's name
    /// (`dense_1`; a sublayer's `multi_head_attention/query`).
    pub path: String,
    /// The group of its variables in the weights file (`layers/dense_1`).
    pub weights_path: String,
    /// The policy it was given.
    pub policy: Policy,
    /// Where that policy came from.
    pub policy_source: String,
    /// What it computes, with its variables.
    pub kind: LayerKind,
    /// The nodes it reads (indices into [`Model::layers`]), in order.
    pub inputs: Vec<usize>,
    /// Its output's shape without the batch axis.
    pub shape: Vec<usize>,
}

impl Layer {
    /// The policy it runs under: its own, or for a quantized policy on a
    /// layer without a quantized form, the policy's source float policy.
    pub fn running_policy(&self) -> Policy {
        if self.policy.quantization_mode().is_some() && !self.kind.quantizable() {
            Policy::Float(self.policy.float_source().clone())
        } else {
            self.policy.clone()
        }
    }
}

/// A Keras model: its layers in an order where every layer comes after
/// the layers it reads.
#[derive(Debug, Clone)]
pub struct Model {
    /// The model's name.
    pub name: String,
    /// `Sequential` or `Functional`.
    pub class_name: String,
    /// Its layers.
    pub layers: Vec<Layer>,
    /// The input layers, in the order the model takes its inputs.
    pub inputs: Vec<usize>,
    /// The layers whose outputs are the model's outputs.
    pub outputs: Vec<usize>,
    /// The `config.json` it was read from, which [`Model::to_keras`]
    /// writes back with the policies [`Model::quantize`] changed.
    pub config: Value,
    /// Its inputs are sequences of any length (a KerasHub backbone's
    /// `(None,)` inputs): [`Model::set_sequence_length`] sets it (1 when
    /// loaded).
    pub dynamic_sequence: bool,
}

/// The snake_case name Keras gives a class in a weights file
/// (`keras.src.utils.naming.to_snake_case`, the same three substitutions).
pub fn snake_case(class: &str) -> String {
    use std::sync::LazyLock;
    static RULES: LazyLock<[regex::Regex; 3]> = LazyLock::new(|| {
        [r"\W+", "(.)([A-Z][a-z]+)", "([a-z])([A-Z])"]
            .map(|r| regex::Regex::new(r).expect("a fixed, valid pattern"))
    });
    let name = RULES[0].replace_all(class, "");
    let name = RULES[1].replace_all(&name, "${1}_${2}");
    RULES[2].replace_all(&name, "${1}_${2}").to_lowercase()
}

#[cfg(test)]
mod tests {
    #[test]
    fn snake_case_is_keras_s() {
        // What Keras 3.15.1's to_snake_case gives.
        for (class, snake) in [
            ("Dense", "dense"),
            ("LayerNormalization", "layer_normalization"),
            ("MultiHeadAttention", "multi_head_attention"),
            ("EinsumDense", "einsum_dense"),
            ("Conv2D", "conv2d"),
            ("ReLU", "re_lu"),
            ("GPT2Backbone", "gpt2_backbone"),
            ("InputLayer", "input_layer"),
        ] {
            assert_eq!(super::snake_case(class), snake, "{class}");
        }
    }
}

/// A layer's serialized object, parsed as far as every class shares.
struct Serialized<'a> {
    class_name: &'a str,
    name: String,
    config: &'a Value,
    inbound: Vec<String>,
    /// How MultiHeadAttention is called: causal, and masked by a tensor.
    causal: bool,
    masked: bool,
}

fn serialized<'a>(value: &'a Value, at: &str) -> Result<Serialized<'a>> {
    let bad = |what: &str| Error::InvalidJson {
        what: "a layer of a model config",
        reason: format!("{at}: {what}"),
    };
    let class_name = value
        .get("class_name")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("no class_name"))?;
    let config = value.get("config").ok_or_else(|| bad("no config"))?;
    let name = config
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("no name"))?
        .to_owned();
    let mut inbound = Vec::new();
    let (mut causal, mut masked) = (false, false);
    if let Some(nodes) = value.get("inbound_nodes").and_then(Value::as_array) {
        if nodes.len() > 1 {
            return Err(Error::Unsupported(format!(
                "layer '{name}' is called {} times; shared layers are not supported",
                nodes.len()
            )));
        }
        if let Some(node) = nodes.first() {
            collect_history(node.get("args").unwrap_or(&Value::Null), &mut inbound);
            let attention = class_name == "MultiHeadAttention";
            let softmax = class_name == "Softmax";
            let mut softmax_mask = None;
            // MultiHeadAttention's inputs in a fixed order: query, value,
            // key (the value when not given), mask.
            let (mut key_slot, mut mask_slot) = (None, None);
            let kwargs = node.get("kwargs").and_then(Value::as_object);
            for (key, v) in kwargs.into_iter().flatten() {
                let one = |v: &Value| {
                    let mut found = Vec::new();
                    collect_history(v, &mut found);
                    found.pop()
                };
                if softmax && key == "mask" {
                    if !v.is_null() {
                        softmax_mask = one(v);
                        masked = softmax_mask.is_some();
                    }
                    continue;
                }
                match (attention, key.as_str()) {
                    (true, "use_causal_mask") => causal = v.as_bool().unwrap_or(false),
                    (true, "attention_mask") if !v.is_null() => {
                        mask_slot = one(v);
                        masked = true;
                    }
                    (true, "key") if !v.is_null() => key_slot = one(v),
                    (true, "value" | "query") if !v.is_null() => {
                        if let Some(t) = one(v) {
                            inbound.push(t);
                        }
                    }
                    (_, "training" | "return_attention_scores")
                        if v.is_null() || v == &Value::Bool(false) => {}
                    (true, "attention_mask" | "key") => {}
                    _ => {
                        return Err(Error::Unsupported(format!(
                            "layer '{name}' ({class_name}) is called with {key}={v}, which is \
                             not supported"
                        )));
                    }
                }
            }
            inbound.extend(softmax_mask);
            if attention {
                if inbound.len() != 2 || (masked && mask_slot.is_none()) {
                    return Err(Error::Unsupported(format!(
                        "MultiHeadAttention '{name}' is called with {} query and value tensors; \
                         it takes a query and a value",
                        inbound.len()
                    )));
                }
                let key = key_slot.unwrap_or_else(|| inbound[1].clone());
                inbound.push(key);
                inbound.extend(mask_slot);
            }
        }
    }
    Ok(Serialized {
        class_name,
        name,
        config,
        inbound,
        causal,
        masked,
    })
}

/// The layers whose tensors a call's arguments name (`keras_history`), in
/// order.
fn collect_history(args: &Value, out: &mut Vec<String>) {
    match args {
        Value::Array(items) => items.iter().for_each(|v| collect_history(v, out)),
        Value::Object(o)
            if o.get("class_name").and_then(Value::as_str) == Some("__keras_tensor__") =>
        {
            if let Some(layer) = o
                .get("config")
                .and_then(|c| c.get("keras_history"))
                .and_then(|h| h.get(0))
                .and_then(Value::as_str)
            {
                out.push(layer.to_owned());
            }
        }
        _ => {}
    }
}

/// The policy of a layer at `path` whose config has `dtype`, and whence.
fn layer_policy(
    dtype: Option<&Value>,
    path: &str,
    user: Option<&DTypePolicyMap>,
) -> Result<(Policy, String)> {
    if let Some(map) = user {
        let lookup = map.lookup(path)?;
        return Ok((
            lookup.policy.clone(),
            format!("the map given ({})", lookup.matched),
        ));
    }
    match dtype {
        None | Some(Value::Null) => Ok((
            crate::policy::global::dtype_policy(),
            "the global policy".to_owned(),
        )),
        Some(v) if v.get("class_name").and_then(Value::as_str) == Some("DTypePolicyMap") => {
            let map = DTypePolicyMap::from_keras_value(v)?;
            let lookup = map.lookup(path)?;
            Ok((
                lookup.policy.clone(),
                format!("its DTypePolicyMap ({})", lookup.matched),
            ))
        }
        Some(v) => Ok((Policy::from_keras_value(v)?, "its config".to_owned())),
    }
}

/// The batch shape of an InputLayer without its batch axis.
fn input_shape(config: &Value, name: &str) -> Result<Vec<usize>> {
    let shape = config
        .get("batch_shape")
        .or_else(|| config.get("batch_input_shape"))
        .and_then(Value::as_array)
        .ok_or_else(|| Error::Unsupported(format!("input '{name}' without a batch_shape")))?;
    let dims: Option<Vec<usize>> = shape
        .iter()
        .skip(1)
        .map(|d| {
            d.as_u64()
                .and_then(|d| usize::try_from(d).ok())
                .filter(|&d| d > 0)
        })
        .collect();
    match dims {
        Some(d) if !d.is_empty() => Ok(d),
        _ => Err(Error::Unsupported(format!(
            "input '{name}' of batch shape {shape:?}: every axis but the batch must have a \
             fixed, positive size"
        ))),
    }
}

/// What a KerasHub preset folder holds: its backbone's `config.json`, its
/// `task.json` where there, and `model.weights.h5`.
pub(crate) struct Preset {
    pub(crate) config: Value,
    pub(crate) task: Option<Value>,
    pub(crate) weights: WeightsFile,
}

/// Reads a preset folder's `config.json`, `task.json` (where there),
/// `metadata.json` (which must be JSON where there) and
/// `model.weights.h5`, each within the archive limits.
pub(crate) fn read_preset(dir: &std::path::Path) -> Result<Preset> {
    let limits = ArchiveLimits::default();
    let read = |member: &str, limit: u64| -> Result<Option<Vec<u8>>> {
        let path = dir.join(member);
        let io = |source| Error::Io {
            path: path.display().to_string(),
            source,
        };
        match std::fs::metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(e)),
            Ok(m) if m.len() > limit => {
                return Err(Error::file(
                    path.display().to_string(),
                    format!("{} bytes, over the limit of {limit}", m.len()),
                ));
            }
            Ok(_) => {}
        }
        std::fs::read(&path).map(Some).map_err(io)
    };
    let name = dir.display().to_string();
    let json = |member: &str| -> Result<Option<Value>> {
        read(member, limits.max_json_bytes)?
            .map(|bytes| {
                serde_json::from_slice(&bytes)
                    .map_err(|e| Error::file(format!("{name}/{member}"), format!("not JSON: {e}")))
            })
            .transpose()
    };
    let config = json("config.json")?.ok_or_else(|| {
        Error::file(
            &name,
            "no config.json: not a KerasHub preset folder".to_owned(),
        )
    })?;
    json("metadata.json")?;
    let task = json("task.json")?;
    let Some(bytes) = read("model.weights.h5", limits.max_member_bytes)? else {
        let sharded = dir.join("model.weights.json").exists();
        return Err(Error::file(
            &name,
            if sharded {
                "sharded weights (model.weights.json) are not read yet; save the preset with one \
                 model.weights.h5"
                    .to_owned()
            } else {
                "no model.weights.h5".to_owned()
            },
        ));
    };
    let weights = WeightsFile::from_bytes(bytes, &format!("{name}/model.weights.h5"))?;
    Ok(Preset {
        config,
        task,
        weights,
    })
}

impl Model {
    /// Loads a `.keras` file; `map`, where given, decides every layer's
    /// policy by its path (else each layer's config does).
    pub fn load(path: impl AsRef<std::path::Path>, map: Option<&DTypePolicyMap>) -> Result<Model> {
        let path = path.as_ref();
        if path.is_dir() {
            return Self::load_preset(path, map);
        }
        let bytes = std::fs::read(path).map_err(|source| Error::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_bytes(&bytes, &path.display().to_string(), map)
    }

    /// Loads a KerasHub preset folder (`backbone.save_to_preset(dir)`):
    /// its `config.json`, `model.weights.h5` and, where there,
    /// `metadata.json` (which must be JSON); `map`, where given, decides
    /// every layer's policy by its path.
    pub fn load_preset(
        dir: impl AsRef<std::path::Path>,
        map: Option<&DTypePolicyMap>,
    ) -> Result<Model> {
        let dir = dir.as_ref();
        let read = read_preset(dir)?;
        Self::from_config(&read.config, &read.weights, map)
            .map_err(|e| Error::file(dir.display().to_string(), e.to_string()))
    }

    /// `Err` for a KerasHub backbone, whose variables are not yet written
    /// back in KerasHub's layout.
    fn not_a_backbone(&self, what: &str) -> Result<()> {
        if backbones::is_kerashub(&self.config) {
            return Err(Error::Unsupported(format!(
                "{what} for the KerasHub {} '{}' (this version reads KerasHub backbones; it does \
                 not write them yet)",
                self.class_name, self.name
            )));
        }
        Ok(())
    }

    /// This model for inputs of `n` positions per sample: a model whose
    /// inputs are sequences of any length ([`Model::dynamic_sequence`],
    /// a KerasHub backbone) gets every shape anew; `Err` for a model of
    /// fixed shapes, or for more positions than a layer holds.
    pub fn set_sequence_length(&mut self, n: usize) -> Result<()> {
        if !self.dynamic_sequence {
            return Err(Error::InvalidArgument(format!(
                "'{}' takes inputs of the fixed shapes it was saved with",
                self.name
            )));
        }
        if n == 0 {
            return Err(Error::InvalidArgument(
                "a sequence of 0 positions".to_owned(),
            ));
        }
        for i in 0..self.layers.len() {
            let shapes: Vec<Vec<usize>> = self.layers[i]
                .inputs
                .iter()
                .map(|&j| self.layers[j].shape.clone())
                .collect();
            let layer = &mut self.layers[i];
            if let LayerKind::Input { shape } = &mut layer.kind {
                shape[0] = n;
            }
            layer.shape = layer
                .kind
                .output_shape(&shapes)
                .map_err(|e| e.in_layer(&layer.path))?;
        }
        Ok(())
    }

    /// Loads a `.keras` file from its bytes; `name` names it in messages.
    pub fn from_bytes(bytes: &[u8], name: &str, map: Option<&DTypePolicyMap>) -> Result<Model> {
        let archive = KerasArchive::from_bytes(bytes, name, &ArchiveLimits::default())?;
        let weights =
            WeightsFile::from_bytes(archive.weights, &format!("{name}: model.weights.h5"))?;
        Self::from_config(&archive.config, &weights, map)
            .map_err(|e| Error::file(name, e.to_string()))
    }

    /// A model from its `config.json` and weights.
    pub fn from_config(
        config: &Value,
        weights: &WeightsFile,
        map: Option<&DTypePolicyMap>,
    ) -> Result<Model> {
        if backbones::is_kerashub(config) {
            return backbones::backbone(config, weights, map);
        }
        let class_name = config
            .get("class_name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let inner = config.get("config").unwrap_or(&Value::Null);
        let name = inner
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or(class_name)
            .to_owned();
        let sequential = match class_name {
            "Sequential" => true,
            "Functional" | "Model" => false,
            other => {
                return Err(Error::Unsupported(format!(
                    "a model of class '{other}'; Sequential and Functional models are read, and \
                     the KerasHub backbones {}",
                    backbones::SUPPORTED.join(", ")
                )));
            }
        };
        let list = inner
            .get("layers")
            .and_then(Value::as_array)
            .ok_or_else(|| Error::InvalidJson {
                what: "a model config",
                reason: "no list of layers".to_owned(),
            })?;
        let mut model = Model {
            name: name.clone(),
            class_name: class_name.to_owned(),
            layers: Vec::new(),
            inputs: Vec::new(),
            outputs: Vec::new(),
            config: config.clone(),
            dynamic_sequence: false,
        };
        let mut index_of: HashMap<String, usize> = HashMap::new();
        let mut used_names: HashMap<String, usize> = HashMap::new();
        for (i, value) in list.iter().enumerate() {
            let s = serialized(value, &format!("layer {i}"))?;
            // Keras's `layer.path` of a loaded model's layer: its name (a
            // sublayer's adds its own: `multi_head_attention/query`).
            let path = s.name.clone();
            // Keras names a child by its class, counting repeats.
            let snake = snake_case(s.class_name);
            let count = used_names.entry(snake.clone()).or_insert(0);
            let weights_path = if *count == 0 {
                format!("layers/{snake}")
            } else {
                format!("layers/{snake}_{count}")
            };
            *count += 1;
            let inputs: Vec<usize> = if sequential {
                match model.layers.len() {
                    0 => Vec::new(),
                    n => vec![n - 1],
                }
            } else {
                s.inbound
                    .iter()
                    .map(|n| {
                        index_of.get(n).copied().ok_or_else(|| {
                            Error::Unsupported(format!(
                                "layer '{}' reads '{n}', which is not an earlier layer",
                                s.name
                            ))
                        })
                    })
                    .collect::<Result<_>>()?
            };
            let layer = Self::layer(&s, path, weights_path, inputs, &model.layers, weights, map)
                .map_err(|e| e.in_layer(&s.name))?;
            if matches!(layer.kind, LayerKind::Input { .. }) {
                model.inputs.push(model.layers.len());
            }
            index_of.insert(s.name.clone(), model.layers.len());
            model.layers.push(layer);
        }
        if sequential && !list.is_empty() && model.inputs.is_empty() {
            return Err(Error::Unsupported(
                "a Sequential model without an InputLayer (built without an input shape)"
                    .to_owned(),
            ));
        }
        model.outputs = if sequential {
            vec![model.layers.len().saturating_sub(1)]
        } else {
            let refs = |key: &str| -> Result<Vec<usize>> {
                let v = inner.get(key).cloned().unwrap_or(Value::Null);
                // [["name", 0, 0], ...] or one ["name", 0, 0].
                let items = match &v {
                    Value::Array(a) if a.first().is_some_and(Value::is_string) => vec![v.clone()],
                    Value::Array(a) => a.clone(),
                    _ => Vec::new(),
                };
                items
                    .iter()
                    .map(|item| {
                        let n = item.get(0).and_then(Value::as_str).unwrap_or_default();
                        index_of.get(n).copied().ok_or_else(|| {
                            Error::Unsupported(format!("{key} names '{n}', not a layer"))
                        })
                    })
                    .collect()
            };
            model.inputs = refs("input_layers")?;
            refs("output_layers")?
        };
        if model.layers.is_empty() || model.outputs.is_empty() {
            return Err(Error::Unsupported(
                "a model without layers or outputs".to_owned(),
            ));
        }
        Ok(model)
    }

    fn layer(
        s: &Serialized,
        path: String,
        weights_path: String,
        inputs: Vec<usize>,
        earlier: &[Layer],
        weights: &WeightsFile,
        map: Option<&DTypePolicyMap>,
    ) -> Result<Layer> {
        let empty = LayerVariables::default();
        let vars = weights.layer(&weights_path).unwrap_or(&empty);
        if let Some(saved) = &vars.name
            && saved != &s.name
        {
            return Err(Error::Shape(format!(
                "the weights file's group '{weights_path}' holds layer '{saved}'; the config \
                 names '{}' there",
                s.name
            )));
        }
        let input_shapes: Vec<Vec<usize>> =
            inputs.iter().map(|&i| earlier[i].shape.clone()).collect();
        let (policy, policy_source) = if s.class_name == "InputLayer" {
            ("float32".parse::<Policy>()?, "an input".to_owned())
        } else {
            layer_policy(s.config.get("dtype"), &path, map)?
        };
        let features = || -> Result<usize> {
            match input_shapes.as_slice() {
                [x] => x
                    .last()
                    .copied()
                    .ok_or_else(|| Error::Shape("a scalar input".into())),
                _ => Err(Error::Shape(format!(
                    "{} inputs given to a {} layer, which takes one",
                    input_shapes.len(),
                    s.class_name
                ))),
            }
        };
        let kind = match s.class_name {
            "InputLayer" => {
                let dtype = s
                    .config
                    .get("dtype")
                    .and_then(Value::as_str)
                    .unwrap_or("float32");
                if !["float32", "bool", "int32", "int64"].contains(&dtype) {
                    return Err(Error::Unsupported(format!(
                        "an input of dtype {dtype}; inputs are float32 (bool masks given as 0 \
                         and 1, int32 and int64 ids as float32 integers)"
                    )));
                }
                LayerKind::Input {
                    shape: input_shape(s.config, &s.name)?,
                }
            }
            "Dense" => {
                let k = features()?;
                LayerKind::Dense(layers::dense(
                    s.config,
                    k,
                    |weight_only| routing::weight_format(&policy, weight_only),
                    vars,
                )?)
            }
            "LayerNormalization" => LayerKind::LayerNormalization(layers::layer_normalization(
                s.config,
                features()?,
                vars,
            )?),
            "RMSNormalization" => {
                LayerKind::RmsNormalization(layers::rms_normalization(s.config, features()?, vars)?)
            }
            "Activation" if layers::is_softmax(s.config.get("activation")) => {
                LayerKind::Softmax { masked: false }
            }
            "Activation" => LayerKind::Activation(layers::activation(s.config.get("activation"))?),
            "Dropout" => LayerKind::Dropout,
            "EinsumDense" => {
                let x = input_shapes
                    .first()
                    .filter(|_| input_shapes.len() == 1)
                    .ok_or_else(|| Error::Shape("an EinsumDense takes one input".to_owned()))?;
                LayerKind::EinsumDense(Box::new(layers::einsum_dense::einsum_dense(
                    s.config,
                    x,
                    |weight_only| routing::weight_format(&policy, weight_only),
                    vars,
                )?))
            }
            "Embedding" => LayerKind::Embedding(Box::new(layers::embedding::embedding(
                s.config,
                routing::weight_format(&policy, false)?,
                vars,
            )?)),
            "Softmax" => {
                let axis = s.config.get("axis").cloned().unwrap_or(Value::from(-1));
                if axis != -1 && axis != serde_json::json!([-1]) {
                    return Err(Error::Unsupported(format!(
                        "a Softmax over axis {axis}; the kernel normalizes the last axis (-1)"
                    )));
                }
                LayerKind::Softmax { masked: s.masked }
            }
            "Reshape" => {
                let target = s
                    .config
                    .get("target_shape")
                    .and_then(Value::as_array)
                    .and_then(|a| a.iter().map(Value::as_i64).collect::<Option<Vec<i64>>>())
                    .ok_or_else(|| {
                        Error::Unsupported(format!(
                            "a Reshape whose target_shape is {}",
                            s.config.get("target_shape").unwrap_or(&Value::Null)
                        ))
                    })?;
                LayerKind::Reshape { target }
            }
            "Add" => LayerKind::Add,
            "Multiply" => LayerKind::Multiply,
            "MultiHeadAttention" => {
                let last = |i: usize| -> Result<usize> {
                    input_shapes
                        .get(i)
                        .and_then(|x| x.last().copied())
                        .ok_or_else(|| Error::Shape("an attention without query and value".into()))
                };
                let group = |sub: &str| weights.layer(&format!("{weights_path}/{sub}")).cloned();
                LayerKind::MultiHeadAttention(Box::new(layers::multi_head_attention(
                    s.config,
                    &path,
                    (last(0)?, last(2)?, last(1)?),
                    (s.causal, s.masked),
                    &policy,
                    map,
                    group,
                )?))
            }
            other => {
                return Err(Error::Unsupported(format!(
                    "unknown layer class '{other}'; the layers read are InputLayer, Dense, \
                     EinsumDense, Embedding, LayerNormalization, RMSNormalization, Activation, \
                     Softmax, Dropout, Reshape, Add, Multiply and MultiHeadAttention"
                )));
            }
        };
        if !matches!(
            kind,
            LayerKind::Dense(_)
                | LayerKind::LayerNormalization(_)
                | LayerKind::RmsNormalization(_)
                | LayerKind::Embedding(_)
                | LayerKind::EinsumDense(_)
        ) && !vars.vars.is_empty()
        {
            return Err(Error::Shape(format!(
                "a {} layer has no variables; the file has {}",
                s.class_name,
                vars.vars.len()
            )));
        }
        let shape = kind.output_shape(&input_shapes)?;
        Ok(Layer {
            name: s.name.clone(),
            class_name: s.class_name.to_owned(),
            path,
            weights_path,
            policy,
            policy_source,
            kind,
            inputs,
            shape,
        })
    }

    /// Keras's `Model.quantize(mode)` (`int8`, `int4`, `float8`): every
    /// layer with a quantized form (Dense, and MultiHeadAttention's four
    /// EinsumDense projections, as Keras quantizes them) whose name `filter`
    /// finds (a regex searched in the name, as Keras's `filters`; `None`:
    /// every layer) has its float kernel
    /// quantized by Keras's quantizers (int4 in Keras's default groups of
    /// 128; float8 with the scales of a freshly quantized layer, 1.0) and
    /// gets the policy `<mode>_from_<its policy>`. Returns the paths of the
    /// layers it skipped because they have no quantized form (Keras warns
    /// for those).
    pub fn quantize(&mut self, mode: &str, filter: Option<&str>) -> Result<Vec<String>> {
        // Keras: `re.search(filters, layer.name)` on every leaf layer.
        let filter = filter
            .map(regex::Regex::new)
            .transpose()
            .map_err(|e| Error::InvalidArgument(format!("the layer filter: {e}")))?;
        let wanted = |name: &str| filter.as_ref().is_none_or(|f| f.is_match(name));
        let mode_name = match mode {
            "int8" | "float8" => mode.to_owned(),
            "int4" => "int4/128".to_owned(),
            other => {
                return Err(Error::InvalidQuantizationMode(other.to_owned()));
            }
        };
        let quantize_one = |path: &str,
                            policy: &Policy,
                            kernel: &crate::format::DenseKernel,
                            axes,
                            table: bool| {
            let quantized = || -> Result<(Policy, crate::format::DenseKernel)> {
                if policy.quantization_mode().is_some() {
                    return Err(Error::InvalidArgument(format!(
                        "the layer is already quantized ({})",
                        policy.name()
                    )));
                }
                let target: Policy = format!("{mode_name}_from_{}", policy.name()).parse()?;
                let mut format = routing::weight_format(&target, false)?;
                if table {
                    format = layers::embedding::table_format(format);
                }
                Ok((target, kernel.requantize_as(format, axes)?))
            };
            quantized().map_err(|e| e.in_layer(path))
        };
        // Only a heads-first kernel quantizes otherwise than its [k, n].
        use crate::format::KernelAxes::Dense;
        let mut skipped = Vec::new();
        // (layer, projection or None for a Dense layer, policy, kernel)
        let mut quantized = Vec::new();
        for (i, layer) in self.layers.iter().enumerate() {
            if matches!(layer.kind, LayerKind::Input { .. }) {
                continue;
            }
            match &layer.kind {
                LayerKind::Dense(_) | LayerKind::EinsumDense(_) if !wanted(&layer.name) => {}
                LayerKind::Dense(d) => {
                    let (p, k) = quantize_one(&layer.path, &layer.policy, &d.kernel, Dense, false)?;
                    quantized.push((i, None, p, k));
                }
                LayerKind::EinsumDense(e) => {
                    let (p, k) = quantize_one(&layer.path, &layer.policy, &e.kernel, Dense, false)?;
                    quantized.push((i, None, p, k));
                }
                // Keras has no float8 Embedding: it warns and skips it.
                LayerKind::Embedding(_) if !wanted(&layer.name) => {}
                LayerKind::Embedding(_) if mode == "float8" => skipped.push(layer.path.clone()),
                LayerKind::Embedding(e) => {
                    let (p, k) = quantize_one(&layer.path, &layer.policy, &e.table, Dense, true)?;
                    quantized.push((i, None, p, k));
                }
                // Keras quantizes the attention's EinsumDense sublayers.
                LayerKind::MultiHeadAttention(a) => {
                    for (j, proj) in a.projections.iter().enumerate() {
                        let name = proj.path.rsplit('/').next().unwrap_or(&proj.path);
                        if !wanted(name) {
                            continue;
                        }
                        let (p, k) =
                            quantize_one(&proj.path, &proj.policy, &proj.kernel, proj.axes, false)?;
                        quantized.push((i, Some(j), p, k));
                    }
                }
                _ if wanted(&layer.name) => skipped.push(layer.path.clone()),
                _ => {}
            }
        }
        // Every layer checked first: an error leaves the model as it was.
        for (i, projection, policy, kernel) in quantized {
            let layer = &mut self.layers[i];
            match (&mut layer.kind, projection) {
                (LayerKind::Dense(d), None) => {
                    d.kernel = kernel;
                    d.int8_weight_only = false;
                    layer.policy = policy;
                    layer.policy_source = format!("Model::quantize(\"{mode}\")");
                }
                (LayerKind::EinsumDense(e), None) => {
                    e.kernel = kernel;
                    e.int8_weight_only = false;
                    layer.policy = policy;
                    layer.policy_source = format!("Model::quantize(\"{mode}\")");
                }
                (LayerKind::Embedding(e), None) => {
                    e.table = kernel;
                    layer.policy = policy;
                    layer.policy_source = format!("Model::quantize(\"{mode}\")");
                }
                (LayerKind::MultiHeadAttention(a), Some(j)) => {
                    a.projections[j].kernel = kernel;
                    a.projections[j].policy = policy;
                }
                _ => {}
            }
        }
        Ok(skipped)
    }

    /// Every variable, named by its Keras path (`<layer path>/<name>`), as
    /// Keras stores it ([`layers::keras_variables`]; a LayerNormalization
    /// writes `gamma` and `beta` whatever its `scale` and `center`).
    pub fn variables(&self) -> Result<Vec<(String, crate::io::h5::Array)>> {
        Ok(self
            .variable_groups()?
            .into_iter()
            .flat_map(|(_, path, vars)| {
                vars.into_iter()
                    .map(move |(name, a)| (format!("{path}/{name}"), a))
            })
            .collect())
    }

    /// Each layer's variables as Keras stores them, with the group of the
    /// weights file that holds them (`layers/dense_1`) and the Keras path
    /// of their layer (MultiHeadAttention's projections on their own).
    fn variable_groups(&self) -> Result<Vec<VariableGroup>> {
        let mut out = Vec::new();
        let history = |policy: &Policy| match policy {
            Policy::Float8(p) => p.amax_history_length() as usize,
            _ => 1024,
        };
        for layer in &self.layers {
            let group = layer.weights_path.clone();
            let path = layer.path.clone();
            match &layer.kind {
                LayerKind::Dense(d) => out.push((
                    group,
                    path,
                    layers::keras_variables(
                        &d.kernel,
                        crate::format::KernelAxes::Dense,
                        history(&layer.policy),
                    )?,
                )),
                LayerKind::MultiHeadAttention(a) => {
                    let groups = ["query_dense", "key_dense", "value_dense", "output_dense"];
                    for (i, p) in a.projections.iter().enumerate() {
                        let (heads, head_dim) =
                            (a.heads, if i < 2 { a.key_dim } else { a.value_dim });
                        let axes = if i < 3 {
                            crate::format::KernelAxes::HeadsOut { heads, head_dim }
                        } else {
                            crate::format::KernelAxes::HeadsIn { heads, head_dim }
                        };
                        out.push((
                            format!("{group}/{}", groups[i]),
                            p.path.clone(),
                            layers::keras_variables(&p.kernel, axes, history(&p.policy))?,
                        ));
                    }
                }
                LayerKind::EinsumDense(e) => out.push((
                    group,
                    path,
                    layers::keras_variables(&e.kernel, e.axes, history(&layer.policy))?,
                )),
                LayerKind::Embedding(e) => {
                    out.push((group, path, layers::embedding::variables(e)?));
                }
                LayerKind::RmsNormalization(n) => out.push((
                    group,
                    path,
                    vec![(
                        "scale",
                        Array {
                            shape: vec![n.scale.len()],
                            values: crate::io::h5::ArrayValues::F32(n.scale.clone()),
                        },
                    )],
                )),
                LayerKind::LayerNormalization(n) => {
                    let param = |v: &Vec<f32>| Array {
                        shape: vec![v.len()],
                        values: crate::io::h5::ArrayValues::F32(v.clone()),
                    };
                    out.push((
                        group,
                        path,
                        vec![("gamma", param(&n.gamma)), ("beta", param(&n.beta))],
                    ));
                }
                _ => {}
            }
        }
        Ok(out)
    }

    /// The model as a `.keras` archive that this crate and Keras 3.15.1
    /// read back: its config with each layer's policy as it is now (and,
    /// for a layer [`Model::quantize`] changed, Keras's
    /// `quantization_config` for the mode), and its variables as Keras
    /// stores them ([`Model::variables`]).
    pub fn to_keras(&self) -> Result<Vec<u8>> {
        self.not_a_backbone("saving it as a .keras file")?;
        let mut config = self.config.clone();
        let list = config
            .get_mut("config")
            .and_then(|c| c.get_mut("layers"))
            .and_then(Value::as_array_mut)
            .filter(|l| l.len() == self.layers.len())
            .ok_or_else(|| {
                Error::InvalidArgument(
                    "a model whose config does not list its layers (one read from a file keeps \
                     it)"
                    .to_owned(),
                )
            })?;
        for (value, layer) in list.iter_mut().zip(&self.layers) {
            let Some(c) = value.get_mut("config").and_then(Value::as_object_mut) else {
                continue;
            };
            if !layer.policy_source.starts_with("Model::quantize") {
                continue;
            }
            c.insert("dtype".to_owned(), layer.policy.to_keras_value());
            if let Some(q) = quantization_config(&layer.policy) {
                c.insert("quantization_config".to_owned(), q);
            }
        }
        let mut weights = WeightsFile::default();
        for layer in &self.layers {
            weights.layers.insert(
                layer.weights_path.clone(),
                LayerVariables {
                    name: Some(layer.name.clone()),
                    vars: Vec::new(),
                },
            );
        }
        for (group, path, vars) in self.variable_groups()? {
            let name = path.rsplit('/').next().unwrap_or(&path).to_owned();
            weights.layers.insert(
                group,
                LayerVariables {
                    name: Some(name),
                    vars: vars.into_iter().map(|(_, a)| a).collect(),
                },
            );
        }
        let metadata = serde_json::json!({
            "keras_version": "3.15.1",
            "saved_by": concat!("dtype-policy ", env!("CARGO_PKG_VERSION")),
        });
        crate::io::archive::write(&config, &metadata, &weights.to_bytes()?)
    }

    /// The variables as a safetensors file ([`Model::variables`]).
    pub fn to_safetensors(&self) -> Result<Vec<u8>> {
        self.not_a_backbone("saving its variables")?;
        crate::io::safetensors::write(&self.variables()?)
    }

    /// Replaces every variable with the one of the same Keras path in a
    /// safetensors file (`name` names it in messages): each must be there,
    /// in the layer's format and shape; the file may hold more. Nothing
    /// changes unless every layer reads.
    pub fn load_safetensors(&mut self, bytes: &[u8], name: &str) -> Result<()> {
        self.not_a_backbone("reading its variables from safetensors")?;
        let tensors = crate::io::safetensors::read(bytes, name)?;
        let ours = self.variables()?;
        let mut by_path: HashMap<&str, LayerVariables> = HashMap::new();
        for (path, _) in &ours {
            let (owner, var) = path.rsplit_once('/').unwrap_or(("", path));
            let a = tensors.get(path).ok_or_else(|| {
                Error::file(name, format!("no tensor '{path}' ({var} of '{owner}')"))
            })?;
            by_path.entry(owner).or_default().vars.push(a.clone());
        }
        let mut next = self.clone();
        for layer in &mut next.layers {
            let at = |e: Error, path: &str| Error::file(name, e.in_layer(path).to_string());
            match &mut layer.kind {
                LayerKind::Dense(d) => {
                    let vars = &by_path[layer.path.as_str()];
                    d.kernel = layers::reload(&d.kernel, vars, crate::format::KernelAxes::Dense)
                        .map_err(|e| at(e, &layer.path))?;
                }
                LayerKind::EinsumDense(e) => {
                    let vars = &by_path[layer.path.as_str()];
                    e.kernel = layers::reload(&e.kernel, vars, e.axes)
                        .map_err(|err| at(err, &layer.path))?;
                }
                LayerKind::Embedding(e) => {
                    let vars = &by_path[layer.path.as_str()];
                    **e = layers::embedding::reload(e, vars).map_err(|err| at(err, &layer.path))?;
                }
                LayerKind::MultiHeadAttention(a) => {
                    let (heads, key_dim, value_dim) = (a.heads, a.key_dim, a.value_dim);
                    for (i, p) in a.projections.iter_mut().enumerate() {
                        let head_dim = if i < 2 { key_dim } else { value_dim };
                        let axes = if i < 3 {
                            crate::format::KernelAxes::HeadsOut { heads, head_dim }
                        } else {
                            crate::format::KernelAxes::HeadsIn { heads, head_dim }
                        };
                        p.kernel = layers::reload(&p.kernel, &by_path[p.path.as_str()], axes)
                            .map_err(|e| at(e, &p.path))?;
                    }
                }
                LayerKind::RmsNormalization(n) => {
                    let vars = &by_path[layer.path.as_str()];
                    n.scale =
                        layers::rms_scale(n.scale.len(), vars).map_err(|e| at(e, &layer.path))?;
                }
                LayerKind::LayerNormalization(n) => {
                    let vars = &by_path[layer.path.as_str()].vars;
                    for (v, a) in [&mut n.gamma, &mut n.beta].into_iter().zip(vars) {
                        let values = a
                            .values
                            .to_f32()
                            .filter(|x| a.shape == [v.len()] && x.len() == v.len());
                        *v = values.ok_or_else(|| {
                            at(
                                Error::Shape(format!(
                                    "a LayerNormalization parameter of shape {:?} ({}), expected \
                                     [{}] floats",
                                    a.shape,
                                    a.values.dtype(),
                                    v.len()
                                )),
                                &layer.path,
                            )
                        })?;
                    }
                }
                _ => {}
            }
        }
        *self = next;
        Ok(())
    }

    /// Checks what planning, recording and the twins rely on: every layer
    /// reads earlier layers, as many as its kind takes, and has the output
    /// shape its kind gives for their shapes (every axis positive); the
    /// inputs are the input layers. The loader makes models that hold it; a
    /// model built or changed by hand may not.
    pub fn check(&self) -> Result<()> {
        let bad = |path: &str, what: String| {
            Err(Error::InvalidArgument(format!("layer '{path}': {what}")))
        };
        for (i, l) in self.layers.iter().enumerate() {
            if let Some(&j) = l.inputs.iter().find(|&&j| j >= i) {
                return bad(
                    &l.path,
                    format!("reads layer {j}, which does not come before it"),
                );
            }
            let n = l.inputs.len();
            let takes = match &l.kind {
                LayerKind::Input { .. } => n == 0,
                LayerKind::Add | LayerKind::Multiply => n >= 2,
                LayerKind::MultiHeadAttention(a) => n == 3 + usize::from(a.masked),
                LayerKind::Softmax { masked } => n == 1 + usize::from(*masked),
                _ => n == 1,
            };
            if !takes {
                return bad(&l.path, format!("a {} given {n} inputs", l.class_name));
            }
            let shapes: Vec<Vec<usize>> = l
                .inputs
                .iter()
                .map(|&j| self.layers[j].shape.clone())
                .collect();
            let shape = l
                .kind
                .output_shape(&shapes)
                .map_err(|e| e.in_layer(&l.path))?;
            if shape != l.shape || shape.is_empty() || shape.contains(&0) {
                return bad(
                    &l.path,
                    format!(
                        "an output shape of {:?} where its inputs give {shape:?}",
                        l.shape
                    ),
                );
            }
            let listed = self.inputs.contains(&i);
            if listed != matches!(l.kind, LayerKind::Input { .. }) {
                return bad(
                    &l.path,
                    "the model's inputs must be its input layers".to_owned(),
                );
            }
        }
        if self.outputs.is_empty() || self.outputs.iter().any(|&o| o >= self.layers.len()) {
            return Err(Error::InvalidArgument(format!(
                "outputs {:?} of a model of {} layers",
                self.outputs,
                self.layers.len()
            )));
        }
        Ok(())
    }

    /// Rows of a layer's tensor for `batch` samples: the batch times every
    /// axis but the last.
    fn rows(&self, layer: &Layer, batch: usize) -> Result<usize> {
        let lead = &layer.shape[..layer.shape.len() - 1];
        lead.iter()
            .try_fold(batch, |acc, &d| acc.checked_mul(d))
            .ok_or_else(|| Error::Shape(format!("a batch of {batch} of shape {:?}", layer.shape)))
    }

    /// How each layer runs on an adapter with `caps` for `batch` samples.
    pub fn plan(&self, caps: &Capabilities, batch: usize) -> Result<ModelPlan> {
        self.check()?;
        let mut rows = Vec::with_capacity(self.layers.len());
        for layer in &self.layers {
            let row = self
                .plan_layer(layer, caps, batch)
                .map_err(|e| e.in_layer(&layer.path))?;
            rows.push(row);
        }
        // A layer's output lives from its layer to its last reader (to the
        // end for the model's outputs).
        let mut last_read: Vec<usize> = (0..self.layers.len()).collect();
        for (i, layer) in self.layers.iter().enumerate() {
            for &j in &layer.inputs {
                last_read[j] = last_read[j].max(i);
            }
        }
        for &o in &self.outputs {
            last_read[o] = self.layers.len();
        }
        let bytes: Vec<u64> = rows
            .iter()
            .zip(&self.layers)
            .map(|(r, l)| {
                let cols = *l.shape.last().expect("checked when loaded");
                TensorShape::new(r.rows, cols, r.format).map_or(0, |s| s.bytes())
            })
            .collect();
        let peak_activation_bytes = (0..self.layers.len())
            .map(|at| {
                (0..=at)
                    .filter(|&j| last_read[j] >= at && !matches!(rows[j].step, Step::Identity))
                    .map(|j| bytes[j])
                    .sum::<u64>()
            })
            .max()
            .unwrap_or(0);
        Ok(ModelPlan {
            model: format!("'{}' ({})", self.name, self.class_name),
            adapter: caps.adapter_name.clone(),
            batch,
            rows,
            peak_activation_bytes,
        })
    }

    fn plan_layer(&self, layer: &Layer, caps: &Capabilities, batch: usize) -> Result<LayerPlan> {
        let policy = layer.running_policy();
        let mut why = format!("{} from {}", layer.policy.name(), layer.policy_source);
        if policy.name() != layer.policy.name() {
            why.push_str(&format!(
                "; a {} has no quantized form, so it runs under {}",
                layer.class_name,
                policy.name()
            ));
        }
        let rows = self.rows(layer, batch)?;
        let format = storage_format(policy.compute_dtype())?;
        let limit = caps.max_storage_buffer_binding_size;
        let (step, weight_bytes) = match &layer.kind {
            LayerKind::Input { .. } => (Step::Input, 0),
            LayerKind::Dense(d) => {
                let policy = kernel_policy(&policy, &d.kernel, &mut why);
                let choice = routing::select_dense_with(&policy, rows, caps, d.int8_weight_only)?;
                let bytes = choice.weight_bytes(d.kernel.k(), d.kernel.n(), limit)?;
                why.push_str(&format!("; {}", choice.reason));
                if d.softmax {
                    why.push_str("; then the Softmax kernel (activation='softmax')");
                }
                (Step::Dense(choice), bytes)
            }
            LayerKind::LayerNormalization(n) => (Step::LayerNorm, 8 * n.gamma.len() as u64),
            LayerKind::RmsNormalization(n) => (Step::RmsNorm, 8 * n.scale.len() as u64),
            LayerKind::Activation(a) => (Step::Activation(*a), 0),
            LayerKind::Dropout => (Step::Identity, 0),
            LayerKind::EinsumDense(e) => {
                // The kernel runs on rows of its k inputs.
                let out = *layer.shape.last().expect("checked when loaded");
                let dense_rows = rows * out / e.kernel.n();
                let policy = kernel_policy(&policy, &e.kernel, &mut why);
                let choice =
                    routing::select_dense_with(&policy, dense_rows, caps, e.int8_weight_only)?;
                let bytes = choice.weight_bytes(e.kernel.k(), e.kernel.n(), limit)?;
                why.push_str(&format!("; {}", choice.reason));
                (Step::Dense(choice), bytes)
            }
            LayerKind::Embedding(e) => (
                Step::Embedding(e.table.format()),
                crate::format::embedding::table_bytes(&e.table)?,
            ),
            LayerKind::Softmax { .. } => (Step::Softmax, 0),
            LayerKind::PositionEmbedding(p) => (
                Step::Positions,
                crate::format::embedding::table_bytes(&p.table)?,
            ),
            LayerKind::Scale(f) => (Step::Scale(*f), 0),
            LayerKind::Reshape { .. } => {
                let from = self.layers[layer.inputs[0]].shape.last();
                if from == layer.shape.last() {
                    (Step::Identity, 0)
                } else {
                    (Step::Reshape, 0)
                }
            }
            LayerKind::Add => (Step::Binary(crate::ops::Binary::Add), 0),
            LayerKind::Multiply => (Step::Binary(crate::ops::Binary::Multiply), 0),
            LayerKind::MultiHeadAttention(a) => {
                let key_rows = batch
                    .checked_mul(self.layers[layer.inputs[2]].shape[0])
                    .ok_or_else(|| Error::Shape(format!("a batch of {batch}")))?;
                let mut bytes = 0;
                let mut choices = Vec::with_capacity(4);
                for (i, p) in a.projections.iter().enumerate() {
                    let r = if i == 1 || i == 2 { key_rows } else { rows };
                    let policy = kernel_policy(&p.policy, &p.kernel, &mut why);
                    let c =
                        routing::select_dense(&policy, r, caps).map_err(|e| e.in_layer(&p.path))?;
                    bytes += c.weight_bytes(p.kernel.k(), p.kernel.n(), limit)?;
                    why.push_str(&format!("; {}: {}, {}", p.path, p.policy.name(), c.reason));
                    choices.push(c);
                }
                let choices: [DenseChoice; 4] = choices.try_into().expect("four projections");
                (Step::Attention(Box::new(choices)), bytes)
            }
        };
        let format = match &step {
            Step::Dense(c) => c.storage.format(),
            // Its inputs are cast to its own compute dtype (Keras's autocast).
            Step::Attention(_) => format,
            Step::Input => StorageFormat::F32,
            _ => format,
        };
        Ok(LayerPlan {
            path: layer.path.clone(),
            class_name: layer.class_name.clone(),
            policy: policy.name().to_owned(),
            why,
            step,
            format,
            rows,
            weight_bytes,
        })
    }

    /// Uploads every layer's weights and records the forward for `batch`
    /// samples on `ctx`: one submission per run.
    pub fn upload(&self, ctx: &mut GpuContext, batch: usize) -> Result<GpuModel> {
        let plan = self.plan(ctx.capabilities(), batch)?;
        let mut graph = Graph::new();
        let tensors = self.record_layers(ctx, &mut graph, &plan, &mut Uploads::default(), None)?;
        let mut outputs = Vec::new();
        for &o in &self.outputs {
            graph.output(tensors[o])?;
            outputs.push(self.layers[o].shape.clone());
        }
        let dispatches = graph.dispatches();
        let forward = graph.build(ctx)?;
        Ok(GpuModel {
            forward,
            plan,
            dispatches,
            ids: self.id_inputs(),
        })
    }

    /// Records every layer of `plan` into `graph`, uploading weights
    /// through `uploads` (each once, however many forwards share it);
    /// with `generation`, a prefill or decode step over a KV cache. The
    /// tensor of each layer.
    pub(crate) fn record_layers(
        &self,
        ctx: &GpuContext,
        graph: &mut Graph,
        plan: &ModelPlan,
        uploads: &mut Uploads,
        generation: Option<&Generation>,
    ) -> Result<Vec<TensorId>> {
        let mut tensors: Vec<TensorId> = Vec::with_capacity(self.layers.len());
        for (i, (layer, row)) in self.layers.iter().zip(&plan.rows).enumerate() {
            let at = Recording {
                index: i,
                uploads: &mut *uploads,
                generation,
            };
            let id = Self::record(ctx, graph, at, layer, row, &tensors)
                .map_err(|e| e.in_layer(&layer.path))?;
            tensors.push(id);
        }
        Ok(tensors)
    }

    /// The model inputs that are an Embedding's ids, with the vocabulary
    /// they index: (position among the inputs, the smallest vocabulary
    /// among the Embeddings that read it).
    fn id_inputs(&self) -> Vec<(usize, usize)> {
        let mut out: Vec<(usize, usize)> = Vec::new();
        for layer in &self.layers {
            let LayerKind::Embedding(e) = &layer.kind else {
                continue;
            };
            let Some(at) = self.inputs.iter().position(|&i| i == layer.inputs[0]) else {
                continue;
            };
            match out.iter_mut().find(|(i, _)| *i == at) {
                Some((_, vocab)) => *vocab = (*vocab).min(e.input_dim),
                None => out.push((at, e.input_dim)),
            }
        }
        out
    }

    fn record(
        ctx: &GpuContext,
        graph: &mut Graph,
        at: Recording,
        layer: &Layer,
        row: &LayerPlan,
        tensors: &[TensorId],
    ) -> Result<TensorId> {
        let Recording {
            index,
            uploads: up,
            generation: gen_step,
        } = at;
        // The forward holds the weights' buffers (wgpu handles) it binds.
        // Keras's autocast: float inputs cast to the layer's compute dtype
        // (an attention mask stays as it is).
        let mut inputs = Vec::with_capacity(layer.inputs.len());
        for (n, &i) in layer.inputs.iter().enumerate() {
            let mut id = tensors[i];
            // A prefill's head reads the last position only.
            if let Some(g) = gen_step.filter(|g| !g.decode && g.head == index) {
                id = graph.rows(id, g.prompt - 1, 1)?;
            }
            inputs.push(if keeps_format(&layer.kind, n) {
                id
            } else {
                to_format(graph, id, row.format)?
            });
        }
        let x = inputs.first().copied();
        Ok(match (&layer.kind, &row.step) {
            (LayerKind::Input { shape }, _) => {
                let cols = *shape.last().expect("checked when loaded");
                graph.input(TensorShape::new(row.rows, cols, StorageFormat::F32)?)
            }
            (LayerKind::Dense(d), Step::Dense(choice)) => {
                let weights = up.dense(ctx, (index, 0), choice.storage, &d.kernel)?;
                let y = graph.dense(&weights, choice.shape, d.activation, x.expect("one input"))?;
                if d.softmax {
                    graph.softmax(y, None)?
                } else {
                    y
                }
            }
            (LayerKind::LayerNormalization(n), _) => {
                let weights = up.norm(index, || {
                    ctx.upload_layer_norm(&n.gamma, &n.beta, n.epsilon)
                })?;
                graph.layer_norm(x.expect("one input"), &weights)?
            }
            (LayerKind::RmsNormalization(n), _) => {
                let weights = up.norm(index, || {
                    ctx.upload_rms_norm(&n.factors(row.format), n.epsilon)
                })?;
                graph.layer_norm(x.expect("one input"), &weights)?
            }
            (LayerKind::Activation(a), _) => graph.activate(x.expect("one input"), *a)?,
            (LayerKind::Dropout, _) => x.expect("one input"),
            (LayerKind::EinsumDense(e), Step::Dense(choice)) => {
                let weights = up.dense(ctx, (index, 0), choice.storage, &e.kernel)?;
                let x = graph.reshape(x.expect("one input"), e.kernel.k())?;
                let y = graph.dense(&weights, choice.shape, e.activation, x)?;
                graph.reshape(y, *layer.shape.last().expect("checked when loaded"))?
            }
            (LayerKind::Embedding(e), _) => {
                let weights = up.embedding(index, || ctx.upload_embedding(&e.table, row.format))?;
                graph.embedding(x.expect("one input"), &weights, row.format)?
            }
            (LayerKind::Softmax { .. }, _) => {
                graph.softmax(x.expect("one input"), inputs.get(1).copied())?
            }
            (LayerKind::PositionEmbedding(p), _) => {
                let weights = up.embedding(index, || ctx.upload_embedding(&p.table, row.format))?;
                let x = x.expect("one input");
                if let Some(g) = gen_step.filter(|g| g.decode) {
                    if g.capacity > p.max_positions {
                        return Err(Error::InvalidArgument(format!(
                            "a cache of {} positions; the position embedding holds {}",
                            g.capacity, p.max_positions
                        )));
                    }
                    graph.positions_at_position(x, &weights, layer.shape[0], row.format)?
                } else {
                    graph.positions(x, &weights, layer.shape[0], 0, row.format)?
                }
            }
            (LayerKind::Scale(f), _) => graph.scale(
                x.expect("one input"),
                row.format.round(f64::from(*f)) as f32,
            )?,
            (LayerKind::Reshape { .. }, _) => {
                let cols = *layer.shape.last().expect("checked when loaded");
                graph.reshape(x.expect("one input"), cols)?
            }
            (LayerKind::Add | LayerKind::Multiply, Step::Binary(op)) => {
                let mut acc = inputs[0];
                for &b in &inputs[1..] {
                    acc = graph.binary(*op, acc, b)?;
                }
                acc
            }
            (LayerKind::MultiHeadAttention(a), Step::Attention(c)) => {
                let mut projected = Vec::with_capacity(3);
                // The query, key and value projections read inputs 0, 2, 1.
                for (i, input) in [0, 2, 1].into_iter().enumerate() {
                    let w = up.dense(ctx, (index, i), c[i].storage, &a.projections[i].kernel)?;
                    let x = to_format(graph, inputs[input], c[i].storage.format())?;
                    let y = graph.dense(&w, c[i].shape, crate::ops::Activation::Linear, x)?;
                    // The core runs in the query's format.
                    projected.push(to_format(graph, y, c[0].storage.format())?);
                }
                let mut shape =
                    attention_shape(a, &layer.shape, row.rows, graph.shape(inputs[2])?.rows())?;
                let cache = gen_step.map(|g| g.cache_of(index)).transpose()?;
                if let Some(rope) = &a.rope {
                    let positions = gen_step.map_or(shape.tq.max(shape.tk), |g| g.capacity);
                    let table = up.rope(index, positions, || {
                        ctx.upload_rope(&rope.inv_freq, positions)
                    })?;
                    for (j, heads) in [(0, a.heads), (1, a.kv_heads)] {
                        let rope_shape = rope_shape(&shape, shape.tq, heads);
                        projected[j] = if gen_step.is_some_and(|g| g.decode) {
                            graph.rope_at_position(projected[j], &table, rope_shape)?
                        } else {
                            graph.rope(projected[j], &table, rope_shape)?
                        };
                    }
                }
                let core = match (gen_step, cache) {
                    (Some(g), Some((keys, values))) => {
                        // Keras's call_with_cache: no padding mask, causal.
                        shape.key_mask = false;
                        if g.decode {
                            graph.write_rows_at_position(projected[1], keys)?;
                            graph.write_rows_at_position(projected[2], values)?;
                            shape.tk = g.capacity;
                            shape.causal = false;
                            graph.attention_over_cache(projected[0], keys, values, shape)?
                        } else {
                            graph.write_rows(projected[1], keys, 0)?;
                            graph.write_rows(projected[2], values, 0)?;
                            shape.causal = true;
                            graph.attention(
                                projected[0],
                                projected[1],
                                projected[2],
                                None,
                                shape,
                            )?
                        }
                    }
                    _ => graph.attention(
                        projected[0],
                        projected[1],
                        projected[2],
                        a.masked.then(|| inputs[3]),
                        shape,
                    )?,
                };
                let w = up.dense(ctx, (index, 3), c[3].storage, &a.projections[3].kernel)?;
                let x = to_format(graph, core, c[3].storage.format())?;
                graph.dense(&w, c[3].shape, crate::ops::Activation::Linear, x)?
            }
            (
                LayerKind::Dense(_)
                | LayerKind::EinsumDense(_)
                | LayerKind::MultiHeadAttention(_)
                | LayerKind::Add
                | LayerKind::Multiply,
                _,
            ) => return Err(not_this_plan(&layer.path)),
        })
    }

    /// The model as the chain of its layers' CPU twins, in the formats and
    /// kernel shapes of `plan`: `inputs` in the model's input order, each
    /// `[batch, shape...]` row-major; the outputs likewise.
    pub fn run_cpu(&self, plan: &ModelPlan, inputs: &[&[f32]]) -> Result<Vec<Vec<f32>>> {
        self.check()?;
        if inputs.len() != self.inputs.len() {
            return Err(Error::InvalidArgument(format!(
                "the model takes {} inputs, {} were given",
                self.inputs.len(),
                inputs.len()
            )));
        }
        if plan.rows.len() != self.layers.len()
            || plan
                .rows
                .iter()
                .zip(&self.layers)
                .any(|(r, l)| r.path != l.path)
        {
            return Err(Error::InvalidArgument(
                "a plan made for another model (plan this model with Model::plan)".to_owned(),
            ));
        }
        let mut values: Vec<Vec<f32>> = vec![Vec::new(); self.layers.len()];
        for (i, (layer, row)) in self.layers.iter().zip(&plan.rows).enumerate() {
            let cast = |v: &[f32]| -> Vec<f32> {
                v.iter()
                    .map(|x| row.format.round(f64::from(*x)) as f32)
                    .collect()
            };
            let ins: Vec<Vec<f32>> = layer
                .inputs
                .iter()
                .enumerate()
                .map(|(n, &j)| {
                    if keeps_format(&layer.kind, n) {
                        values[j].clone()
                    } else {
                        cast(&values[j])
                    }
                })
                .collect();
            let out = match (&layer.kind, &row.step) {
                (LayerKind::Input { shape }, _) => {
                    let at = self.inputs.iter().position(|&j| j == i).expect("an input");
                    let want = row.rows * shape.last().expect("checked");
                    if inputs[at].len() != want {
                        return Err(Error::Shape(format!(
                            "input {at} has {} values; {} rows of {:?} need {want}",
                            inputs[at].len(),
                            plan.batch,
                            shape
                        )));
                    }
                    inputs[at].to_vec()
                }
                (LayerKind::Dense(d), Step::Dense(c)) => {
                    let y = crate::cpu::dense::dense(
                        &d.kernel,
                        row.format,
                        c.shape,
                        d.activation,
                        &ins[0],
                        row.rows,
                    )?;
                    if d.softmax {
                        crate::cpu::norm::softmax(row.format, &y, d.units, None)?
                    } else {
                        y
                    }
                }
                (LayerKind::LayerNormalization(n), _) => {
                    crate::cpu::norm::layer_norm(row.format, &ins[0], &n.gamma, &n.beta, n.epsilon)?
                }
                (LayerKind::RmsNormalization(n), _) => crate::cpu::norm::rms_norm(
                    row.format,
                    &ins[0],
                    &n.factors(row.format),
                    n.epsilon,
                )?,
                (LayerKind::PositionEmbedding(p), _) => crate::cpu::embedding::positions(
                    &p.table,
                    row.format,
                    row.rows,
                    layer.shape[0],
                    0,
                )?,
                (LayerKind::Scale(f), _) => crate::cpu::norm::scale(
                    row.format,
                    &ins[0],
                    row.format.round(f64::from(*f)) as f32,
                ),
                (LayerKind::Activation(a), _) => {
                    crate::cpu::norm::activate(row.format, *a, &ins[0])
                }
                (LayerKind::Dropout | LayerKind::Reshape { .. }, _) => ins[0].clone(),
                (LayerKind::EinsumDense(e), Step::Dense(c)) => crate::cpu::dense::dense(
                    &e.kernel,
                    row.format,
                    c.shape,
                    e.activation,
                    &ins[0],
                    ins[0].len() / e.kernel.k(),
                )?,
                (LayerKind::Embedding(e), _) => {
                    crate::cpu::embedding::embedding(&e.table, row.format, &ins[0])?
                }
                (LayerKind::Softmax { .. }, _) => crate::cpu::norm::softmax(
                    row.format,
                    &ins[0],
                    *layer.shape.last().expect("checked when loaded"),
                    ins.get(1).map(Vec::as_slice),
                )?,
                (LayerKind::Add | LayerKind::Multiply, Step::Binary(op)) => {
                    let mut acc = ins[0].clone();
                    for b in &ins[1..] {
                        acc = crate::cpu::add::binary(row.format, *op, &acc, b)?;
                    }
                    acc
                }
                (LayerKind::MultiHeadAttention(a), Step::Attention(c)) => {
                    let key_rows = ins[2].len() / self.layers[layer.inputs[2]].shape[1];
                    let mut projected = Vec::with_capacity(3);
                    // As on the GPU: the inputs in the layer's format, then each
                    // projection's; query, key, value read inputs 0, 2, 1.
                    for (j, input) in [0, 2, 1].into_iter().enumerate() {
                        let f = c[j].storage.format();
                        let x: Vec<f32> = ins[input]
                            .iter()
                            .map(|v| f.round(f64::from(*v)) as f32)
                            .collect();
                        let r = if j == 0 { row.rows } else { key_rows };
                        let y = crate::cpu::dense::dense(
                            &a.projections[j].kernel,
                            f,
                            c[j].shape,
                            crate::ops::Activation::Linear,
                            &x,
                            r,
                        )?;
                        let f0 = c[0].storage.format();
                        projected.push(
                            y.iter()
                                .map(|v| f0.round(f64::from(*v)) as f32)
                                .collect::<Vec<f32>>(),
                        );
                    }
                    let mask = a.masked.then(|| values[layer.inputs[3]].clone());
                    let shape = attention_shape(a, &layer.shape, row.rows, key_rows)?;
                    if let Some(rope) = &a.rope {
                        for (j, heads) in [(0, a.heads), (1, a.kv_heads)] {
                            projected[j] = crate::cpu::rope::rope(
                                c[0].storage.format(),
                                rope_shape(&shape, shape.tq, heads),
                                &rope.inv_freq,
                                &projected[j],
                            )?;
                        }
                    }
                    let core = crate::cpu::attention::attention(
                        c[0].storage.format(),
                        shape,
                        &projected[0],
                        &projected[1],
                        &projected[2],
                        mask.as_deref(),
                    )?;
                    let f = c[3].storage.format();
                    let x: Vec<f32> = core.iter().map(|v| f.round(f64::from(*v)) as f32).collect();
                    crate::cpu::dense::dense(
                        &a.projections[3].kernel,
                        f,
                        c[3].shape,
                        crate::ops::Activation::Linear,
                        &x,
                        row.rows,
                    )?
                }
                (
                    LayerKind::Dense(_)
                    | LayerKind::EinsumDense(_)
                    | LayerKind::MultiHeadAttention(_)
                    | LayerKind::Add
                    | LayerKind::Multiply,
                    _,
                ) => return Err(not_this_plan(&layer.path)),
            };
            values[i] = out;
        }
        Ok(self.outputs.iter().map(|&o| values[o].clone()).collect())
    }
}

/// What [`Model::record`] needs besides the layer: its index, the uploads
/// shared between forwards, and the generation step it records, if any.
struct Recording<'a> {
    index: usize,
    uploads: &'a mut Uploads,
    generation: Option<&'a Generation>,
}

/// A forward recorded for generation over a KV cache ([`causal_lm`]).
pub(crate) struct Generation {
    /// A decode step (one position, at the run's position), else a
    /// prefill of `prompt` positions from position 0.
    pub(crate) decode: bool,
    /// Positions of the prompt (a prefill).
    pub(crate) prompt: usize,
    /// Positions the caches hold.
    pub(crate) capacity: usize,
    /// The index of the head layer, which a prefill runs on the last
    /// position only.
    pub(crate) head: usize,
    /// Each attention layer's (index, keys cache, values cache) in this
    /// graph.
    pub(crate) caches: Vec<(usize, TensorId, TensorId)>,
}

impl Generation {
    /// The caches of the attention layer `index`.
    fn cache_of(&self, index: usize) -> Result<(TensorId, TensorId)> {
        self.caches
            .iter()
            .find(|(i, _, _)| *i == index)
            .map(|&(_, k, v)| (k, v))
            .ok_or_else(|| Error::InvalidArgument(format!("no KV cache for layer {index}")))
    }
}

/// Weights uploaded once per layer (and storage), shared by the forwards
/// that bind them (a prefill and a decode step).
#[derive(Default)]
pub(crate) struct Uploads {
    dense: HashMap<
        (usize, usize, crate::gpu::shaders::StorageVariant),
        crate::gpu::dense::DenseWeights,
    >,
    norms: HashMap<usize, crate::gpu::norm::NormWeights>,
    embeddings: HashMap<usize, crate::gpu::embedding::EmbeddingWeights>,
    ropes: HashMap<(usize, usize), crate::gpu::rope::RopeTable>,
}

impl Uploads {
    /// Part `part` of layer `layer`'s Dense weights in `storage`.
    fn dense(
        &mut self,
        ctx: &GpuContext,
        (layer, part): (usize, usize),
        storage: crate::gpu::shaders::StorageVariant,
        kernel: &crate::format::DenseKernel,
    ) -> Result<crate::gpu::dense::DenseWeights> {
        if let Some(w) = self.dense.get(&(layer, part, storage)) {
            return Ok(w.clone());
        }
        let w = ctx.upload_dense(storage, kernel)?;
        self.dense.insert((layer, part, storage), w.clone());
        Ok(w)
    }

    fn norm(
        &mut self,
        layer: usize,
        upload: impl FnOnce() -> Result<crate::gpu::norm::NormWeights>,
    ) -> Result<crate::gpu::norm::NormWeights> {
        memo(&mut self.norms, layer, upload)
    }

    fn embedding(
        &mut self,
        layer: usize,
        upload: impl FnOnce() -> Result<crate::gpu::embedding::EmbeddingWeights>,
    ) -> Result<crate::gpu::embedding::EmbeddingWeights> {
        memo(&mut self.embeddings, layer, upload)
    }

    fn rope(
        &mut self,
        layer: usize,
        positions: usize,
        upload: impl FnOnce() -> Result<crate::gpu::rope::RopeTable>,
    ) -> Result<crate::gpu::rope::RopeTable> {
        memo(&mut self.ropes, (layer, positions), upload)
    }
}

/// `map[key]`, made by `make` the first time.
fn memo<K: std::hash::Hash + Eq, V: Clone>(
    map: &mut HashMap<K, V>,
    key: K,
    make: impl FnOnce() -> Result<V>,
) -> Result<V> {
    if let Some(v) = map.get(&key) {
        return Ok(v.clone());
    }
    let v = make()?;
    map.insert(key, v.clone());
    Ok(v)
}

/// One layer's variables by Keras's names: the weights file's group that
/// holds them, the layer's Keras path, and the variables in Keras's order.
type VariableGroup = (String, String, Vec<(&'static str, Array)>);

/// Keras's `quantization_config` of a layer quantized under `policy` by
/// `Model.quantize` (the defaults of each mode, as Keras 3.15.1 writes them).
fn quantization_config(policy: &Policy) -> Option<Value> {
    let config = match policy {
        Policy::Float8(_) => serde_json::json!({
            "module": "keras.quantizers", "class_name": "Float8QuantizationConfig",
            "config": {}, "registered_name": null,
        }),
        _ => match routing::weight_format(policy, false).ok()? {
            crate::format::WeightFormat::Int8 { .. } => serde_json::json!({
                "module": "keras.quantizers", "class_name": "Int8QuantizationConfig",
                "config": {"weight_quantizer": null, "activation_quantizer": {
                    "module": "keras.quantizers", "class_name": "AbsMaxQuantizer",
                    "config": {"value_range": [-127, 127], "epsilon": 1e-07, "output_dtype": "int8"},
                    "registered_name": null}},
                "registered_name": null,
            }),
            crate::format::WeightFormat::Int4 { block, .. } => serde_json::json!({
                "module": "keras.quantizers", "class_name": "Int4QuantizationConfig",
                "config": {"weight_quantizer": null, "activation_quantizer": null,
                           "block_size": block.map_or(-1, |b| i64::from(b.get()))},
                "registered_name": null,
            }),
            _ => return None,
        },
    };
    Some(config)
}

/// Whether input `n` of a layer keeps its format (ids, masks) rather than
/// being cast to the layer's compute dtype, as Keras autocasts only float
/// inputs and passes masks as they are.
fn keeps_format(kind: &LayerKind, n: usize) -> bool {
    match kind {
        LayerKind::MultiHeadAttention(_) => n == 3,
        LayerKind::Softmax { .. } => n == 1,
        LayerKind::Embedding(_) => true,
        _ => false,
    }
}

/// A plan row whose step is not its layer's.
fn not_this_plan(path: &str) -> Error {
    Error::InvalidArgument(format!(
        "layer '{path}': the plan does not run it as what it is (plan this model with Model::plan)"
    ))
}

/// `id` in `format`, cast where it is not.
fn to_format(graph: &mut Graph, id: TensorId, format: StorageFormat) -> Result<TensorId> {
    if graph.shape(id)?.format() == format {
        Ok(id)
    } else {
        graph.cast(id, format)
    }
}

/// The shape of an attention over query rows `rows` (the batch times the
/// queries of a sequence, `shape[0]`) and key rows `key_rows`.
fn attention_shape(
    a: &crate::layers::MultiHeadAttention,
    shape: &[usize],
    rows: usize,
    key_rows: usize,
) -> Result<crate::ops::AttentionShape> {
    let tq = shape[0];
    let batch = rows / tq;
    Ok(crate::ops::AttentionShape {
        batch,
        tq,
        tk: key_rows / batch.max(1),
        heads: a.heads,
        kv_heads: a.kv_heads,
        key_dim: a.key_dim,
        value_dim: a.value_dim,
        scale: a.scale,
        causal: a.causal,
        explicit: a.explicit,
        key_mask: a.key_mask,
        softmax_f32: a.softmax_f32,
    })
}

/// The shape of the rotary embedding of an attention's queries or keys
/// (`heads` of them), from position 0.
fn rope_shape(a: &crate::ops::AttentionShape, seq: usize, heads: usize) -> crate::ops::RopeShape {
    crate::ops::RopeShape {
        batch: a.batch,
        seq,
        heads,
        head_dim: a.key_dim,
        start: 0,
    }
}

/// The policy a kernel runs under: a quantized policy's float source where
/// its kernel is held as float (Keras's int4 flattening of a `[heads,
/// inputs, head_dim]` kernel, dequantized when loaded), else `policy`.
fn kernel_policy(policy: &Policy, kernel: &crate::format::DenseKernel, why: &mut String) -> Policy {
    if policy.quantization_mode().is_some() && kernel.format() == crate::format::WeightFormat::Float
    {
        why.push_str(
            "; its int4 kernel is held dequantized, as float (Keras flattens a [heads, inputs, \
             head_dim] kernel by a plain reshape, which mixes the heads into the rows)",
        );
        Policy::Float(policy.float_source().clone())
    } else {
        policy.clone()
    }
}

/// The storage format of a compute dtype.
fn storage_format(dtype: DType) -> Result<StorageFormat> {
    Ok(match dtype {
        DType::Float32 => StorageFormat::F32,
        DType::Float16 => StorageFormat::F16,
        DType::BFloat16 => StorageFormat::BF16,
        DType::Float64 => StorageFormat::F64,
        other => {
            return Err(Error::Unsupported(format!(
                "a layer computing in {other}; layers compute in a float dtype"
            )));
        }
    })
}

/// How one layer runs.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// A model input (float32).
    Input,
    /// A Dense kernel.
    Dense(DenseChoice),
    /// The LayerNormalization kernel.
    LayerNorm,
    /// The LayerNormalization kernel as an RMSNormalization.
    RmsNorm,
    /// The activation kernel.
    Activation(crate::ops::Activation),
    /// Nothing (Dropout at inference).
    Identity,
    /// The add kernel, adding or multiplying.
    Binary(crate::ops::Binary),
    /// MultiHeadAttention: its four projections (query, key, value,
    /// output) and the attention kernel between them.
    Attention(Box<[DenseChoice; 4]>),
    /// The embedding gather, of a table in this weight format.
    Embedding(crate::format::WeightFormat),
    /// The Softmax kernel.
    Softmax,
    /// Reshape: the cast kernel moving values to their new rows (nothing
    /// where the last axis stays).
    Reshape,
    /// A position embedding: the embedding kernel gathering the rows of
    /// the positions.
    Positions,
    /// `x * factor` (the activation kernel).
    Scale(f32),
}

/// One layer's row of a [`ModelPlan`].
#[derive(Debug, Clone)]
pub struct LayerPlan {
    /// The layer's path.
    pub path: String,
    /// Its class.
    pub class_name: String,
    /// The policy it runs under.
    pub policy: String,
    /// Why: where its policy came from, and the kernel's reason.
    pub why: String,
    /// How it runs.
    pub step: Step,
    /// The storage format of its output (its compute dtype).
    pub format: StorageFormat,
    /// Rows of its tensor.
    pub rows: usize,
    /// Bytes of its weights on the GPU.
    pub weight_bytes: u64,
}

impl LayerPlan {
    /// The kernel it runs, by its short name (`int8`, `layer-norm`).
    pub fn kernel(&self) -> String {
        match &self.step {
            Step::Input => "input".to_owned(),
            Step::Dense(c) => format!("{} {}", c.kernel().short_name(), c.storage.name()),
            Step::LayerNorm => "layer-norm".to_owned(),
            Step::RmsNorm => "rms-norm".to_owned(),
            Step::Activation(a) => format!("activate {}", a.keras_name()),
            Step::Identity => "none".to_owned(),
            Step::Binary(op) => format!("{op:?}").to_lowercase(),
            Step::Attention(c) => format!(
                "{} {} + attention",
                c[0].kernel().short_name(),
                c[0].storage.name()
            ),
            Step::Embedding(format) => format!("embedding {}", format.name()),
            Step::Softmax => "softmax".to_owned(),
            Step::Reshape => "reshape".to_owned(),
            Step::Positions => "positions".to_owned(),
            Step::Scale(f) => format!("scale by {f}"),
        }
    }
}

/// How a model runs on one adapter for one batch size.
#[derive(Debug, Clone)]
pub struct ModelPlan {
    /// The model's name and class.
    pub model: String,
    /// The adapter.
    pub adapter: String,
    /// Samples per run.
    pub batch: usize,
    /// Each layer, in the model's order.
    pub rows: Vec<LayerPlan>,
    /// The largest sum of the bytes of the layers' outputs alive at once
    /// (casts and the int8 quantizer's scratch add to it; a built forward
    /// says what it allocated, [`Forward::tensor_bytes`]).
    pub peak_activation_bytes: u64,
}

impl ModelPlan {
    /// Bytes of every layer's weights on the GPU.
    pub fn weight_bytes(&self) -> u64 {
        self.rows.iter().map(|r| r.weight_bytes).sum()
    }

    /// The Dense families its layers run, by the tiled kernel of their
    /// fixed rule, with their storage variants, each once: what tuning on
    /// first use measures ([`GpuContext::tune_missing`]).
    pub fn dense_families(
        &self,
    ) -> Vec<(
        crate::gpu::kernels::Kernel,
        crate::gpu::shaders::StorageVariant,
    )> {
        let mut out = Vec::new();
        for row in &self.rows {
            let choices: &[DenseChoice] = match &row.step {
                Step::Dense(c) => std::slice::from_ref(c),
                Step::Attention(cs) => cs.as_slice(),
                _ => &[],
            };
            for c in choices {
                let family =
                    crate::gpu::dense::Family::of(c.format).kernel(crate::ops::DenseShape::Tiled);
                if !out.contains(&(family, c.storage)) {
                    out.push((family, c.storage));
                }
            }
        }
        out
    }
}

impl std::fmt::Display for ModelPlan {
    /// The plan as a table, one layer a line, each layer's reasons after it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "plan of {} for {}, batch {}",
            self.model, self.adapter, self.batch
        )?;
        let header = [
            "layer",
            "class",
            "policy",
            "kernel",
            "output",
            "weight bytes",
        ];
        let cells: Vec<[String; 6]> = self
            .rows
            .iter()
            .map(|r| {
                [
                    r.path.clone(),
                    r.class_name.clone(),
                    r.policy.clone(),
                    r.kernel(),
                    format!("{} x {:?}", r.rows, r.format),
                    r.weight_bytes.to_string(),
                ]
            })
            .collect();
        crate::plan::write_table(f, &header, &cells)?;
        writeln!(
            f,
            "{} layers, {} weight bytes, peak activations {} bytes",
            self.rows.len(),
            self.weight_bytes(),
            self.peak_activation_bytes
        )?;
        writeln!(f, "why:")?;
        for r in &self.rows {
            writeln!(f, "  {}: {}", r.path, r.why)?;
        }
        Ok(())
    }
}

/// A model uploaded to one adapter and recorded as one forward.
pub struct GpuModel {
    forward: Forward,
    /// How each layer runs.
    pub plan: ModelPlan,
    /// Dispatches per forward.
    pub dispatches: usize,
    /// The inputs that are ids, and their vocabulary ([`Model::id_inputs`]).
    ids: Vec<(usize, usize)>,
}

impl GpuModel {
    /// Runs the model on `inputs` (in the model's input order, each
    /// `[batch, shape...]` row-major): one submission, the outputs read
    /// back. Ids must be integers below their Embedding's vocabulary
    /// (checked here: the kernel would clamp them).
    pub fn run<T: HostFloat>(&self, ctx: &GpuContext, inputs: &[&[T]]) -> Result<Vec<Vec<T>>> {
        for &(at, vocab) in &self.ids {
            let bad = inputs.get(at).and_then(|ids| {
                ids.iter()
                    .map(|v| v.to_f64())
                    .find(|&v| !(v >= 0.0 && v < vocab as f64 && v.fract() == 0.0))
            });
            if let Some(v) = bad {
                return Err(Error::InvalidArgument(format!(
                    "input {at} holds the id {v}; an Embedding's ids are integers from 0 to {}",
                    vocab - 1
                )));
            }
        }
        self.forward.run(ctx, inputs)
    }

    /// The recorded forward (for timing).
    pub fn forward(&self) -> &Forward {
        &self.forward
    }
}

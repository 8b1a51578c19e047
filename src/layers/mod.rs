// SPDX-License-Identifier: MIT OR Apache-2.0
//! Keras layers by Keras's names: what each is (from its config), its
//! variables (from a weights file, as Keras stores them) and how it runs,
//! recorded on the GPU or as its CPU twin.

use serde_json::Value;

use crate::error::{Error, Result};
use crate::format::kernel::{KerasDenseVariables, KernelAxes, Variable, VariableValues};
use crate::format::{DenseKernel, WeightFormat};
use crate::io::h5::{Array, ArrayValues, LayerVariables};
use crate::ops::Activation;

pub mod einsum_dense;
pub mod embedding;
pub mod kerashub;

pub use einsum_dense::EinsumDense;
pub use embedding::Embedding;

/// What a layer computes, with its variables.
#[derive(Debug, Clone)]
pub enum LayerKind {
    /// `InputLayer`: a model input of these features per row (the shape
    /// without its batch axis).
    Input {
        /// The shape without the batch axis.
        shape: Vec<usize>,
    },
    /// `Dense`.
    Dense(Dense),
    /// `LayerNormalization` over the last axis.
    LayerNormalization(LayerNormalization),
    /// `RMSNormalization` over the last axis.
    RmsNormalization(RmsNormalization),
    /// `Activation`.
    Activation(Activation),
    /// `Dropout`: the identity at inference.
    Dropout,
    /// `Add` of its inputs.
    Add,
    /// `Multiply` of its inputs.
    Multiply,
    /// `MultiHeadAttention`: its inputs are the query, the value, the key
    /// (the value again when none is given) and, where given, the mask.
    MultiHeadAttention(Box<MultiHeadAttention>),
    /// `Embedding`: its input is the ids.
    Embedding(Box<Embedding>),
    /// `EinsumDense` of an equation that is a Dense over its last axes.
    EinsumDense(Box<EinsumDense>),
    /// `Softmax` over the last axis; its second input, where `masked`, is
    /// the mask (of the first's shape).
    Softmax {
        /// Called with a `mask`.
        masked: bool,
    },
    /// KerasHub's `PositionEmbedding`: each row of a sequence gets the
    /// table's row of its position (its input gives only the rows).
    PositionEmbedding(Box<kerashub::PositionEmbedding>),
    /// `x * factor` in the compute dtype, the factor cast to it first
    /// (Gemma's embedding times `sqrt(hidden_dim)`; an op, not a layer).
    Scale(f32),
    /// `Reshape` to `target_shape` (without the batch axis; a -1 resolved).
    Reshape {
        /// `target_shape` as Keras gives it (-1 for the axis it infers).
        target: Vec<i64>,
    },
}

/// One of MultiHeadAttention's EinsumDense projections.
#[derive(Debug, Clone)]
pub struct Projection {
    /// Its Keras path (`model/multi_head_attention/query`).
    pub path: String,
    /// Its policy: the map's for its path, else what its variables are
    /// stored as under the attention layer's policy.
    pub policy: crate::policy::any::Policy,
    /// Its kernel, flattened to `[k, n]`.
    pub kernel: DenseKernel,
    /// The axes of its kernel as Keras stores it (how Keras quantizes it).
    pub axes: KernelAxes,
}

/// Keras's MultiHeadAttention over sequences (attention over axis 1), and
/// KerasHub's attentions built the same way (Llama's grouped-query
/// attention with rotary embeddings, Gemma's).
#[derive(Debug, Clone)]
pub struct MultiHeadAttention {
    /// `num_heads` (the queries' heads).
    pub heads: usize,
    /// The keys' and values' heads (`num_key_value_heads`; `heads` in
    /// Keras's MultiHeadAttention): query head `n` reads key head `n /
    /// (heads / kv_heads)`.
    pub kv_heads: usize,
    /// `key_dim`.
    pub key_dim: usize,
    /// `value_dim` (`key_dim` where not given).
    pub value_dim: usize,
    /// Called with `use_causal_mask=True`.
    pub causal: bool,
    /// Called with an `attention_mask` (its last input).
    pub masked: bool,
    /// `dropout > 0`: Keras computes attention on its explicit path
    /// ([`crate::ops::AttentionShape::explicit`]; dropout itself is the
    /// identity at inference).
    pub explicit: bool,
    /// The mask (the last input) is a padding mask over the keys, one row
    /// per sequence (KerasHub's `padding_mask`), not `[queries, keys]`.
    pub key_mask: bool,
    /// The explicit path's softmax runs in float32 (KerasHub's
    /// `Softmax(dtype="float32")`), only its result rounded.
    pub softmax_f32: bool,
    /// The logits' scale (`1 / sqrt(key_dim)` for Keras's).
    pub scale: f32,
    /// A rotary position embedding of the projected queries and keys.
    pub rope: Option<kerashub::Rope>,
    /// `query`, `key`, `value` and `attention_output` (Keras's `output`).
    pub projections: [Projection; 4],
}

/// A Dense layer: `activation(x · kernel + bias)` over the last axis.
#[derive(Debug, Clone)]
pub struct Dense {
    /// `units`.
    pub units: usize,
    /// `activation` (linear where it is softmax).
    pub activation: Activation,
    /// `activation="softmax"`: Keras's softmax over the last axis after
    /// the kernel (the Softmax kernel; it is not element-wise).
    pub softmax: bool,
    /// Its `Int8QuantizationConfig` has no activation quantizer.
    pub int8_weight_only: bool,
    /// The kernel and bias as Keras stored them.
    pub kernel: DenseKernel,
}

/// A LayerNormalization over the last axis, computed in float32.
#[derive(Debug, Clone)]
pub struct LayerNormalization {
    /// `epsilon`.
    pub epsilon: f32,
    /// `gamma` (ones where `scale=False`).
    pub gamma: Vec<f32>,
    /// `beta` (zeros where `center=False`).
    pub beta: Vec<f32>,
}

/// Keras's RMSNormalization over the last axis (`ops.rms_normalization`:
/// computed in float32, its `scale` read in the compute dtype), and
/// KerasHub's Llama and Gemma norms, which compute the same.
#[derive(Debug, Clone)]
pub struct RmsNormalization {
    /// `epsilon`.
    pub epsilon: f32,
    /// `scale`, as stored.
    pub scale: Vec<f32>,
    /// Gemma's: the rows are multiplied by `1 + scale` (in float32).
    pub plus_one: bool,
}

impl RmsNormalization {
    /// The factors the normalized rows are multiplied by, in f32, for a
    /// layer computing in `format`: `scale` read in the compute dtype (Keras
    /// autocasts it), plus one for Gemma's.
    pub fn factors(&self, format: crate::format::StorageFormat) -> Vec<f32> {
        self.scale
            .iter()
            .map(|&s| {
                let s = format.round(f64::from(s)) as f32;
                if self.plus_one { 1.0 + s } else { s }
            })
            .collect()
    }
}

impl LayerKind {
    /// Whether the layer has a quantized form in Keras (a quantized policy
    /// on any other layer runs it under the policy's source float policy).
    pub fn quantizable(&self) -> bool {
        matches!(
            self,
            LayerKind::Dense(_)
                | LayerKind::MultiHeadAttention(_)
                | LayerKind::Embedding(_)
                | LayerKind::EinsumDense(_)
        )
    }

    /// The shape (without the batch axis) this layer gives for its inputs'
    /// shapes.
    pub fn output_shape(&self, inputs: &[Vec<usize>]) -> Result<Vec<usize>> {
        let one = || -> Result<&Vec<usize>> {
            match inputs {
                [x] => Ok(x),
                _ => Err(Error::Shape(format!(
                    "{} inputs given to a layer that takes one",
                    inputs.len()
                ))),
            }
        };
        match self {
            LayerKind::Input { shape } => Ok(shape.clone()),
            LayerKind::Dense(d) => {
                let x = one()?;
                let k = x.last().copied().unwrap_or(0);
                if k != d.kernel.k() {
                    return Err(Error::Shape(format!(
                        "inputs of {k} features into a Dense kernel of {} inputs",
                        d.kernel.k()
                    )));
                }
                if d.units != d.kernel.n() {
                    return Err(Error::Shape(format!(
                        "a Dense layer of {} units with a kernel of {} outputs",
                        d.units,
                        d.kernel.n()
                    )));
                }
                let mut y = x.clone();
                *y.last_mut().expect("checked: k > 0") = d.units;
                Ok(y)
            }
            LayerKind::LayerNormalization(n) => {
                let x = one()?;
                if x.last() != Some(&n.gamma.len()) {
                    return Err(Error::Shape(format!(
                        "inputs of shape {x:?} into a LayerNormalization of {} features",
                        n.gamma.len()
                    )));
                }
                Ok(x.clone())
            }
            LayerKind::RmsNormalization(n) => {
                let x = one()?;
                if x.last() != Some(&n.scale.len()) {
                    return Err(Error::Shape(format!(
                        "inputs of shape {x:?} into an RMSNormalization of {} features",
                        n.scale.len()
                    )));
                }
                Ok(x.clone())
            }
            LayerKind::Activation(_) | LayerKind::Dropout | LayerKind::Scale(_) => {
                Ok(one()?.clone())
            }
            LayerKind::PositionEmbedding(p) => {
                let x = one()?;
                if x.len() != 2 || x[0] > p.max_positions {
                    return Err(Error::Shape(format!(
                        "positions of a sequence of shape {x:?}: the PositionEmbedding holds {} \
                         positions of {} features",
                        p.max_positions, p.dim
                    )));
                }
                Ok(vec![x[0], p.dim])
            }
            LayerKind::Embedding(e) => {
                let mut y = one()?.clone();
                if y.is_empty() {
                    return Err(Error::Unsupported(
                        "an Embedding of single ids per sample (shape ()); give ids a sequence \
                         axis"
                            .to_owned(),
                    ));
                }
                y.push(e.output_dim);
                Ok(y)
            }
            LayerKind::Softmax { masked } => {
                let (x, rest) = inputs
                    .split_first()
                    .ok_or_else(|| Error::Shape("a Softmax of no input".to_owned()))?;
                let fits = match rest {
                    [] => !masked,
                    [m] => *masked && m == x,
                    _ => false,
                };
                if !fits {
                    return Err(Error::Shape(format!(
                        "a Softmax given inputs of shapes {inputs:?}; it takes one, and a mask of \
                         its shape where called with one"
                    )));
                }
                Ok(x.clone())
            }
            LayerKind::Reshape { target } => reshaped(one()?, target),
            LayerKind::EinsumDense(e) => e.output_shape(one()?),
            LayerKind::MultiHeadAttention(a) => {
                let (query, value, key) = match inputs {
                    [q, v, k, ..] => (q, v, k),
                    _ => return Err(Error::Shape("an attention without query and value".into())),
                };
                let [pq, pk, pv, po] = &a.projections;
                let (qk, v) = (a.heads * a.key_dim, a.heads * a.value_dim);
                let (kv_k, kv_v) = (a.kv_heads * a.key_dim, a.kv_heads * a.value_dim);
                let fits = [
                    (pq.kernel.k(), query.last()),
                    (pk.kernel.k(), key.last()),
                    (pv.kernel.k(), value.last()),
                ]
                .iter()
                .all(|(k, f)| Some(k) == *f);
                if !fits
                    || pq.kernel.n() != qk
                    || pk.kernel.n() != kv_k
                    || pv.kernel.n() != kv_v
                    || po.kernel.k() != v
                    || a.kv_heads == 0
                    || !a.heads.is_multiple_of(a.kv_heads)
                    || key.first() != value.first()
                {
                    return Err(Error::Shape(format!(
                        "an attention of {} heads of {} and {} features with projections that \
                         do not fit queries {query:?}, keys {key:?} and values {value:?}",
                        a.heads, a.key_dim, a.value_dim
                    )));
                }
                if query.len() != 2 || value.len() != 2 || key.len() != 2 {
                    return Err(Error::Unsupported(format!(
                        "attention over inputs of shapes {query:?} and {value:?}: sequences \
                         [length, features] are supported"
                    )));
                }
                let mask = if a.key_mask {
                    vec![value[0]]
                } else {
                    vec![query[0], value[0]]
                };
                if a.masked && inputs.last() != Some(&mask) {
                    return Err(Error::Shape(format!(
                        "an attention mask of shape {:?} for {} queries and {} keys",
                        inputs.last(),
                        query[0],
                        value[0]
                    )));
                }
                Ok(vec![query[0], a.projections[3].kernel.n()])
            }
            LayerKind::Add | LayerKind::Multiply => {
                let Some(first) = inputs.first() else {
                    return Err(Error::Shape("an Add or Multiply of no inputs".to_owned()));
                };
                if inputs.len() < 2 || inputs.iter().any(|s| s != first) {
                    return Err(Error::Shape(format!(
                        "an Add or Multiply of inputs of shapes {inputs:?}; it takes two or more \
                         of one shape"
                    )));
                }
                Ok(first.clone())
            }
        }
    }
}

/// `x` (a shape without the batch axis) reshaped to Keras's
/// `target_shape` (at most one -1, inferred).
fn reshaped(x: &[usize], target: &[i64]) -> Result<Vec<usize>> {
    let total: usize = x.iter().product();
    let known = target
        .iter()
        .filter(|&&d| d != -1)
        .try_fold(1usize, |acc, &d| {
            usize::try_from(d)
                .ok()
                .filter(|&d| d > 0)
                .and_then(|d| acc.checked_mul(d))
        });
    let inferred = target.iter().filter(|&&d| d == -1).count();
    let fail = || {
        Err(Error::Shape(format!(
            "a Reshape of {x:?} to {target:?}: the sizes do not match"
        )))
    };
    let Some(known) = known else { return fail() };
    if target.is_empty() || inferred > 1 || known == 0 || !total.is_multiple_of(known) {
        return fail();
    }
    let shape: Vec<usize> = target
        .iter()
        .map(|&d| if d == -1 { total / known } else { d as usize })
        .collect();
    if shape.iter().product::<usize>() != total {
        return fail();
    }
    Ok(shape)
}

/// A key of a layer's config, or an error naming it.
fn key<'a>(config: &'a Value, name: &str, class: &str) -> Result<&'a Value> {
    config
        .get(name)
        .ok_or_else(|| Error::Unsupported(format!("a {class} config without '{name}'")))
}

fn usize_key(config: &Value, name: &str, class: &str) -> Result<usize> {
    key(config, name, class)?
        .as_u64()
        .and_then(|v| usize::try_from(v).ok())
        .filter(|&v| v > 0)
        .ok_or_else(|| {
            Error::Unsupported(format!(
                "a {class} whose '{name}' is {}, not a positive integer",
                config[name]
            ))
        })
}

fn bool_key(config: &Value, name: &str, default: bool) -> Result<bool> {
    match config.get(name) {
        None => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => Err(Error::Unsupported(format!(
            "'{name}' is {other}, not true or false"
        ))),
    }
}

/// A Keras activation from a config value (`"gelu"`, or a serialized
/// function `{"class_name": "function", "config": "gelu"}`).
pub fn activation(value: Option<&Value>) -> Result<Activation> {
    if is_softmax(value) {
        return Err(Error::Unsupported(
            "activation 'softmax' here (it is not element-wise; a Dense or Activation layer \
             takes it)"
                .to_owned(),
        ));
    }
    match value {
        None | Some(Value::Null) => Ok(Activation::Linear),
        Some(Value::String(name)) => name.parse(),
        Some(Value::Object(o)) => match o.get("config") {
            Some(Value::String(name)) => name.parse(),
            _ => Err(Error::Unsupported(format!(
                "an activation serialized as {value:?}"
            ))),
        },
        Some(other) => Err(Error::Unsupported(format!("an activation of {other}"))),
    }
}

/// Whether a config's activation is `softmax` (plain or serialized).
pub fn is_softmax(value: Option<&Value>) -> bool {
    match value {
        Some(Value::String(name)) => name == "softmax",
        Some(Value::Object(o)) => o.get("config") == Some(&Value::from("softmax")),
        _ => false,
    }
}

/// A variable as the kernel constructors read it (float16, bfloat16 and
/// float64 kept as floats: f16 and bf16 widened to f32 exactly).
enum Owned<'a> {
    Borrowed(&'a Array),
    Widened(Vec<usize>, Vec<f32>),
}

impl<'a> Owned<'a> {
    fn of(array: &'a Array) -> Owned<'a> {
        match &array.values {
            ArrayValues::F16(_) | ArrayValues::BF16(_) => Owned::Widened(
                array.shape.clone(),
                array.values.to_f32().expect("float values"),
            ),
            _ => Owned::Borrowed(array),
        }
    }

    fn variable(&self) -> Result<Variable<'_>> {
        Ok(match self {
            Owned::Widened(shape, v) => Variable {
                shape,
                values: VariableValues::F32(v),
            },
            Owned::Borrowed(a) => Variable {
                shape: &a.shape,
                values: match &a.values {
                    ArrayValues::F32(v) => VariableValues::F32(v),
                    ArrayValues::F64(v) => VariableValues::F64(v),
                    ArrayValues::I8(v) => VariableValues::I8(v),
                    other => {
                        return Err(Error::Unsupported(format!(
                            "a variable of type {}",
                            other.dtype()
                        )));
                    }
                },
            },
        })
    }
}

/// The names of a Dense layer's variables in Keras's order for `format`
/// (absent ones skipped: Keras moves the rest down).
fn dense_variable_names(format: WeightFormat, use_bias: bool) -> Vec<&'static str> {
    let mut names = vec!["kernel"];
    if use_bias {
        names.push("bias");
    }
    names.extend_from_slice(match format {
        WeightFormat::Float => &[][..],
        WeightFormat::Int8 { .. } => &["kernel_scale"],
        WeightFormat::Int4 { block: None, .. } => &["kernel_scale"],
        WeightFormat::Int4 { block: Some(_), .. } => &["kernel_scale", "kernel_zero", "g_idx"],
        WeightFormat::Float8(_) => &[
            "inputs_scale",
            "inputs_amax_history",
            "kernel_scale",
            "kernel_amax_history",
            "outputs_grad_scale",
            "outputs_grad_amax_history",
        ],
    });
    names
}

/// A layer's kernel in `format`: from its variables as stored in that
/// format, or, where a quantized policy meets float variables (a map given
/// for a float model), quantized from them by Keras's quantizers, as
/// `Model.quantize` would (float8 with a fresh layer's scales, 1.0).
pub(crate) fn stored_or_quantized(
    vars: &LayerVariables,
    use_bias: bool,
    format: WeightFormat,
    (k, n): (usize, usize),
    axes: KernelAxes,
) -> Result<DenseKernel> {
    let names = dense_variable_names(format, use_bias);
    let float_names = dense_variable_names(WeightFormat::Float, use_bias);
    let stored_float = format != WeightFormat::Float
        && vars.vars.len() == float_names.len()
        && vars
            .vars
            .first()
            .is_some_and(|a| a.values.to_f32().is_some());
    if !stored_float {
        return kernel_from(&names, vars, format, (k, n), axes);
    }
    kernel_from(&float_names, vars, WeightFormat::Float, (k, n), axes)?.requantize_as(format, axes)
}

/// A kernel from a layer's variables named `names` in Keras's order.
fn kernel_from(
    names: &[&str],
    vars: &LayerVariables,
    format: WeightFormat,
    (k, n): (usize, usize),
    axes: KernelAxes,
) -> Result<DenseKernel> {
    if vars.vars.len() != names.len() {
        return Err(Error::Shape(format!(
            "a {} kernel stores {} variables ({}), the file has {}",
            format.name(),
            names.len(),
            names.join(", "),
            vars.vars.len()
        )));
    }
    let owned: Vec<Owned> = vars.vars.iter().map(Owned::of).collect();
    let mut by_name = std::collections::HashMap::new();
    for (name, v) in names.iter().zip(&owned) {
        by_name.insert(*name, v.variable()?);
    }
    DenseKernel::from_keras(
        format,
        (k, n),
        axes,
        &KerasDenseVariables {
            kernel: by_name["kernel"],
            bias: by_name.get("bias").copied(),
            kernel_scale: by_name.get("kernel_scale").copied(),
            kernel_zero: by_name.get("kernel_zero").copied(),
            g_idx: by_name.get("g_idx").copied(),
            inputs_scale: by_name.get("inputs_scale").copied(),
        },
    )
}

/// Whether a layer's `Int8QuantizationConfig` has no activation quantizer.
fn int8_weight_only(config: &Value) -> bool {
    config
        .get("quantization_config")
        .and_then(|q| q.get("config"))
        .is_some_and(|q| q.get("activation_quantizer").is_some_and(Value::is_null))
        && config["quantization_config"]["class_name"] == "Int8QuantizationConfig"
}

/// A Dense layer from its config, `k` input features, the weight format
/// its policy gives, and its variables.
pub fn dense(
    config: &Value,
    k: usize,
    format: impl Fn(bool) -> Result<WeightFormat>,
    vars: &LayerVariables,
) -> Result<Dense> {
    let units = usize_key(config, "units", "Dense")?;
    let use_bias = bool_key(config, "use_bias", true)?;
    let int8_weight_only = int8_weight_only(config);
    let format = format(int8_weight_only)?;
    let kernel = stored_or_quantized(vars, use_bias, format, (k, units), KernelAxes::Dense)?;
    let softmax = is_softmax(config.get("activation"));
    Ok(Dense {
        units,
        activation: if softmax {
            Activation::Linear
        } else {
            activation(config.get("activation"))?
        },
        softmax,
        int8_weight_only,
        kernel,
    })
}

/// The weight format MultiHeadAttention's projection's variables are
/// stored in (Keras's config does not say: its `Model.quantize` changes the
/// sublayers only), read from their number and types.
fn stored_format(vars: &LayerVariables, use_bias: bool, k: usize) -> Result<WeightFormat> {
    let extra = vars.vars.len().saturating_sub(1 + usize::from(use_bias));
    let kernel = vars
        .vars
        .first()
        .ok_or_else(|| Error::Shape("a projection without a kernel".to_owned()))?;
    let int8 = matches!(kernel.values, ArrayValues::I8(_));
    Ok(match (int8, extra) {
        (false, 0) => WeightFormat::Float,
        (false, 6) => WeightFormat::Float8(crate::quant::float8::Float8::E4M3Fn),
        // A full-rank kernel is int8; int4 packs it flat to [k, n / 2].
        (true, 1) if kernel.shape.len() > 2 => WeightFormat::Int8 {
            quantized_inputs: true,
        },
        (true, 1) => WeightFormat::Int4 {
            block: None,
            quantized_inputs: false,
        },
        (true, 3) => {
            let g_idx = vars
                .vars
                .last()
                .and_then(|a| a.values.to_f32())
                .unwrap_or_default();
            let block = g_idx.iter().position(|&g| g != 0.0).unwrap_or(k.max(128));
            WeightFormat::Int4 {
                block: std::num::NonZeroU32::new(u32::try_from(block).unwrap_or(u32::MAX)),
                quantized_inputs: false,
            }
        }
        _ => {
            return Err(Error::Shape(format!(
                "a projection storing {} variables ({} kernel): not a float, int8, int4 or \
                 float8 EinsumDense",
                vars.vars.len(),
                kernel.values.dtype()
            )));
        }
    })
}

/// The policy name of `format` quantizing `source` (`int4/128_from_float32`).
fn format_policy(
    format: WeightFormat,
    source: &crate::policy::any::Policy,
) -> Result<crate::policy::any::Policy> {
    let source = source.float_source().name().to_owned();
    let name = match format {
        WeightFormat::Float => source,
        WeightFormat::Int8 { .. } => format!("int8_from_{source}"),
        WeightFormat::Int4 { block: None, .. } => format!("int4_from_{source}"),
        WeightFormat::Int4 { block: Some(b), .. } => format!("int4/{b}_from_{source}"),
        WeightFormat::Float8(_) => format!("float8_from_{source}"),
    };
    name.parse()
}

/// A MultiHeadAttention from its config, the features of its query, key
/// and value, how it is called, its policy (for each projection, the map's
/// where a map is given), and its projections' variables by group
/// (`query_dense`, `key_dense`, `value_dense`, `output_dense`).
#[allow(clippy::too_many_arguments)]
pub fn multi_head_attention(
    config: &Value,
    path: &str,
    (query_features, key_features, value_features): (usize, usize, usize),
    (causal, masked): (bool, bool),
    policy: &crate::policy::any::Policy,
    map: Option<&crate::policy::map::DTypePolicyMap>,
    vars: impl Fn(&str) -> Option<LayerVariables>,
) -> Result<MultiHeadAttention> {
    let class = "MultiHeadAttention";
    let heads = usize_key(config, "num_heads", class)?;
    let key_dim = usize_key(config, "key_dim", class)?;
    let value_dim = match config.get("value_dim") {
        None | Some(Value::Null) => key_dim,
        Some(_) => usize_key(config, "value_dim", class)?,
    };
    let use_bias = bool_key(config, "use_bias", true)?;
    let dropout = config.get("dropout").and_then(Value::as_f64).unwrap_or(0.0);
    if !(0.0..1.0).contains(&dropout) {
        return Err(Error::Unsupported(format!(
            "MultiHeadAttention with dropout={dropout}; Keras takes 0 <= dropout < 1"
        )));
    }
    for (key, ok) in [
        (
            "use_gate",
            config
                .get("use_gate")
                .is_none_or(|v| v == &Value::Bool(false)),
        ),
        (
            "sliding_window",
            config.get("sliding_window").is_none_or(Value::is_null),
        ),
        (
            "output_shape",
            config.get("output_shape").is_none_or(Value::is_null),
        ),
        (
            "attention_axes",
            config
                .get("attention_axes")
                .is_none_or(|v| v.is_null() || v == &serde_json::json!([1])),
        ),
    ] {
        if !ok {
            return Err(Error::Unsupported(format!(
                "MultiHeadAttention with {key}={}; the kernels run attention over the sequence \
                 axis with the defaults",
                config[key]
            )));
        }
    }
    let make =
        |group: &str, name: &str, k: usize, n: usize, axes: KernelAxes| -> Result<Projection> {
            let sub = format!("{path}/{name}");
            let vars = vars(group).unwrap_or_default();
            let (policy, format) = match map {
                Some(m) => {
                    let p = m.get(&sub)?.clone();
                    let f = crate::routing::weight_format(&p, false)?;
                    (p, f)
                }
                None => {
                    let f = stored_format(&vars, use_bias, k)?;
                    (format_policy(f, policy)?, f)
                }
            };
            let kernel = stored_or_quantized(&vars, use_bias, format, (k, n), axes)
                .map_err(|e| e.in_layer(&sub))?;
            Ok(Projection {
                path: sub,
                policy,
                kernel,
                axes,
            })
        };
    let qk = heads * key_dim;
    let projections = [
        make(
            "query_dense",
            "query",
            query_features,
            qk,
            KernelAxes::HeadsOut {
                heads,
                head_dim: key_dim,
            },
        )?,
        make(
            "key_dense",
            "key",
            key_features,
            qk,
            KernelAxes::HeadsOut {
                heads,
                head_dim: key_dim,
            },
        )?,
        make(
            "value_dense",
            "value",
            value_features,
            heads * value_dim,
            KernelAxes::HeadsOut {
                heads,
                head_dim: value_dim,
            },
        )?,
        make(
            "output_dense",
            "attention_output",
            heads * value_dim,
            query_features,
            KernelAxes::HeadsIn {
                heads,
                head_dim: value_dim,
            },
        )?,
    ];
    Ok(MultiHeadAttention {
        heads,
        kv_heads: heads,
        key_dim,
        value_dim,
        causal,
        masked,
        explicit: dropout > 0.0,
        key_mask: false,
        softmax_f32: false,
        // Keras: 1 / sqrt(key_dim) in Python floats, then float32.
        scale: (1.0 / (key_dim as f64).sqrt()) as f32,
        rope: None,
        projections,
    })
}

/// An RMSNormalization over the last axis of `features`, from its config
/// and its one variable (`scale`).
pub fn rms_normalization(
    config: &Value,
    features: usize,
    vars: &LayerVariables,
) -> Result<RmsNormalization> {
    let axis = config.get("axis").cloned().unwrap_or(Value::from(-1));
    if axis != -1 && axis != serde_json::json!([-1]) {
        return Err(Error::Unsupported(format!(
            "an RMSNormalization over axis {axis}; the kernel normalizes the last axis (-1)"
        )));
    }
    let epsilon = match config.get("epsilon") {
        None | Some(Value::Null) => 1e-6,
        Some(v) => v
            .as_f64()
            .filter(|e| e.is_finite() && *e >= 0.0)
            .ok_or_else(|| Error::Unsupported(format!("epsilon {v}")))?,
    } as f32;
    Ok(RmsNormalization {
        epsilon,
        scale: rms_scale(features, vars)?,
        plus_one: false,
    })
}

/// An RMSNormalization's one variable, `scale` `[features]` as floats.
pub fn rms_scale(features: usize, vars: &LayerVariables) -> Result<Vec<f32>> {
    match vars.vars.as_slice() {
        [a] if a.shape == [features] => a.values.to_f32(),
        _ => None,
    }
    .ok_or_else(|| {
        Error::Shape(format!(
            "an RMSNormalization of {features} features stores one float scale [{features}]; \
             the file has {:?}",
            vars.vars.iter().map(|a| &a.shape).collect::<Vec<_>>()
        ))
    })
}

/// A LayerNormalization over the last axis of `features`, from its
/// config and variables (gamma then beta, each only where it is used).
pub fn layer_normalization(
    config: &Value,
    features: usize,
    vars: &LayerVariables,
) -> Result<LayerNormalization> {
    let axis = config.get("axis").cloned().unwrap_or(Value::from(-1));
    let last = match &axis {
        Value::Number(n) => n.as_i64() == Some(-1),
        Value::Array(a) => a.len() == 1 && a[0].as_i64() == Some(-1),
        _ => false,
    };
    if !last {
        return Err(Error::Unsupported(format!(
            "a LayerNormalization over axis {axis}; the kernel normalizes the last axis (-1)"
        )));
    }
    if bool_key(config, "rms_scaling", false)? {
        return Err(Error::Unsupported(
            "LayerNormalization with rms_scaling=True (deprecated in Keras; use \
             RMSNormalization)"
                .to_owned(),
        ));
    }
    let epsilon = key(config, "epsilon", "LayerNormalization")?
        .as_f64()
        .filter(|e| e.is_finite() && *e >= 0.0)
        .ok_or_else(|| Error::Unsupported(format!("epsilon {}", config["epsilon"])))?
        as f32;
    let (scale, center) = (
        bool_key(config, "scale", true)?,
        bool_key(config, "center", true)?,
    );
    let expected = usize::from(scale) + usize::from(center);
    if vars.vars.len() != expected {
        return Err(Error::Shape(format!(
            "a LayerNormalization with scale={scale} and center={center} stores {expected} \
             variables, the file has {}",
            vars.vars.len()
        )));
    }
    let mut it = vars.vars.iter();
    let mut param = |used: bool, name: &str, default: f32| -> Result<Vec<f32>> {
        if !used {
            return Ok(vec![default; features]);
        }
        let a = it.next().expect("counted above");
        if a.shape != [features] {
            return Err(Error::Shape(format!(
                "LayerNormalization {name} of shape {:?}; {features} features need [{features}]",
                a.shape
            )));
        }
        a.values.to_f32().ok_or_else(|| {
            Error::Shape(format!(
                "LayerNormalization {name} of type {}, not a float",
                a.values.dtype()
            ))
        })
    };
    let gamma = param(scale, "gamma", 1.0)?;
    let beta = param(center, "beta", 0.0)?;
    Ok(LayerNormalization {
        epsilon,
        gamma,
        beta,
    })
}

/// A float32 variable of `shape`.
fn f32s(shape: Vec<usize>, values: Vec<f32>) -> Array {
    Array {
        shape,
        values: ArrayValues::F32(values),
    }
}

/// An int8 variable of `shape`.
fn i8s(shape: Vec<usize>, values: Vec<i8>) -> Array {
    Array {
        shape,
        values: ArrayValues::I8(values),
    }
}

/// A kernel's variables as Keras stores them, by Keras's names in Keras's
/// order (the inverse of reading them): float `kernel` in the layer's
/// axes; int8 `kernel` and `kernel_scale`; int4's kernel packed along the
/// outputs with its scales (and zero points and `g_idx` when grouped);
/// float8's kernel, its scales and zeroed amax histories of
/// `amax_history_length`.
pub fn keras_variables(
    kernel: &DenseKernel,
    axes: KernelAxes,
    amax_history_length: usize,
) -> Result<Vec<(&'static str, Array)>> {
    use crate::format::KernelValues;
    let (k, n) = (kernel.k(), kernel.n());
    let mut out = Vec::new();
    let kernel_shape = axes.kernel_shape(k, n)?;
    let bias = kernel.bias().map(|b| match b {
        crate::format::FloatValues::F64(v) => Array {
            shape: Vec::new(),
            values: ArrayValues::F64(v.clone()),
        },
        other => f32s(Vec::new(), other.to_f32()),
    });
    let push_bias = |out: &mut Vec<(&'static str, Array)>| -> Result<()> {
        if let Some(mut b) = bias.clone() {
            b.shape = axes.bias_shape(n)?;
            out.push(("bias", b));
        }
        Ok(())
    };
    match kernel.values() {
        KernelValues::Float(w) => {
            let values = match w {
                crate::format::FloatValues::F64(v) => ArrayValues::F64(v.clone()),
                other => ArrayValues::F32(other.to_f32()),
            };
            out.push((
                "kernel",
                Array {
                    shape: kernel_shape,
                    values,
                },
            ));
            push_bias(&mut out)?;
        }
        KernelValues::Int8 { q, scale, .. } => {
            out.push(("kernel", i8s(kernel_shape, q.clone())));
            push_bias(&mut out)?;
            out.push(("kernel_scale", f32s(axes.scale_shape(n)?, scale.clone())));
        }
        KernelValues::Int4 {
            q,
            scale,
            zero,
            block,
            ..
        } => {
            let packed = crate::quant::int4::pack_int4_columns(q, k, n);
            out.push(("kernel", i8s(vec![k, n.div_ceil(2)], packed)));
            push_bias(&mut out)?;
            match (zero, block) {
                (Some(zero), Some(b)) => {
                    let groups = k.div_ceil(b.get() as usize);
                    out.push(("kernel_scale", f32s(vec![groups, n], scale.clone())));
                    out.push(("kernel_zero", i8s(vec![groups, n], zero.clone())));
                    let g_idx = (0..k).map(|i| (i / b.get() as usize) as f32).collect();
                    out.push(("g_idx", f32s(vec![k], g_idx)));
                }
                _ => out.push(("kernel_scale", f32s(vec![n], scale.clone()))),
            }
        }
        KernelValues::Float8 { w, scales, .. } => {
            out.push(("kernel", f32s(kernel_shape, w.clone())));
            push_bias(&mut out)?;
            let history = || f32s(vec![amax_history_length], vec![0.0; amax_history_length]);
            out.push(("inputs_scale", f32s(Vec::new(), vec![scales.inputs])));
            out.push(("inputs_amax_history", history()));
            out.push(("kernel_scale", f32s(Vec::new(), vec![scales.kernel])));
            out.push(("kernel_amax_history", history()));
            out.push(("outputs_grad_scale", f32s(Vec::new(), vec![1.0])));
            out.push(("outputs_grad_amax_history", history()));
        }
    }
    Ok(out)
}

/// `kernel` (for its format, shape and bias) with its variables replaced by
/// `vars`, which are in Keras's order ([`keras_variables`]).
pub fn reload(
    kernel: &DenseKernel,
    vars: &LayerVariables,
    axes: KernelAxes,
) -> Result<DenseKernel> {
    let format = kernel.format();
    let names = dense_variable_names(format, kernel.bias().is_some());
    kernel_from(&names, vars, format, (kernel.k(), kernel.n()), axes)
}

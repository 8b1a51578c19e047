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
    /// `Activation`.
    Activation(Activation),
    /// `Dropout`: the identity at inference.
    Dropout,
    /// `Add` of its inputs.
    Add,
}

/// A Dense layer: `activation(x · kernel + bias)` over the last axis.
#[derive(Debug, Clone)]
pub struct Dense {
    /// `units`.
    pub units: usize,
    /// `activation`.
    pub activation: Activation,
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

impl LayerKind {
    /// Whether the layer has a quantized form in Keras (a quantized policy
    /// on any other layer runs it under the policy's source float policy).
    pub fn quantizable(&self) -> bool {
        matches!(self, LayerKind::Dense(_))
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
            LayerKind::Activation(_) | LayerKind::Dropout => Ok(one()?.clone()),
            LayerKind::Add => {
                let Some(first) = inputs.first() else {
                    return Err(Error::Shape("an Add of no inputs".to_owned()));
                };
                if inputs.len() < 2 || inputs.iter().any(|s| s != first) {
                    return Err(Error::Shape(format!(
                        "an Add of inputs of shapes {inputs:?}; it takes two or more of one shape"
                    )));
                }
                Ok(first.clone())
            }
        }
    }
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
    let int8_weight_only = config
        .get("quantization_config")
        .and_then(|q| q.get("config"))
        .is_some_and(|q| q.get("activation_quantizer").is_some_and(Value::is_null))
        && config["quantization_config"]["class_name"] == "Int8QuantizationConfig";
    let format = format(int8_weight_only)?;
    let names = dense_variable_names(format, use_bias);
    if vars.vars.len() != names.len() {
        return Err(Error::Shape(format!(
            "a {} Dense layer {} a bias stores {} variables ({}), the file has {}",
            format.name(),
            if use_bias { "with" } else { "without" },
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
    let kernel = DenseKernel::from_keras(
        format,
        (k, units),
        KernelAxes::Dense,
        &KerasDenseVariables {
            kernel: by_name["kernel"],
            bias: by_name.get("bias").copied(),
            kernel_scale: by_name.get("kernel_scale").copied(),
            kernel_zero: by_name.get("kernel_zero").copied(),
            g_idx: by_name.get("g_idx").copied(),
            inputs_scale: by_name.get("inputs_scale").copied(),
        },
    )?;
    Ok(Dense {
        units,
        activation: activation(config.get("activation"))?,
        int8_weight_only,
        kernel,
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

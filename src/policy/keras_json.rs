// SPDX-License-Identifier: MIT OR Apache-2.0
//! Keras JSON: each policy's `get_config` / `from_config`, and the serialized
//! object Keras writes into `config.json`:
//!
//! ```json
//! {"module": "keras", "class_name": "DTypePolicy",
//!  "config": {"name": "mixed_bfloat16"}, "registered_name": null}
//! ```
//!
//! Output keeps Keras's key order, so `to_keras_json` equals Python's
//! `json.dumps(keras.dtype_policies.serialize(p), separators=(",", ":"))`.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value, json};

use crate::error::{Error, Result};
use crate::policy::any::Policy;
use crate::policy::float::DTypePolicy;
use crate::policy::map::{DTypePolicyMap, DefaultArg};
use crate::policy::python::{json_type, py_str};
use crate::policy::quantized::{
    GroupwiseDTypePolicy, Int4DTypePolicy, QuantizedDTypePolicy, QuantizedFloat8DTypePolicy,
};

const MAP_CLASS: &str = "DTypePolicyMap";

impl Policy {
    /// Keras's `get_config()`: `{"name": ...}` for float policies,
    /// `{"mode": ..., "source_name": ...}` (plus `amax_history_length` for
    /// float8) for quantized ones.
    pub fn get_config(&self) -> Value {
        self.config(false)
    }

    /// The config, with the names left out (`null`) when `deferred`: what a
    /// map without a default policy writes, so that loading resolves them
    /// against the global policy of that time.
    fn config(&self, deferred: bool) -> Value {
        let source = |p: &QuantizedDTypePolicy| {
            if deferred {
                Value::Null
            } else {
                Value::from(p.source_name())
            }
        };
        match self {
            Policy::Float(p) if deferred => json!({ "name": null }),
            Policy::Float(p) => json!({ "name": p.name() }),
            Policy::Quantized(p) => json!({
                "mode": p.quantization_mode().map(|m| m.as_str()),
                "source_name": source(p),
            }),
            Policy::Float8(p) => json!({
                "mode": p.quantization_mode().map(|m| m.as_str()),
                "source_name": source(p.base()),
                "amax_history_length": p.amax_history_length(),
            }),
            // Keras rebuilds the mode from the parsed block size ("int4/0128" → "int4/128").
            Policy::Int4(p) => json!({
                "mode": format!("int4/{}", p.block_size()),
                "source_name": source(p.base()),
            }),
            Policy::Groupwise(p) => json!({
                "mode": format!(
                    "{}/{}/{}",
                    p.quantization_mode().map_or("", |m| m.as_str()),
                    p.weight_bits(),
                    p.group_size()
                ),
                "source_name": source(p.base()),
            }),
        }
    }

    /// Keras's `cls.from_config(config)` for the class named `class_name`.
    /// Missing or `null` names resolve against the global policy, as in Keras.
    pub fn from_config(class_name: &str, config: &Value) -> Result<Policy> {
        let policy = match class_name {
            "DTypePolicy" | "FloatDTypePolicy" => {
                let class = if class_name == "DTypePolicy" {
                    "DTypePolicy"
                } else {
                    "FloatDTypePolicy"
                };
                let args = ConfigArgs::new(class, config, &["name"])?;
                let policy = match args.get("name") {
                    None => DTypePolicy::from_global(),
                    Some(Value::String(name)) => DTypePolicy::new(name),
                    Some(other) => Err(name_not_string(other)),
                };
                let policy = wrap_type_error(class, policy)?;
                if class == "FloatDTypePolicy" {
                    Policy::Float(policy.into_float_dtype_policy_class())
                } else {
                    Policy::Float(policy)
                }
            }
            "QuantizedDTypePolicy" => {
                let class = "QuantizedDTypePolicy";
                let args = ConfigArgs::new(class, config, &["mode", "source_name"])?;
                let mode = args.mode()?;
                let source = args.source_name();
                let policy = source.and_then(|s| QuantizedDTypePolicy::new(&mode, s.as_deref()));
                Policy::Quantized(wrap_type_error(class, policy)?)
            }
            "QuantizedFloat8DTypePolicy" => {
                let class = "QuantizedFloat8DTypePolicy";
                let allowed = ["mode", "source_name", "amax_history_length"];
                let args = ConfigArgs::new(class, config, &allowed)?;
                let mode = args.mode()?;
                let source = args.source_name();
                let policy = source.and_then(|s| {
                    let length = match args.get("amax_history_length") {
                        None => i64::from(QuantizedFloat8DTypePolicy::DEFAULT_AMAX_HISTORY_LENGTH),
                        Some(v) => v
                            .as_i64()
                            .ok_or_else(|| Error::AmaxHistoryLengthNotInteger(py_str(v)))?,
                    };
                    QuantizedFloat8DTypePolicy::new(&mode, s.as_deref(), length)
                });
                Policy::Float8(wrap_type_error(class, policy)?)
            }
            "Int4DTypePolicy" => {
                let class = "Int4DTypePolicy";
                let args = ConfigArgs::new(class, config, &["mode", "source_name"])?;
                let mode = args.mode()?;
                let source = args.source_name();
                let policy = source.and_then(|s| Int4DTypePolicy::new(&mode, s.as_deref()));
                Policy::Int4(wrap_type_error(class, policy)?)
            }
            "GPTQDTypePolicy" | "AWQDTypePolicy" => {
                let gptq = class_name == "GPTQDTypePolicy";
                let class = if gptq {
                    "GPTQDTypePolicy"
                } else {
                    "AWQDTypePolicy"
                };
                let args = ConfigArgs::new(class, config, &["mode", "source_name"])?;
                let mode = args.mode()?;
                let source = args.source_name();
                let policy = source.and_then(|s| {
                    if gptq {
                        GroupwiseDTypePolicy::gptq(&mode, s.as_deref())
                    } else {
                        GroupwiseDTypePolicy::awq(&mode, s.as_deref())
                    }
                });
                Policy::Groupwise(wrap_type_error(class, policy)?)
            }
            MAP_CLASS => {
                return Err(Error::InvalidJson {
                    what: "a dtype policy",
                    reason: "a DTypePolicyMap is not a single policy; read it with \
                             DTypePolicyMap::from_keras_value"
                        .to_owned(),
                });
            }
            other => return Err(Error::UnknownClass(other.to_owned())),
        };
        Ok(policy)
    }

    /// Keras's `keras.dtype_policies.serialize(policy)`: the whole object
    /// with `module`, `class_name`, `config` and `registered_name`.
    pub fn to_keras_value(&self) -> Value {
        self.serialized(false)
    }

    fn serialized(&self, deferred: bool) -> Value {
        let module = match self {
            Policy::Float(_) => "keras",
            _ => "keras.dtype_policies",
        };
        serialized_object(module, self.class_name(), self.config(deferred))
    }

    /// Keras's `keras.dtype_policies.get(identifier)` for JSON: a serialized
    /// object or a policy name.
    pub fn from_keras_value(value: &Value) -> Result<Policy> {
        match value {
            Value::String(name) => name.parse(),
            Value::Object(_) => {
                let (class_name, config) = split_serialized(value, "a dtype policy")?;
                Policy::from_config(class_name, config)
            }
            other => Err(Error::InvalidJson {
                what: "a dtype policy",
                reason: format!(
                    "expected a policy name or a serialized policy object, got JSON {}",
                    json_type(other)
                ),
            }),
        }
    }

    /// [`Policy::to_keras_value`] as compact JSON text.
    pub fn to_keras_json(&self) -> String {
        self.to_keras_value().to_string()
    }

    /// [`Policy::from_keras_value`] from JSON text.
    pub fn from_keras_json(text: &str) -> Result<Policy> {
        Policy::from_keras_value(&serde_json::from_str(text)?)
    }
}

impl DTypePolicyMap {
    /// Keras's `get_config()` of a map: `{"default_policy": ..., "policy_map": {...}}`.
    ///
    /// When the map was built without a default policy, Keras writes every
    /// entry without its name (`{"name": null}`, `"source_name": null`), to
    /// be resolved against the global policy when loaded; this does the
    /// same, so the JSON is the one Keras writes. Give the map a default to
    /// keep the names.
    pub fn get_config(&self) -> Value {
        let deferred = *self.default_arg() == DefaultArg::Global;
        let default_policy = match self.default_arg() {
            DefaultArg::Global => Value::Null,
            DefaultArg::Name(name) => Value::from(name.as_str()),
            DefaultArg::Object => self.default_policy().to_keras_value(),
        };
        let policy_map: Map<String, Value> = self
            .iter()
            .map(|(key, policy)| (key.to_owned(), policy.serialized(deferred)))
            .collect();
        json!({ "default_policy": default_policy, "policy_map": policy_map })
    }

    /// Keras's `DTypePolicyMap.from_config(config)`.
    pub fn from_config(config: &Value) -> Result<Self> {
        let args = ConfigArgs::new(MAP_CLASS, config, &["default_policy", "policy_map"])?;
        let mut map = match args.get("default_policy") {
            None => DTypePolicyMap::new(),
            Some(Value::String(name)) => DTypePolicyMap::with_default_name(name)?,
            Some(value) => {
                if matches!(
                    split_serialized(value, "a default policy"),
                    Ok((MAP_CLASS, _))
                ) {
                    return Err(Error::MapAsDefault);
                }
                DTypePolicyMap::with_default(Policy::from_keras_value(value)?)
            }
        };
        let entries = match args.get("policy_map") {
            Some(Value::Object(entries)) => entries,
            Some(other) => {
                return Err(Error::InvalidJson {
                    what: "a DTypePolicyMap",
                    reason: format!(
                        "'policy_map' must be an object, got JSON {}",
                        json_type(other)
                    ),
                });
            }
            None => {
                return Err(Error::MissingConfigKey {
                    class: MAP_CLASS,
                    key: "policy_map",
                });
            }
        };
        for (key, value) in entries {
            if matches!(split_serialized(value, "a map value"), Ok((MAP_CLASS, _))) {
                return Err(Error::MapAsValue(key.clone()));
            }
            map.insert_policy(key.clone(), Policy::from_keras_value(value)?)?;
        }
        Ok(map)
    }

    /// Keras's `keras.dtype_policies.serialize(map)`.
    pub fn to_keras_value(&self) -> Value {
        serialized_object("keras.dtype_policies", MAP_CLASS, self.get_config())
    }

    /// Reads a serialized `DTypePolicyMap` object, as found under a layer's
    /// `"dtype"` in a Keras `config.json`.
    pub fn from_keras_value(value: &Value) -> Result<Self> {
        let (class_name, config) = split_serialized(value, "a DTypePolicyMap")?;
        if class_name != MAP_CLASS {
            return Err(Error::InvalidJson {
                what: "a DTypePolicyMap",
                reason: format!("class_name is '{class_name}', expected '{MAP_CLASS}'"),
            });
        }
        DTypePolicyMap::from_config(config)
    }

    /// [`DTypePolicyMap::to_keras_value`] as compact JSON text.
    pub fn to_keras_json(&self) -> String {
        self.to_keras_value().to_string()
    }

    /// [`DTypePolicyMap::from_keras_value`] from JSON text.
    pub fn from_keras_json(text: &str) -> Result<Self> {
        DTypePolicyMap::from_keras_value(&serde_json::from_str(text)?)
    }
}

fn serialized_object(module: &str, class_name: &str, config: Value) -> Value {
    json!({
        "module": module,
        "class_name": class_name,
        "config": config,
        "registered_name": null,
    })
}

/// The `class_name` and `config` of a serialized object. `module` and
/// `registered_name` are not needed to find a built-in class, as in Keras.
fn split_serialized<'v>(value: &'v Value, what: &'static str) -> Result<(&'v str, &'v Value)> {
    let invalid = |reason: String| Error::InvalidJson { what, reason };
    let Value::Object(object) = value else {
        return Err(invalid(format!(
            "expected a serialized object, got JSON {}",
            json_type(value)
        )));
    };
    let class_name = match object.get("class_name") {
        Some(Value::String(name)) => name.as_str(),
        Some(other) => {
            return Err(invalid(format!(
                "'class_name' must be a string, got JSON {}",
                json_type(other)
            )));
        }
        None => return Err(invalid("the object has no 'class_name'".to_owned())),
    };
    let config = object
        .get("config")
        .ok_or_else(|| invalid(format!("the {class_name} object has no 'config'")))?;
    Ok((class_name, config))
}

/// The keyword arguments of one constructor, read from a config object.
struct ConfigArgs<'v> {
    class: &'static str,
    args: &'v Map<String, Value>,
}

impl<'v> ConfigArgs<'v> {
    fn new(class: &'static str, config: &'v Value, allowed: &[&str]) -> Result<Self> {
        let Value::Object(args) = config else {
            return Err(Error::InvalidJson {
                what: "a dtype policy config",
                reason: format!(
                    "the {class} config must be an object, got JSON {}",
                    json_type(config)
                ),
            });
        };
        if let Some(key) = args.keys().find(|k| !allowed.contains(&k.as_str())) {
            let source = Error::UnexpectedConfigKey {
                class,
                key: key.clone(),
            };
            return Err(Error::Deserialize {
                class,
                source: Box::new(source),
            });
        }
        Ok(ConfigArgs { class, args })
    }

    /// A present, non-null argument.
    fn get(&self, key: &str) -> Option<&'v Value> {
        self.args.get(key).filter(|v| !v.is_null())
    }

    /// The required `mode`. Keras formats a non-string mode into its error
    /// messages; the constructors then reject it, so it is passed on as text.
    fn mode(&self) -> Result<String> {
        match self.args.get("mode") {
            Some(Value::String(mode)) => Ok(mode.clone()),
            Some(other) => Ok(py_str(other)),
            None => Err(Error::Deserialize {
                class: self.class,
                source: Box::new(Error::MissingConfigKey {
                    class: self.class,
                    key: "mode",
                }),
            }),
        }
    }

    /// The optional `source_name`; `None` means the global policy's.
    fn source_name(&self) -> Result<Option<String>> {
        match self.get("source_name") {
            None => Ok(None),
            Some(Value::String(name)) => Ok(Some(name.clone())),
            Some(other) => Err(name_not_string(other)),
        }
    }
}

fn name_not_string(value: &Value) -> Error {
    Error::PolicyNameNotString {
        received: py_str(value),
        json_type: json_type(value),
    }
}

/// Keras's deserializer re-raises a constructor's `TypeError` as "could not
/// be deserialized properly"; other errors pass through unchanged.
fn wrap_type_error<T>(class: &'static str, result: Result<T>) -> Result<T> {
    result.map_err(|e| {
        if e.keras_exception() == "TypeError" && !matches!(e, Error::Deserialize { .. }) {
            Error::Deserialize {
                class,
                source: Box::new(e),
            }
        } else {
            e
        }
    })
}

impl Serialize for Policy {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_keras_value().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Policy {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Policy::from_keras_value(&value).map_err(D::Error::custom)
    }
}

impl Serialize for DTypePolicyMap {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_keras_value().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for DTypePolicyMap {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        DTypePolicyMap::from_keras_value(&value).map_err(D::Error::custom)
    }
}

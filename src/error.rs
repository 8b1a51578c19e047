// SPDX-License-Identifier: MIT OR Apache-2.0
//! The crate's one error type.
//!
//! Messages reuse Keras's wording (the key words its users search for), with
//! Python-only details (such as `<class 'int'>`) replaced by what a Rust or
//! JSON user can act on. [`Error::keras_exception`] names the Python exception
//! class Keras raises for the same input, so the reference tests can check it.

use crate::policy::python::py_list_repr;

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A dtype name that Keras's `standardize_dtype` rejects.
    #[error("Invalid dtype: {0}")]
    InvalidDType(String),

    /// A policy name that is neither a dtype nor `mixed_float16`/`mixed_bfloat16`.
    #[error(
        "Cannot convert '{0}' to a mixed precision DTypePolicy. Valid policies include \
         'mixed_float16', 'mixed_bfloat16', and the name of any float dtype such as 'float32'."
    )]
    InvalidPolicyName(String),

    /// A policy name in a JSON config that is not a string.
    #[error(
        "'name' must be a string, such as 'mixed_float16'. Received: name={received} \
         (of type JSON {json_type})"
    )]
    PolicyNameNotString {
        /// The value received, written as Python would print it.
        received: String,
        /// The JSON type of the value received.
        json_type: &'static str,
    },

    /// A quantization mode outside Keras's `QUANTIZATION_MODES`.
    #[error(
        "Invalid quantization mode. Expected one of ('int8', 'float8', 'int4', 'gptq', 'awq'). \
         Received: mode={0}"
    )]
    InvalidQuantizationMode(String),

    /// A quantization mode that Keras refuses for the source policy's compute dtype.
    #[error("Quantization mode='{mode}' doesn't work well with compute_dtype='{compute_dtype}'.")]
    IncompatibleComputeDType {
        /// The quantization mode.
        mode: String,
        /// The compute dtype of the source policy.
        compute_dtype: String,
    },

    /// A quantized policy string that does not split on `_from_` into two parts.
    #[error(
        "Cannot convert `policy` into a valid pair (`mode`, `source_name`) to instantiate \
         `QuantizedDTypePolicy`. Received: policy={0}"
    )]
    InvalidPolicyPair(String),

    /// A mode string of the wrong shape for a policy class (`int4/<block_size>`, ...).
    #[error("Invalid mode for {class}. Expected format {format}, but got '{mode}'.")]
    ModeFormat {
        /// The Keras class whose mode was malformed.
        class: &'static str,
        /// The format that class expects.
        format: &'static str,
        /// The mode received.
        mode: String,
    },

    /// A mode string whose numeric fields are not integers.
    #[error("Invalid mode for {class}. {requirement}. Expected format {format}, but got '{mode}'.")]
    ModeNotInteger {
        /// The Keras class whose mode was malformed.
        class: &'static str,
        /// Which fields must be integers.
        requirement: &'static str,
        /// The format that class expects.
        format: &'static str,
        /// The mode received.
        mode: String,
    },

    /// An int4 block size that is neither -1 nor positive.
    #[error(
        "Invalid block_size in mode. Supported values are -1 (per-channel) or a positive integer \
         (sub-channel), but got {value} from '{mode}'."
    )]
    InvalidBlockSize {
        /// The block size received.
        value: String,
        /// The whole mode string.
        mode: String,
    },

    /// A GPTQ or AWQ weight width that the algorithm does not support.
    #[error("Invalid weight_bits in mode. {supported}, but got {value} from '{mode}'.")]
    InvalidWeightBits {
        /// What is supported, in Keras's words.
        supported: &'static str,
        /// The width received.
        value: i64,
        /// The whole mode string.
        mode: String,
    },

    /// A GPTQ or AWQ group size that is neither -1 nor positive.
    #[error(
        "Invalid group_size in mode. Supported values are -1 ({meaning}) or a positive integer, \
         but got {value} from '{mode}'."
    )]
    InvalidGroupSize {
        /// What -1 means for this algorithm.
        meaning: &'static str,
        /// The group size received.
        value: i64,
        /// The whole mode string.
        mode: String,
    },

    /// An integer field of a mode string that does not fit this crate's types.
    #[error("{field} {value} in mode '{mode}' is out of range: at most {max} is supported.")]
    ModeIntegerOutOfRange {
        /// The field (`block_size`, `group_size`).
        field: &'static str,
        /// The value received.
        value: String,
        /// The whole mode string.
        mode: String,
        /// The largest value supported.
        max: u32,
    },

    /// An `amax_history_length` that is not an integer.
    #[error("`amax_history_length` must be an integer. Received: amax_history_length={0}")]
    AmaxHistoryLengthNotInteger(String),

    /// An `amax_history_length` below 1 or too large to allocate (Keras does not check).
    #[error(
        "`amax_history_length` must be between 1 and {max}: the amax history needs at least one \
         entry. Received: amax_history_length={received}"
    )]
    AmaxHistoryLengthOutOfRange {
        /// The length received.
        received: i64,
        /// The largest length supported.
        max: u32,
    },

    /// A layer path that fully matches more than one regex key of a map.
    #[error(
        "Path '{path}' matches multiple dtype policy specification keys: {keys}. Please make sure \
         each path only matches at most one dtype policy specification key in the DTypePolicyMap.",
        keys = py_list_repr(keys)
    )]
    MultipleMatches {
        /// The path looked up.
        path: String,
        /// Every key that matched, in insertion order.
        keys: Vec<String>,
    },

    /// An insert with a key the map already has.
    #[error(
        "{key} already exist in the DTypePolicyMap with value {existing}. Please make sure to not \
         use duplicated keys."
    )]
    DuplicateKey {
        /// The key.
        key: String,
        /// The policy already stored under it, as Keras prints it.
        existing: String,
    },

    /// A map value that is not a policy and not a valid policy name.
    #[error(
        "Cannot interpret the assigned value by `keras.dtype_policies.get`. Received: {received} \
         of type {received_type}: {source}"
    )]
    UninterpretableValue {
        /// The value received.
        received: String,
        /// Its type.
        received_type: &'static str,
        /// Why it could not be interpreted.
        #[source]
        source: Box<Error>,
    },

    /// A map key that is not a valid regular expression (Keras finds this only at lookup).
    #[error(
        "Key '{key}' of the DTypePolicyMap is not a valid regular expression: every key is also \
         matched as a full regex against layer paths (Rust regex syntax: no look-around, no \
         backreferences); escape metacharacters with a backslash to match them literally. {source}"
    )]
    InvalidRegexKey {
        /// The key.
        key: String,
        /// The regex compiler's explanation.
        #[source]
        source: regex::Error,
    },

    /// A remove of a key the map does not have.
    #[error("Key '{0}' is not in the DTypePolicyMap.")]
    KeyNotFound(String),

    /// A map given as the default policy of a map.
    #[error("`default_policy` cannot be a `DTypePolicyMap`.")]
    MapAsDefault,

    /// A map given as a value of a map.
    #[error(
        "A DTypePolicyMap cannot be a value of a DTypePolicyMap (key '{0}'): give each path its \
         own policy."
    )]
    MapAsValue(String),

    /// A serialized object whose `class_name` is not a dtype policy class.
    #[error(
        "Unknown dtype policy class_name '{0}'. Expected one of: DTypePolicy, FloatDTypePolicy, \
         QuantizedDTypePolicy, QuantizedFloat8DTypePolicy, Int4DTypePolicy, GPTQDTypePolicy, \
         AWQDTypePolicy, DTypePolicyMap."
    )]
    UnknownClass(String),

    /// JSON that does not have the shape of a Keras serialized object or config.
    #[error("Invalid Keras JSON for {what}: {reason}")]
    InvalidJson {
        /// What was being read.
        what: &'static str,
        /// What was wrong with it.
        reason: String,
    },

    /// A config key that the class's constructor does not take.
    #[error("{class} config got an unexpected keyword argument '{key}'")]
    UnexpectedConfigKey {
        /// The class.
        class: &'static str,
        /// The key.
        key: String,
    },

    /// A config that lacks a key the class's constructor requires.
    #[error("{class} config is missing 1 required argument: '{key}'")]
    MissingConfigKey {
        /// The class.
        class: &'static str,
        /// The key.
        key: &'static str,
    },

    /// A config that Keras would reject with a `TypeError` while deserializing.
    #[error("{class} could not be deserialized properly: {source}")]
    Deserialize {
        /// The class named by `class_name`.
        class: &'static str,
        /// The error raised by its `from_config`.
        #[source]
        source: Box<Error>,
    },

    /// Something this crate, or this adapter, cannot do: what, and what to do instead.
    #[error("{0}")]
    Unsupported(String),

    /// An argument outside the values a function or command takes.
    #[error("{0}")]
    InvalidArgument(String),

    /// Arrays whose lengths do not fit the shapes given, or shapes too large
    /// or empty.
    #[error("Shape mismatch: {0}")]
    Shape(String),

    /// A GPU error.
    #[error(transparent)]
    Gpu(#[from] crate::gpu::GpuError),

    /// An error while planning, uploading or running one layer.
    #[error("Layer '{path}': {source}")]
    Layer {
        /// The layer's path.
        path: String,
        /// What went wrong.
        #[source]
        source: Box<Error>,
    },

    /// A file (or a part of one: a zip member, an HDF5 object) that is not
    /// what it claims to be, or breaks a loader's limits.
    #[error("{file}: {reason}")]
    File {
        /// The file, and where in it (`model.keras: model.weights.h5`).
        file: String,
        /// What is wrong, and what was expected.
        reason: String,
    },

    /// A file that cannot be read at all.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },

    /// Text that is not JSON at all.
    #[error("Invalid JSON: {0}")]
    Json(#[from] serde_json::Error),
}

impl Error {
    /// The Python exception class Keras 3.15.1 raises for the same input
    /// (`"ValueError"`, `"TypeError"` or `"KeyError"`).
    pub fn keras_exception(&self) -> &'static str {
        match self {
            Error::PolicyNameNotString { .. }
            | Error::AmaxHistoryLengthNotInteger(_)
            | Error::UnexpectedConfigKey { .. }
            | Error::MissingConfigKey { .. }
            | Error::Deserialize { .. } => "TypeError",
            Error::KeyNotFound(_) => "KeyError",
            _ => "ValueError",
        }
    }
}

impl Error {
    /// This error in the layer at `path` (an error that already names a
    /// layer is kept as it is).
    pub fn in_layer(self, path: &str) -> Error {
        match self {
            Error::Layer { .. } => self,
            other => Error::Layer {
                path: path.to_owned(),
                source: Box::new(other),
            },
        }
    }
}

impl Error {
    /// A [`Error::File`] error.
    pub(crate) fn file(file: impl Into<String>, reason: impl Into<String>) -> Error {
        Error::File {
            file: file.into(),
            reason: reason.into(),
        }
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

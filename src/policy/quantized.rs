// SPDX-License-Identifier: MIT OR Apache-2.0
//! Quantized dtype policies: `QuantizedDTypePolicy` and its subclasses for
//! float8 (`QuantizedFloat8DTypePolicy`), grouped int4 (`Int4DTypePolicy`) and
//! the GPTQ / AWQ weight-only schemes.

use std::fmt;
use std::num::NonZeroU32;
use std::str::FromStr;

use crate::error::{Error, Result};
use crate::policy::dtype::DType;
use crate::policy::float::DTypePolicy;
use crate::policy::python::{PyInt, py_int};

/// A Keras quantization mode (`keras.src.dtype_policies.QUANTIZATION_MODES`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuantizationMode {
    /// Abs-max int8 weights (and activations).
    Int8,
    /// Float8 (e4m3 forward) with delayed scaling.
    Float8,
    /// Int4 weights, per output channel or in groups along the input.
    Int4,
    /// GPTQ weight-only quantization.
    Gptq,
    /// AWQ weight-only quantization.
    Awq,
}

impl QuantizationMode {
    /// Every mode, in Keras's order.
    pub const ALL: [QuantizationMode; 5] = [
        QuantizationMode::Int8,
        QuantizationMode::Float8,
        QuantizationMode::Int4,
        QuantizationMode::Gptq,
        QuantizationMode::Awq,
    ];

    /// The mode's Keras name.
    pub const fn as_str(self) -> &'static str {
        match self {
            QuantizationMode::Int8 => "int8",
            QuantizationMode::Float8 => "float8",
            QuantizationMode::Int4 => "int4",
            QuantizationMode::Gptq => "gptq",
            QuantizationMode::Awq => "awq",
        }
    }
}

impl FromStr for QuantizationMode {
    type Err = Error;

    fn from_str(mode: &str) -> Result<Self> {
        QuantizationMode::ALL
            .into_iter()
            .find(|m| m.as_str() == mode)
            .ok_or_else(|| Error::InvalidQuantizationMode(mode.to_owned()))
    }
}

impl fmt::Display for QuantizationMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A quantized policy: a mode applied on top of a source float policy
/// (Keras's `QuantizedDTypePolicy(mode, source_name)`), named
/// `"{mode}_from_{source_name}"`. The compute and variable dtypes are the
/// source's.
///
/// ```
/// use dtype_policy::{DType, QuantizedDTypePolicy};
/// let p = QuantizedDTypePolicy::new("int8", Some("mixed_bfloat16"))?;
/// assert_eq!(p.name(), "int8_from_mixed_bfloat16");
/// assert_eq!(p.compute_dtype(), DType::BFloat16);
/// assert!(QuantizedDTypePolicy::new("int8", Some("float16")).is_err());
/// # Ok::<(), dtype_policy::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuantizedDTypePolicy {
    name: String,
    mode: QuantizationMode,
    source: DTypePolicy,
}

impl QuantizedDTypePolicy {
    /// Keras's `QuantizedDTypePolicy(mode, source_name)`. With no source name,
    /// the global policy's name is used. Errors in the source come first.
    pub fn new(mode: &str, source_name: Option<&str>) -> Result<Self> {
        let source = source_policy(source_name)?;
        let parsed = check_mode(mode, source.compute_dtype())?;
        Ok(QuantizedDTypePolicy {
            name: format!("{mode}_from_{}", source.name()),
            mode: parsed,
            source,
        })
    }

    /// The name, `"{mode}_from_{source_name}"`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The source policy's compute dtype.
    pub fn compute_dtype(&self) -> DType {
        self.source.compute_dtype()
    }

    /// The source policy's variable dtype.
    pub fn variable_dtype(&self) -> DType {
        self.source.variable_dtype()
    }

    /// The quantization mode (never `None` for this type).
    pub fn quantization_mode(&self) -> Option<QuantizationMode> {
        Some(self.mode)
    }

    /// The name of the float policy this one quantizes.
    pub fn source_name(&self) -> &str {
        self.source.name()
    }

    /// The float policy this one quantizes.
    pub fn source(&self) -> &DTypePolicy {
        &self.source
    }

    /// A copy whose name starts with `mode_text` instead of the plain mode,
    /// for the subclasses whose mode string carries parameters.
    fn renamed(mut self, mode_text: &str) -> Self {
        self.name = format!("{mode_text}_from_{}", self.source.name());
        self
    }
}

/// The source policy of a quantized policy: named, or the global policy's name.
fn source_policy(source_name: Option<&str>) -> Result<DTypePolicy> {
    match source_name {
        Some(name) => DTypePolicy::new(name),
        None => DTypePolicy::from_global(),
    }
}

/// Keras's `QuantizedDTypePolicy._check_quantization_mode`.
fn check_mode(mode: &str, compute_dtype: DType) -> Result<QuantizationMode> {
    let parsed: QuantizationMode = mode.parse()?;
    if parsed == QuantizationMode::Int8 && compute_dtype == DType::Float16 {
        return Err(Error::IncompatibleComputeDType {
            mode: mode.to_owned(),
            compute_dtype: compute_dtype.name().to_owned(),
        });
    }
    Ok(parsed)
}

/// A float8 policy with delayed scaling (Keras's `QuantizedFloat8DTypePolicy`).
///
/// `amax_history_length` is how many past abs-max values the scale is taken
/// from. Keras accepts any integer; this crate requires at least 1, since the
/// delayed scale is the maximum of that history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuantizedFloat8DTypePolicy {
    base: QuantizedDTypePolicy,
    amax_history_length: u32,
}

impl QuantizedFloat8DTypePolicy {
    /// Keras's default history length.
    pub const DEFAULT_AMAX_HISTORY_LENGTH: u32 = 1024;

    /// Keras's `QuantizedFloat8DTypePolicy(mode, source_name, amax_history_length)`.
    pub fn new(mode: &str, source_name: Option<&str>, amax_history_length: i64) -> Result<Self> {
        let base = QuantizedDTypePolicy::new(mode, source_name)?;
        let amax_history_length = u32::try_from(amax_history_length)
            .ok()
            .filter(|&n| n >= 1)
            .ok_or(Error::AmaxHistoryLengthOutOfRange {
                received: amax_history_length,
                max: u32::MAX,
            })?;
        Ok(QuantizedFloat8DTypePolicy {
            base,
            amax_history_length,
        })
    }

    /// The length of the amax history window.
    pub fn amax_history_length(&self) -> u32 {
        self.amax_history_length
    }

    /// The policy without its float8 settings.
    pub fn base(&self) -> &QuantizedDTypePolicy {
        &self.base
    }
}

/// An int4 policy whose mode names a block size, `"int4/<block_size>"`
/// (Keras's `Int4DTypePolicy`): -1 means one scale per output channel, a
/// positive size means groups of that many input rows with zero points.
///
/// Keras names a policy made with no source `"int4/128_from_None"`; this crate
/// names it after the global policy it actually uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Int4DTypePolicy {
    base: QuantizedDTypePolicy,
    block_size: Option<NonZeroU32>,
}

impl Int4DTypePolicy {
    const CLASS: &'static str = "Int4DTypePolicy";
    const FORMAT: &'static str = "'int4/<block_size>'";

    /// Keras's `Int4DTypePolicy(mode, source_name)`; the mode is checked
    /// before the source.
    pub fn new(mode: &str, source_name: Option<&str>) -> Result<Self> {
        let parts = split_mode(mode, "int4", 2, Self::CLASS, Self::FORMAT)?;
        let block = parse_mode_int(parts[1], mode, "block_size", |_| Error::ModeNotInteger {
            class: Self::CLASS,
            requirement: "<block_size> must be an integer",
            format: Self::FORMAT,
            mode: mode.to_owned(),
        })?;
        let block_size = positive_or_minus_one(block).ok_or_else(|| Error::InvalidBlockSize {
            value: block.to_string(),
            mode: mode.to_owned(),
        })?;
        let block_size = block_size
            .map(|b| to_u32(b, "block_size", mode))
            .transpose()?;
        let base = QuantizedDTypePolicy::new("int4", source_name)?.renamed(mode);
        Ok(Int4DTypePolicy { base, block_size })
    }

    /// Keras's `block_size`: -1 per channel, else the group size.
    pub fn block_size(&self) -> i64 {
        self.block_size.map_or(-1, |b| i64::from(b.get()))
    }

    /// The group size along the input dimension, or `None` for per-channel.
    pub fn group_size(&self) -> Option<NonZeroU32> {
        self.block_size
    }

    /// The policy without its int4 settings; its name keeps the mode as given.
    pub fn base(&self) -> &QuantizedDTypePolicy {
        &self.base
    }
}

/// A GPTQ or AWQ weight-only policy, mode `"gptq/<weight_bits>/<group_size>"`
/// or `"awq/<weight_bits>/<group_size>"` (Keras's `GPTQDTypePolicy` and
/// `AWQDTypePolicy`). The policy layer knows them so that Keras configs that
/// use them load; no GPU kernel runs them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupwiseDTypePolicy {
    base: QuantizedDTypePolicy,
    weight_bits: u8,
    group_size: Option<NonZeroU32>,
}

/// What distinguishes GPTQ from AWQ when reading a mode string.
struct GroupwiseRules {
    mode: QuantizationMode,
    class: &'static str,
    format: &'static str,
    weight_bits: &'static [i64],
    bits_message: &'static str,
    minus_one_meaning: &'static str,
}

const GPTQ_RULES: GroupwiseRules = GroupwiseRules {
    mode: QuantizationMode::Gptq,
    class: "GPTQDTypePolicy",
    format: "'gptq/<weight_bits>/<group_size>'",
    weight_bits: &[2, 3, 4, 8],
    bits_message: "Supported values are 2, 3, 4, and 8",
    minus_one_meaning: "whole-tensor",
};

const AWQ_RULES: GroupwiseRules = GroupwiseRules {
    mode: QuantizationMode::Awq,
    class: "AWQDTypePolicy",
    format: "'awq/<weight_bits>/<group_size>'",
    weight_bits: &[4],
    bits_message: "AWQ only supports 4-bit quantization",
    minus_one_meaning: "per-channel",
};

impl GroupwiseDTypePolicy {
    /// Keras's `GPTQDTypePolicy(mode, source_name)`.
    pub fn gptq(mode: &str, source_name: Option<&str>) -> Result<Self> {
        Self::with_rules(&GPTQ_RULES, mode, source_name)
    }

    /// Keras's `AWQDTypePolicy(mode, source_name)`.
    pub fn awq(mode: &str, source_name: Option<&str>) -> Result<Self> {
        Self::with_rules(&AWQ_RULES, mode, source_name)
    }

    fn with_rules(rules: &GroupwiseRules, mode: &str, source_name: Option<&str>) -> Result<Self> {
        let parts = split_mode(mode, rules.mode.as_str(), 3, rules.class, rules.format)?;
        let not_integer = |_: &str| Error::ModeNotInteger {
            class: rules.class,
            requirement: "<weight_bits> and <group_size> must be integers",
            format: rules.format,
            mode: mode.to_owned(),
        };
        let bits = parse_mode_int(parts[1], mode, "weight_bits", not_integer)?;
        let group = parse_mode_int(parts[2], mode, "group_size", not_integer)?;
        if !rules.weight_bits.contains(&bits) {
            return Err(Error::InvalidWeightBits {
                supported: rules.bits_message,
                value: bits,
                mode: mode.to_owned(),
            });
        }
        let group_size = positive_or_minus_one(group).ok_or_else(|| Error::InvalidGroupSize {
            meaning: rules.minus_one_meaning,
            value: group,
            mode: mode.to_owned(),
        })?;
        let group_size = group_size
            .map(|g| to_u32(g, "group_size", mode))
            .transpose()?;
        let base = QuantizedDTypePolicy::new(rules.mode.as_str(), source_name)?.renamed(mode);
        Ok(GroupwiseDTypePolicy {
            base,
            // The rules only admit widths from 2 to 8.
            weight_bits: bits as u8,
            group_size,
        })
    }

    /// The Keras class name: `GPTQDTypePolicy` or `AWQDTypePolicy`.
    pub fn class_name(&self) -> &'static str {
        self.rules().class
    }

    fn rules(&self) -> &'static GroupwiseRules {
        if self.base.mode == QuantizationMode::Gptq {
            &GPTQ_RULES
        } else {
            &AWQ_RULES
        }
    }

    /// Bits per quantized weight.
    pub fn weight_bits(&self) -> u8 {
        self.weight_bits
    }

    /// Keras's `group_size`: -1 for the algorithm's whole-tensor or
    /// per-channel form, else the group size.
    pub fn group_size(&self) -> i64 {
        self.group_size.map_or(-1, |g| i64::from(g.get()))
    }

    /// The policy without its GPTQ/AWQ settings; its name keeps the mode as given.
    pub fn base(&self) -> &QuantizedDTypePolicy {
        &self.base
    }
}

/// Splits `mode` on `/` and checks the part count and the leading algorithm
/// name, as the `Int4`, `GPTQ` and `AWQ` policies do.
fn split_mode<'a>(
    mode: &'a str,
    algorithm: &str,
    parts: usize,
    class: &'static str,
    format: &'static str,
) -> Result<Vec<&'a str>> {
    let split: Vec<&str> = mode.split('/').collect();
    if split.len() != parts || split[0] != algorithm {
        return Err(Error::ModeFormat {
            class,
            format,
            mode: mode.to_owned(),
        });
    }
    Ok(split)
}

/// Python's `int()` of one field of a mode string.
fn parse_mode_int(
    text: &str,
    mode: &str,
    field: &'static str,
    not_integer: impl Fn(&str) -> Error,
) -> Result<i64> {
    match py_int(text) {
        PyInt::Value(v) => Ok(v),
        PyInt::Overflow => Err(Error::ModeIntegerOutOfRange {
            field,
            value: text.trim().to_owned(),
            mode: mode.to_owned(),
            max: u32::MAX,
        }),
        PyInt::Invalid => Err(not_integer(text)),
    }
}

/// `Some(None)` for -1, `Some(Some(n))` for positive n, `None` otherwise.
fn positive_or_minus_one(value: i64) -> Option<Option<i64>> {
    match value {
        -1 => Some(None),
        v if v > 0 => Some(Some(v)),
        _ => None,
    }
}

fn to_u32(value: i64, field: &'static str, mode: &str) -> Result<NonZeroU32> {
    u32::try_from(value)
        .ok()
        .and_then(NonZeroU32::new)
        .ok_or_else(|| Error::ModeIntegerOutOfRange {
            field,
            value: value.to_string(),
            mode: mode.to_owned(),
            max: u32::MAX,
        })
}

/// Keras's `_get_quantized_dtype_policy_by_str`, for names that start with a
/// quantization mode. Returns the policy as the enum that holds any policy.
pub(crate) fn parse_quantized(policy: &str) -> Result<crate::Policy> {
    use crate::Policy;
    let split: Vec<&str> = policy.split("_from_").collect();
    let [mode, source] = split[..] else {
        return Err(Error::InvalidPolicyPair(policy.to_owned()));
    };
    let source = Some(source);
    if policy.starts_with("int8") {
        QuantizedDTypePolicy::new(mode, source).map(Policy::Quantized)
    } else if policy.starts_with("int4") {
        if mode.contains('/') {
            Int4DTypePolicy::new(mode, source).map(Policy::Int4)
        } else {
            QuantizedDTypePolicy::new(mode, source).map(Policy::Quantized)
        }
    } else if policy.starts_with("gptq") {
        GroupwiseDTypePolicy::gptq(mode, source).map(Policy::Groupwise)
    } else if policy.starts_with("awq") {
        GroupwiseDTypePolicy::awq(mode, source).map(Policy::Groupwise)
    } else {
        QuantizedFloat8DTypePolicy::new(
            mode,
            source,
            i64::from(QuantizedFloat8DTypePolicy::DEFAULT_AMAX_HISTORY_LENGTH),
        )
        .map(Policy::Float8)
    }
}

/// Whether a policy string is dispatched to the quantized parser (Keras's
/// `policy.startswith(QUANTIZATION_MODES)`).
pub(crate) fn starts_with_quantization_mode(policy: &str) -> bool {
    QuantizationMode::ALL
        .iter()
        .any(|m| policy.starts_with(m.as_str()))
}

/// The accessors every quantized subclass shares with its base, as Keras's
/// subclasses inherit them.
macro_rules! delegate_to_base {
    ($($ty:ty => $class:expr),* $(,)?) => {$(
        impl $ty {
            /// The name, `"{mode}_from_{source_name}"` with the mode as given.
            pub fn name(&self) -> &str {
                self.base.name()
            }

            /// The source policy's compute dtype.
            pub fn compute_dtype(&self) -> DType {
                self.base.compute_dtype()
            }

            /// The source policy's variable dtype.
            pub fn variable_dtype(&self) -> DType {
                self.base.variable_dtype()
            }

            /// The quantization mode (for `int4/<block>` it is `int4`).
            pub fn quantization_mode(&self) -> Option<QuantizationMode> {
                self.base.quantization_mode()
            }

            /// The name of the float policy this one quantizes.
            pub fn source_name(&self) -> &str {
                self.base.source_name()
            }
        }

        impl fmt::Display for $ty {
            /// Keras's `repr()`: `<ClassName "name">`.
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let class: &str = $class(self);
                write!(f, "<{class} \"{}\">", self.name())
            }
        }
    )*};
}

delegate_to_base!(
    QuantizedFloat8DTypePolicy => |_: &QuantizedFloat8DTypePolicy| "QuantizedFloat8DTypePolicy",
    Int4DTypePolicy => |_: &Int4DTypePolicy| "Int4DTypePolicy",
    GroupwiseDTypePolicy => GroupwiseDTypePolicy::class_name,
);

impl fmt::Display for QuantizedDTypePolicy {
    /// Keras's `repr()`: `<QuantizedDTypePolicy "int8_from_float32">`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<QuantizedDTypePolicy \"{}\">", self.name)
    }
}

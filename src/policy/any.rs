// SPDX-License-Identifier: MIT OR Apache-2.0
//! [`Policy`]: any one dtype policy, and the parsing of policy strings.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};
use crate::policy::dtype::DType;
use crate::policy::float::DTypePolicy;
use crate::policy::quantized::{
    GroupwiseDTypePolicy, Int4DTypePolicy, QuantizationMode, QuantizedDTypePolicy,
    QuantizedFloat8DTypePolicy, parse_quantized, starts_with_quantization_mode,
};

/// Any dtype policy: what a layer is given and what a [`DTypePolicyMap`]
/// stores (in Keras, every class below derives from `DTypePolicy`).
///
/// Parse one from a string as Keras's `keras.dtype_policies.get` does: names
/// that start with a quantization mode (`int8`, `float8`, `int4`, `gptq`,
/// `awq`) must be `"{mode}_from_{source}"`; every other name is a
/// [`DTypePolicy`] name.
///
/// ```
/// use dtype_policy::{Policy, QuantizationMode};
/// let p: Policy = "int4/128_from_float32".parse()?;
/// assert_eq!(p.to_string(), r#"<Int4DTypePolicy "int4/128_from_float32">"#);
/// assert_eq!(p.quantization_mode(), Some(QuantizationMode::Int4));
/// // "int8" is a dtype, but as a policy string it starts with a mode:
/// assert!("int8".parse::<Policy>().is_err());
/// # Ok::<(), dtype_policy::Error>(())
/// ```
///
/// Equality is Keras's: same class (the float classes count as one), same
/// name, and for float8 the same history length.
///
/// [`DTypePolicyMap`]: crate::DTypePolicyMap
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Policy {
    /// `DTypePolicy` / `FloatDTypePolicy`.
    Float(DTypePolicy),
    /// `QuantizedDTypePolicy` (int8, per-channel int4, or a bare mode).
    Quantized(QuantizedDTypePolicy),
    /// `QuantizedFloat8DTypePolicy`.
    Float8(QuantizedFloat8DTypePolicy),
    /// `Int4DTypePolicy` (`int4/<block_size>`).
    Int4(Int4DTypePolicy),
    /// `GPTQDTypePolicy` or `AWQDTypePolicy`.
    Groupwise(GroupwiseDTypePolicy),
}

impl Policy {
    /// The name (`"mixed_bfloat16"`, `"int8_from_float32"`, ...).
    pub fn name(&self) -> &str {
        match self {
            Policy::Float(p) => p.name(),
            Policy::Quantized(p) => p.name(),
            Policy::Float8(p) => p.name(),
            Policy::Int4(p) => p.name(),
            Policy::Groupwise(p) => p.name(),
        }
    }

    /// The float policy whose dtypes this policy uses (itself, or the source
    /// of a quantized policy).
    pub fn float_source(&self) -> &DTypePolicy {
        match self {
            Policy::Float(p) => p,
            Policy::Quantized(p) => p.source(),
            Policy::Float8(p) => p.base().source(),
            Policy::Int4(p) => p.base().source(),
            Policy::Groupwise(p) => p.base().source(),
        }
    }

    /// The dtype computations run in.
    pub fn compute_dtype(&self) -> DType {
        self.float_source().compute_dtype()
    }

    /// The dtype variables (weights) are stored in before quantization.
    pub fn variable_dtype(&self) -> DType {
        self.float_source().variable_dtype()
    }

    /// The quantization mode, `None` for a float policy.
    pub fn quantization_mode(&self) -> Option<QuantizationMode> {
        match self {
            Policy::Float(_) => None,
            Policy::Quantized(p) => p.quantization_mode(),
            Policy::Float8(p) => p.quantization_mode(),
            Policy::Int4(p) => p.quantization_mode(),
            Policy::Groupwise(p) => p.quantization_mode(),
        }
    }

    /// The Keras class name (`"DTypePolicy"`, `"QuantizedFloat8DTypePolicy"`, ...).
    pub fn class_name(&self) -> &'static str {
        match self {
            Policy::Float(p) => p.class_name(),
            Policy::Quantized(_) => "QuantizedDTypePolicy",
            Policy::Float8(_) => "QuantizedFloat8DTypePolicy",
            Policy::Int4(_) => "Int4DTypePolicy",
            Policy::Groupwise(p) => p.class_name(),
        }
    }
}

impl FromStr for Policy {
    type Err = Error;

    /// Keras's `keras.dtype_policies.get(name)` for a string.
    fn from_str(name: &str) -> Result<Self> {
        if starts_with_quantization_mode(name) {
            parse_quantized(name)
        } else {
            DTypePolicy::new(name).map(Policy::Float)
        }
    }
}

impl fmt::Display for Policy {
    /// Keras's `repr()`: `<QuantizedDTypePolicy "int8_from_float32">`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Policy::Float(p) => p.fmt(f),
            Policy::Quantized(p) => p.fmt(f),
            Policy::Float8(p) => p.fmt(f),
            Policy::Int4(p) => p.fmt(f),
            Policy::Groupwise(p) => p.fmt(f),
        }
    }
}

macro_rules! policy_from {
    ($($variant:ident($ty:ty)),* $(,)?) => {$(
        impl From<$ty> for Policy {
            fn from(p: $ty) -> Policy {
                Policy::$variant(p)
            }
        }
    )*};
}

policy_from!(
    Float(DTypePolicy),
    Quantized(QuantizedDTypePolicy),
    Float8(QuantizedFloat8DTypePolicy),
    Int4(Int4DTypePolicy),
    Groupwise(GroupwiseDTypePolicy),
);

/// What may stand where Keras takes "a policy or a policy name": a [`Policy`]
/// (or one of the policy types), or a name to parse.
///
/// A map is not among them, so `set_dtype_policy` and map values reject a map
/// at compile time:
///
/// ```compile_fail
/// dtype_policy::set_dtype_policy(dtype_policy::DTypePolicyMap::new());
/// ```
///
/// and anything that is not a policy or a string likewise:
///
/// ```compile_fail
/// dtype_policy::set_dtype_policy(3);
/// ```
pub trait IntoPolicy {
    /// The policy, or why this value is not one.
    fn into_policy(self) -> Result<Policy>;

    /// Describes the value for an error message: (what it is, its type).
    #[doc(hidden)]
    fn describe(&self) -> (String, &'static str);
}

impl<T: Into<Policy> + fmt::Display> IntoPolicy for T {
    fn into_policy(self) -> Result<Policy> {
        Ok(self.into())
    }

    fn describe(&self) -> (String, &'static str) {
        (self.to_string(), "Policy")
    }
}

impl IntoPolicy for &Policy {
    fn into_policy(self) -> Result<Policy> {
        Ok(self.clone())
    }

    fn describe(&self) -> (String, &'static str) {
        (self.to_string(), "Policy")
    }
}

impl IntoPolicy for &str {
    fn into_policy(self) -> Result<Policy> {
        self.parse()
    }

    fn describe(&self) -> (String, &'static str) {
        ((*self).to_owned(), "str")
    }
}

impl IntoPolicy for String {
    fn into_policy(self) -> Result<Policy> {
        self.parse()
    }

    fn describe(&self) -> (String, &'static str) {
        (self.clone(), "str")
    }
}

impl IntoPolicy for &String {
    fn into_policy(self) -> Result<Policy> {
        self.parse()
    }

    fn describe(&self) -> (String, &'static str) {
        ((*self).clone(), "str")
    }
}

// SPDX-License-Identifier: MIT OR Apache-2.0
//! `DTypePolicy` (and its old name `FloatDTypePolicy`): one compute dtype and one
//! variable dtype, no quantization.

use std::fmt;

use crate::error::{Error, Result};
use crate::policy::dtype::DType;
use crate::policy::global::dtype_policy;
use crate::policy::quantized::QuantizationMode;

/// A dtype policy for a layer: the dtype it computes in and the dtype it
/// stores its variables in (Keras's `keras.DTypePolicy`).
///
/// The name is kept as given: `DTypePolicy::new("int")` is named `int` and
/// has dtypes `int32`. Two policies are equal when their names are equal.
///
/// ```
/// use dtype_policy::{DType, DTypePolicy};
/// let p = DTypePolicy::new("mixed_bfloat16")?;
/// assert_eq!(p.compute_dtype(), DType::BFloat16);
/// assert_eq!(p.variable_dtype(), DType::Float32);
/// assert_eq!(p.to_string(), r#"<DTypePolicy "mixed_bfloat16">"#);
/// # Ok::<(), dtype_policy::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct DTypePolicy {
    name: String,
    compute_dtype: DType,
    variable_dtype: DType,
    class: FloatClass,
}

/// Keras's old name for [`DTypePolicy`]; the same type.
pub type FloatDTypePolicy = DTypePolicy;

/// Which Keras class name a float policy serializes under. Only Keras JSON
/// sees the difference; equality and display do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FloatClass {
    DTypePolicy,
    FloatDTypePolicy,
}

impl DTypePolicy {
    /// A policy from its name: any Keras dtype name (both dtypes the same), or
    /// `mixed_float16` / `mixed_bfloat16` (float16 / bfloat16 compute, float32
    /// variables). Quantized names are refused here, as in Keras; parse them
    /// with [`Policy`](crate::Policy)'s `FromStr`.
    pub fn new(name: &str) -> Result<Self> {
        let (compute_dtype, variable_dtype) = parse_name(name)?;
        Ok(DTypePolicy {
            name: name.to_owned(),
            compute_dtype,
            variable_dtype,
            class: FloatClass::DTypePolicy,
        })
    }

    /// The policy named after one dtype (`float32` → `<DTypePolicy "float32">`).
    pub fn from_dtype(dtype: DType) -> Self {
        DTypePolicy {
            name: dtype.name().to_owned(),
            compute_dtype: dtype,
            variable_dtype: dtype,
            class: FloatClass::DTypePolicy,
        }
    }

    /// Keras's `DTypePolicy()` with no name: the global policy's name, read now.
    /// Fails when the global policy is quantized, as in Keras.
    pub fn from_global() -> Result<Self> {
        DTypePolicy::new(dtype_policy().name())
    }

    /// The same policy under the class name `FloatDTypePolicy`, which only
    /// changes its Keras JSON (`"class_name": "FloatDTypePolicy"`).
    pub fn into_float_dtype_policy_class(mut self) -> Self {
        self.class = FloatClass::FloatDTypePolicy;
        self
    }

    /// The name, as given.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The dtype computations run in.
    pub fn compute_dtype(&self) -> DType {
        self.compute_dtype
    }

    /// The dtype variables (weights) are stored in.
    pub fn variable_dtype(&self) -> DType {
        self.variable_dtype
    }

    /// Always `None`: this policy does not quantize.
    pub fn quantization_mode(&self) -> Option<QuantizationMode> {
        None
    }

    /// The Keras class name this policy serializes under.
    pub fn class_name(&self) -> &'static str {
        match self.class {
            FloatClass::DTypePolicy => "DTypePolicy",
            FloatClass::FloatDTypePolicy => "FloatDTypePolicy",
        }
    }
}

/// Keras's `DTypePolicy._parse_name`: the (compute, variable) dtypes of a name.
pub(crate) fn parse_name(name: &str) -> Result<(DType, DType)> {
    match name {
        "mixed_float16" => Ok((DType::Float16, DType::Float32)),
        "mixed_bfloat16" => Ok((DType::BFloat16, DType::Float32)),
        _ => name
            .parse::<DType>()
            .map(|d| (d, d))
            .map_err(|_| Error::InvalidPolicyName(name.to_owned())),
    }
}

impl PartialEq for DTypePolicy {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for DTypePolicy {}

impl fmt::Display for DTypePolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // FloatDTypePolicy prints as DTypePolicy, as in Keras.
        write!(f, "<DTypePolicy \"{}\">", self.name)
    }
}

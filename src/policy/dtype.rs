// SPDX-License-Identifier: MIT OR Apache-2.0
//! Keras dtype names (`keras.backend.standardize_dtype`).

use std::fmt;
use std::str::FromStr;

use crate::error::Error;

/// One of the dtypes Keras accepts (`keras.src.backend.common.dtypes.ALLOWED_DTYPES`).
///
/// Parsing is exact and case-sensitive, as in Keras; `"int"` is `int32`
/// (Keras on the JAX, PyTorch and NumPy backends).
///
/// ```
/// use dtype_policy::DType;
/// let d: DType = "bfloat16".parse()?;
/// assert_eq!(d.bits(), Some(16));
/// assert!(d.is_float());
/// assert_eq!("int".parse::<DType>()?, DType::Int32);
/// assert!("Float32".parse::<DType>().is_err());
/// # Ok::<(), dtype_policy::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum DType {
    /// IEEE half precision.
    Float16,
    /// IEEE single precision.
    Float32,
    /// IEEE double precision.
    Float64,
    /// Brain float: float32's exponent with a 7-bit mantissa.
    BFloat16,
    /// Signed 8-bit integer.
    Int8,
    /// Signed 16-bit integer.
    Int16,
    /// Signed 32-bit integer.
    Int32,
    /// Signed 64-bit integer.
    Int64,
    /// Unsigned 8-bit integer.
    UInt8,
    /// Unsigned 16-bit integer.
    UInt16,
    /// Unsigned 32-bit integer.
    UInt32,
    /// Unsigned 64-bit integer.
    UInt64,
    /// Boolean.
    Bool,
    /// Variable-length string.
    String,
    /// 8-bit float, 4 exponent bits, 3 mantissa bits, finite only (NaN, no infinity).
    Float8E4M3Fn,
    /// 8-bit float, 5 exponent bits, 2 mantissa bits, IEEE-like.
    Float8E5M2,
    /// Complex number of two float32.
    Complex64,
    /// Complex number of two float64.
    Complex128,
}

impl DType {
    /// Every dtype, in the order of Keras's `ALLOWED_DTYPES`.
    pub const ALL: [DType; 18] = [
        DType::Float16,
        DType::Float32,
        DType::Float64,
        DType::UInt8,
        DType::UInt16,
        DType::UInt32,
        DType::UInt64,
        DType::Int8,
        DType::Int16,
        DType::Int32,
        DType::Int64,
        DType::BFloat16,
        DType::Bool,
        DType::String,
        DType::Float8E4M3Fn,
        DType::Float8E5M2,
        DType::Complex64,
        DType::Complex128,
    ];

    /// The standardized Keras name (`"int32"` for [`DType::Int32`], never `"int"`).
    pub const fn name(self) -> &'static str {
        match self {
            DType::Float16 => "float16",
            DType::Float32 => "float32",
            DType::Float64 => "float64",
            DType::BFloat16 => "bfloat16",
            DType::Int8 => "int8",
            DType::Int16 => "int16",
            DType::Int32 => "int32",
            DType::Int64 => "int64",
            DType::UInt8 => "uint8",
            DType::UInt16 => "uint16",
            DType::UInt32 => "uint32",
            DType::UInt64 => "uint64",
            DType::Bool => "bool",
            DType::String => "string",
            DType::Float8E4M3Fn => "float8_e4m3fn",
            DType::Float8E5M2 => "float8_e5m2",
            DType::Complex64 => "complex64",
            DType::Complex128 => "complex128",
        }
    }

    /// Size of one element in bits; `None` for `string`, which has no fixed size.
    ///
    /// `bool` is 1, as in Keras's `dtype_size`. Keras's table stops at the
    /// integer and IEEE/bf16 floats; the float8 and complex sizes here follow
    /// from their definitions.
    pub const fn bits(self) -> Option<u32> {
        match self {
            DType::Bool => Some(1),
            DType::Int8 | DType::UInt8 | DType::Float8E4M3Fn | DType::Float8E5M2 => Some(8),
            DType::Float16 | DType::BFloat16 | DType::Int16 | DType::UInt16 => Some(16),
            DType::Float32 | DType::Int32 | DType::UInt32 => Some(32),
            DType::Float64 | DType::Int64 | DType::UInt64 | DType::Complex64 => Some(64),
            DType::Complex128 => Some(128),
            DType::String => None,
        }
    }

    /// Whether Keras counts it as a float dtype (`keras.backend.is_float_dtype`):
    /// the IEEE floats, bfloat16 and both float8 formats; not complex.
    pub const fn is_float(self) -> bool {
        matches!(
            self,
            DType::Float16
                | DType::Float32
                | DType::Float64
                | DType::BFloat16
                | DType::Float8E4M3Fn
                | DType::Float8E5M2
        )
    }

    /// Whether Keras counts it as an integer dtype (`keras.backend.is_int_dtype`).
    pub const fn is_int(self) -> bool {
        matches!(
            self,
            DType::Int8
                | DType::Int16
                | DType::Int32
                | DType::Int64
                | DType::UInt8
                | DType::UInt16
                | DType::UInt32
                | DType::UInt64
        )
    }
}

impl FromStr for DType {
    type Err = Error;

    fn from_str(name: &str) -> Result<Self, Error> {
        if name == "int" {
            return Ok(DType::Int32);
        }
        DType::ALL
            .into_iter()
            .find(|d| d.name() == name)
            .ok_or_else(|| Error::InvalidDType(name.to_owned()))
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_round_trips() {
        for d in DType::ALL {
            assert_eq!(d.name().parse::<DType>().unwrap(), d);
            assert_eq!(d.to_string(), d.name());
        }
    }

    #[test]
    fn bad_name_error_names_it() {
        let err = "fp32".parse::<DType>().unwrap_err();
        assert_eq!(err.to_string(), "Invalid dtype: fp32");
    }
}

// SPDX-License-Identifier: MIT OR Apache-2.0
//! 8-bit floats as ml_dtypes converts them (round to nearest even from f32),
//! Keras's float8 quantize-dequantize, and the amax history with its delayed
//! scale (`compute_float8_amax_history`, `compute_float8_scale`).

use crate::format::StorageFormat;
use crate::quant::nan_max;

/// The per-tensor scales of a float8 Dense layer (Keras's `inputs_scale`
/// and `kernel_scale`): values are divided by them before encoding.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Float8Scales {
    /// The activations' scale.
    pub inputs: f32,
    /// The kernel's scale.
    pub kernel: f32,
}

impl Default for Float8Scales {
    /// A freshly quantized Keras layer's scales: 1.0.
    fn default() -> Self {
        Float8Scales {
            inputs: 1.0,
            kernel: 1.0,
        }
    }
}

/// Keras's float8 Dense bias as it is added: rounded through bfloat16 when
/// the compute dtype is float32 (Keras casts it for XLA's bias-add
/// fusion), else to the compute dtype.
pub fn dense_bias(compute: StorageFormat, b: f64) -> f32 {
    if compute == StorageFormat::F32 {
        StorageFormat::BF16.round(b) as f32
    } else {
        compute.round(b) as f32
    }
}

/// An 8-bit float format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Float8 {
    /// 4 exponent bits (bias 7), 3 mantissa bits; no infinity, NaN is
    /// `S.1111.111`; largest finite 448. Values rounding past it become NaN.
    E4M3Fn,
    /// 5 exponent bits (bias 15), 2 mantissa bits; IEEE-like with infinity;
    /// largest finite 57344. Values rounding past it become infinity.
    E5M2,
}

impl Float8 {
    const fn mantissa_bits(self) -> i32 {
        match self {
            Float8::E4M3Fn => 3,
            Float8::E5M2 => 2,
        }
    }

    const fn bias(self) -> i32 {
        match self {
            Float8::E4M3Fn => 7,
            Float8::E5M2 => 15,
        }
    }

    /// The largest finite value (`ml_dtypes.finfo(dtype).max`).
    pub const fn max(self) -> f32 {
        match self {
            Float8::E4M3Fn => 448.0,
            Float8::E5M2 => 57344.0,
        }
    }

    /// The code of NaN (positive sign).
    const fn nan_code(self) -> u8 {
        match self {
            Float8::E4M3Fn => 0x7f,
            Float8::E5M2 => 0x7e,
        }
    }

    /// Encodes an f32, rounding to nearest even.
    pub fn encode(self, x: f32) -> u8 {
        let sign = ((x.to_bits() >> 31) as u8) << 7;
        if x.is_nan() {
            return sign | self.nan_code();
        }
        let m = self.mantissa_bits();
        let overflow = match self {
            Float8::E4M3Fn => sign | 0x7f,
            Float8::E5M2 => sign | 0x7c,
        };
        let a = f64::from(x.abs());
        if a.is_infinite() {
            return overflow;
        }
        let min_normal_exp = 1 - self.bias();
        let code = if a < 2f64.powi(min_normal_exp) {
            // Subnormal (or rounding up into the smallest normal): exact in f64.
            (a / 2f64.powi(min_normal_exp - m)).round_ties_even() as u32
        } else {
            let mut e = a.log2().floor() as i32;
            // log2 of a power of two minus one ulp can land on the next integer.
            if 2f64.powi(e) > a {
                e -= 1;
            }
            let mut q = ((a / 2f64.powi(e) - 1.0) * 2f64.powi(m)).round_ties_even() as u32;
            if q == 1 << m {
                e += 1;
                q = 0;
            }
            let field = (e + self.bias()) as u32;
            (field << m) | q
        };
        let largest = match self {
            Float8::E4M3Fn => 0x7e, // S.1111.110 = 448
            Float8::E5M2 => 0x7b,   // S.11110.11 = 57344
        };
        if code > largest {
            return overflow;
        }
        sign | code as u8
    }

    /// Decodes a code to f32 (exact).
    pub fn decode(self, code: u8) -> f32 {
        let m = self.mantissa_bits();
        let sign = if code & 0x80 != 0 { -1.0 } else { 1.0 };
        let field = i32::from((code & 0x7f) >> m);
        let mant = f64::from(code & ((1 << m) - 1));
        let exp_max = if self == Float8::E4M3Fn { 15 } else { 31 };
        if field == exp_max {
            match self {
                Float8::E4M3Fn if mant == 7.0 => return f32::NAN,
                Float8::E5M2 if mant == 0.0 => return sign as f32 * f32::INFINITY,
                Float8::E5M2 => return f32::NAN,
                Float8::E4M3Fn => {}
            }
        }
        let value = if field == 0 {
            mant * 2f64.powi(1 - self.bias() - m)
        } else {
            (1.0 + mant / 2f64.powi(m)) * 2f64.powi(field - self.bias())
        };
        (sign * value) as f32
    }
}

/// Keras's `quantize_and_dequantize(x, scale, "float8_e4m3fn", "float32")`:
/// `decode(encode(clip(x / scale, -448, 448))) * scale`, in f32.
pub fn quantize_dequantize(x: f32, scale: f32, format: Float8) -> f32 {
    let max = format.max();
    let v = (x / scale).clamp(-max, max);
    format.decode(format.encode(v)) * scale
}

/// The amax history of one tensor, newest first, as Keras keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct AmaxHistory {
    values: Vec<f32>,
}

impl AmaxHistory {
    /// A history of `length` zeros (`length` is at least 1; see
    /// `QuantizedFloat8DTypePolicy`).
    pub fn new(length: u32) -> Self {
        AmaxHistory {
            values: vec![0.0; length.max(1) as usize],
        }
    }

    /// Keras's `compute_float8_amax_history`: roll left by one, then write
    /// `max|x|` at index 0.
    pub fn record(&mut self, x: &[f32]) {
        let amax = nan_max(x.iter().map(|v| v.abs()), 0.0);
        self.values.rotate_left(1);
        self.values[0] = amax;
    }

    /// The history, index 0 first.
    pub fn values(&self) -> &[f32] {
        &self.values
    }

    /// The largest value of the history (what the delayed scale uses).
    pub fn amax(&self) -> f32 {
        nan_max(self.values.iter().copied(), f32::NEG_INFINITY)
    }
}

/// Keras's `compute_float8_scale(amax, scale, dtype_max)`: the new scale
/// `amax / dtype_max` (as `1 / (dtype_max / amax)`), keeping the old one when
/// amax is zero or not finite.
pub fn delayed_scale(amax: f32, old_scale: f32, dtype_max: f32) -> f32 {
    let old_factor = 1.0 / old_scale;
    let factor = dtype_max / amax;
    let factor = if amax > 0.0 && amax.is_finite() {
        factor
    } else {
        old_factor
    };
    1.0 / factor
}

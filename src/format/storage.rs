// SPDX-License-Identifier: MIT OR Apache-2.0
//! Storage formats of kernel buffers (activations, outputs, float weights),
//! defined once here; the WGSL helpers in `shaders/shared/storage_*.wgsl`
//! must stay in sync.
//!
//! 16-bit formats hold two values per 32-bit word, the lower index in the
//! low half. Worked example: f16 values `[1.0, -2.0]` are the bit patterns
//! `0x3c00` and `0xc000`, stored as the word `0xc000_3c00`. f64 values take
//! two words each, low word first (little-endian, as the GPU reads them).

use half::{bf16, f16};

use crate::format::FloatValues;

/// How the values of a buffer are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StorageFormat {
    /// One f32 per word.
    F32,
    /// IEEE f16, two per word (read natively with SHADER_F16, or unpacked).
    F16,
    /// bfloat16, two per word.
    BF16,
    /// One f64 per two words (needs SHADER_F64).
    F64,
}

/// A host value type the GPU functions take and return: `f32` or `f64`.
/// Every storage format's values are exact in f64; an f64 result read back
/// as f32 is rounded to nearest. Conversions go straight from the host type
/// (as `half` does them), so f32 inputs round exactly as the GPU's f32 ones,
/// NaN payloads included.
pub trait HostFloat: Copy + Send + Sync + std::fmt::Debug + 'static {
    /// The value as f64 (exact).
    fn to_f64(self) -> f64;
    /// The nearest value of this type.
    fn from_f64(v: f64) -> Self;
    /// An f32 as this type (exact).
    fn from_f32(v: f32) -> Self;
    /// The nearest f32's bits.
    fn f32_bits(self) -> u32;
    /// The nearest f16's bits.
    fn f16_bits(self) -> u16;
    /// The nearest bf16's bits.
    fn bf16_bits(self) -> u16;
    /// Values of this type, kept in this type.
    fn float_values(values: &[Self]) -> FloatValues;
}

impl HostFloat for f32 {
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
    fn from_f64(v: f64) -> Self {
        v as f32
    }
    fn from_f32(v: f32) -> Self {
        v
    }
    fn f32_bits(self) -> u32 {
        self.to_bits()
    }
    fn f16_bits(self) -> u16 {
        f16::from_f32(self).to_bits()
    }
    fn bf16_bits(self) -> u16 {
        bf16::from_f32(self).to_bits()
    }
    fn float_values(values: &[Self]) -> FloatValues {
        FloatValues::F32(values.to_vec())
    }
}

impl HostFloat for f64 {
    fn to_f64(self) -> f64 {
        self
    }
    fn from_f64(v: f64) -> Self {
        v
    }
    fn from_f32(v: f32) -> Self {
        f64::from(v)
    }
    fn f32_bits(self) -> u32 {
        (self as f32).to_bits()
    }
    fn f16_bits(self) -> u16 {
        f16::from_f64(self).to_bits()
    }
    fn bf16_bits(self) -> u16 {
        bf16::from_f64(self).to_bits()
    }
    fn float_values(values: &[Self]) -> FloatValues {
        FloatValues::F64(values.to_vec())
    }
}

impl StorageFormat {
    /// Bytes per value.
    pub const fn bytes_per_value(self) -> usize {
        match self {
            StorageFormat::F32 => 4,
            StorageFormat::F16 | StorageFormat::BF16 => 2,
            StorageFormat::F64 => 8,
        }
    }

    /// Values per 16-byte chunk, the unit kernels load.
    pub const fn values_per_chunk(self) -> usize {
        16 / self.bytes_per_value()
    }

    /// 32-bit words that hold `count` values.
    pub const fn words_for(self, count: usize) -> usize {
        (count * self.bytes_per_value()).div_ceil(4)
    }

    /// Rounds a value to this format (round to nearest even) and back.
    pub fn round(self, v: f64) -> f64 {
        match self {
            StorageFormat::F32 => f64::from(v as f32),
            StorageFormat::F16 => f16::from_f64(v).to_f64(),
            StorageFormat::BF16 => bf16::from_f64(v).to_f64(),
            StorageFormat::F64 => v,
        }
    }

    /// Encodes values as 32-bit words (padding an odd count of 16-bit values with +0).
    pub fn encode<T: HostFloat>(self, values: &[T]) -> Vec<u32> {
        match self {
            StorageFormat::F32 => values.iter().map(|x| x.f32_bits()).collect(),
            StorageFormat::F16 => pack_pairs(values.iter().map(|x| x.f16_bits())),
            StorageFormat::BF16 => pack_pairs(values.iter().map(|x| x.bf16_bits())),
            StorageFormat::F64 => values
                .iter()
                .flat_map(|x| {
                    let bits = x.to_f64().to_bits();
                    [bits as u32, (bits >> 32) as u32]
                })
                .collect(),
        }
    }

    /// Decodes `count` values from 32-bit words.
    pub fn decode<T: HostFloat>(self, words: &[u32], count: usize) -> Vec<T> {
        let half_bits = |b: u16, bf: bool| {
            T::from_f32(if bf {
                bf16::from_bits(b).to_f32()
            } else {
                f16::from_bits(b).to_f32()
            })
        };
        match self {
            StorageFormat::F32 => words
                .iter()
                .take(count)
                .map(|w| T::from_f32(f32::from_bits(*w)))
                .collect(),
            StorageFormat::F16 => unpack_pairs(words, count, |b| half_bits(b, false)),
            StorageFormat::BF16 => unpack_pairs(words, count, |b| half_bits(b, true)),
            StorageFormat::F64 => words
                .chunks_exact(2)
                .take(count)
                .map(|p| T::from_f64(f64::from_bits(u64::from(p[0]) | (u64::from(p[1]) << 32))))
                .collect(),
        }
    }
}

fn pack_pairs(bits: impl Iterator<Item = u16>) -> Vec<u32> {
    let bits: Vec<u32> = bits.map(u32::from).collect();
    bits.chunks(2)
        .map(|pair| pair[0] | (pair.get(1).copied().unwrap_or(0) << 16))
        .collect()
}

fn unpack_pairs<T>(words: &[u32], count: usize, from_bits: impl Fn(u16) -> T) -> Vec<T> {
    words
        .iter()
        .flat_map(|w| [(*w & 0xffff) as u16, (*w >> 16) as u16])
        .take(count)
        .map(from_bits)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16_pairs_put_the_lower_index_in_the_low_half() {
        assert_eq!(StorageFormat::F16.encode(&[1.0f32, -2.0]), [0xc000_3c00]);
        assert_eq!(StorageFormat::F16.encode(&[1.0f32]), [0x0000_3c00]);
        assert_eq!(StorageFormat::BF16.encode(&[1.0f32, -2.0]), [0xc000_3f80]);
        let words = StorageFormat::BF16.encode(&[0.5f32, 3.0, -1.25]);
        assert_eq!(
            StorageFormat::BF16.decode::<f32>(&words, 3),
            [0.5, 3.0, -1.25]
        );
    }

    #[test]
    fn f64_takes_two_words_low_first() {
        let words = StorageFormat::F64.encode(&[1.0f64]);
        assert_eq!(words, [0, 0x3ff0_0000]);
        assert_eq!(StorageFormat::F64.decode::<f64>(&words, 1), [1.0]);
        assert_eq!(StorageFormat::F64.words_for(3), 6);
    }

    #[test]
    fn rounding_is_to_nearest_even() {
        // 1 + 2^-11 is halfway between two f16 values: ties go to the even one (1.0).
        assert_eq!(StorageFormat::F16.round(1.0 + 2f64.powi(-11)), 1.0);
        assert_eq!(StorageFormat::F16.round(70000.0), f64::INFINITY);
        assert_eq!(StorageFormat::BF16.round(1.0 + 2f64.powi(-8)), 1.0);
        assert_eq!(StorageFormat::F32.round(1.0 + 2f64.powi(-30)), 1.0);
    }
}

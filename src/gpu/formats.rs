// SPDX-License-Identifier: MIT OR Apache-2.0
//! Storage formats of kernel buffers, defined once here; the WGSL helpers in
//! `shaders/shared/storage_*.wgsl` must stay in sync.
//!
//! 16-bit formats hold two values per 32-bit word, the lower index in the
//! low half. Worked example: f16 values `[1.0, -2.0]` are the bit patterns
//! `0x3c00` and `0xc000`, stored as the word `0xc000_3c00`.

use half::{bf16, f16};

/// How the values of a buffer are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StorageFormat {
    /// One f32 per word.
    F32,
    /// IEEE f16, two per word (read natively with SHADER_F16, or unpacked).
    F16,
    /// bfloat16, two per word.
    BF16,
}

impl StorageFormat {
    /// Bytes per value.
    pub const fn bytes_per_value(self) -> usize {
        match self {
            StorageFormat::F32 => 4,
            StorageFormat::F16 | StorageFormat::BF16 => 2,
        }
    }

    /// Values per 32-bit word.
    pub const fn values_per_word(self) -> usize {
        4 / self.bytes_per_value()
    }

    /// Rounds a value to this format (round to nearest even) and back.
    pub fn round(self, v: f32) -> f32 {
        match self {
            StorageFormat::F32 => v,
            StorageFormat::F16 => f16::from_f32(v).to_f32(),
            StorageFormat::BF16 => bf16::from_f32(v).to_f32(),
        }
    }

    /// Encodes values as 32-bit words (padding an odd count of 16-bit values with +0).
    pub fn encode(self, values: &[f32]) -> Vec<u32> {
        match self {
            StorageFormat::F32 => values.iter().map(|v| v.to_bits()).collect(),
            StorageFormat::F16 => pack_pairs(values, |v| f16::from_f32(v).to_bits()),
            StorageFormat::BF16 => pack_pairs(values, |v| bf16::from_f32(v).to_bits()),
        }
    }

    /// Decodes `count` values from 32-bit words.
    pub fn decode(self, words: &[u32], count: usize) -> Vec<f32> {
        match self {
            StorageFormat::F32 => words
                .iter()
                .take(count)
                .map(|w| f32::from_bits(*w))
                .collect(),
            StorageFormat::F16 => unpack_pairs(words, count, |b| f16::from_bits(b).to_f32()),
            StorageFormat::BF16 => unpack_pairs(words, count, |b| bf16::from_bits(b).to_f32()),
        }
    }
}

fn pack_pairs(values: &[f32], to_bits: impl Fn(f32) -> u16) -> Vec<u32> {
    values
        .chunks(2)
        .map(|pair| {
            let lo = u32::from(to_bits(pair[0]));
            let hi = pair.get(1).map_or(0, |&v| u32::from(to_bits(v)));
            lo | (hi << 16)
        })
        .collect()
}

fn unpack_pairs(words: &[u32], count: usize, from_bits: impl Fn(u16) -> f32) -> Vec<f32> {
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
        assert_eq!(StorageFormat::F16.encode(&[1.0, -2.0]), [0xc000_3c00]);
        assert_eq!(StorageFormat::F16.encode(&[1.0]), [0x0000_3c00]);
        assert_eq!(StorageFormat::BF16.encode(&[1.0, -2.0]), [0xc000_3f80]);
        let words = StorageFormat::BF16.encode(&[0.5, 3.0, -1.25]);
        assert_eq!(StorageFormat::BF16.decode(&words, 3), [0.5, 3.0, -1.25]);
    }

    #[test]
    fn rounding_is_to_nearest_even() {
        // 1 + 2^-11 is halfway between two f16 values: ties go to the even one (1.0).
        assert_eq!(StorageFormat::F16.round(1.0 + 2f32.powi(-11)), 1.0);
        assert_eq!(StorageFormat::F16.round(70000.0), f32::INFINITY);
        assert_eq!(StorageFormat::BF16.round(1.0 + 2f32.powi(-8)), 1.0);
    }
}

// SPDX-License-Identifier: MIT OR Apache-2.0
// Storage format f16 without SHADER_F16: the same words, unpacked with
// unpack2x16float, so the numbers equal the native variant's.

#import storage_16_common
#import storage_16_words
#import round16

fn unpack_pair(word: u32) -> vec2<f32> {
    return unpack2x16float(word);
}

// A value rounded to the compute dtype (to nearest even).
fn round_compute(v: f32) -> f32 {
    return unpack2x16float(round_bits(v)).x;
}

fn round_bits(v: f32) -> u32 {
    return f32_to_f16_bits(v);
}

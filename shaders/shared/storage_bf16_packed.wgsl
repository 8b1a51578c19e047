// SPDX-License-Identifier: MIT OR Apache-2.0
// Storage format bf16 (WGSL has no bf16 type): the top half of an f32.

#import storage_16_common
#import storage_16_words
#import round16

fn unpack_pair(word: u32) -> vec2<f32> {
    return vec2<f32>(bitcast<f32>(word << 16u), bitcast<f32>(word & 0xffff0000u));
}

// A value rounded to the compute dtype (to nearest even).
fn round_compute(v: f32) -> f32 {
    return bitcast<f32>(round_bits(v) << 16u);
}

fn round_bits(v: f32) -> u32 {
    return f32_to_bf16_bits(v);
}

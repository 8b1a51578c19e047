// SPDX-License-Identifier: MIT OR Apache-2.0
// Storage format f16 with the SHADER_F16 feature: words read as vec2<f16>.
enable f16;

#import storage_16_common
#import round16

fn unpack_pair(word: u32) -> vec2<f32> {
    return vec2<f32>(bitcast<vec2<f16>>(word));
}

fn round_bits(v: f32) -> u32 {
    return f32_to_f16_bits(v);
}

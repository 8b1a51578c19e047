// SPDX-License-Identifier: MIT OR Apache-2.0
// Storage format f16 with the SHADER_F16 feature: chunks are read as
// mat2x4<f16> (columns: elements 0..3 and 4..7), the same bytes as the
// packed words. (Reading words and bitcasting to vec2<f16> gave zeros on
// lavapipe, hence typed loads.)
enable f16;

#import storage_16_common
#import round16

alias Chunk = mat2x4<f16>;

fn chunk_lo(v: Chunk) -> vec4<f32> {
    return vec4<f32>(v[0]);
}

fn chunk_hi(v: Chunk) -> vec4<f32> {
    return vec4<f32>(v[1]);
}

fn chunk_value(v: Chunk, j: u32) -> f32 {
    return f32(v[j / 4u][j % 4u]);
}

fn round_bits(v: f32) -> u32 {
    return f32_to_f16_bits(v);
}

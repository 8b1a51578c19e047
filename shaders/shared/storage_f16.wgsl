// SPDX-License-Identifier: MIT OR Apache-2.0
// Storage format f16 with the SHADER_F16 feature: chunks are read as two
// vec4<f16> (the same bytes as the packed variant's words). naga 30 does not
// type size-changing bitcasts (u32 -> vec2<f16> comes out scalar), hence
// typed loads. lavapipe splits these into 16-bit loads, which is why CPU
// drivers are routed to the packed variant.
enable f16;

#import storage_16_common
#import round16

struct Chunk {
    lo: vec4<f16>, // elements 0..3
    hi: vec4<f16>, // elements 4..7
}

fn chunk_lo(v: Chunk) -> vec4<f32> {
    return vec4<f32>(v.lo);
}

fn chunk_hi(v: Chunk) -> vec4<f32> {
    return vec4<f32>(v.hi);
}

fn chunk_value(v: Chunk, j: u32) -> f32 {
    return select(chunk_lo(v), chunk_hi(v), j >= 4u)[j % 4u];
}

// A value rounded to the compute dtype (to nearest even).
fn round_compute(v: f32) -> f32 {
    return unpack2x16float(round_bits(v)).x;
}

fn round_bits(v: f32) -> u32 {
    return f32_to_f16_bits(v);
}

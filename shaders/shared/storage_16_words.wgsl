// SPDX-License-Identifier: MIT OR Apache-2.0
// Chunk readers of the 16-bit formats stored as plain words (no SHADER_F16):
// each format provides `unpack_pair(word) -> vec2<f32>`.

alias Chunk = vec4<u32>;

fn chunk_lo(v: Chunk) -> vec4<f32> {
    return vec4<f32>(unpack_pair(v.x), unpack_pair(v.y));
}

fn chunk_hi(v: Chunk) -> vec4<f32> {
    return vec4<f32>(unpack_pair(v.z), unpack_pair(v.w));
}

fn chunk_value(v: Chunk, j: u32) -> f32 {
    return unpack_pair(v[j / 2u])[j % 2u];
}

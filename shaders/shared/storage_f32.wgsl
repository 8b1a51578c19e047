// SPDX-License-Identifier: MIT OR Apache-2.0
// Storage format f32: one f32 per 32-bit word, four per vec4<u32>.
// Layout defined by `StorageFormat::F32` in src/gpu/formats.rs.

const VALUES_PER_VEC: u32 = 4u;

// One x or W^T chunk as the kernels load it: 16 bytes.
alias Chunk = vec4<u32>;

// acc[l] += x[l] * w[l] for the chunk's elements; lane l takes elements l (mod 4).
fn mul_add_chunk(acc: vec4<f32>, x: Chunk, w: Chunk) -> vec4<f32> {
    return acc + bitcast<vec4<f32>>(x) * bitcast<vec4<f32>>(w);
}

fn chunk_value(v: Chunk, j: u32) -> f32 {
    return bitcast<f32>(v[j]);
}

const OUT_VALUES_PER_WORD: u32 = 1u;

// The words that hold output values (a, b), a first.
fn pack_out_pair(a: f32, b: f32) -> vec2<u32> {
    return vec2<u32>(bitcast<u32>(a), bitcast<u32>(b));
}

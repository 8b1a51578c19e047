// SPDX-License-Identifier: MIT OR Apache-2.0
// Storage format f32: one f32 per 32-bit word, four per 16-byte chunk.
// Layout defined by `StorageFormat::F32` in src/gpu/formats.rs.
//
// Every storage helper provides the same interface to the kernels:
// Chunk and VALUES_PER_VEC (the 16-byte load unit), Scalar (the arithmetic
// type), Acc / acc_zero / mul_add_chunk / lane_sum (the dot product in
// lanes), chunk_value, OutWord / OUT_WORDS_PER_PAIR / pack_out_pair (the
// output), and `activate` (through its activation helper); the formats with
// f32 arithmetic also chunk8 and chunk_part (values as vec4<f32>).

#import activation

const VALUES_PER_VEC: u32 = 4u;
alias Chunk = vec4<u32>;
alias Scalar = f32;
alias Acc = vec4<f32>;

fn acc_zero() -> Acc {
    return Acc(0.0);
}

// acc[l] += x[l] * w[l]; lane l takes elements l (mod 4).
fn mul_add_chunk(acc: Acc, x: Chunk, w: Chunk) -> Acc {
    return acc + bitcast<vec4<f32>>(x) * bitcast<vec4<f32>>(w);
}

fn lane_sum(acc: Acc) -> Scalar {
    return (acc.x + acc.y) + (acc.z + acc.w);
}

// A value rounded to the compute dtype (f32: itself).
fn round_compute(v: f32) -> f32 {
    return v;
}

// Eight consecutive values from two chunks (the int4 kernel's step).
fn chunk8(a: Chunk, b: Chunk) -> array<vec4<f32>, 2> {
    return array<vec4<f32>, 2>(bitcast<vec4<f32>>(a), bitcast<vec4<f32>>(b));
}

// Values 4 part .. 4 part + 3 of a chunk (part 0: the whole chunk).
fn chunk_part(v: Chunk, part: u32) -> vec4<f32> {
    return bitcast<vec4<f32>>(v);
}

fn chunk_value(v: Chunk, j: u32) -> Scalar {
    return bitcast<f32>(v[j]);
}

alias OutWord = u32;
const OUT_WORDS_PER_PAIR: u32 = 2u;

// The words that hold output values (a, b), a first.
fn pack_out_pair(a: Scalar, b: Scalar) -> vec2<OutWord> {
    return vec2<u32>(bitcast<u32>(a), bitcast<u32>(b));
}

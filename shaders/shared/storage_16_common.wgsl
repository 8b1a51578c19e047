// SPDX-License-Identifier: MIT OR Apache-2.0
// What every 16-bit storage format shares: two values per 32-bit word, the
// element with the lower index in the low half; eight per 16-byte chunk;
// f32 arithmetic. Each format provides `round_bits(f32) -> u32` and its
// Chunk readers `chunk_lo`, `chunk_hi`, `chunk_value`.
// Layout defined by `pack_pairs` in src/gpu/formats.rs.

#import activation

const VALUES_PER_VEC: u32 = 8u;
alias Scalar = f32;
alias Acc = vec4<f32>;

fn acc_zero() -> Acc {
    return Acc(0.0);
}

// Lane l takes elements l and l + 4 of the chunk, in that order; `lo` and
// `hi` give elements 0..3 and 4..7 of a chunk as f32 (exact for 16-bit values).
fn mul_add_chunk(acc: Acc, x: Chunk, w: Chunk) -> Acc {
    return (acc + chunk_lo(x) * chunk_lo(w)) + chunk_hi(x) * chunk_hi(w);
}

// Eight consecutive values: one chunk (`b` is the same chunk).
fn chunk8(a: Chunk, b: Chunk) -> array<vec4<f32>, 2> {
    return array<vec4<f32>, 2>(chunk_lo(a), chunk_hi(a));
}

// Values 4 part .. 4 part + 3 of a chunk (part 0 or 1).
fn chunk_part(v: Chunk, part: u32) -> vec4<f32> {
    return select(chunk_lo(v), chunk_hi(v), part == 1u);
}

fn lane_sum(acc: Acc) -> Scalar {
    return (acc.x + acc.y) + (acc.z + acc.w);
}

alias OutWord = u32;
const OUT_WORDS_PER_PAIR: u32 = 1u;

fn pack_out_pair(a: Scalar, b: Scalar) -> vec2<OutWord> {
    return vec2<u32>(round_bits(a) | (round_bits(b) << 16u), 0u);
}

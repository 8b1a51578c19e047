// SPDX-License-Identifier: MIT OR Apache-2.0
// What every 16-bit storage format shares: two values per 32-bit word, the
// element with the lower index in the low half; eight per vec4<u32>.
// Each format provides `round_bits(f32) -> u32` and its `Chunk` readers.
// Layout defined by `pack_pairs` in src/gpu/formats.rs.

const VALUES_PER_VEC: u32 = 8u;

// Lane l takes elements l and l + 4 of the chunk, in that order; `lo` and
// `hi` give elements 0..3 and 4..7 of a chunk as f32 (exact for 16-bit values).
fn mul_add_chunk(acc: vec4<f32>, x: Chunk, w: Chunk) -> vec4<f32> {
    return (acc + chunk_lo(x) * chunk_lo(w)) + chunk_hi(x) * chunk_hi(w);
}

const OUT_VALUES_PER_WORD: u32 = 2u;

fn pack_out_pair(a: f32, b: f32) -> vec2<u32> {
    return vec2<u32>(round_bits(a) | (round_bits(b) << 16u), 0u);
}

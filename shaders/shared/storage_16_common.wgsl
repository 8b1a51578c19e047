// SPDX-License-Identifier: MIT OR Apache-2.0
// What every 16-bit storage format shares: two values per 32-bit word, the
// element with the lower index in the low half; eight per vec4<u32>.
// Each format provides `unpack_pair(word) -> vec2<f32>` and `round_bits(f32) -> u32`.
// Layout defined by `pack_pairs` in src/gpu/formats.rs.

const VALUES_PER_VEC: u32 = 8u;

// Lane l takes elements l and l + 4 of the chunk, in that order.
fn mul_add_chunk(acc: vec4<f32>, x: vec4<u32>, w: vec4<u32>) -> vec4<f32> {
    let x_lo = vec4<f32>(unpack_pair(x.x), unpack_pair(x.y));
    let w_lo = vec4<f32>(unpack_pair(w.x), unpack_pair(w.y));
    let x_hi = vec4<f32>(unpack_pair(x.z), unpack_pair(x.w));
    let w_hi = vec4<f32>(unpack_pair(w.z), unpack_pair(w.w));
    return (acc + x_lo * w_lo) + x_hi * w_hi;
}

fn chunk_value(v: vec4<u32>, j: u32) -> f32 {
    return unpack_pair(v[j / 2u])[j % 2u];
}

const OUT_VALUES_PER_WORD: u32 = 2u;

fn pack_out_pair(a: f32, b: f32) -> vec2<u32> {
    return vec2<u32>(round_bits(a) | (round_bits(b) << 16u), 0u);
}

// SPDX-License-Identifier: MIT OR Apache-2.0
// float8 e4m3fn (4 exponent bits, bias 7, 3 mantissa bits, no infinity,
// NaN = S.1111.111, largest 448) encode and decode in integer arithmetic,
// exactly as `quant::float8::Float8::E4M3Fn` (and ml_dtypes) convert.

// Code -> f32 (exact).
fn e4m3_decode(code: u32) -> f32 {
    let sign = (code & 0x80u) << 24u;
    let e = (code >> 3u) & 0xfu;
    let m = code & 7u;
    if (e == 15u && m == 7u) {
        return bitcast<f32>(0x7fc00000u | sign);
    }
    if (e == 0u) {
        return bitcast<f32>(sign | bitcast<u32>(f32(m) * 0.001953125)); // m * 2^-9
    }
    return bitcast<f32>(sign | ((e + 120u) << 23u) | (m << 20u));
}

// The four codes of a word (lowest byte first) decoded, without branches
// (the same values as e4m3_decode, four at a time).
fn e4m3_decode4(word: u32) -> vec4<f32> {
    let c = (vec4<u32>(word) >> vec4<u32>(0u, 8u, 16u, 24u)) & vec4<u32>(0xffu);
    let sign = (c & vec4<u32>(0x80u)) << vec4<u32>(24u);
    let e = (c >> vec4<u32>(3u)) & vec4<u32>(0xfu);
    let m = c & vec4<u32>(7u);
    let normal = sign | ((e + vec4<u32>(120u)) << vec4<u32>(23u)) | (m << vec4<u32>(20u));
    let subnormal = sign | bitcast<vec4<u32>>(vec4<f32>(m) * 0.001953125);
    var bits = select(normal, subnormal, e == vec4<u32>(0u));
    bits = select(bits, sign | vec4<u32>(0x7fc00000u), (c & vec4<u32>(0x7fu)) == vec4<u32>(0x7fu));
    return bitcast<vec4<f32>>(bits);
}

// The four e5m2 codes of a word (lowest byte first) decoded: 5 exponent
// bits (bias 15), 2 mantissa bits, IEEE-like infinity and NaN. As
// `quant::float8::Float8::E5M2` decodes them.
fn e5m2_decode4(word: u32) -> vec4<f32> {
    let c = (vec4<u32>(word) >> vec4<u32>(0u, 8u, 16u, 24u)) & vec4<u32>(0xffu);
    let sign = (c & vec4<u32>(0x80u)) << vec4<u32>(24u);
    let e = (c >> vec4<u32>(2u)) & vec4<u32>(0x1fu);
    let m = c & vec4<u32>(3u);
    let normal = sign | ((e + vec4<u32>(112u)) << vec4<u32>(23u)) | (m << vec4<u32>(21u));
    let subnormal = sign | bitcast<vec4<u32>>(vec4<f32>(m) * 1.52587890625e-5); // m * 2^-16
    let special = sign | vec4<u32>(0x7f800000u) | (m << vec4<u32>(21u));
    var bits = select(normal, subnormal, e == vec4<u32>(0u));
    bits = select(bits, special, e == vec4<u32>(31u));
    return bitcast<vec4<f32>>(bits);
}

// f32 in [-448, 448] (or NaN) -> code, round to nearest even.
fn e4m3_encode(v: f32) -> u32 {
    let bits = bitcast<u32>(v);
    let sign = (bits >> 24u) & 0x80u;
    let a = abs(v);
    if (is_nan_bits(v)) {
        return sign | 0x7fu;
    }
    if (a < 0.015625) { // below 2^-6: subnormal steps of 2^-9 (rounding may reach 0x08)
        return sign | u32(round(a * 512.0));
    }
    let abits = bitcast<u32>(a);
    var e = (abits >> 23u) - 120u; // exponent field of e4m3 (f32 bias 127 -> 7)
    let mant = abits & 0x7fffffu;
    let kept = mant >> 20u;
    let rest = mant & 0xfffffu;
    let up = rest > 0x80000u || (rest == 0x80000u && (kept & 1u) == 1u);
    // A carry out of the mantissa bumps the exponent, as the addition does.
    return sign | min(((e << 3u) | kept) + select(0u, 1u, up), 0x7eu);
}

// NaN by its bits: `v != v` may be folded away by shader compilers.
fn is_nan_bits(v: f32) -> bool {
    return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u;
}

// Keras's quantize_and_dequantize(v, scale, "float8_e4m3fn", compute):
// decode(encode(clip(v / scale, -448, 448))) * scale, the division and the
// product rounded to the compute dtype as Keras computes them there (the
// scale is already in it). NaN stays NaN (as in Keras; GPU min/max would
// turn it into a bound), infinity saturates.
fn e4m3_qdq(v: f32, scale: f32) -> f32 {
    let q = round_compute(v / scale);
    if (is_nan_bits(q)) {
        return q;
    }
    return round_compute(e4m3_decode(e4m3_encode(clamp(q, -448.0, 448.0))) * scale);
}

// SPDX-License-Identifier: MIT OR Apache-2.0
// f32 -> f16 / bf16 bit patterns, round to nearest even, in integer
// arithmetic: exact and the same on every adapter (WGSL leaves the rounding
// of f32->f16 conversions and pack2x16float out of range to the
// implementation). Mirrors `half::f16::from_f32` / `half::bf16::from_f32`,
// NaN payloads included; src/formats.rs tests the CPU side.

fn f32_to_f16_bits(v: f32) -> u32 {
    let x = bitcast<u32>(v);
    let sign = (x >> 16u) & 0x8000u;
    let e = (x >> 23u) & 0xffu;
    let mant = x & 0x7fffffu;
    if (e == 0xffu) {
        // Infinity stays infinity; NaN stays a quiet NaN with its top payload bits.
        return sign | 0x7c00u | select(0u, 0x200u | (mant >> 13u), mant != 0u);
    }
    let exp = i32(e) - 112; // rebias 127 -> 15
    if (exp >= 31) {
        return sign | 0x7c00u;
    }
    if (exp <= 0) {
        if (exp < -10) {
            return sign;
        }
        let m = mant | 0x800000u;
        let shift = u32(14 - exp);
        let kept = m >> shift;
        let rest = m & ((1u << shift) - 1u);
        let halfway = 1u << (shift - 1u);
        let round_up = rest > halfway || (rest == halfway && (kept & 1u) == 1u);
        return sign | (kept + select(0u, 1u, round_up));
    }
    let kept = (u32(exp) << 10u) | (mant >> 13u);
    let rest = mant & 0x1fffu;
    let round_up = rest > 0x1000u || (rest == 0x1000u && (kept & 1u) == 1u);
    // A carry out of the mantissa correctly bumps the exponent (up to infinity).
    return sign | (kept + select(0u, 1u, round_up));
}

fn f32_to_bf16_bits(v: f32) -> u32 {
    let x = bitcast<u32>(v);
    if ((x & 0x7fffffffu) > 0x7f800000u) {
        return (x >> 16u) | 0x40u;
    }
    return (x + 0x7fffu + ((x >> 16u) & 1u)) >> 16u;
}

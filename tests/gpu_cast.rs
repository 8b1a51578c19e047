// SPDX-License-Identifier: MIT OR Apache-2.0
//! The cast kernel against its CPU twin (the `half` crate), bit for bit, on
//! both adapters: f32 patterns from every exponent (with the rounding
//! boundaries, subnormals, infinities and NaN) to f16 and bf16, and every
//! f16 and bf16 pattern back to f32. This also proves the rounding helpers
//! the Dense kernels use to store 16-bit results.

mod common;

use dtype_policy::cpu::cast::cast as cpu_cast;
use dtype_policy::format::StorageFormat;
use dtype_policy::gpu::context::GpuContext;

/// Every 4096th f32 bit pattern, plus the values where rounding decides.
fn f32_patterns() -> Vec<u32> {
    let mut bits: Vec<u32> = (0..=u32::MAX).step_by(4096).collect();
    let specials = [
        0.0f32,
        -0.0,
        1.0,
        -1.0,
        65504.0,
        65519.99,
        65520.0,
        -65520.0,
        1e-8,
        5.96e-8,
        2.98e-8,
        2.99e-8,
        6.1e-5,
        f32::MAX,
        f32::MIN_POSITIVE,
        1.0 + 1.0 / 2048.0,
        1.0 + 3.0 / 2048.0,
        1.0 + 1.0 / 256.0,
        1.0 + 3.0 / 256.0,
        f32::INFINITY,
        f32::NEG_INFINITY,
    ];
    bits.extend(specials.iter().map(|v| v.to_bits()));
    bits.extend([
        0x7fc0_0000,
        0x7f80_0001,
        0xffc1_2345,
        0x0000_0001,
        0x807f_ffff,
    ]);
    // An odd count: the last word of a 16-bit output holds one value.
    if bits.len().is_multiple_of(2) {
        bits.push(0x3f80_0000);
    }
    bits
}

fn same_value(a: u32, b: u32, format: StorageFormat) -> bool {
    let decode = |w| format.decode::<f64>(&[w], 1)[0];
    a == b || (decode(a).is_nan() && decode(b).is_nan())
}

fn check_all(ctx: &mut GpuContext) {
    use StorageFormat::*;
    let f32_bits = f32_patterns();
    for to in [F16, BF16, F32] {
        let gpu = ctx.cast(F32, to, &f32_bits, f32_bits.len()).unwrap();
        let cpu = cpu_cast(F32, to, &f32_bits, f32_bits.len());
        assert_eq!(gpu.len(), cpu.len());
        for (i, (g, c)) in gpu.iter().zip(&cpu).enumerate() {
            // From f32 the kernel rounds with integer arithmetic: bit-exact, NaN payloads too.
            assert_eq!(
                g,
                c,
                "f32 -> {to:?}, word {i} (inputs {:#010x} {:#010x?})",
                f32_bits[2 * i.min(f32_bits.len() / 2)],
                f32_bits.get(2 * i + 1)
            );
        }
    }
    let all_16: Vec<u32> = (0..=u16::MAX as u32)
        .step_by(2)
        .map(|lo| lo | ((lo + 1) << 16))
        .collect();
    for from in [F16, BF16] {
        let count = 65_536;
        let gpu = ctx.cast(from, F32, &all_16, count).unwrap();
        let cpu = cpu_cast(from, F32, &all_16, count);
        assert_eq!(gpu.len(), cpu.len(), "{from:?} -> F32: lengths");
        assert_eq!(gpu.len(), count, "{from:?} -> F32: one word per value");
        for (i, (g, c)) in gpu.iter().zip(&cpu).enumerate() {
            // NaN stays NaN; the driver may quiet or drop its payload on the way.
            assert!(
                same_value(*g, *c, F32),
                "{from:?} pattern {i:#06x} -> f32: gpu {g:#010x} cpu {c:#010x}"
            );
        }
        let other = if from == F16 { BF16 } else { F16 };
        let gpu = ctx.cast(from, other, &all_16, count).unwrap();
        let cpu = cpu_cast(from, other, &all_16, count);
        assert_eq!(gpu.len(), cpu.len(), "{from:?} -> {other:?}: lengths");
        assert_eq!(
            gpu.len(),
            count / 2,
            "{from:?} -> {other:?}: two values per word"
        );
        for (i, (g, c)) in gpu.iter().zip(&cpu).enumerate() {
            for half in 0..2 {
                let (g, c) = ((g >> (16 * half)) & 0xffff, (c >> (16 * half)) & 0xffff);
                assert!(
                    same_value(g, c, other),
                    "{from:?} -> {other:?} word {i} half {half}: gpu {g:#06x} cpu {c:#06x}"
                );
            }
        }
    }
}

#[test]
fn casts_match_half_bit_for_bit_on_lavapipe_vulkan() {
    let mut ctx = common::gpu::vulkan();
    check_all(&mut ctx);
}

#[test]
fn casts_match_half_bit_for_bit_on_llvmpipe_gl() {
    let mut ctx = common::gpu::gl();
    check_all(&mut ctx);
}

#[test]
fn a_cast_with_the_wrong_word_count_is_an_error() {
    let mut ctx = common::gpu::vulkan();
    let err = ctx
        .cast(StorageFormat::F16, StorageFormat::F32, &[0, 0], 5)
        .unwrap_err();
    assert!(
        err.to_string().contains("5 F16 values take 3 words, got 2"),
        "{err}"
    );
}

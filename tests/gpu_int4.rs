// SPDX-License-Identifier: MIT OR Apache-2.0
//! Keras's int4 Dense (per channel and grouped) on both adapters against its
//! CPU twin, on awkward shapes: K not a multiple of 8, odd N (the pad
//! nibble), blocks that do not divide K, an all-zero column.

mod common;

use std::num::NonZeroU32;

use dtype_policy::cpu::int4::dense_int4;
use dtype_policy::gpu::context::GpuContext;
use dtype_policy::gpu::dense::Activation;
use dtype_policy::gpu::formats::{HostFloat, StorageFormat};
use dtype_policy::gpu::shaders::{Kernel, StorageVariant};

// (70, 100, 35) is larger than one workgroup's rows (64) and outputs (32)
// of the tiled kernel, (1, 40, 530) than one workgroup's outputs (512) of
// the matrix-vector kernel.
const SHAPES: [(usize, usize, usize); 8] = [
    (1, 1, 1),
    (1, 37, 13),
    (3, 10, 7),
    (2, 300, 33),
    (1, 1000, 96),
    (4, 64, 2),
    (70, 100, 35),
    (1, 40, 530),
];

/// The twin computes the same products of the same dequantized weights in
/// the same order; the GPU may fuse multiply-adds (one rounding less per
/// step: (k + 2) · ε · Σ|x·w|) and divide within 2.5 ulp (4 ulp of |y|);
/// non-linear activations add a few ulp of exp (2e-6 (1 + |y|)); 16-bit
/// outputs may then land one ulp of their format away.
fn tolerance(format: StorageFormat, activation: Activation, k: usize, l1: f64, y: f64) -> f64 {
    common::gpu::f32_kernel_tolerance(format, activation != Activation::Linear, k, l1, y)
}

fn check(ctx: &mut GpuContext, storage: StorageVariant) {
    let format = storage.format();
    for (m, k, n) in SHAPES {
        let x = common::gpu::values(m * k, (m + k) as u64, 1.0);
        let mut w = common::gpu::values(k * n, (k * 5 + n) as u64, 1.0);
        if n > 1 {
            for i in 0..k {
                w[i * n + 1] = 0.0;
            }
        }
        let b = common::gpu::values(n, 3, 1.0);
        for block in [
            None,
            NonZeroU32::new(4),
            NonZeroU32::new(3),
            NonZeroU32::new(32),
            NonZeroU32::new(128),
        ] {
            let weights = ctx
                .upload_dense_int4(storage, &w, Some(&b), (k, n), block)
                .unwrap();
            for (activation, kernel) in [Activation::Linear, Activation::Silu]
                .into_iter()
                .flat_map(|a| [Kernel::DenseInt4, Kernel::DenseInt4Tiled].map(|k| (a, k)))
            {
                let gpu = ctx.dense_int4(&weights, kernel, activation, &x, m).unwrap();
                let cpu = dense_int4(
                    format,
                    kernel,
                    activation,
                    &x,
                    &w,
                    Some(&b),
                    (m, k, n),
                    block,
                )
                .unwrap();
                for (i, (g, c)) in gpu.iter().zip(&cpu).enumerate() {
                    let (row, col) = (i / n, i % n);
                    // |x|·|w| bound: int4 weights dequantize to at most about max|w| per column.
                    let l1: f64 = (0..k)
                        .map(|t| f64::from((x[row * k + t] * w[t * n + col]).abs()) * 1.2)
                        .sum();
                    let tol = tolerance(format, activation, k, l1, c.to_f64());
                    assert!(
                        (g - c).abs() as f64 <= tol,
                        "{storage:?} {kernel:?} block {block:?} {activation:?} m={m} k={k} n={n} y[{row}][{col}]: gpu {g} cpu {c} (tol {tol:e})"
                    );
                }
            }
        }
    }
}

#[test]
fn int4_matches_its_twin_on_lavapipe_vulkan() {
    let mut ctx = common::gpu::vulkan();
    for storage in [
        StorageVariant::F32,
        StorageVariant::BF16Packed,
        StorageVariant::F16Packed,
    ] {
        check(&mut ctx, storage);
    }
}

#[test]
fn int4_matches_its_twin_on_llvmpipe_gl() {
    let mut ctx = common::gpu::gl();
    for storage in [StorageVariant::F32, StorageVariant::BF16Packed] {
        check(&mut ctx, storage);
    }
}

#[test]
fn int4_packing_puts_the_lowest_k_in_the_lowest_nibble() {
    use dtype_policy::gpu::int4::pack_i4_words;
    assert_eq!(pack_i4_words(&[1, -2, 3, -4, 0, 0, 0, 7]), [0x7000_c3e1]);
    assert_eq!(pack_i4_words(&[-8]), [0x8]);
}

/// Weight-only int8 (the int4 kernel with 8-bit weights) against its twin.
fn check_int8_weight_only(ctx: &mut GpuContext, storage: StorageVariant) {
    use dtype_policy::cpu::int4::dense_int8_weight_only;
    let format = storage.format();
    for (m, k, n) in SHAPES {
        let x = common::gpu::values(m * k, (m + 2 * k) as u64, 1.0);
        let w = common::gpu::values(k * n, (k * 7 + n) as u64, 1.0);
        let b = common::gpu::values(n, 4, 1.0);
        let weights = ctx
            .upload_dense_int8_weight_only(storage, &w, Some(&b), (k, n))
            .unwrap();
        for kernel in [
            Kernel::DenseInt8WeightOnly,
            Kernel::DenseInt8WeightOnlyTiled,
        ] {
            let gpu = ctx
                .dense_int4(&weights, kernel, Activation::Linear, &x, m)
                .unwrap();
            let cpu = dense_int8_weight_only(
                format,
                kernel,
                Activation::Linear,
                &x,
                &w,
                Some(&b),
                (m, k, n),
            )
            .unwrap();
            for (i, (g, c)) in gpu.iter().zip(&cpu).enumerate() {
                let (row, col) = (i / n, i % n);
                // q / s_w is w within half an int8 step: |x| (|w| + max|w| / 254) < 1.2 |x| for these values.
                let l1: f64 = (0..k)
                    .map(|t| {
                        f64::from(x[row * k + t].abs()) * (f64::from(w[t * n + col].abs()) + 0.01)
                    })
                    .sum();
                let tol = tolerance(format, Activation::Linear, k, l1, c.to_f64());
                assert!(
                    (g - c).abs() as f64 <= tol,
                    "int8 weight-only {storage:?} {kernel:?} m={m} k={k} n={n} y[{row}][{col}]: gpu {g} cpu {c}"
                );
            }
        }
    }
}

#[test]
fn int8_weight_only_matches_its_twin_on_both_adapters() {
    let mut ctx = common::gpu::vulkan();
    for storage in [
        StorageVariant::F32,
        StorageVariant::BF16Packed,
        StorageVariant::F16Packed,
    ] {
        check_int8_weight_only(&mut ctx, storage);
    }
    let mut ctx = common::gpu::gl();
    for storage in [StorageVariant::F32, StorageVariant::BF16Packed] {
        check_int8_weight_only(&mut ctx, storage);
    }
}

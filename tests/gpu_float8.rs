// SPDX-License-Identifier: MIT OR Apache-2.0
//! Keras's float8 Dense on both adapters against its CPU twin: values
//! beyond the e4m3 range (saturation), scales that are not powers of two,
//! infinity and NaN in the activations, awkward shapes.

mod common;

use dtype_policy::cpu::float8::dense_float8;
use dtype_policy::gpu::context::GpuContext;
use dtype_policy::gpu::dense::Activation;
use dtype_policy::gpu::float8::Float8Scales;
use dtype_policy::gpu::formats::{HostFloat, StorageFormat};
use dtype_policy::gpu::shaders::{Kernel, StorageVariant};
use dtype_policy::quant::float8::Float8;

// (1, 40, 530) is larger than one workgroup's outputs (512) of the
// matrix-vector kernel; (70, 100, 35) than one workgroup's rows (64) and
// outputs (32) of the tiled one.
const SHAPES: [(usize, usize, usize); 8] = [
    (1, 1, 1),
    (1, 37, 13),
    (3, 10, 7),
    (2, 300, 33),
    (1, 1000, 96),
    (2, 2500, 300),
    (70, 100, 35),
    (1, 40, 530),
];

/// Both shapes of the float8 kernel run every case.
const KERNELS: [Kernel; 2] = [Kernel::DenseFloat8, Kernel::DenseFloat8Tiled];

/// The twin uses the same decoded values; only the summation (fused
/// multiply-adds: (k + 2) · ε · Σ|x·w|), the division by the scale before
/// encoding (WGSL allows 2.5 ulp, which can move a value across a rounding
/// boundary of e4m3: one e4m3 step, 2^-3 relative, of one term) and exp
/// (2e-6 (1 + |y|)) may differ; 16-bit outputs one ulp more.
fn tolerance(format: StorageFormat, k: usize, l1: f64, max_term: f64, y: f64) -> f64 {
    common::gpu::f32_kernel_tolerance(format, true, k, l1, y) + 0.125 * max_term
}

/// GPU against twin within [`tolerance`]; equal values (infinities) pass.
fn compare(
    gpu: &[f32],
    cpu: &[f32],
    (x, w): (&[f32], &[f32]),
    (_m, k, n): (usize, usize, usize),
    format: StorageFormat,
    label: &str,
) {
    for (i, (g, c)) in gpu.iter().zip(cpu).enumerate() {
        let (row, col) = (i / n, i % n);
        let terms: Vec<f64> = (0..k)
            .map(|t| f64::from((x[row * k + t] * w[t * n + col]).abs()))
            .collect();
        let tol = tolerance(
            format,
            k,
            terms.iter().sum(),
            terms.iter().copied().fold(0.0, f64::max),
            c.to_f64(),
        );
        assert!(
            g == c || (g - c).abs() as f64 <= tol,
            "{label} k={k} n={n} y[{row}][{col}]: gpu {g} cpu {c} (tol {tol:e})"
        );
    }
}

/// A linear float8 Dense without bias, scales 1, on the GPU and its twin.
fn run_linear(
    ctx: &mut GpuContext,
    (format8, storage, kernel): (Float8, StorageVariant, Kernel),
    (x, w): (&[f32], &[f32]),
    (m, k, n): (usize, usize, usize),
) -> (Vec<f32>, Vec<f32>) {
    let scales = Float8Scales::default();
    let weights = ctx
        .upload_dense_float8_as(format8, storage, w, None, (k, n), scales)
        .unwrap();
    let gpu = ctx
        .dense_float8(&weights, kernel, Activation::Linear, x, m)
        .unwrap();
    let cpu = dense_float8(
        storage.format(),
        kernel,
        Activation::Linear,
        x,
        w,
        None,
        (m, k, n),
        (scales, format8),
    )
    .unwrap();
    (gpu, cpu)
}

/// Weights that decode to e4m3 subnormals (below 2^-6), a NaN weight (its
/// column is NaN; the kernel takes its exact decoder), and a kernel scale
/// too large for the fast decoder (an `Err`).
fn edge_weights(ctx: &mut GpuContext, storage: StorageVariant) {
    let format = storage.format();
    let (m, k, n) = (2, 70, 9);
    let x = common::gpu::values(m * k, 11, 3.0);
    let mut w = common::gpu::values(k * n, 12, 0.02);
    for (with_nan, kernel) in [false, true]
        .into_iter()
        .flat_map(|b| KERNELS.map(|k| (b, k)))
    {
        if with_nan {
            w[5 * n + 4] = f32::NAN;
        }
        let (gpu, cpu) = run_linear(ctx, (Float8::E4M3Fn, storage, kernel), (&x, &w), (m, k, n));
        for row in 0..m {
            let (g, c) = (gpu[row * n + 4], cpu[row * n + 4]);
            assert_eq!(
                g.is_nan(),
                with_nan,
                "{storage:?} {kernel:?} NaN weight column: {g}"
            );
            assert_eq!(c.is_nan(), with_nan);
        }
        let finite = |v: &[f32]| -> Vec<f32> {
            v.iter()
                .enumerate()
                .map(|(i, &y)| if i % n == 4 { 0.0 } else { y })
                .collect()
        };
        let label = format!("{storage:?} {kernel:?} small weights, NaN {with_nan}");
        compare(
            &finite(&gpu),
            &finite(&cpu),
            (&x, &w),
            (m, k, n),
            format,
            &label,
        );
    }
    let too_large = Float8Scales {
        inputs: 1.0,
        kernel: 1e31,
    };
    let err = ctx
        .upload_dense_float8(storage, &w, None, (k, n), too_large)
        .err()
        .expect("a kernel scale above 2^100 is refused");
    assert!(err.to_string().contains("kernel scale"), "{err}");
}

fn check(ctx: &mut GpuContext, storage: StorageVariant) {
    let format = storage.format();
    for (m, k, n) in SHAPES {
        // Activations up to 600 with scale 1 saturate at 448.
        let x = common::gpu::values(m * k, (m + k) as u64, 600.0);
        let w = common::gpu::values(k * n, (k + n) as u64, 2.0);
        let b = common::gpu::values(n, 9, 1.0);
        for scales in [
            Float8Scales::default(),
            // Power-of-two kernel scales let the matrix-vector kernel scale
            // sums instead of weights; 0.3 does not.
            Float8Scales {
                inputs: 0.3,
                kernel: 0.0625,
            },
            Float8Scales {
                inputs: 1.0,
                kernel: 0.3,
            },
        ] {
            let weights = ctx
                .upload_dense_float8(storage, &w, Some(&b), (k, n), scales)
                .unwrap();
            for (activation, kernel) in [Activation::Linear, Activation::Silu]
                .into_iter()
                .flat_map(|a| KERNELS.map(|k| (a, k)))
            {
                let gpu = ctx
                    .dense_float8(&weights, kernel, activation, &x, m)
                    .unwrap();
                let cpu = dense_float8(
                    format,
                    kernel,
                    activation,
                    &x,
                    &w,
                    Some(&b),
                    (m, k, n),
                    (scales, Float8::E4M3Fn),
                )
                .unwrap();
                let label = format!("{storage:?} {kernel:?} {scales:?} {activation:?}");
                compare(&gpu, &cpu, (&x, &w), (m, k, n), format, &label);
            }
        }
    }
}

fn non_finite_activations(ctx: &mut GpuContext) {
    let (k, n) = (5, 3);
    let w = common::gpu::values(k * n, 4, 1.0);
    let weights = ctx
        .upload_dense_float8(
            StorageVariant::F32,
            &w,
            None,
            (k, n),
            Float8Scales::default(),
        )
        .unwrap();
    // Infinity saturates to 448 (Keras clips before encoding); NaN stays NaN.
    let x = [
        f32::INFINITY,
        1.0,
        -f32::INFINITY,
        0.5,
        2.0,
        f32::NAN,
        1.0,
        1.0,
        1.0,
        1.0,
    ];
    for kernel in KERNELS {
        let gpu = ctx
            .dense_float8(&weights, kernel, Activation::Linear, &x, 2)
            .unwrap();
        let cpu = dense_float8(
            StorageFormat::F32,
            kernel,
            Activation::Linear,
            &x,
            &w,
            None,
            (2, k, n),
            (Float8Scales::default(), Float8::E4M3Fn),
        )
        .unwrap();
        for (g, c) in gpu[..n].iter().zip(&cpu[..n]) {
            assert!(
                g.is_finite() && (g - c).abs() <= 1e-3 * c.abs().max(1.0),
                "saturated row: {g} vs {c}"
            );
        }
        assert!(
            gpu[n..].iter().all(|v| v.is_nan()),
            "a NaN activation makes its row NaN: {gpu:?}"
        );
        assert!(cpu[n..].iter().all(|v| v.is_nan()));
    }
}

/// The e5m2 weight storage: weights up to 50000 (beyond e4m3's 448).
fn e5m2_weights(ctx: &mut GpuContext, storage: StorageVariant) {
    let format = storage.format();
    let (m, k, n) = (2, 37, 13);
    let x = common::gpu::values(m * k, 5, 2.0);
    let w = common::gpu::values(k * n, 6, 50000.0);
    for kernel in KERNELS {
        let (gpu, cpu) = run_linear(ctx, (Float8::E5M2, storage, kernel), (&x, &w), (m, k, n));
        let label = format!("e5m2 {storage:?} {kernel:?}");
        compare(&gpu, &cpu, (&x, &w), (m, k, n), format, &label);
    }
}

#[test]
fn float8_matches_its_twin_on_lavapipe_vulkan() {
    let mut ctx = common::gpu::vulkan();
    for storage in [
        StorageVariant::F32,
        StorageVariant::BF16Packed,
        StorageVariant::F16Packed,
    ] {
        check(&mut ctx, storage);
        e5m2_weights(&mut ctx, storage);
        edge_weights(&mut ctx, storage);
    }
    non_finite_activations(&mut ctx);
}

#[test]
fn float8_matches_its_twin_on_llvmpipe_gl() {
    let mut ctx = common::gpu::gl();
    for storage in [StorageVariant::F32, StorageVariant::BF16Packed] {
        check(&mut ctx, storage);
        e5m2_weights(&mut ctx, storage);
        edge_weights(&mut ctx, storage);
    }
    non_finite_activations(&mut ctx);
}

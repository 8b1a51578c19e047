// SPDX-License-Identifier: MIT OR Apache-2.0
//! Every Dense kernel variant on real adapters against its CPU twin:
//! lavapipe (Vulkan, has SHADER_F16) and llvmpipe (OpenGL, lacks it, which
//! proves the f16 fallback). Without an adapter these tests fail and say how
//! to get one; they never skip.

mod common;

use dtype_policy::cpu::dense::dense as cpu_dense;
use dtype_policy::gpu::GpuError;
use dtype_policy::gpu::context::GpuContext;
use dtype_policy::gpu::dense::{Activation, check_activation};
use dtype_policy::gpu::formats::{HostFloat, StorageFormat};
use dtype_policy::gpu::shaders::{Kernel, StorageVariant};

const MS: [usize; 4] = [1, 3, 64, 257];
const KS: [usize; 4] = [1, 37, 256, 1000];
const NS: [usize; 4] = [1, 13, 96, 1024];

/// Deterministic values in [-1, 1), as f64 (exact: they have 24 bits).
fn values(count: usize, seed: u64) -> Vec<f64> {
    common::gpu::values(count, seed, 1.0)
        .into_iter()
        .map(f64::from)
        .collect()
}

/// How far a GPU result may be from its twin, and why:
/// - the twin sums the same rounded products in the same order, but the GPU
///   may fuse a multiply and an add (one rounding fewer); that changes each
///   partial sum by at most one rounding of the arithmetic type (ε of f32,
///   or of f64 for the f64 variant), so the total by at most
///   (k + 2) · ε · Σ|x·w|;
/// - the activation's slope is below 1.2, and exp/tanh differ from Rust's by
///   a few ulp (WGSL allows 3 + 2|x| ulp for exp): 2e-6 · (1 + |y|);
/// - a 16-bit output can land one ulp of its format away when the f32 values
///   straddle a rounding boundary.
fn tolerance(format: StorageFormat, activation: Activation, k: usize, abs_dot: f64, y: f64) -> f64 {
    let epsilon = if format == StorageFormat::F64 {
        f64::EPSILON
    } else {
        f64::from(f32::EPSILON)
    };
    let accumulation = (k as f64 + 2.0) * epsilon * abs_dot;
    let transcendental = match activation {
        Activation::Linear | Activation::Relu => 0.0,
        _ => 2e-6 * (1.0 + y.abs()),
    };
    let output_ulp = match format {
        StorageFormat::F32 | StorageFormat::F64 => 0.0,
        StorageFormat::F16 => y.abs() * 2f64.powi(-10) + 2f64.powi(-24),
        StorageFormat::BF16 => y.abs() * 2f64.powi(-7) + f64::from(f32::MIN_POSITIVE),
    };
    1.2 * accumulation + transcendental + output_ulp
}

/// Runs one case on the GPU and the twin in the host type of the variant
/// (f64 for the f64 variant, f32 otherwise) and compares every output.
fn check(
    ctx: &mut GpuContext,
    storage: StorageVariant,
    kernel: Kernel,
    activation: Activation,
    dims: (usize, usize, usize),
) {
    if storage == StorageVariant::F64 {
        check_in::<f64>(ctx, storage, kernel, activation, dims)
    } else {
        check_in::<f32>(ctx, storage, kernel, activation, dims)
    }
}

fn check_in<T: HostFloat>(
    ctx: &mut GpuContext,
    storage: StorageVariant,
    kernel: Kernel,
    activation: Activation,
    (m, k, n): (usize, usize, usize),
) {
    let host = |v: Vec<f64>| -> Vec<T> { v.into_iter().map(T::from_f64).collect() };
    let x = host(values(m * k, (m * 31 + k) as u64));
    let w = host(values(k * n, (k * 17 + n) as u64));
    let bias = host(values(n, n as u64 + 5));
    let weights = ctx.upload_dense(storage, &w, Some(&bias), k, n).unwrap();
    let gpu = ctx.dense(&weights, kernel, activation, &x, m).unwrap();
    let format = storage.format();
    let cpu = cpu_dense(format, kernel, activation, &x, &w, Some(&bias), (m, k, n)).unwrap();
    assert_eq!(gpu.len(), m * n);
    let r = |v: T| format.round(v.to_f64());
    for (i, (g, c)) in gpu.iter().zip(&cpu).enumerate() {
        let (row, col) = (i / n, i % n);
        let abs_dot: f64 = (0..k)
            .map(|j| (r(x[row * k + j]) * r(w[j * n + col])).abs())
            .sum();
        let (g, c) = (g.to_f64(), c.to_f64());
        let tol = tolerance(format, activation, k, abs_dot + r(bias[col]).abs(), c);
        let err = (g - c).abs();
        assert!(
            g.is_finite() && err <= tol,
            "{storage:?} {kernel:?} {activation:?} m={m} k={k} n={n}: y[{row}][{col}] gpu {g} cpu {c} \
             (error {err:e}, tolerance {tol:e})"
        );
    }
}

/// The activations a variant applies (f64: linear and relu only).
fn activations(storage: StorageVariant) -> Vec<Activation> {
    Activation::ALL
        .into_iter()
        .filter(|a| check_activation(storage, *a).is_ok())
        .collect()
}

fn run_all(ctx: &mut GpuContext, expect_f16: bool, expect_f64: bool) {
    let caps = ctx.capabilities().clone();
    assert_eq!(
        (caps.shader_f16, caps.shader_f64),
        (expect_f16, expect_f64),
        "{caps}"
    );
    let variants: Vec<StorageVariant> = StorageVariant::ALL
        .into_iter()
        .filter(|v| {
            (!v.needs_shader_f16() || caps.shader_f16) && (!v.needs_shader_f64() || caps.shader_f64)
        })
        .collect();
    let mut pipelines = 0;
    for &storage in &variants {
        for kernel in Kernel::DENSE {
            for m in MS {
                for k in KS {
                    for n in NS {
                        check(ctx, storage, kernel, Activation::Linear, (m, k, n));
                    }
                }
            }
            for activation in activations(storage) {
                check(ctx, storage, kernel, activation, (3, 37, 13));
                check(ctx, storage, kernel, activation, (64, 256, 96));
                pipelines += 1;
            }
        }
    }
    // One pipeline per (kernel, variant, activation), however many shapes ran.
    let stats = ctx.pipeline_stats();
    assert_eq!(stats.compiled, pipelines);
    assert!(stats.reused > stats.compiled * 10, "{stats:?}");
}

#[test]
fn the_f64_variant_refuses_activations_it_cannot_compute() {
    let mut ctx = common::gpu::vulkan();
    let weights = ctx
        .upload_dense(StorageVariant::F64, &[1.0f64], None, 1, 1)
        .unwrap();
    let err = ctx
        .dense(
            &weights,
            Kernel::DenseMatVec,
            Activation::Gelu,
            &[1.0f64],
            1,
        )
        .unwrap_err();
    assert!(err.to_string().contains("linear and relu only"), "{err}");
}

#[test]
fn every_variant_matches_its_twin_on_lavapipe_vulkan() {
    let mut ctx = common::gpu::vulkan();
    run_all(&mut ctx, true, true);
}

#[test]
fn every_variant_matches_its_twin_on_llvmpipe_gl_without_shader_f16() {
    let mut ctx = common::gpu::gl();
    run_all(&mut ctx, false, false);
    // Unsupported there, listed: the f64 variant needs SHADER_F64.
    match ctx.upload_dense(StorageVariant::F64, &[1.0f64], None, 1, 1) {
        Err(GpuError::MissingFeature {
            feature: "SHADER_F64",
            ..
        }) => {}
        other => panic!("expected MissingFeature, got {:?}", other.map(|_| ())),
    }
    // Unsupported there, listed: the native f16 variant needs SHADER_F16.
    let w = [1.0f32];
    match ctx.upload_dense(StorageVariant::F16Native, &w, None, 1, 1) {
        Err(GpuError::MissingFeature {
            feature: "SHADER_F16",
            ..
        }) => {}
        other => panic!("expected MissingFeature, got {:?}", other.map(|_| ())),
    }
}

#[test]
fn mismatched_shapes_and_oversized_buffers_are_errors() {
    let mut ctx = common::gpu::vulkan();
    let err = ctx
        .upload_dense(StorageVariant::F32, &[1.0; 6], None, 4, 2)
        .err()
        .unwrap();
    assert!(err.to_string().contains("k=4 x n=2 needs 8"), "{err}");
    let err = ctx
        .upload_dense(StorageVariant::F32, &[1.0; 8], Some(&[0.0; 3]), 4, 2)
        .err()
        .unwrap();
    assert!(
        err.to_string().contains("bias has 3 values, expected n=2"),
        "{err}"
    );
    let weights = ctx
        .upload_dense(StorageVariant::F32, &[1.0; 8], None, 4, 2)
        .unwrap();
    let err = ctx
        .dense(
            &weights,
            Kernel::DenseMatVec,
            Activation::Linear,
            &[1.0; 5],
            2,
        )
        .unwrap_err();
    assert!(err.to_string().contains("m=2 rows of k=4 need 8"), "{err}");
    // Weights are split across bindings, but not below 128 outputs: with
    // 64 KiB per binding, 128 rows of 224 padded f32 (114,688 bytes) are too
    // many. x is never split.
    ctx.limit_storage_bindings(64 << 10);
    let (k, n) = (200, 300);
    match ctx.upload_dense(StorageVariant::F32, &vec![0.0f32; k * n], None, k, n) {
        Err(GpuError::BufferTooLarge {
            bytes, limit: l, ..
        }) => assert_eq!((bytes, l), (128 * 224 * 4, 64 << 10)),
        other => panic!("expected BufferTooLarge, got {:?}", other.map(|_| ())),
    }
    let weights = ctx
        .upload_dense(StorageVariant::F32, &[1.0; 8], None, 4, 2)
        .unwrap();
    let x = vec![0.0f32; 4 * (16 << 10) + 4];
    match ctx.dense(
        &weights,
        Kernel::DenseTiled,
        Activation::Linear,
        &x,
        x.len() / 4,
    ) {
        Err(GpuError::BufferTooLarge { bytes, .. }) => assert!(bytes > 64 << 10),
        other => panic!("expected BufferTooLarge for x, got {:?}", other.map(|_| ())),
    }
}

/// Layers larger than one storage binding run split by outputs, each part
/// its own dispatch writing its columns of y: every variant, both shapes,
/// on both adapters, against the twin, with the binding limit lowered so
/// that small layers split (parts of 128 outputs and a shorter last one;
/// odd n; several rows, y within the limit).
#[test]
fn layers_larger_than_a_binding_split_and_match_their_twin() {
    for mut ctx in [common::gpu::vulkan(), common::gpu::gl()] {
        let caps = ctx.capabilities().clone();
        ctx.limit_storage_bindings(256 << 10);
        for storage in StorageVariant::ALL.into_iter().filter(|v| {
            (!v.needs_shader_f16() || caps.shader_f16) && (!v.needs_shader_f64() || caps.shader_f64)
        }) {
            // k 200 pads to 224: rows of 448 (16-bit) to 1792 (f64) bytes,
            // parts of 512 to 128 outputs.
            let (k, n) = (200, 1101);
            let row_bytes = 224 * storage.format().bytes_per_value();
            let per_part = (256 << 10) / row_bytes / 128 * 128;
            let w = vec![0.5f32; k * n];
            let parts = ctx.upload_dense(storage, &w, None, k, n).unwrap().parts();
            assert_eq!(
                parts,
                1102_usize.div_ceil(per_part),
                "{storage:?} on {}",
                caps.adapter_name
            );
            assert!(parts > 1, "{storage:?}: the layer should split");
            for kernel in Kernel::DENSE {
                for m in [1, 3, 20] {
                    check(&mut ctx, storage, kernel, Activation::Linear, (m, k, n));
                }
                check(&mut ctx, storage, kernel, Activation::Relu, (2, k, 643));
                // A last part of one or two outputs, one row: its binding
                // of y is the shortest.
                for n in [2 * per_part + 1, 2 * per_part + 2] {
                    check(&mut ctx, storage, kernel, Activation::Linear, (1, k, n));
                }
            }
        }
    }
}

#[test]
fn an_invalid_shader_is_an_error_on_both_adapters() {
    for mut ctx in [common::gpu::vulkan(), common::gpu::gl()] {
        let broken = "@compute @workgroup_size(1) fn main() { let x: f32 = 1u; }";
        let err = ctx.check_wgsl("broken", broken).unwrap_err();
        assert!(
            matches!(err, GpuError::Shader { ref label, .. } if label == "broken"),
            "{err}"
        );
        assert!(
            err.to_string().contains("Shader 'broken' is invalid"),
            "{err}"
        );
        ctx.check_wgsl("fine", "@compute @workgroup_size(1) fn main() {}")
            .unwrap();
        // The context still works after the error.
        let weights = ctx
            .upload_dense(StorageVariant::F32, &[2.0], None, 1, 1)
            .unwrap();
        let y = ctx
            .dense(&weights, Kernel::DenseMatVec, Activation::Linear, &[3.0], 1)
            .unwrap();
        assert_eq!(y, [6.0]);
    }
}

#[test]
fn a_lost_device_is_an_error_not_a_panic() {
    let mut ctx = common::gpu::vulkan();
    let weights = ctx
        .upload_dense(StorageVariant::F32, &[1.0; 4], None, 2, 2)
        .unwrap();
    ctx.device().destroy();
    let err = ctx
        .dense(
            &weights,
            Kernel::DenseMatVec,
            Activation::Linear,
            &[1.0, 2.0],
            1,
        )
        .unwrap_err();
    assert!(
        matches!(err, GpuError::DeviceLost(_) | GpuError::Wgpu { .. }),
        "{err}"
    );
}

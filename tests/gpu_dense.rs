// SPDX-License-Identifier: MIT OR Apache-2.0
//! Every Dense weight format (float in f32, f16, bf16 and f64; int8 with
//! and without quantized activations; int4 per channel, grouped, and with
//! int8 activations; float8 in e4m3 and e5m2), both kernel shapes, on both
//! real adapters, against the CPU twin through one harness
//! (`common::harness`): lavapipe (Vulkan, SHADER_F16, subgroups of 8) and
//! llvmpipe (OpenGL, neither, which proves the fallbacks). Awkward shapes:
//! 1, odd, not a multiple of 4, 8 or 32, larger than one workgroup's rows
//! and outputs. Without an adapter these tests fail and say how to get
//! one; they never skip.

mod common;

use std::num::NonZeroU32;

use common::harness::{Case, without_bias, without_last_term};
use dtype_policy::Error;
use dtype_policy::format::{DenseKernel, HostFloat, StorageFormat, WeightFormat};
use dtype_policy::gpu::GpuError;
use dtype_policy::gpu::context::GpuContext;
use dtype_policy::gpu::dense::{Family, check_activation};
use dtype_policy::gpu::kernels::Kernel;
use dtype_policy::gpu::shaders::StorageVariant;
use dtype_policy::ops::{Activation, DenseShape};
use dtype_policy::quant::float8::{Float8, Float8Scales};

/// Runs `kernel` on the GPU (a one-op recorded forward) and its twin, and
/// checks them with the harness; returns the GPU's outputs.
fn check<T: HostFloat>(
    ctx: &mut GpuContext,
    kernel: &DenseKernel,
    storage: StorageVariant,
    (shape, activation): (DenseShape, Activation),
    x: &[T],
    m: usize,
) -> Vec<T> {
    let label = format!(
        "{} {storage:?} {shape:?} {activation:?} on {}",
        kernel.format().name(),
        ctx.capabilities().adapter_name
    );
    let weights = ctx
        .upload_dense(storage, kernel)
        .unwrap_or_else(|e| panic!("{label}: upload: {e}"));
    let gpu = ctx
        .dense(&weights, shape, activation, x, m)
        .unwrap_or_else(|e| panic!("{label}: run: {e}"));
    let case = Case {
        label,
        kernel,
        format: storage.format(),
        shape,
        activation,
        x,
        m,
    };
    case.compare(&gpu, &case.twin())
        .unwrap_or_else(|e| panic!("{e}"));
    gpu
}

fn values(count: usize, seed: u64, scale: f32) -> Vec<f32> {
    common::gpu::values(count, seed, scale)
}

/// The storage variants this adapter runs, of those given.
fn variants(ctx: &GpuContext, of: &[StorageVariant]) -> Vec<StorageVariant> {
    let caps = ctx.capabilities();
    of.iter()
        .copied()
        .filter(|v| {
            (!v.needs_shader_f16() || caps.shader_f16) && (!v.needs_shader_f64() || caps.shader_f64)
        })
        .collect()
}

/// The formats the quantized kernels compute in.
const QUANTIZED_STORAGE: [StorageVariant; 3] = [
    StorageVariant::F32,
    StorageVariant::BF16Packed,
    StorageVariant::F16Packed,
];

// ---------------------------------------------------------------- float

const MS: [usize; 4] = [1, 3, 64, 257];
const KS: [usize; 4] = [1, 37, 256, 1000];
const NS: [usize; 4] = [1, 13, 96, 1024];

fn float_case<T: HostFloat>(
    ctx: &mut GpuContext,
    storage: StorageVariant,
    how: (DenseShape, Activation),
    (m, k, n): (usize, usize, usize),
) {
    let host = |v: Vec<f32>| -> Vec<T> { v.into_iter().map(T::from_f32).collect() };
    let x = host(values(m * k, (m * 31 + k) as u64, 1.0));
    let w = host(values(k * n, (k * 17 + n) as u64, 1.0));
    let bias = host(values(n, n as u64 + 5, 1.0));
    let kernel = DenseKernel::float(&w, Some(&bias), (k, n)).unwrap();
    check(ctx, &kernel, storage, how, &x, m);
}

fn float_variant(
    ctx: &mut GpuContext,
    storage: StorageVariant,
    how: (DenseShape, Activation),
    dims: (usize, usize, usize),
) {
    if storage == StorageVariant::F64 {
        float_case::<f64>(ctx, storage, how, dims)
    } else {
        float_case::<f32>(ctx, storage, how, dims)
    }
}

fn float_grid(ctx: &mut GpuContext, expect_f16: bool, expect_f64: bool) {
    let caps = ctx.capabilities().clone();
    assert_eq!(
        (caps.shader_f16, caps.shader_f64),
        (expect_f16, expect_f64),
        "{caps}"
    );
    let (mut pipelines, mut runs) = (0, 0);
    for storage in variants(ctx, &StorageVariant::ALL) {
        for shape in DenseShape::ALL {
            for m in MS {
                for k in KS {
                    for n in NS {
                        float_variant(ctx, storage, (shape, Activation::Linear), (m, k, n));
                        runs += 1;
                    }
                }
            }
            // Every activation on f32 storage; the rest apply the same
            // shared/activation.wgsl in f32, so the first six prove them.
            let activations = if storage == StorageVariant::F32 {
                &Activation::ALL[..]
            } else {
                &Activation::ALL[..6]
            };
            for activation in activations
                .iter()
                .copied()
                .filter(|a| check_activation(storage, *a).is_ok())
            {
                float_variant(ctx, storage, (shape, activation), (3, 37, 13));
                float_variant(ctx, storage, (shape, activation), (64, 256, 96));
                pipelines += 1;
                runs += 2;
            }
        }
    }
    // One pipeline per (kernel, variant, activation), however many shapes ran.
    let stats = ctx.pipeline_stats();
    assert_eq!(stats.compiled, pipelines);
    // Every other run found its pipeline compiled (linear counted once).
    assert_eq!(stats.reused, runs - stats.compiled, "{stats:?}");
}

#[test]
fn every_float_variant_matches_its_twin_on_lavapipe_vulkan() {
    float_grid(&mut common::gpu::vulkan(), true, true);
}

#[test]
fn every_float_variant_matches_its_twin_on_llvmpipe_gl_without_shader_f16() {
    let mut ctx = common::gpu::gl();
    float_grid(&mut ctx, false, false);
    // Unsupported there, listed: the f64 variant needs SHADER_F64, native
    // f16 needs SHADER_F16.
    let kernel = DenseKernel::float(&[1.0f32], None, (1, 1)).unwrap();
    for (storage, missing) in [
        (StorageVariant::F64, "SHADER_F64"),
        (StorageVariant::F16Native, "SHADER_F16"),
    ] {
        match ctx.upload_dense(storage, &kernel) {
            Err(Error::Gpu(GpuError::MissingFeature { feature, .. })) if feature == missing => {}
            other => panic!(
                "{storage:?}: expected MissingFeature, got {:?}",
                other.map(|_| ())
            ),
        }
    }
}

/// Every tiled candidate of gpu::tuning (the register tiles over chunk
/// textures) against the tiled twin: f32 over the whole grid, the packed
/// 16-bit formats (native f16 too, where the adapter has it: the packed
/// tiles read its bytes) on its awkward corners, and activations.
fn tiled_candidates(ctx: &mut GpuContext) {
    let native = variants(ctx, &[StorageVariant::F16Native]);
    for storage in QUANTIZED_STORAGE.into_iter().chain(native) {
        let candidates = dtype_policy::gpu::tuning::candidates(Kernel::DenseTiled, storage);
        assert_eq!(candidates.len(), 4, "{storage:?}: {candidates:?}");
        for kernel in candidates {
            // f32 over the grid (its largest product once), the packed
            // formats on its corners: 1, odd, and more than one
            // workgroup's rows (32) and outputs (32).
            let mut dims = Vec::new();
            for m in MS {
                for k in KS {
                    for n in NS {
                        let largest = (m, k, n) == (257, 1000, 1024);
                        if storage == StorageVariant::F32 && !largest {
                            dims.push((m, k, n));
                        }
                    }
                }
            }
            if storage == StorageVariant::F32 && kernel == Kernel::DenseTexTile32x4 {
                dims.push((257, 1000, 1024));
            }
            if storage != StorageVariant::F32 {
                dims.extend([(1, 1, 1), (3, 37, 13), (257, 1000, 96), (64, 37, 1024)]);
            }
            let runs = dims
                .into_iter()
                .map(|d| (d, Activation::Linear))
                .chain([((40, 256, 97), Activation::Gelu)]);
            for ((m, k, n), activation) in runs {
                let x = values(m * k, (m * 31 + k) as u64, 1.0);
                let w = values(k * n, (k * 17 + n) as u64, 1.0);
                let bias = values(n, n as u64 + 5, 1.0);
                let dense = DenseKernel::float(&w, Some(&bias), (k, n)).unwrap();
                check_with(
                    ctx,
                    &dense,
                    storage,
                    (kernel, DenseShape::Tiled, activation),
                    &x,
                    m,
                );
            }
        }
    }
}

#[test]
fn every_tiled_candidate_matches_its_twin_on_lavapipe_vulkan() {
    tiled_candidates(&mut common::gpu::vulkan());
}

#[test]
fn every_tiled_candidate_matches_its_twin_on_llvmpipe_gl_without_subgroups() {
    tiled_candidates(&mut common::gpu::gl());
}

#[test]
fn kernels_that_cannot_run_the_weights_are_refused() {
    let ctx = common::gpu::vulkan();
    let kernel = DenseKernel::float(&[1.0f32], None, (1, 1)).unwrap();
    let upload = |storage| ctx.upload_dense(storage, &kernel).unwrap();
    for (refused, expected) in [
        (
            upload(StorageVariant::F32).with_tiled_kernel(Kernel::DenseInt8Tiled),
            "not a tiled kernel of float weights in f32",
        ),
        (
            upload(StorageVariant::F64).with_matvec_kernel(Kernel::DenseMatVecWide),
            "not a matrix-vector kernel of float weights in f64",
        ),
    ] {
        let err = refused.unwrap_err();
        assert!(err.to_string().contains(expected), "{err}");
    }
}

/// Both loads of the float matrix-vector kernel (16 and 32 bytes of W^T
/// per load) against the twin on lavapipe, the one adapter here with
/// SHADER_INT64 (routing picks the wide one there, so the plain one is
/// forced), on the float grid's awkward shapes.
#[test]
fn both_matvec_loads_match_the_twin_on_lavapipe_vulkan() {
    let mut ctx = common::gpu::vulkan();
    assert!(ctx.capabilities().shader_int64, "{}", ctx.capabilities());
    for storage in QUANTIZED_STORAGE {
        assert_eq!(
            Family::Float.matvec_on(storage, ctx.capabilities()),
            Kernel::DenseMatVecWide
        );
        for matvec in [Kernel::DenseMatVec, Kernel::DenseMatVecWide] {
            for (m, k, n) in [(1, 1, 1), (1, 37, 13), (3, 1000, 1024), (8, 256, 96)] {
                let x = values(m * k, (m * 31 + k) as u64, 1.0);
                let w = values(k * n, (k * 17 + n) as u64, 1.0);
                let bias = values(n, n as u64 + 5, 1.0);
                let kernel = DenseKernel::float(&w, Some(&bias), (k, n)).unwrap();
                let how = (matvec, DenseShape::MatVec, Activation::Linear);
                check_with(&mut ctx, &kernel, storage, how, &x, m);
            }
        }
    }
}

#[test]
fn the_wide_matvec_is_refused_where_it_cannot_run() {
    // llvmpipe GL lacks SHADER_INT64, so its weights have no lanes layout.
    let gl = common::gpu::gl();
    let kernel = DenseKernel::float(&[1.0f32; 4], None, (2, 2)).unwrap();
    let weights = gl.upload_dense(StorageVariant::F32, &kernel).unwrap();
    assert_eq!(weights.kernel(DenseShape::MatVec, 1), Kernel::DenseMatVec);
    let err = weights
        .with_matvec_kernel(Kernel::DenseMatVecWide)
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("laid out for a CPU driver's SIMD lanes"),
        "{err}"
    );
}

#[test]
fn the_f64_variant_refuses_activations_it_cannot_compute() {
    let mut ctx = common::gpu::vulkan();
    let kernel = DenseKernel::float(&[1.0f64], None, (1, 1)).unwrap();
    let weights = ctx.upload_dense(StorageVariant::F64, &kernel).unwrap();
    let err = ctx
        .dense(&weights, DenseShape::MatVec, Activation::Gelu, &[1.0f64], 1)
        .unwrap_err();
    assert!(err.to_string().contains("linear and relu only"), "{err}");
}

// ---------------------------------------------------------------- int8

const INT8_SHAPES: [(usize, usize, usize); 9] = [
    (1, 1, 1),
    (1, 37, 13),
    (3, 5, 7),
    (1, 256, 96),
    (2, 1000, 1024),
    (5, 33, 2),
    (1, 4096, 64),
    (64, 100, 31),
    (130, 70, 45),
];

/// Inputs with an all-zero row of x and an all-zero column of W (the
/// epsilon path of the quantizers).
fn int8_inputs((m, k, n): (usize, usize, usize)) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let mut x = values(m * k, (m * 7 + k) as u64, 1.0);
    let mut w = values(k * n, (k * 3 + n) as u64, 1.0);
    if m > 1 {
        x[k..2 * k].fill(0.0);
    }
    if n > 1 {
        for i in 0..k {
            w[i * n + 1] = 0.0;
        }
    }
    (x, w, values(n, n as u64, 1.0))
}

const INT8: WeightFormat = WeightFormat::Int8 {
    quantized_inputs: true,
};

/// The tiled candidates of `format`'s family in `storage` on this adapter
/// besides the fixed rule's kernel: the register tiles (none for float8
/// without subgroups).
fn register_tiles(ctx: &GpuContext, format: WeightFormat, storage: StorageVariant) -> Vec<Kernel> {
    let fixed = Family::of(format).kernel(DenseShape::Tiled);
    let caps = ctx.capabilities();
    let all = dtype_policy::gpu::tuning::candidates_on(fixed, storage, caps);
    let float8_alone = matches!(format, WeightFormat::Float8(_)) && !caps.subgroups;
    assert_eq!(
        all.len(),
        if float8_alone { 1 } else { 4 },
        "{format:?} {storage:?}: {all:?}"
    );
    all[1..].to_vec()
}

/// Every register tile of the kernel's family against the tiled twin
/// (linear: the activations are the fixed rule's code, tested beside it).
fn check_tiles(
    ctx: &mut GpuContext,
    kernel: &DenseKernel,
    storage: StorageVariant,
    x: &[f32],
    m: usize,
) {
    for candidate in register_tiles(ctx, kernel.format(), storage) {
        let how = (candidate, DenseShape::Tiled, Activation::Linear);
        check_with(ctx, kernel, storage, how, x, m);
    }
}

/// `kernel` run by `chosen` (a tiled candidate, or a matrix-vector kernel)
/// in `shape` against the twin.
fn check_with(
    ctx: &mut GpuContext,
    kernel: &DenseKernel,
    storage: StorageVariant,
    (chosen, shape, activation): (Kernel, DenseShape, Activation),
    x: &[f32],
    m: usize,
) {
    let (k, n) = (kernel.k(), kernel.n());
    let label = format!(
        "{chosen:?} {storage:?} {m}x{k}x{n} {activation:?} on {}",
        ctx.capabilities().adapter_name
    );
    let weights = ctx
        .upload_dense(storage, kernel)
        .and_then(|w| match shape {
            DenseShape::Tiled => w.with_tiled_kernel(chosen),
            DenseShape::MatVec => w.with_matvec_kernel(chosen),
        })
        .unwrap_or_else(|e| panic!("{label}: upload: {e}"));
    assert_eq!(weights.kernel(shape, m), chosen);
    let gpu = ctx
        .dense(&weights, shape, activation, x, m)
        .unwrap_or_else(|e| panic!("{label}: run: {e}"));
    let case = Case {
        label,
        kernel,
        format: storage.format(),
        shape,
        activation,
        x,
        m,
    };
    case.compare(&gpu, &case.twin())
        .unwrap_or_else(|e| panic!("{e}"));
}

/// The int8 product's i32 sums bit for bit against the twin's, both shapes.
fn int8_accumulators(ctx: &mut GpuContext) {
    for dims in INT8_SHAPES {
        let (m, k, n) = dims;
        let (x, w, _) = int8_inputs(dims);
        let kernel = DenseKernel::quantize(INT8, &w, None, (k, n)).unwrap();
        let weights = ctx.upload_dense(StorageVariant::F32, &kernel).unwrap();
        let matvec = ctx
            .dense_int8_accumulators(&weights, DenseShape::MatVec, &x, m)
            .unwrap();
        let tiled = ctx
            .dense_int8_accumulators(&weights, DenseShape::Tiled, &x, m)
            .unwrap();
        assert_eq!(tiled, matvec, "tiled int8 accumulators m={m} k={k} n={n}");
        // The register tiles sum in f32 blocks folded into i32: the same bits.
        for candidate in register_tiles(ctx, INT8, StorageVariant::F32) {
            let forced = weights.clone().with_tiled_kernel(candidate).unwrap();
            let sums = ctx
                .dense_int8_accumulators(&forced, DenseShape::Tiled, &x, m)
                .unwrap();
            assert_eq!(
                sums, matvec,
                "{candidate:?} int8 accumulators m={m} k={k} n={n}"
            );
        }
        let (twin, _) =
            dtype_policy::cpu::dense::int8_accumulators(&kernel, StorageFormat::F32, &x, m)
                .unwrap();
        assert_eq!(matvec, twin, "int8 accumulators m={m} k={k} n={n}");
        for plain_or_wide in matvec_kernels(ctx, INT8, StorageVariant::F32) {
            let forced = weights.clone().with_matvec_kernel(plain_or_wide).unwrap();
            let sums = ctx
                .dense_int8_accumulators(&forced, DenseShape::MatVec, &x, m)
                .unwrap();
            assert_eq!(
                sums, twin,
                "{plain_or_wide:?} int8 accumulators m={m} k={k} n={n}"
            );
        }
    }
}

/// The matrix-vector kernels of `format` in `storage` this adapter runs:
/// the family's plain one and its alternative (32-byte loads, where the
/// adapter has SHADER_INT64).
fn matvec_kernels(ctx: &GpuContext, format: WeightFormat, storage: StorageVariant) -> Vec<Kernel> {
    let family = Family::of(format);
    std::iter::once(family.matvec())
        .chain(family.matvec_alternative(storage))
        .filter(|k| !k.spec().needs_int64 || ctx.capabilities().shader_int64)
        .collect()
}

fn int8_outputs(ctx: &mut GpuContext, format: WeightFormat, storages: &[StorageVariant]) {
    for storage in variants(ctx, storages) {
        for dims in INT8_SHAPES {
            let (m, k, n) = dims;
            let (x, w, b) = int8_inputs(dims);
            let kernel = DenseKernel::quantize(format, &w, Some(&b), (k, n)).unwrap();
            for activation in [Activation::Linear, Activation::Gelu] {
                for shape in DenseShape::ALL {
                    check(ctx, &kernel, storage, (shape, activation), &x, m);
                }
            }
            check_tiles(ctx, &kernel, storage, &x, m);
            for matvec in matvec_kernels(ctx, format, storage) {
                let how = (matvec, DenseShape::MatVec, Activation::Linear);
                check_with(ctx, &kernel, storage, how, &x, m);
            }
        }
    }
}

#[test]
fn int8_matches_its_twin_on_both_adapters() {
    for mut ctx in [common::gpu::vulkan(), common::gpu::gl()] {
        int8_accumulators(&mut ctx);
        int8_outputs(&mut ctx, INT8, &QUANTIZED_STORAGE);
    }
}

#[test]
fn int8_weight_only_matches_its_twin_on_both_adapters() {
    let format = WeightFormat::Int8 {
        quantized_inputs: false,
    };
    for mut ctx in [common::gpu::vulkan(), common::gpu::gl()] {
        int8_outputs(&mut ctx, format, &QUANTIZED_STORAGE);
    }
}

/// Per-channel int4 weights with int8 activations (Keras before 3.14, and
/// `Int4QuantizationConfig` with an activation quantizer) run on the int8
/// kernels: their sums are exact too.
#[test]
fn int4_with_int8_activations_matches_its_twin_on_both_adapters() {
    let format = WeightFormat::Int4 {
        block: None,
        quantized_inputs: true,
    };
    for mut ctx in [common::gpu::vulkan(), common::gpu::gl()] {
        int8_outputs(&mut ctx, format, &QUANTIZED_STORAGE);
    }
}

// ---------------------------------------------------------------- int4

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

fn int4(ctx: &mut GpuContext) {
    for storage in variants(ctx, &QUANTIZED_STORAGE) {
        for (m, k, n) in SHAPES {
            let x = values(m * k, (m + k) as u64, 1.0);
            let mut w = values(k * n, (k * 5 + n) as u64, 1.0);
            if n > 1 {
                for i in 0..k {
                    w[i * n + 1] = 0.0;
                }
            }
            let b = values(n, 3, 1.0);
            for block in [
                None,
                NonZeroU32::new(4),
                NonZeroU32::new(3),
                NonZeroU32::new(32),
                NonZeroU32::new(128),
            ] {
                let format = WeightFormat::Int4 {
                    block,
                    quantized_inputs: false,
                };
                let kernel = DenseKernel::quantize(format, &w, Some(&b), (k, n)).unwrap();
                for activation in [Activation::Linear, Activation::Silu] {
                    for shape in DenseShape::ALL {
                        check(ctx, &kernel, storage, (shape, activation), &x, m);
                    }
                }
                // Per channel, groups of whole 32-k steps (the register
                // tiles' grouping 2) and any other (1).
                if matches!(block.map(NonZeroU32::get), None | Some(3) | Some(128)) {
                    check_tiles(ctx, &kernel, storage, &x, m);
                }
            }
        }
    }
}

#[test]
fn int4_per_channel_and_grouped_matches_its_twin_on_both_adapters() {
    for mut ctx in [common::gpu::vulkan(), common::gpu::gl()] {
        int4(&mut ctx);
    }
}

// ---------------------------------------------------------------- float8

// (2, 2500, 300): many terms per sum, several workgroups of outputs.
const FLOAT8_SHAPES: [(usize, usize, usize); 8] = [
    (1, 1, 1),
    (1, 37, 13),
    (3, 10, 7),
    (2, 300, 33),
    (1, 1000, 96),
    (2, 2500, 300),
    (70, 100, 35),
    (1, 40, 530),
];

fn float8(ctx: &mut GpuContext) {
    for storage in variants(ctx, &QUANTIZED_STORAGE) {
        for (m, k, n) in FLOAT8_SHAPES {
            // Activations up to 600 with scale 1 saturate at 448.
            let x = values(m * k, (m + k) as u64, 600.0);
            let w = values(k * n, (k + n) as u64, 2.0);
            let b = values(n, 9, 1.0);
            for (set, scales) in [
                Float8Scales::default(),
                // Power-of-two kernel scales let the matrix-vector kernel
                // scale sums instead of weights; 0.3 does not.
                Float8Scales {
                    inputs: 0.3,
                    kernel: 0.0625,
                },
                Float8Scales {
                    inputs: 1.0,
                    kernel: 0.3,
                },
            ]
            .into_iter()
            .enumerate()
            {
                let kernel =
                    DenseKernel::float8(&w, Some(&b), (k, n), scales, Float8::E4M3Fn).unwrap();
                for activation in [Activation::Linear, Activation::Silu] {
                    for shape in DenseShape::ALL {
                        check(ctx, &kernel, storage, (shape, activation), &x, m);
                    }
                }
                // The register tiles take the scales as the fixed rule's
                // tiled kernel does (no folding): one set (saturating x) is enough.
                if set == 2 {
                    check_tiles(ctx, &kernel, storage, &x, m);
                }
            }
        }
        // e5m2 weight storage: weights up to 50000 (beyond e4m3's 448).
        let (m, k, n) = (2, 37, 13);
        let x = values(m * k, 5, 2.0);
        let w = values(k * n, 6, 50000.0);
        let kernel =
            DenseKernel::float8(&w, None, (k, n), Float8Scales::default(), Float8::E5M2).unwrap();
        for shape in DenseShape::ALL {
            check(ctx, &kernel, storage, (shape, Activation::Linear), &x, m);
        }
        check_tiles(ctx, &kernel, storage, &x, m);
        float8_edge_weights(ctx, storage);
    }
    float8_non_finite_activations(ctx);
}

/// Weights that decode to e4m3 subnormals (below 2^-6), a NaN weight (its
/// column is NaN; the kernel takes its exact decoder), and a kernel scale
/// too large for the fast decoder (an `Err`).
fn float8_edge_weights(ctx: &mut GpuContext, storage: StorageVariant) {
    let (m, k, n) = (2, 70, 9);
    let x = values(m * k, 11, 3.0);
    let mut w = values(k * n, 12, 0.02);
    for with_nan in [false, true] {
        if with_nan {
            w[5 * n + 4] = f32::NAN;
        }
        let kernel =
            DenseKernel::float8(&w, None, (k, n), Float8Scales::default(), Float8::E4M3Fn).unwrap();
        for shape in DenseShape::ALL {
            let gpu = check(ctx, &kernel, storage, (shape, Activation::Linear), &x, m);
            if shape == DenseShape::Tiled {
                check_tiles(ctx, &kernel, storage, &x, m);
            }
            for row in 0..m {
                assert_eq!(
                    gpu[row * n + 4].is_nan(),
                    with_nan,
                    "{storage:?} {shape:?} NaN weight column: {}",
                    gpu[row * n + 4]
                );
            }
        }
    }
    let too_large = Float8Scales {
        inputs: 1.0,
        kernel: 1e31,
    };
    let kernel = DenseKernel::float8(&w, None, (k, n), too_large, Float8::E4M3Fn).unwrap();
    let err = ctx
        .upload_dense(storage, &kernel)
        .expect_err("a kernel scale above 2^100 is refused");
    assert!(err.to_string().contains("kernel scale"), "{err}");
}

fn float8_non_finite_activations(ctx: &mut GpuContext) {
    let (k, n) = (5, 3);
    let w = values(k * n, 4, 1.0);
    let kernel =
        DenseKernel::float8(&w, None, (k, n), Float8Scales::default(), Float8::E4M3Fn).unwrap();
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
    for shape in DenseShape::ALL {
        let gpu = check(
            ctx,
            &kernel,
            StorageVariant::F32,
            (shape, Activation::Linear),
            &x,
            2,
        );
        assert!(
            gpu[..n].iter().all(|v| v.is_finite()),
            "saturated row: {gpu:?}"
        );
        assert!(
            gpu[n..].iter().all(|v| v.is_nan()),
            "a NaN activation makes its row NaN: {gpu:?}"
        );
    }
}

#[test]
fn float8_matches_its_twin_on_lavapipe_vulkan() {
    float8(&mut common::gpu::vulkan());
}

#[test]
fn float8_matches_its_twin_on_llvmpipe_gl() {
    float8(&mut common::gpu::gl());
}

// ---------------------------------------------------------------- the harness itself

/// Every weight format, for the planted mistakes.
fn every_format() -> Vec<(WeightFormat, StorageVariant)> {
    let mut formats = vec![
        (WeightFormat::Float, StorageVariant::F32),
        (WeightFormat::Float, StorageVariant::F16Packed),
        (WeightFormat::Float, StorageVariant::BF16Packed),
        (WeightFormat::Float, StorageVariant::F64),
    ];
    for storage in [StorageVariant::F32, StorageVariant::BF16Packed] {
        formats.extend([
            (INT8, storage),
            (
                WeightFormat::Int8 {
                    quantized_inputs: false,
                },
                storage,
            ),
            (
                WeightFormat::Int4 {
                    block: None,
                    quantized_inputs: false,
                },
                storage,
            ),
            (
                WeightFormat::Int4 {
                    block: NonZeroU32::new(32),
                    quantized_inputs: false,
                },
                storage,
            ),
            (
                WeightFormat::Int4 {
                    block: NonZeroU32::new(24),
                    quantized_inputs: false,
                },
                storage,
            ),
            (
                WeightFormat::Int4 {
                    block: None,
                    quantized_inputs: true,
                },
                storage,
            ),
            (WeightFormat::Float8(Float8::E4M3Fn), storage),
            (WeightFormat::Float8(Float8::E5M2), storage),
        ]);
    }
    formats
}

/// The harness fails on a planted mistake of each kind, for every format
/// and both shapes: a dropped bias, a dropped last term of the sum, a wrong
/// activation, a short result; and passes the real GPU result.
fn planted_mistakes_fail<T: HostFloat>(
    ctx: &mut GpuContext,
    format: WeightFormat,
    storage: StorageVariant,
) {
    let (m, k, n) = (3, 100, 40);
    let x: Vec<T> = values(m * k, 21, 1.0)
        .into_iter()
        .map(T::from_f32)
        .collect();
    let w: Vec<T> = values(k * n, 22, 1.0)
        .into_iter()
        .map(T::from_f32)
        .collect();
    // Biases away from zero, as a layer's are after training.
    let b: Vec<T> = values(n, 23, 0.5)
        .into_iter()
        .map(|v| T::from_f32(v + v.signum() * 0.5))
        .collect();
    let kernel = match format {
        WeightFormat::Float8(f8) => {
            let w32: Vec<f32> = w.iter().map(|v| v.to_f64() as f32).collect();
            let b32: Vec<f32> = b.iter().map(|v| v.to_f64() as f32).collect();
            DenseKernel::float8(
                &w32,
                Some(&b32),
                (k, n),
                Float8Scales {
                    inputs: 0.01,
                    kernel: 0.004,
                },
                f8,
            )
            .unwrap()
        }
        _ => DenseKernel::quantize(format, &w, Some(&b), (k, n)).unwrap(),
    };
    let weights = ctx.upload_dense(storage, &kernel).unwrap();
    let (no_bias_kernel, no_last_kernel) = (without_bias(&kernel), without_last_term(&kernel));
    for shape in DenseShape::ALL {
        let case = |kernel, activation| Case {
            label: format!("{} {storage:?} {shape:?}", format.name()),
            kernel,
            format: storage.format(),
            shape,
            activation,
            x: &x,
            m,
        };
        let right = case(&kernel, Activation::Linear).twin();
        let gpu = ctx
            .dense(&weights, shape, Activation::Linear, &x, m)
            .unwrap();
        let truth = case(&kernel, Activation::Linear);
        truth
            .compare(&gpu, &right)
            .unwrap_or_else(|e| panic!("the real result: {e}"));
        let no_bias = case(&no_bias_kernel, Activation::Linear).twin();
        let no_last = case(&no_last_kernel, Activation::Linear).twin();
        let relu = case(&kernel, Activation::Relu).twin();
        for (mistake, wrong) in [
            ("a dropped bias", &no_bias[..]),
            ("a dropped last term", &no_last[..]),
            ("relu for linear", &relu[..]),
            ("a short result", &gpu[..gpu.len() - 1]),
        ] {
            assert!(
                truth.compare(wrong, &right).is_err(),
                "{}: the harness passed {mistake}",
                truth.label
            );
        }
    }
}

#[test]
fn the_harness_fails_on_planted_mistakes_for_every_format() {
    let mut ctx = common::gpu::vulkan();
    for (format, storage) in every_format() {
        if storage == StorageVariant::F64 {
            planted_mistakes_fail::<f64>(&mut ctx, format, storage);
        } else {
            planted_mistakes_fail::<f32>(&mut ctx, format, storage);
        }
    }
}

// ---------------------------------------------------------------- bad input

#[test]
fn mismatched_shapes_and_oversized_buffers_are_errors() {
    let mut ctx = common::gpu::vulkan();
    let err = DenseKernel::float(&[1.0f32; 6], None, (4, 2)).unwrap_err();
    assert!(err.to_string().contains("k=4 x n=2 needs 8"), "{err}");
    let err = DenseKernel::float(&[1.0f32; 8], Some(&[0.0; 3]), (4, 2)).unwrap_err();
    assert!(
        err.to_string().contains("bias has 3 values, expected n=2"),
        "{err}"
    );
    let kernel = DenseKernel::float(&[1.0f32; 8], None, (4, 2)).unwrap();
    let weights = ctx.upload_dense(StorageVariant::F32, &kernel).unwrap();
    let err = ctx
        .dense(
            &weights,
            DenseShape::MatVec,
            Activation::Linear,
            &[1.0f32; 5],
            2,
        )
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("5 values given, but 2 rows of 4 need 8"),
        "{err}"
    );
    // Weights are split across bindings, but not below 128 outputs: with
    // 64 KiB per binding, 128 rows of 224 padded f32 (114,688 bytes) are too
    // many. x is never split.
    ctx.limit_storage_bindings(64 << 10);
    let (k, n) = (200, 300);
    let big = DenseKernel::float(&vec![0.0f32; k * n], None, (k, n)).unwrap();
    match ctx.upload_dense(StorageVariant::F32, &big) {
        Err(Error::Gpu(GpuError::BufferTooLarge { bytes, limit, .. })) => {
            assert_eq!((bytes, limit), (128 * 224 * 4, 64 << 10))
        }
        other => panic!("expected BufferTooLarge, got {:?}", other.map(|_| ())),
    }
    let weights = ctx.upload_dense(StorageVariant::F32, &kernel).unwrap();
    let x = vec![0.0f32; 4 * (16 << 10) + 4];
    match ctx.dense(
        &weights,
        DenseShape::Tiled,
        Activation::Linear,
        &x,
        x.len() / 4,
    ) {
        Err(Error::Gpu(GpuError::BufferTooLarge { bytes, .. })) => assert!(bytes > 64 << 10),
        other => panic!("expected BufferTooLarge for x, got {:?}", other.map(|_| ())),
    }
}

#[test]
fn an_invalid_shader_is_an_error_on_both_adapters() {
    for mut ctx in [common::gpu::vulkan(), common::gpu::gl()] {
        let broken = "@compute @workgroup_size(1) fn main() { let x: f32 = 1u; }";
        let err = ctx.check_wgsl("broken", broken).unwrap_err();
        assert!(
            matches!(err, Error::Gpu(GpuError::Shader { ref label, .. }) if label == "broken"),
            "{err}"
        );
        assert!(
            err.to_string().contains("Shader 'broken' is invalid"),
            "{err}"
        );
        ctx.check_wgsl("fine", "@compute @workgroup_size(1) fn main() {}")
            .unwrap();
        // The context still works after the error.
        let kernel = DenseKernel::float(&[2.0f32], None, (1, 1)).unwrap();
        let weights = ctx.upload_dense(StorageVariant::F32, &kernel).unwrap();
        let y = ctx
            .dense(
                &weights,
                DenseShape::MatVec,
                Activation::Linear,
                &[3.0f32],
                1,
            )
            .unwrap();
        assert_eq!(y, [6.0]);
    }
}

#[test]
fn a_lost_device_is_an_error_not_a_panic() {
    let mut ctx = common::gpu::vulkan();
    let kernel = DenseKernel::float(&[1.0f32; 4], None, (2, 2)).unwrap();
    let weights = ctx.upload_dense(StorageVariant::F32, &kernel).unwrap();
    ctx.device().destroy();
    let err = ctx
        .dense(
            &weights,
            DenseShape::MatVec,
            Activation::Linear,
            &[1.0f32, 2.0],
            1,
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Gpu(GpuError::DeviceLost(_) | GpuError::Wgpu { .. })
        ),
        "{err}"
    );
}

// SPDX-License-Identifier: MIT OR Apache-2.0
//! Keras's int8 Dense on both adapters against its CPU twin: the i32
//! accumulators bit for bit, the outputs within a tolerance explained below,
//! on awkward shapes (K not a multiple of 4 or 16, odd N, all-zero rows and
//! columns: the epsilon path).

mod common;

use dtype_policy::cpu::int8::{dense_int8, int8_accumulators};
use dtype_policy::gpu::context::GpuContext;
use dtype_policy::gpu::dense::Activation;
use dtype_policy::gpu::formats::{HostFloat, StorageFormat};
use dtype_policy::gpu::shaders::{Kernel, StorageVariant};

const SHAPES: [(usize, usize, usize); 9] = [
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

/// Inputs with an all-zero row of x and an all-zero column of W.
fn inputs((m, k, n): (usize, usize, usize)) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let mut x = common::gpu::values(m * k, (m * 7 + k) as u64, 1.0);
    let mut w = common::gpu::values(k * n, (k * 3 + n) as u64, 1.0);
    if m > 1 {
        x[k..2 * k].fill(0.0);
    }
    if n > 1 {
        for i in 0..k {
            w[i * n + 1] = 0.0;
        }
    }
    (x, w, common::gpu::values(n, n as u64, 1.0))
}

fn check_accumulators(ctx: &mut GpuContext) {
    for dims in SHAPES {
        let (m, k, n) = dims;
        let (x, w, _) = inputs(dims);
        let weights = ctx
            .upload_dense_int8(StorageVariant::F32, &w, None, k, n)
            .unwrap();
        let gpu = ctx
            .dense_int8_accumulators(&weights, Kernel::DenseInt8, &x, m)
            .unwrap();
        let tiled = ctx
            .dense_int8_accumulators(&weights, Kernel::DenseInt8Tiled, &x, m)
            .unwrap();
        assert_eq!(tiled, gpu, "tiled int8 accumulators m={m} k={k} n={n}");
        let (cpu, _, _) = int8_accumulators(StorageFormat::F32, &x, &w, dims).unwrap();
        assert_eq!(gpu, cpu, "int8 accumulators m={m} k={k} n={n}");
    }
}

/// The outputs: the twin computes the same f32 expression from the same
/// integers, so only the division (WGSL allows 2.5 ulp) and, for non-linear
/// activations, exp/tanh (a few ulp) may differ: 4 ulp of f32 plus 2e-6 (1 + |y|);
/// a 16-bit output may then land one ulp of its format away.
fn check_outputs(ctx: &mut GpuContext, storage: StorageVariant) {
    let format = storage.format();
    for dims in SHAPES {
        let (m, k, n) = dims;
        let (x, w, b) = inputs(dims);
        let weights = ctx.upload_dense_int8(storage, &w, Some(&b), k, n).unwrap();
        for activation in [Activation::Linear, Activation::Gelu] {
            let kernel = if m > 8 {
                Kernel::DenseInt8Tiled
            } else {
                Kernel::DenseInt8
            };
            let gpu = ctx.dense_int8(&weights, kernel, activation, &x, m).unwrap();
            let cpu = dense_int8(format, activation, &x, &w, Some(&b), dims).unwrap();
            for (i, (g, c)) in gpu.iter().zip(&cpu).enumerate() {
                let c64 = c.to_f64();
                let mut tol = 4.0 * f64::from(f32::EPSILON) * c64.abs() + 1e-30;
                if activation != Activation::Linear {
                    tol += 2e-6 * (1.0 + c64.abs());
                }
                tol += match format {
                    StorageFormat::F16 => c64.abs() * 2f64.powi(-10),
                    StorageFormat::BF16 => c64.abs() * 2f64.powi(-7),
                    _ => 0.0,
                };
                assert!(
                    (g - c).abs() as f64 <= tol,
                    "{storage:?} {activation:?} m={m} k={k} n={n} y[{i}]: gpu {g} cpu {c}"
                );
            }
        }
    }
}

#[test]
fn int8_matches_its_twin_on_lavapipe_vulkan() {
    let mut ctx = common::gpu::vulkan();
    check_accumulators(&mut ctx);
    for storage in [
        StorageVariant::F32,
        StorageVariant::BF16Packed,
        StorageVariant::F16Packed,
    ] {
        check_outputs(&mut ctx, storage);
    }
}

#[test]
fn int8_matches_its_twin_on_llvmpipe_gl() {
    let mut ctx = common::gpu::gl();
    check_accumulators(&mut ctx);
    for storage in [StorageVariant::F32, StorageVariant::BF16Packed] {
        check_outputs(&mut ctx, storage);
    }
}

#[test]
fn int8_packing_puts_the_lowest_k_in_the_lowest_byte() {
    assert_eq!(
        dtype_policy::gpu::int8::pack_i8_words(&[1, -2, 3, -4]),
        [0xfc03_fe01]
    );
    assert_eq!(dtype_policy::gpu::int8::pack_i8_words(&[5]), [5]);
}

// SPDX-License-Identifier: MIT OR Apache-2.0
//! Quantized Dense weights larger than one storage binding run split by
//! outputs, a dispatch per part: on both adapters, every quantized family
//! (int8, int4 per channel and grouped, weight-only int8, float8) gives the
//! same bits split as whole (the unsplit kernels are checked against their
//! twins elsewhere), and int8's split accumulators equal the twin's. The
//! binding limit is lowered so that small layers split: parts of 256 or 512
//! outputs and a last part of one, matrix-vector and tiled.

mod common;

use std::num::NonZeroU32;

use dtype_policy::cpu::int8::int8_accumulators;
use dtype_policy::gpu::context::GpuContext;
use dtype_policy::gpu::dense::Activation;
use dtype_policy::gpu::float8::Float8Scales;
use dtype_policy::gpu::formats::StorageFormat;
use dtype_policy::gpu::shaders::{Kernel, StorageVariant};

/// 64 KiB per binding: W^T rows of k 200 (224 padded) hold 292 int8 rows
/// (parts of 256 outputs) or 585 int4 rows (parts of 512).
const LIMIT: u64 = 64 << 10;
const K: usize = 200;
/// Rows: matrix-vector (1, 3) and tiled (12; y stays under the limit).
const ROWS: [usize; 3] = [1, 3, 12];

fn contexts(open: fn() -> GpuContext) -> (GpuContext, GpuContext) {
    let mut split = open();
    split.limit_storage_bindings(LIMIT);
    (open(), split)
}

fn assert_same_bits(whole: &[f32], split: &[f32], what: &str) {
    assert_eq!(whole.len(), split.len(), "{what}");
    for (i, (a, b)) in whole.iter().zip(split).enumerate() {
        assert_eq!(
            a.to_bits(),
            b.to_bits(),
            "{what}: y[{i}] whole {a} split {b}"
        );
    }
}

fn kernel_for(family: Kernel, m: usize) -> Kernel {
    if m > 8 { family.tiled() } else { family }
}

fn check_int8(open: fn() -> GpuContext) {
    let (mut whole, mut split) = contexts(open);
    let adapter = whole.capabilities().adapter_name.clone();
    let n = 2 * 256 + 1;
    let w = common::gpu::values(K * n, 7, 1.0);
    let b = common::gpu::values(n, 8, 1.0);
    for storage in [StorageVariant::F32, StorageVariant::BF16Packed] {
        let a = whole
            .upload_dense_int8(storage, &w, Some(&b), K, n)
            .unwrap();
        let s = split
            .upload_dense_int8(storage, &w, Some(&b), K, n)
            .unwrap();
        assert_eq!(
            (a.parts(), s.parts()),
            (1, 3),
            "int8 {storage:?} on {adapter}"
        );
        for m in ROWS {
            let x = common::gpu::values(m * K, m as u64, 1.0);
            let kernel = kernel_for(Kernel::DenseInt8, m);
            let y_whole = whole
                .dense_int8(&a, kernel, Activation::Gelu, &x, m)
                .unwrap();
            let y_split = split
                .dense_int8(&s, kernel, Activation::Gelu, &x, m)
                .unwrap();
            assert_same_bits(
                &y_whole,
                &y_split,
                &format!("int8 {storage:?} m={m} on {adapter}"),
            );
            if storage == StorageVariant::F32 {
                let acc = split.dense_int8_accumulators(&s, kernel, &x, m).unwrap();
                let (twin, _, _) =
                    int8_accumulators(StorageFormat::F32, &x, &w, (m, K, n)).unwrap();
                assert_eq!(acc, twin, "int8 accumulators m={m} on {adapter}");
            }
        }
    }
}

fn check_weight_only(open: fn() -> GpuContext) {
    let (mut whole, mut split) = contexts(open);
    let adapter = whole.capabilities().adapter_name.clone();
    // int4: per channel, blocks of whole 32-k steps, any other block.
    let n4 = 2 * 512 + 1;
    let w4 = common::gpu::values(K * n4, 9, 1.0);
    let b4 = common::gpu::values(n4, 10, 1.0);
    for block in [None, NonZeroU32::new(32), NonZeroU32::new(24)] {
        let up = |ctx: &GpuContext| {
            ctx.upload_dense_int4(StorageVariant::F16Packed, &w4, Some(&b4), (K, n4), block)
                .unwrap()
        };
        let (a, s) = (up(&whole), up(&split));
        assert_eq!(
            (a.parts(), s.parts()),
            (1, 3),
            "int4 {block:?} on {adapter}"
        );
        for m in ROWS {
            let x = common::gpu::values(m * K, m as u64 + 20, 1.0);
            let kernel = kernel_for(Kernel::DenseInt4, m);
            let y_whole = whole
                .dense_int4(&a, kernel, Activation::Silu, &x, m)
                .unwrap();
            let y_split = split
                .dense_int4(&s, kernel, Activation::Silu, &x, m)
                .unwrap();
            assert_same_bits(
                &y_whole,
                &y_split,
                &format!("int4 {block:?} m={m} on {adapter}"),
            );
        }
    }
    // Weight-only int8.
    let n8 = 2 * 256 + 1;
    let w8 = common::gpu::values(K * n8, 11, 1.0);
    let up = |ctx: &GpuContext| {
        ctx.upload_dense_int8_weight_only(StorageVariant::F32, &w8, None, (K, n8))
            .unwrap()
    };
    let (a, s) = (up(&whole), up(&split));
    assert_eq!(
        (a.parts(), s.parts()),
        (1, 3),
        "weight-only int8 on {adapter}"
    );
    for m in ROWS {
        let x = common::gpu::values(m * K, m as u64 + 30, 1.0);
        let kernel = kernel_for(Kernel::DenseInt8WeightOnly, m);
        let y_whole = whole
            .dense_int4(&a, kernel, Activation::Linear, &x, m)
            .unwrap();
        let y_split = split
            .dense_int4(&s, kernel, Activation::Linear, &x, m)
            .unwrap();
        assert_same_bits(
            &y_whole,
            &y_split,
            &format!("weight-only int8 m={m} on {adapter}"),
        );
    }
}

fn check_float8(open: fn() -> GpuContext) {
    let (mut whole, mut split) = contexts(open);
    let adapter = whole.capabilities().adapter_name.clone();
    let n = 2 * 256 + 1;
    let w = common::gpu::values(K * n, 12, 1.0);
    let b = common::gpu::values(n, 13, 1.0);
    let scales = Float8Scales {
        inputs: 0.75,
        kernel: 0.003,
    };
    let up = |ctx: &GpuContext| {
        ctx.upload_dense_float8(StorageVariant::F32, &w, Some(&b), (K, n), scales)
            .unwrap()
    };
    let (a, s) = (up(&whole), up(&split));
    assert_eq!((a.parts(), s.parts()), (1, 3), "float8 on {adapter}");
    for m in ROWS {
        let x = common::gpu::values(m * K, m as u64 + 40, 1.0);
        let kernel = kernel_for(Kernel::DenseFloat8, m);
        let y_whole = whole
            .dense_float8(&a, kernel, Activation::Relu, &x, m)
            .unwrap();
        let y_split = split
            .dense_float8(&s, kernel, Activation::Relu, &x, m)
            .unwrap();
        assert_same_bits(&y_whole, &y_split, &format!("float8 m={m} on {adapter}"));
    }
}

#[test]
fn split_int8_equals_whole_on_both_adapters() {
    check_int8(common::gpu::vulkan);
    check_int8(common::gpu::gl);
}

#[test]
fn split_weight_only_equals_whole_on_both_adapters() {
    check_weight_only(common::gpu::vulkan);
    check_weight_only(common::gpu::gl);
}

#[test]
fn split_float8_equals_whole_on_both_adapters() {
    check_float8(common::gpu::vulkan);
    check_float8(common::gpu::gl);
}

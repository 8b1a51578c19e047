// SPDX-License-Identifier: MIT OR Apache-2.0
//! Dense weights larger than one storage binding run split by outputs, a
//! dispatch per part writing its columns of y: on both adapters, float
//! weights of every variant match their twin through the harness, every
//! quantized format (int8, int4 per channel and grouped, weight-only int8,
//! float8) gives the same bits split as whole (the whole kernels are checked
//! against their twins in gpu_dense.rs), and int8's split accumulators equal
//! the twin's. The binding limit is lowered so that small layers split:
//! parts of 128 to 512 outputs and a last part of one, matrix-vector and
//! tiled.

mod common;

use std::num::NonZeroU32;

use common::harness::Case;
use dtype_policy::format::{DenseKernel, HostFloat, StorageFormat, WeightFormat};
use dtype_policy::gpu::context::GpuContext;
use dtype_policy::gpu::shaders::StorageVariant;
use dtype_policy::ops::{Activation, DenseShape};
use dtype_policy::quant::float8::{Float8, Float8Scales};

/// A float layer against its twin through the harness.
fn float_check<T: HostFloat>(
    ctx: &mut GpuContext,
    storage: StorageVariant,
    how: (DenseShape, Activation),
    (m, k, n): (usize, usize, usize),
) {
    let host = |v: Vec<f32>| -> Vec<T> { v.into_iter().map(T::from_f32).collect() };
    let x = host(common::gpu::values(m * k, (m * 31 + k) as u64, 1.0));
    let w = host(common::gpu::values(k * n, (k * 17 + n) as u64, 1.0));
    let b = host(common::gpu::values(n, n as u64 + 5, 1.0));
    let kernel = DenseKernel::float(&w, Some(&b), (k, n)).unwrap();
    let weights = ctx.upload_dense(storage, &kernel).unwrap();
    let gpu = ctx.dense(&weights, how.0, how.1, &x, m).unwrap();
    let case = Case {
        label: format!(
            "split {storage:?} {how:?} on {}",
            ctx.capabilities().adapter_name
        ),
        kernel: &kernel,
        format: storage.format(),
        shape: how.0,
        activation: how.1,
        x: &x,
        m,
    };
    case.compare(&gpu, &case.twin())
        .unwrap_or_else(|e| panic!("{e}"));
}

/// Layers larger than a binding split and match their twin: every float
/// variant, both shapes, on both adapters (parts of 128 outputs and a
/// shorter last one; odd n; several rows, y within the limit).
#[test]
fn float_layers_larger_than_a_binding_split_and_match_their_twin() {
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
            let kernel = DenseKernel::float(&vec![0.5f32; k * n], None, (k, n)).unwrap();
            let parts = ctx.upload_dense(storage, &kernel).unwrap().parts();
            assert_eq!(
                parts,
                1102_usize.div_ceil(per_part),
                "{storage:?} on {}",
                caps.adapter_name
            );
            assert!(parts > 1, "{storage:?}: the layer should split");
            let check = |ctx: &mut GpuContext, how, dims| {
                if storage == StorageVariant::F64 {
                    float_check::<f64>(ctx, storage, how, dims)
                } else {
                    float_check::<f32>(ctx, storage, how, dims)
                }
            };
            for shape in DenseShape::ALL {
                for m in [1, 3, 20] {
                    check(&mut ctx, (shape, Activation::Linear), (m, k, n));
                }
                check(&mut ctx, (shape, Activation::Relu), (2, k, 643));
                // A last part of one or two outputs, one row: its binding of y
                // is the shortest.
                for n in [2 * per_part + 1, 2 * per_part + 2] {
                    check(&mut ctx, (shape, Activation::Linear), (1, k, n));
                }
            }
        }
    }
}

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

/// One format split and whole: the part count, and the same bits from both
/// for every row count (matrix-vector and tiled).
fn split_equals_whole(
    open: fn() -> GpuContext,
    kernel: &DenseKernel,
    storage: StorageVariant,
    activation: Activation,
    parts: usize,
) {
    let (mut whole, mut split) = contexts(open);
    let adapter = whole.capabilities().adapter_name.clone();
    let what = format!("{} {storage:?} on {adapter}", kernel.format().name());
    let a = whole.upload_dense(storage, kernel).unwrap();
    let s = split.upload_dense(storage, kernel).unwrap();
    assert_eq!((a.parts(), s.parts()), (1, parts), "{what}");
    for m in ROWS {
        let x = common::gpu::values(m * K, m as u64 + 20, 1.0);
        let shape = DenseShape::for_rows(m);
        let y_whole = whole.dense(&a, shape, activation, &x, m).unwrap();
        let y_split = split.dense(&s, shape, activation, &x, m).unwrap();
        assert_same_bits(&y_whole, &y_split, &format!("{what} m={m}"));
    }
}

fn check_int8(open: fn() -> GpuContext) {
    let n = 2 * 256 + 1;
    let w = common::gpu::values(K * n, 7, 1.0);
    let b = common::gpu::values(n, 8, 1.0);
    let format = WeightFormat::Int8 {
        quantized_inputs: true,
    };
    let kernel = DenseKernel::quantize(format, &w, Some(&b), (K, n)).unwrap();
    for storage in [StorageVariant::F32, StorageVariant::BF16Packed] {
        split_equals_whole(open, &kernel, storage, Activation::Gelu, 3);
    }
    // The split accumulators equal the twin's.
    let (_, mut split) = contexts(open);
    let s = split.upload_dense(StorageVariant::F32, &kernel).unwrap();
    for m in ROWS {
        let x = common::gpu::values(m * K, m as u64, 1.0);
        let acc = split
            .dense_int8_accumulators(&s, DenseShape::for_rows(m), &x, m)
            .unwrap();
        let (twin, _) =
            dtype_policy::cpu::dense::int8_accumulators(&kernel, StorageFormat::F32, &x, m)
                .unwrap();
        assert_eq!(acc, twin, "int8 accumulators m={m}");
    }
}

fn check_weight_only(open: fn() -> GpuContext) {
    // int4: per channel, blocks of whole 32-k steps, any other block.
    let n4 = 2 * 512 + 1;
    let w4 = common::gpu::values(K * n4, 9, 1.0);
    let b4 = common::gpu::values(n4, 10, 1.0);
    for block in [None, NonZeroU32::new(32), NonZeroU32::new(24)] {
        let format = WeightFormat::Int4 {
            block,
            quantized_inputs: false,
        };
        let kernel = DenseKernel::quantize(format, &w4, Some(&b4), (K, n4)).unwrap();
        split_equals_whole(
            open,
            &kernel,
            StorageVariant::F16Packed,
            Activation::Silu,
            3,
        );
    }
    // Weight-only int8.
    let n8 = 2 * 256 + 1;
    let w8 = common::gpu::values(K * n8, 11, 1.0);
    let format = WeightFormat::Int8 {
        quantized_inputs: false,
    };
    let kernel = DenseKernel::quantize(format, &w8, None, (K, n8)).unwrap();
    split_equals_whole(open, &kernel, StorageVariant::F32, Activation::Linear, 3);
}

fn check_float8(open: fn() -> GpuContext) {
    let n = 2 * 256 + 1;
    let w = common::gpu::values(K * n, 12, 1.0);
    let b = common::gpu::values(n, 13, 1.0);
    let scales = Float8Scales {
        inputs: 0.75,
        kernel: 0.003,
    };
    let kernel = DenseKernel::float8(&w, Some(&b), (K, n), scales, Float8::E4M3Fn).unwrap();
    split_equals_whole(open, &kernel, StorageVariant::F32, Activation::Relu, 3);
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

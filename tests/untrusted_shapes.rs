// SPDX-License-Identifier: MIT OR Apache-2.0
//! Layer shapes come from files and users: arbitrary shapes (zero, small,
//! up to u64::MAX) and policies fed to the plan, to every kernel
//! constructor (float, Keras's quantizers, Keras's variables) and to every
//! upload and run on a real adapter give `Ok` or `Err`, never a panic, and
//! never allocate on a shape's word alone.

mod common;

use std::num::NonZeroU32;
use std::sync::{Mutex, OnceLock};

use dtype_policy::DTypePolicyMap;
use dtype_policy::format::{
    DenseKernel, KerasDenseVariables, KernelAxes, StorageFormat, Variable, VariableValues,
    WeightFormat,
};
use dtype_policy::gpu::context::{Capabilities, GpuContext};
use dtype_policy::gpu::dense::DenseLayout;
use dtype_policy::gpu::shaders::StorageVariant;
use dtype_policy::gpu::tensor::TensorShape;
use dtype_policy::ops::{Activation, DenseShape};
use dtype_policy::plan::{DenseLayerSpec, Plan};
use dtype_policy::quant::float8::{Float8, Float8Scales};
use proptest::prelude::*;

const POLICIES: &[&str] = &[
    "float32",
    "float64",
    "mixed_float16",
    "mixed_bfloat16",
    "int8_from_float32",
    "int8_from_mixed_bfloat16",
    "int4_from_float32",
    "int4/128_from_mixed_bfloat16",
    "int4/3_from_float32",
    "float8_from_float32",
    "gptq/4/128_from_float32",
    "int32",
];

/// A dimension: zero, small, a boundary, or anything up to u64::MAX.
fn dim() -> impl Strategy<Value = usize> {
    prop_oneof![
        Just(0u64),
        1..70u64,
        Just(1u64 << 32),
        Just(99_999_999_999u64),
        Just(u64::MAX / 3),
        Just(u64::MAX),
        any::<u64>(),
    ]
    .prop_map(|v| v as usize)
}

fn format() -> impl Strategy<Value = WeightFormat> {
    prop_oneof![
        Just(WeightFormat::Float),
        any::<bool>().prop_map(|q| WeightFormat::Int8 {
            quantized_inputs: q
        }),
        (prop::option::of(1u32..200), any::<bool>()).prop_map(|(b, q)| WeightFormat::Int4 {
            block: b.and_then(NonZeroU32::new),
            quantized_inputs: q,
        }),
        Just(WeightFormat::Float8(Float8::E4M3Fn)),
        Just(WeightFormat::Float8(Float8::E5M2)),
    ]
}

fn storage() -> impl Strategy<Value = StorageVariant> {
    prop::sample::select(StorageVariant::ALL.to_vec())
}

fn caps() -> Capabilities {
    Capabilities {
        shader_f16: true,
        shader_f64: true,
        ..Capabilities::baseline("property test")
    }
}

/// One lavapipe context for every case (opening one per case would
/// dominate the run).
fn gpu() -> &'static Mutex<GpuContext> {
    static GPU: OnceLock<Mutex<GpuContext>> = OnceLock::new();
    GPU.get_or_init(|| Mutex::new(common::gpu::vulkan()))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn plans_of_any_shape_and_policy_are_ok_or_err(
        rows in dim(), k in dim(), n in dim(),
        policy in prop::sample::select(POLICIES),
        activation in prop::sample::select(Activation::ALL.to_vec()),
        int8_weight_only in any::<bool>(),
    ) {
        let map = DTypePolicyMap::with_default_name(policy).unwrap();
        let spec = DenseLayerSpec { path: "layer".into(), rows, k, n, activation, int8_weight_only };
        if let Ok(plan) = Plan::new(&map, &[spec], &caps()) {
            let row = &plan.rows[0];
            prop_assert!(rows > 0 && k > 0 && n > 0);
            let _ = (plan.to_string(), row.weight_bytes(), plan.pipelines());
        }
        for format in [StorageFormat::F32, StorageFormat::F16, StorageFormat::BF16, StorageFormat::F64] {
            let _ = TensorShape::new(rows, k, format);
            if let Ok(layout) = DenseLayout::new(format, WeightFormat::Float, k, n) {
                let _ = (layout.weight_bytes(), layout.bindings(128 << 20), layout.to_string());
            }
        }
    }

    #[test]
    fn kernels_of_any_claimed_shape_are_ok_or_err(
        k in dim(), n in dim(), len in 0..80usize, bias in prop::option::of(0..12usize),
        format in format(),
    ) {
        let w: Vec<f32> = (0..len).map(|i| i as f32 * 0.1 - 2.0).collect();
        let b: Option<Vec<f32>> = bias.map(|l| vec![0.5; l]);
        let _ = DenseKernel::float(&w, b.as_deref(), (k, n));
        let _ = DenseKernel::quantize(format, &w, b.as_deref(), (k, n));
        let _ = DenseKernel::float8(&w, b.as_deref(), (k, n), Float8Scales::default(), Float8::E4M3Fn);
    }

    #[test]
    fn keras_variables_of_any_shape_are_ok_or_err(
        k in dim(), n in dim(), format in format(),
        shapes in prop::collection::vec(prop::collection::vec(dim(), 0..4), 6),
        lens in prop::collection::vec(0..40usize, 6),
        int8 in prop::collection::vec(any::<bool>(), 6),
        axes in prop_oneof![
            Just(KernelAxes::Dense),
            (dim(), dim()).prop_map(|(heads, head_dim)| KernelAxes::HeadsOut { heads, head_dim }),
            (dim(), dim()).prop_map(|(heads, head_dim)| KernelAxes::HeadsIn { heads, head_dim }),
        ],
    ) {
        let floats: Vec<Vec<f32>> = lens.iter().map(|&l| (0..l).map(|i| i as f32 * 0.25).collect()).collect();
        let ints: Vec<Vec<i8>> = lens.iter().map(|&l| (0..l).map(|i| (i % 15) as i8 - 7).collect()).collect();
        let var = |i: usize| Variable {
            shape: &shapes[i],
            values: if int8[i] { VariableValues::I8(&ints[i]) } else { VariableValues::F32(&floats[i]) },
        };
        let vars = KerasDenseVariables {
            kernel: var(0),
            bias: Some(var(1)),
            kernel_scale: Some(var(2)),
            kernel_zero: Some(var(3)).filter(|_| lens[3] % 2 == 0),
            g_idx: Some(var(4)).filter(|_| lens[4] % 2 == 0),
            inputs_scale: Some(var(5)).filter(|_| lens[5] % 2 == 0),
        };
        let _ = DenseKernel::from_keras(format, (k, n), axes, &vars);
    }

}

proptest! {
    // Each new (format, storage, shape, activation) compiles a pipeline,
    // a tenth of a second on lavapipe: fewer cases, two activations.
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Uploads and runs on lavapipe of whatever the constructors accept:
    /// small shapes, any format and storage, any rows.
    #[test]
    fn every_upload_and_run_of_any_small_shape_is_ok_or_err(
        k in 0..70usize, n in 0..70usize, m in prop_oneof![Just(0usize), 1..20usize, Just(1usize << 40)],
        format in format(), storage in storage(), shape in prop::sample::select(DenseShape::ALL.to_vec()),
        activation in prop::sample::select(vec![Activation::Linear, Activation::Gelu]),
    ) {
        let w: Vec<f32> = (0..k * n).map(|i| (i % 13) as f32 * 0.1 - 0.6).collect();
        let b = vec![0.25f32; n];
        let Ok(kernel) = DenseKernel::quantize(format, &w, Some(&b), (k, n)) else {
            let refused = matches!(format, WeightFormat::Int4 { block: Some(_), quantized_inputs: true });
            prop_assert!(k == 0 || n == 0 || refused, "a valid kernel refused");
            return Ok(());
        };
        let mut guard = gpu().lock().unwrap_or_else(|e| e.into_inner());
        let ctx = &mut *guard;
        if let Ok(weights) = ctx.upload_dense(storage, &kernel) {
            // A small x whatever m claims: a mismatch is an error, not an allocation.
            let x = vec![0.5f32; (m.min(20)) * k];
            let _ = ctx.dense(&weights, shape, activation, &x, m);
        }
    }
}

#[test]
fn a_layer_of_billions_of_outputs_is_refused_before_its_parts_are_listed() {
    // 2^52 outputs of one input split into parts of 2^20 outputs: 2^32
    // parts, whose list (64 GB) a proptest case once tried to allocate.
    let layout = DenseLayout::new(StorageFormat::F32, WeightFormat::Float, 1, 1 << 52).unwrap();
    let err = layout.bindings(128 << 20).unwrap_err();
    assert!(err.to_string().contains("bindings"), "{err}");
}

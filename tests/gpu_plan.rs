// SPDX-License-Identifier: MIT OR Apache-2.0
//! Plans: each layer's lookup, policy, variant, layout, reason and bytes; a
//! 24-layer model routed by a regex map compiles one pipeline per distinct
//! variant and shape class, not one per layer.

mod common;

use dtype_policy::gpu::context::Capabilities;
use dtype_policy::ops::Activation;
use dtype_policy::plan::{DenseLayerSpec, Plan};
use dtype_policy::{DTypePolicyMap, Error};

fn model(rows: usize) -> Vec<DenseLayerSpec> {
    let mut layers = Vec::new();
    for b in 0..4 {
        for (name, k, n) in [
            ("q", 64, 64),
            ("k", 64, 64),
            ("v", 64, 64),
            ("o", 64, 64),
            ("up", 64, 176),
            ("down", 176, 64),
        ] {
            let activation = if name == "up" {
                Activation::Silu
            } else {
                Activation::Linear
            };
            layers.push(DenseLayerSpec {
                path: format!("block_{b}/{name}"),
                rows,
                k,
                n,
                activation,
                int8_weight_only: false,
            });
        }
    }
    layers
}

fn map() -> DTypePolicyMap {
    let mut map = DTypePolicyMap::with_default_name("float32").unwrap();
    map.insert(r"block_\d+/(q|k|v|o)", "mixed_float16").unwrap();
    map.insert(r"block_\d+/(up|down)", "mixed_bfloat16")
        .unwrap();
    map.insert("block_0/q", "float32").unwrap();
    map
}

#[test]
fn the_plan_names_the_lookup_variant_layout_and_reason_of_each_layer() {
    let caps = Capabilities::baseline("GL without f16");
    let plan = Plan::new(&map(), &model(1), &caps).unwrap();
    assert_eq!(plan.rows.len(), 24);
    let q0 = &plan.rows[0];
    assert_eq!(q0.matched, "exact key 'block_0/q'");
    assert_eq!(q0.policy.name(), "float32");
    let k1 = &plan.rows[7];
    assert_eq!(k1.spec.path, "block_1/k");
    assert_eq!(k1.matched, r"regex 'block_\d+/(q|k|v|o)'");
    assert!(
        k1.choice.reason.starts_with(
            "mixed_float16 -> f16-packed: f16 packed in u32: the adapter lacks SHADER_F16"
        ),
        "{}",
        k1.choice.reason
    );
    // 64 x 64 in f16: W^T [64 x 64] at 2 bytes plus a 64-entry f32 bias.
    assert_eq!(k1.weight_bytes(), 64 * 64 * 2 + 64 * 4);
    let table = plan.to_string();
    assert!(
        table.contains("block_3/down") && table.contains("bf16-packed"),
        "{table}"
    );
    assert!(table.contains("24 layers, 4 distinct pipelines"), "{table}");
}

#[test]
fn a_layer_that_cannot_run_is_named_in_the_error() {
    let mut map = map();
    map.insert("block_2/o", "gptq/4/128_from_float32").unwrap();
    let err = Plan::new(&map, &model(1), &Capabilities::baseline("x")).unwrap_err();
    assert!(
        matches!(&err, Error::Layer { path, source } if path == "block_2/o"
            && matches!(**source, Error::Unsupported(_))),
        "{err}"
    );
}

#[test]
fn a_24_layer_model_compiles_one_pipeline_per_distinct_variant_on_lavapipe() {
    let mut ctx = common::gpu::vulkan();
    for rows in [1, 40] {
        let plan = Plan::new(&map(), &model(rows), ctx.capabilities()).unwrap();
        for (i, row) in plan.rows.iter().enumerate() {
            let s = &row.spec;
            let w: Vec<f32> = (0..s.k * s.n)
                .map(|j| ((j * 7 + i) % 13) as f32 / 13.0 - 0.5)
                .collect();
            let x: Vec<f32> = (0..s.rows * s.k)
                .map(|j| ((j * 3 + i) % 11) as f32 / 11.0 - 0.5)
                .collect();
            let kernel = row.quantize(&w, None).unwrap();
            let weights = row.upload(&ctx, &kernel).unwrap();
            let gpu = row.run(&mut ctx, &weights, &x).unwrap();
            let cpu = row.run_cpu(&kernel, &x).unwrap();
            assert_eq!(gpu.len(), s.rows * s.n, "{}", s.path);
            assert_eq!(cpu.len(), gpu.len(), "{}", s.path);
            let worst = gpu
                .iter()
                .zip(&cpu)
                .map(|(g, c)| (g - c).abs())
                .fold(0f32, f32::max);
            assert!(worst < 1e-2, "{}: {worst}", s.path);
        }
    }
    // f32 / f16 / bf16 x linear, bf16 x silu: 4 per kernel shape, 2 shapes.
    let stats = ctx.pipeline_stats();
    assert_eq!(stats.compiled, 8, "{stats:?}");
    assert_eq!(stats.compiled + stats.reused, 48);
}

/// The pipelines a plan lists are the ones running it compiles: the
/// quantizer's pass of both int8 kernels, and one weight-only pipeline per
/// grouping (per channel, blocks of whole 32-k steps, any other block). The
/// bytes it lists are the buffers' sizes, odd shapes included.
#[test]
fn a_quantized_plan_lists_exactly_the_pipelines_and_bytes_it_uses_on_lavapipe() {
    let mut map = DTypePolicyMap::with_default_name("float32").unwrap();
    map.insert(r"block_0/.*", "int8_from_float32").unwrap();
    map.insert(r"block_1/(q|k|v)", "int4_from_float32").unwrap();
    map.insert(r"block_1/(o|up)", "int4/32_from_float32")
        .unwrap();
    map.insert(r"block_1/down", "int4/24_from_float32").unwrap();
    map.insert(r"block_2/.*", "float8_from_float32").unwrap();
    map.insert(r"odd/int8.*", "int8_from_float32").unwrap();
    map.insert(r"odd/int4", "int4_from_float32").unwrap();
    map.insert(r"odd/int4_grouped", "int4/32_from_float32")
        .unwrap();
    map.insert(r"odd/float8", "float8_from_float32").unwrap();
    for rows in [1, 40] {
        let mut ctx = common::gpu::vulkan();
        let mut layers = model(rows);
        for (name, int8_weight_only) in [
            ("int8", false),
            ("int8_weight_only", true),
            ("int4", false),
            ("int4_grouped", false),
            ("float8", false),
            ("float32", false),
        ] {
            layers.push(DenseLayerSpec {
                path: format!("odd/{name}"),
                rows,
                k: 37,
                n: 13,
                activation: Activation::Linear,
                int8_weight_only,
            });
        }
        let plan = Plan::new(&map, &layers, ctx.capabilities()).unwrap();
        for row in plan.rows.iter() {
            let s = &row.spec;
            let w: Vec<f32> = (0..s.k * s.n)
                .map(|j| (j % 13) as f32 / 13.0 - 0.5)
                .collect();
            let x: Vec<f32> = (0..s.rows * s.k)
                .map(|j| (j % 11) as f32 / 11.0 - 0.5)
                .collect();
            let weights = row.upload(&ctx, &row.quantize(&w, None).unwrap()).unwrap();
            assert_eq!(weights.gpu_bytes(), row.weight_bytes(), "{}", s.path);
            row.run(&mut ctx, &weights, &x).unwrap();
        }
        let planned = plan.pipelines().len();
        assert_eq!(ctx.pipeline_stats().compiled, planned, "rows {rows}");
    }
}

/// On an adapter with 128 MiB per storage binding, a 7B model's f32 MLP
/// layer (4096 x 11008, 180 MB) and an int8 head of 40,000 outputs (164
/// MB) are planned in two bindings each; a layer of which not even 128
/// outputs fit one binding is an error that names it.
#[test]
fn the_plan_shows_split_layers_and_names_a_layer_too_large() {
    let caps = Capabilities::baseline("128 MiB per binding");
    let spec = |path: &str, k, n| DenseLayerSpec {
        path: path.to_owned(),
        rows: 1,
        k,
        n,
        activation: Activation::Linear,
        int8_weight_only: false,
    };
    let mut map = DTypePolicyMap::with_default_name("float32").unwrap();
    map.insert("head", "int8_from_float32").unwrap();
    let layers = [
        spec("mlp/up", 4096, 11008),
        spec("head", 4096, 40000),
        spec("small", 4096, 64),
    ];
    let plan = Plan::new(&map, &layers, &caps).unwrap();
    let bindings: Vec<usize> = plan.rows.iter().map(|r| r.bindings).collect();
    assert_eq!(bindings, [2, 2, 1]);
    let table = plan.to_string();
    assert!(
        table.contains("W^T[11008x4096] f32 in 2 bindings"),
        "{table}"
    );
    let err = Plan::new(&map, &[spec("wide", 300_000, 200)], &caps).unwrap_err();
    assert!(
        matches!(&err, Error::Layer { path, .. } if path == "wide")
            && err.to_string().contains("128 outputs"),
        "{err}"
    );
}

/// Shapes from files and users: a layer too large for this machine's
/// arithmetic, or one with a zero dimension, is an error naming the layer,
/// not a panic or a plan of wrapped sizes.
#[test]
fn huge_and_empty_layers_are_errors_that_name_them() {
    let caps = Capabilities::baseline("x");
    let map = DTypePolicyMap::with_default_name("float32").unwrap();
    let layer = |path: &str, rows, k, n| DenseLayerSpec {
        path: path.to_owned(),
        rows,
        k,
        n,
        activation: Activation::Linear,
        int8_weight_only: false,
    };
    for spec in [
        layer("huge", 1, 99_999_999_999, 99_999_999_999),
        layer("empty", 0, 0, 0),
        layer("no_rows", 0, 4, 4),
        layer("no_outputs", 1, 4, 0),
        layer("huge_batch", usize::MAX, 4, 4),
    ] {
        let err = Plan::new(&map, std::slice::from_ref(&spec), &caps).unwrap_err();
        assert!(
            matches!(&err, Error::Layer { path, source } if *path == spec.path
                && matches!(**source, Error::Shape(_))),
            "{}: {err}",
            spec.path
        );
    }
}

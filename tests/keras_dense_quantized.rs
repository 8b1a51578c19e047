// SPDX-License-Identifier: MIT OR Apache-2.0
//! Dense layers that released Keras 3.15.1 quantized (int8, int4 per
//! channel, int4 in groups of 128 and of 4, float8, int8 weight-only) and ran
//! (tests/data/keras_quant_reference.json, `dense_outputs`), run here through
//! a policy map, the plan and the GPU on both adapters, with the
//! matrix-vector and the tiled kernel of each family.

mod common;

use dtype_policy::DTypePolicyMap;
use dtype_policy::gpu::context::GpuContext;
use dtype_policy::ops::{Activation, DenseShape};
use dtype_policy::plan::{DenseLayerSpec, Plan};
use serde_json::Value;

fn f32s(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|b| f32::from_bits(b.as_u64().unwrap() as u32))
        .collect()
}

fn activation(name: &str) -> Activation {
    match name {
        "linear" => Activation::Linear,
        "relu" => Activation::Relu,
        "gelu" => Activation::Gelu,
        "silu" => Activation::Silu,
        other => panic!("fixture activation {other}"),
    }
}

/// How far our output may be from Keras's, and why.
/// - `int8_from_float32`: the same f32 expression from the same integers
///   (the host quantizer equals Keras's bit for bit; the GPU's activation
///   quantizer equals the host's on these adapters). What differs: Keras's
///   exact erf/exp against ours (erf within 1.5e-7): 4 ulp + 2e-6 (1 + |y|).
/// - int4, float8 and weight-only int8 from float32: the same weights (quantized bit for
///   bit), summed in another order than XLA's dot: (k + 2) · ε · Σ|x·w|,
///   plus the above.
/// - from `mixed_bfloat16`: Keras works in bf16 (8 significant bits): it
///   rounds the inputs, the activation scale, the sums and the result to
///   bf16 where we keep f32 and round once; for int8 an activation can land
///   one int8 step away (|Δy| up to max|x|/127 · |w| per element). Together
///   a few bf16 ulps of the terms: 2^-6 · (|y| + Σ_k |x_k w_kj|).
fn tolerance(policy: &str, weight_only: bool, k: usize, y: f32, l1: f32) -> f32 {
    let exact_twin = 4.0 * f32::EPSILON * y.abs() + 2e-6 * (1.0 + y.abs());
    if policy == "int8_from_float32" && !weight_only {
        exact_twin
    } else if policy.ends_with("_from_float32") {
        exact_twin + (k as f32 + 2.0) * f32::EPSILON * l1
    } else {
        2f32.powi(-6) * (y.abs() + l1)
    }
}

fn check(ctx: &mut GpuContext) {
    let data: Value =
        serde_json::from_str(include_str!("data/keras_quant_reference.json")).unwrap();
    let cases = data["dense_outputs"].as_array().unwrap();
    assert_eq!(cases.len(), 60);
    for case in cases {
        let policy = case["policy"].as_str().unwrap();
        let weight_only = case["weight_only"].as_bool().unwrap();
        let (m, k, n) = ["m", "k", "n"]
            .map(|f| case[f].as_u64().unwrap() as usize)
            .into();
        let act = activation(case["activation"].as_str().unwrap());
        let (w, b, x, want) = (
            f32s(&case["w_bits"]),
            f32s(&case["b_bits"]),
            f32s(&case["x_bits"]),
            f32s(&case["y_bits"]),
        );
        let mut map = DTypePolicyMap::with_default_name("float32").unwrap();
        map.insert("model/dense", policy).unwrap();
        let spec = DenseLayerSpec {
            path: "model/dense".into(),
            rows: m,
            k,
            n,
            activation: act,
            int8_weight_only: weight_only,
        };
        let plan = Plan::new(&map, &[spec], ctx.capabilities()).unwrap();
        let routed = &plan.rows[0];
        assert_eq!(routed.policy.name(), policy);
        // The fixtures have few rows (the matrix-vector kernel); the tiled
        // kernel, which more rows get, runs them too.
        let mut tiled = routed.clone();
        tiled.choice.shape = DenseShape::Tiled;
        for row in [routed, &tiled] {
            let kernel = row.choice.kernel();
            let weights = row
                .upload(ctx, &row.quantize(&w, Some(&b)).unwrap())
                .unwrap();
            let got = row.run(ctx, &weights, &x).unwrap();
            assert_eq!(got.len(), m * n, "{policy}");
            for i in 0..m {
                for j in 0..n {
                    let l1: f32 = (0..k).map(|t| (x[i * k + t] * w[t * n + j]).abs()).sum();
                    let (g, y) = (got[i * n + j], want[i * n + j]);
                    let tol = tolerance(policy, weight_only, k, y, l1);
                    assert!(
                        (g - y).abs() <= tol,
                        "{policy} {kernel:?} {act:?} m={m} k={k} n={n} y[{i}][{j}]: ours {g}, Keras {y} (tolerance {tol:e})"
                    );
                }
            }
        }
    }
}

#[test]
fn quantized_dense_agrees_with_keras_on_lavapipe_vulkan() {
    check(&mut common::gpu::vulkan());
}

#[test]
fn quantized_dense_agrees_with_keras_on_llvmpipe_gl() {
    check(&mut common::gpu::gl());
}

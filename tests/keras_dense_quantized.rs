// SPDX-License-Identifier: MIT OR Apache-2.0
//! Dense and EinsumDense layers that released Keras quantized and ran,
//! reproduced on both adapters from Keras's own variables, uploaded as they
//! are (no float round trip): int8 (with and without its activation
//! quantizer), int4 per channel and in groups of 128 and 4, float8 with
//! scales calibrated by Keras's training steps, under float32,
//! mixed_bfloat16 and (float8) mixed_float16; MultiHeadAttention's
//! EinsumDense shapes (`[in, heads, head_dim]`, `[heads, head_dim, out]`);
//! and int4 in the layout of Keras before 3.14 (packed along the inputs,
//! int8 activations), recorded with Keras 3.13.2. Each layer runs through a
//! policy map and the plan with the matrix-vector and the tiled kernel.
//! The fixtures are tests/data/keras_quant_reference.json
//! (tools/keras_quant_reference.py, Keras 3.15.1) and
//! tests/data/keras_legacy_int4.json (tools/keras_legacy_int4_reference.py).

mod common;

use common::harness::{dequantized, without_bias, without_last_term};
use common::{f32s, ints};
use dtype_policy::DTypePolicyMap;
use dtype_policy::format::{
    DenseKernel, KerasDenseVariables, KernelAxes, StorageFormat, Variable, VariableValues,
    WeightFormat,
};
use dtype_policy::gpu::context::GpuContext;
use dtype_policy::ops::{Activation, DenseShape};
use dtype_policy::plan::{DenseLayerSpec, Plan, PlanRow};
use dtype_policy::quant::abs_max::{IntRange, quantize_rows};
use dtype_policy::quant::float8::Float8Scales;
use dtype_policy::routing::weight_format;
use serde_json::Value;

fn activation(name: &str) -> Activation {
    name.parse()
        .unwrap_or_else(|e| panic!("fixture activation {name}: {e}"))
}

/// A variable of the fixture, owned.
struct Owned {
    shape: Vec<usize>,
    f32: Vec<f32>,
    i8: Vec<i8>,
}

impl Owned {
    fn of(v: &Value) -> Owned {
        let shape = v["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap() as usize)
            .collect();
        match v["dtype"].as_str().unwrap() {
            "int8" => Owned {
                shape,
                f32: Vec::new(),
                i8: ints(&v["values"]),
            },
            _ => Owned {
                shape,
                f32: f32s(&v["values"]),
                i8: Vec::new(),
            },
        }
    }

    fn var(&self) -> Variable<'_> {
        Variable {
            shape: &self.shape,
            values: if self.i8.is_empty() {
                VariableValues::F32(&self.f32)
            } else {
                VariableValues::I8(&self.i8)
            },
        }
    }
}

/// The kernel from a case's Keras variables.
fn from_keras(case: &Value, format: WeightFormat, axes: KernelAxes) -> DenseKernel {
    let vars = &case["variables"];
    let get = |name: &str| vars.get(name).map(Owned::of);
    let (kernel, bias, scale, zero, g_idx, inputs_scale) = (
        get("kernel").unwrap(),
        get("bias"),
        get("kernel_scale"),
        get("kernel_zero"),
        get("g_idx"),
        get("inputs_scale"),
    );
    let keras = KerasDenseVariables {
        kernel: kernel.var(),
        bias: bias.as_ref().map(Owned::var),
        kernel_scale: scale.as_ref().map(Owned::var),
        kernel_zero: zero.as_ref().map(Owned::var),
        g_idx: g_idx.as_ref().map(Owned::var),
        inputs_scale: inputs_scale.as_ref().map(Owned::var),
    };
    let (k, n) = dims(case);
    DenseKernel::from_keras(format, (k, n), axes, &keras)
        .unwrap_or_else(|e| panic!("{}: from_keras: {e}", case["policy"]))
}

fn dims(case: &Value) -> (usize, usize) {
    let (k, n) = (case["k"].as_u64().unwrap(), case["n"].as_u64().unwrap());
    (k as usize, n as usize)
}

/// The unit roundoff of a compute format, 2^-p for p significant bits: a
/// rounding to nearest moves a value by at most this much of it.
fn unit(format: StorageFormat) -> f64 {
    match format {
        StorageFormat::F32 => 2f64.powi(-24),
        StorageFormat::F16 => 2f64.powi(-11),
        StorageFormat::BF16 => 2f64.powi(-8),
        StorageFormat::F64 => 2f64.powi(-53),
    }
}

/// How Keras computes a quantized layer, for the tolerance of ours
/// against it (keras/src/layers/core/dense.py and einsum_dense.py, 3.15.1).
#[derive(Debug, Clone, Copy)]
struct KerasSteps {
    /// Keras dequantizes the weights in the compute dtype before its
    /// product (grouped int4: `(q - zero) · scale`; EinsumDense per-channel
    /// int4: `q / scale`), which [`keras_weights`] repeats exactly.
    weights_rounded: bool,
    /// Roundings of the product before the bias: int8 rounds its i32 sum,
    /// the scale, the scales' product and the quotient (4); per-channel
    /// weight-only Dense the product, the scale and the quotient (3); the
    /// others the product (1).
    product_roundings: f64,
    /// Both sums are of floats in f32, in orders of their own (XLA's, the
    /// kernel's): (k + 2) ε Σ|x·w| each.
    float_sums: bool,
    /// Our kernel divides (per-channel scales, int8 dequantization); WGSL
    /// allows 2.5 ulp.
    divides: bool,
}

impl KerasSteps {
    fn of(format: WeightFormat, axes: KernelAxes) -> KerasSteps {
        let einsum = axes != KernelAxes::Dense;
        match format {
            WeightFormat::Int8 {
                quantized_inputs: true,
            }
            | WeightFormat::Int4 {
                quantized_inputs: true,
                ..
            } => KerasSteps {
                weights_rounded: false,
                product_roundings: 4.0,
                float_sums: false,
                divides: true,
            },
            WeightFormat::Int8 { .. } | WeightFormat::Int4 { block: None, .. } if !einsum => {
                KerasSteps {
                    weights_rounded: false,
                    product_roundings: 3.0,
                    float_sums: true,
                    divides: true,
                }
            }
            WeightFormat::Int4 { block: None, .. } => KerasSteps {
                weights_rounded: true,
                product_roundings: 1.0,
                float_sums: true,
                divides: true,
            },
            WeightFormat::Int4 { .. } => KerasSteps {
                weights_rounded: true,
                product_roundings: 1.0,
                float_sums: true,
                divides: false,
            },
            WeightFormat::Float8(_) | WeightFormat::Float | WeightFormat::Int8 { .. } => {
                KerasSteps {
                    weights_rounded: false,
                    product_roundings: 1.0,
                    float_sums: true,
                    divides: false,
                }
            }
        }
    }
}

/// The weights Keras multiplies where it dequantizes them in the compute
/// dtype before its product: grouped int4 `(q - zero) · scale` (the scale
/// cast to the compute dtype, the product rounded to it), EinsumDense's
/// per-channel int4 `q / scale` (`per_channel`).
fn keras_weights(kernel: &DenseKernel, format: StorageFormat, per_channel: bool) -> Vec<f64> {
    let dtype_policy::format::KernelValues::Int4 {
        q,
        scale,
        zero,
        block,
        ..
    } = kernel.values()
    else {
        unreachable!("only int4 weights are dequantized by Keras before the product")
    };
    let (k, n) = (kernel.k(), kernel.n());
    let c = |v: f64| format.round(v);
    (0..k * n)
        .map(|i| {
            let (t, j) = (i / n, i % n);
            if per_channel {
                c(f64::from(q[i]) / c(f64::from(scale[j])))
            } else {
                let b = block.map_or(k, |b| b.get() as usize);
                let gj = t / b * n + j;
                let z = zero.as_ref().map_or(0.0, |z| f64::from(z[gj]));
                c((f64::from(q[i]) - z) * c(f64::from(scale[gj])))
            }
        })
        .collect()
}

/// Keras's float8 quantize-dequantize in a 16-bit compute dtype, as jax's
/// CPU backend runs it under `jit`: XLA turns the division by the scale
/// into a multiplication by the scale's reciprocal, both rounded to the
/// compute dtype, so a quotient on an e4m3 rounding boundary may take the
/// other code than Keras's code (and ours: divide, then round) gives.
/// (Seen: 0.4526 / 0.001663 in float16 is 288 in e4m3 eagerly and 256
/// under `jit`, which multiplies by 601.0.) For each activation and weight:
/// how far its dequantized value moves that way (zero for almost all), and
/// the dequantized activations and weights; `None` for float32 compute and
/// other formats.
#[allow(clippy::type_complexity)]
fn reciprocal_slack(
    kernel: &DenseKernel,
    format: StorageFormat,
    xr: &[f64],
) -> Option<(Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>)> {
    let dtype_policy::format::KernelValues::Float8 {
        w,
        scales,
        format: f8,
    } = kernel.values()
    else {
        return None;
    };
    if format == StorageFormat::F32 {
        return None;
    }
    let c = |v: f32| format.round(f64::from(v)) as f32;
    let by_reciprocal = |v: f32, scale: f32, f8| {
        let s = c(scale);
        let q = c(c(v) * c(1.0 / s));
        f64::from(c(dtype_policy::quant::float8::quantize_dequantize(
            q, 1.0, f8,
        ) * s))
    };
    let qdq = |v: f32, scale: f32, f8| {
        f64::from(dtype_policy::cpu::dense::float8_qdq(format, f8, scale, v))
    };
    let e4m3 = dtype_policy::quant::float8::Float8::E4M3Fn;
    let xq: Vec<f64> = xr
        .iter()
        .map(|&v| qdq(v as f32, scales.inputs, e4m3))
        .collect();
    let wq: Vec<f64> = w.iter().map(|&v| qdq(v, scales.kernel, *f8)).collect();
    let sx = xr
        .iter()
        .zip(&xq)
        .map(|(&v, q)| (by_reciprocal(v as f32, scales.inputs, e4m3) - q).abs())
        .collect();
    let sw = w
        .iter()
        .zip(&wq)
        .map(|(&v, q)| (by_reciprocal(v, scales.kernel, *f8) - q).abs())
        .collect();
    Some((sx, sw, xq, wq))
}

/// One fixture case ready to compare: the kernel from Keras's variables,
/// and what the tolerance needs.
struct KerasCase<'a> {
    label: String,
    kernel: DenseKernel,
    row: PlanRow,
    x: Vec<f32>,
    want: Vec<f32>,
    steps: KerasSteps,
    /// Keras's own int8 activations and scales, for layers that quantize
    /// them.
    keras_quantized: Option<(Vec<i8>, Vec<f32>)>,
    case: &'a Value,
}

impl KerasCase<'_> {
    fn format(&self) -> StorageFormat {
        self.row.layout.format
    }

    /// `Ok` when every output `got` is within the tolerance of Keras's:
    /// - `quantizer`: where our activation quantizer (f32 arithmetic on
    ///   the rounded x) and Keras's (in the compute dtype) give different
    ///   int8 activations, the exact difference that makes to the sum;
    /// - where Keras dequantizes the weights in the compute dtype, the exact
    ///   difference its weights make ([`keras_weights`]); where it divides by
    ///   a float8 scale as a product with its reciprocal, what that can move
    ///   ([`reciprocal_slack`]);
    /// - Keras's roundings to the compute dtype (unit u): its product
    ///   (`product_roundings` u |v|), its bias add (u |y|), and ours, once
    ///   (u |y|);
    /// - both sums of floats in f32 in their own orders: 2.4 (k + 2) ε Σ|x·w|;
    /// - our division: 4 ε (|y| + |b|);
    /// - a non-linear activation: Keras computes it in the compute dtype (a
    ///   few roundings: 4 u (|v| + |b| + |y|)), and exp, tanh and erf differ
    ///   from XLA's by a few f32 ulp (2e-6 (1 + |y|));
    ///
    /// then 20% to spare on Keras's part (the activations' slopes are below
    /// 1.2). Tight enough that a dropped bias or a dropped last term fails
    /// (checked below on every case).
    fn compare(&self, got: &[f32]) -> Result<(), String> {
        let (k, n) = (self.kernel.k(), self.kernel.n());
        let m = self.x.len() / k;
        if got.len() != m * n || self.want.len() != m * n {
            return Err(format!(
                "{}: {} outputs, Keras {}, expected {}",
                self.label,
                got.len(),
                self.want.len(),
                m * n
            ));
        }
        let u = unit(self.format());
        let eps = f64::from(f32::EPSILON);
        let w = dequantized(&self.kernel, self.format());
        let xr: Vec<f64> = self
            .x
            .iter()
            .map(|&v| self.format().round(f64::from(v)))
            .collect();
        let ours_quantized = self.keras_quantized.as_ref().map(|_| {
            let x32: Vec<f32> = xr.iter().map(|&v| v as f32).collect();
            quantize_rows(&x32, m, k, IntRange::INT8).unwrap()
        });
        let nonlinear = !matches!(
            self.row.spec.activation,
            Activation::Linear | Activation::Relu
        );
        let rcp = reciprocal_slack(&self.kernel, self.format(), &xr);
        let keras_w = self
            .steps
            .weights_rounded
            .then(|| keras_weights(&self.kernel, self.format(), self.steps.divides));
        for i in 0..m {
            for j in 0..n {
                let (g, y) = (f64::from(got[i * n + j]), f64::from(self.want[i * n + j]));
                let b = self.kernel.bias().map_or(0.0, |b| b.get(j));
                let l1: f64 = (0..k)
                    .map(|t| (xr[i * k + t] * w[t * n + j]).abs())
                    .sum::<f64>();
                let v: f64 = (0..k).map(|t| xr[i * k + t] * w[t * n + j]).sum();
                // The quantizers' difference, exactly.
                let quantizer = match (&self.keras_quantized, &ours_quantized) {
                    (Some((kq, ks)), Some((oq, os))) => {
                        let sum = |q: &[i8], s: f32| -> f64 {
                            (0..k)
                                .map(|t| f64::from(q[i * k + t]) * w[t * n + j])
                                .sum::<f64>()
                                / f64::from(s)
                        };
                        (sum(kq, ks[i]) - sum(oq, os[i])).abs()
                    }
                    _ => 0.0,
                };
                let s = &self.steps;
                let mut keras = quantizer + s.product_roundings * u * v.abs() + u * y.abs();
                if let Some((sx, sw, xq, wq)) = &rcp {
                    keras += (0..k)
                        .map(|t| {
                            let (a, b) = (sx[i * k + t], sw[t * n + j]);
                            a * wq[t * n + j].abs() + xq[i * k + t].abs() * b + a * b
                        })
                        .sum::<f64>();
                }
                if let Some(kw) = &keras_w {
                    // Keras's weights against ours, exactly.
                    keras += (0..k)
                        .map(|t| xr[i * k + t] * (kw[t * n + j] - w[t * n + j]))
                        .sum::<f64>()
                        .abs();
                }
                if s.float_sums {
                    keras += 2.4 * (k as f64 + 2.0) * eps * (l1 + b.abs());
                }
                if nonlinear {
                    keras += 4.0 * u * (v.abs() + b.abs() + y.abs()) + 2e-6 * (1.0 + y.abs());
                }
                let mut tol = 1.2 * keras + u * g.abs();
                if s.divides {
                    tol += 4.0 * eps * (y.abs() + b.abs());
                }
                let err = (g - y).abs();
                if err.is_nan() || err > tol {
                    return Err(format!(
                        "{} m={m} k={k} n={n} y[{i}][{j}]: ours {g}, Keras {y} (error {err:e}, \
                         tolerance {tol:e})",
                        self.label
                    ));
                }
            }
        }
        Ok(())
    }

    /// Ours on the GPU with both kernel shapes, against Keras; and the
    /// twin with a planted mistake (a dropped bias, a dropped last term)
    /// against Keras, which must fail.
    fn check(&self, ctx: &mut GpuContext) {
        let weights = self.row.upload(ctx, &self.kernel).unwrap();
        for shape in DenseShape::ALL {
            let mut row = self.row.clone();
            row.choice.shape = shape;
            let got = row.run(ctx, &weights, &self.x).unwrap();
            self.compare(&got).unwrap_or_else(|e| {
                panic!("{shape:?} on {}: {e}", ctx.capabilities().adapter_name)
            });
        }
        let mut planted = vec![("a dropped last term", without_last_term(&self.kernel))];
        if self.kernel.bias().is_some() {
            planted.push(("a dropped bias", without_bias(&self.kernel)));
        }
        for (mistake, kernel) in planted {
            let wrong = self.row.run_cpu(&kernel, &self.x).unwrap();
            let policy = self.case["policy"].as_str().unwrap();
            let activation = self.case["activation"].as_str().unwrap_or("linear");
            let within_keras = BELOW_KERAS_ROUNDING.contains(&(policy, activation, mistake))
                && self.kernel.k() == 300;
            assert_eq!(
                self.compare(&wrong).is_ok(),
                within_keras,
                "{}: {mistake} {} the Keras tolerance",
                self.label,
                if within_keras {
                    "fails, as listed it passes,"
                } else {
                    "passes"
                }
            );
        }
    }
}

/// Planted mistakes the Keras tolerance cannot catch, listed: a relu
/// layer of one row, 300 inputs and 5 outputs (one of them all zero) in
/// bfloat16 keeps about two live outputs near 3, where Keras's own three
/// bfloat16 roundings of the product (0.012 each) are as large as these
/// mistakes there. Every other planted mistake of every case fails.
const BELOW_KERAS_ROUNDING: &[(&str, &str, &str)] = &[
    ("int4/-1_from_mixed_bfloat16", "relu", "a dropped bias"),
    ("int4/-1_from_mixed_bfloat16", "relu", "a dropped last term"),
    ("int4/4_from_mixed_bfloat16", "relu", "a dropped last term"),
    ("float8_from_mixed_bfloat16", "relu", "a dropped last term"),
];

/// A fixture case planned through a policy map (the layer at
/// `model/dense`) and its kernel made from Keras's variables.
fn prepare<'a>(
    ctx: &GpuContext,
    case: &'a Value,
    format: WeightFormat,
    axes: KernelAxes,
) -> KerasCase<'a> {
    let policy = case["policy"].as_str().unwrap();
    let weight_only = case["weight_only"].as_bool().unwrap_or(false);
    let (k, n) = dims(case);
    let m = case["m"].as_u64().unwrap() as usize;
    let mut map = DTypePolicyMap::with_default_name("float32").unwrap();
    map.insert("model/dense", policy).unwrap();
    let spec = DenseLayerSpec {
        path: "model/dense".into(),
        rows: m,
        k,
        n,
        activation: activation(case["activation"].as_str().unwrap_or("linear")),
        int8_weight_only: weight_only,
    };
    let mut row = Plan::new(&map, &[spec], ctx.capabilities())
        .unwrap()
        .rows
        .remove(0);
    assert_eq!(row.policy.name(), policy);
    // The routed format is the policy's; a layer of Keras before 3.14
    // quantizes its int4 layer's activations, which its file says.
    row.choice.format = format;
    row.layout = row.choice.layout(k, n).unwrap();
    let kernel = from_keras(case, format, axes);
    let keras_quantized = case
        .get("inputs_quantized")
        .map(|q| (ints(&q["values"]), f32s(&q["scale_bits"])));
    KerasCase {
        label: format!("{policy} {:?} {}", axes, case["activation"]),
        steps: KerasSteps::of(format, axes),
        kernel,
        row,
        x: f32s(&case["x_bits"]),
        want: f32s(&case["y_bits"]),
        keras_quantized,
        case,
    }
}

fn data() -> Value {
    serde_json::from_str(include_str!("data/keras_quant_reference.json")).unwrap()
}

fn dense_cases(ctx: &GpuContext, data: &Value) -> Vec<(WeightFormat, Value)> {
    let cases = data["dense_outputs"].as_array().unwrap();
    assert_eq!(cases.len(), 63);
    cases
        .iter()
        .map(|case| {
            let policy = case["policy"].as_str().unwrap().parse().unwrap();
            let weight_only = case["weight_only"].as_bool().unwrap();
            let _ = ctx;
            (weight_format(&policy, weight_only).unwrap(), case.clone())
        })
        .collect()
}

fn check_dense(ctx: &mut GpuContext) {
    let data = data();
    for (format, case) in dense_cases(ctx, &data) {
        let c = prepare(ctx, &case, format, KernelAxes::Dense);
        // Our quantizer gives Keras's variables bit for bit (float8: the
        // float kernel with Keras's calibrated scales).
        let (k, n) = dims(&case);
        let (w, b) = (f32s(&case["w_bits"]), f32s(&case["b_bits"]));
        let ours = match c.kernel.values() {
            dtype_policy::format::KernelValues::Float8 { scales, format, .. } => {
                DenseKernel::float8(&w, Some(&b), (k, n), *scales, *format).unwrap()
            }
            _ => DenseKernel::quantize(format, &w, Some(&b), (k, n)).unwrap(),
        };
        assert_eq!(
            ours, c.kernel,
            "{}: our quantizer against Keras's variables",
            c.label
        );
        if format
            == (WeightFormat::Int8 {
                quantized_inputs: true,
            })
            && c.format() == StorageFormat::F32
        {
            // In float32 our activation quantizer is Keras's exactly.
            let (kq, ks) = c.keras_quantized.as_ref().unwrap();
            let m = c.x.len() / k;
            let (q, s) = quantize_rows(&c.x, m, k, IntRange::INT8).unwrap();
            assert_eq!((&q, &s), (kq, ks), "{}: activations", c.label);
        }
        if let dtype_policy::format::KernelValues::Float8 { scales, .. } = c.kernel.values() {
            assert_ne!(
                *scales,
                Float8Scales::default(),
                "{}: calibrated scales",
                c.label
            );
        }
        c.check(ctx);
    }
}

fn check_einsum(ctx: &mut GpuContext) {
    let data = data();
    let cases = data["einsum_outputs"].as_array().unwrap();
    assert_eq!(cases.len(), 12);
    for case in cases {
        let (heads, head_dim) = (
            case["heads"].as_u64().unwrap() as usize,
            case["head_dim"].as_u64().unwrap() as usize,
        );
        let axes = match case["equation"].as_str().unwrap() {
            "abc,cde->abde" => KernelAxes::HeadsOut { heads, head_dim },
            "abcd,cde->abe" => KernelAxes::HeadsIn { heads, head_dim },
            other => panic!("fixture equation {other}"),
        };
        let policy = case["policy"].as_str().unwrap().parse().unwrap();
        let format = weight_format(&policy, false).unwrap();
        prepare(ctx, case, format, axes).check(ctx);
    }
}

fn check_legacy_int4(ctx: &mut GpuContext) {
    let data: Value = serde_json::from_str(include_str!("data/keras_legacy_int4.json")).unwrap();
    assert_eq!(data["keras_version"], "3.13.2");
    let cases = data["dense_int4"].as_array().unwrap();
    assert_eq!(cases.len(), 6);
    let format = WeightFormat::Int4 {
        block: None,
        quantized_inputs: true,
    };
    for case in cases {
        let c = prepare(ctx, case, format, KernelAxes::Dense);
        let (k, n) = dims(case);
        assert_eq!(
            case["variables"]["kernel"]["shape"],
            serde_json::json!([k.div_ceil(2), n]),
            "packed along the inputs"
        );
        c.check(ctx);
    }
}

#[test]
fn quantized_dense_from_keras_variables_agrees_with_keras_on_lavapipe_vulkan() {
    check_dense(&mut common::gpu::vulkan());
}

#[test]
fn quantized_dense_from_keras_variables_agrees_with_keras_on_llvmpipe_gl() {
    check_dense(&mut common::gpu::gl());
}

#[test]
fn quantized_einsum_dense_from_keras_variables_agrees_with_keras_on_both_adapters() {
    check_einsum(&mut common::gpu::vulkan());
    check_einsum(&mut common::gpu::gl());
}

#[test]
fn int4_from_keras_before_3_14_agrees_with_keras_3_13_on_both_adapters() {
    check_legacy_int4(&mut common::gpu::vulkan());
    check_legacy_int4(&mut common::gpu::gl());
}

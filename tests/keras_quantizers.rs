// SPDX-License-Identifier: MIT OR Apache-2.0
//! The host quantizers against released Keras 3.15.1 (and ml_dtypes 0.6.0),
//! bit for bit: tests/data/keras_quant_reference.json, written by
//! tools/keras_quant_reference.py.

mod common;

use common::{f32s, ints};
use dtype_policy::quant::abs_max::{IntRange, quantize_kernel_per_column, quantize_rows};
use dtype_policy::quant::float8::{AmaxHistory, Float8, delayed_scale, quantize_dequantize};
use dtype_policy::quant::int4::{pack_int4_columns, quantize_grouped, unpack_int4_columns};
use serde_json::Value;

fn data() -> Value {
    serde_json::from_str(include_str!("data/keras_quant_reference.json")).unwrap()
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn usize_of(v: &Value) -> usize {
    v.as_u64().unwrap() as usize
}

#[test]
fn fixture_comes_from_keras_3_15_1() {
    let d = data();
    assert_eq!(d["keras_version"], "3.15.1");
    assert_eq!(
        d["epsilon"].as_f64().unwrap() as f32,
        dtype_policy::quant::EPSILON
    );
}

#[test]
fn int8_kernels_and_scales_equal_keras_dense_quantize() {
    let d = data();
    for case in d["int8_weights"].as_array().unwrap() {
        let (k, n) = (usize_of(&case["k"]), usize_of(&case["n"]));
        let (q, scale) =
            quantize_kernel_per_column(&f32s(&case["w_bits"]), k, n, IntRange::INT8).unwrap();
        assert_eq!(q, ints(&case["kernel"]), "{}", case["name"]);
        assert_eq!(
            bits(&scale),
            bits(&f32s(&case["kernel_scale_bits"])),
            "{}",
            case["name"]
        );
    }
}

#[test]
fn int8_activations_and_scales_equal_keras_abs_max_quantizer() {
    let d = data();
    for case in d["int8_inputs"].as_array().unwrap() {
        let (m, k) = (usize_of(&case["m"]), usize_of(&case["k"]));
        let (q, scale) = quantize_rows(&f32s(&case["x_bits"]), m, k, IntRange::INT8).unwrap();
        assert_eq!(q, ints(&case["quantized"]), "{}", case["name"]);
        assert_eq!(
            bits(&scale),
            bits(&f32s(&case["scale_bits"])),
            "{}",
            case["name"]
        );
    }
}

#[test]
fn int4_kernels_scales_and_zero_points_equal_keras() {
    let d = data();
    let cases = d["int4_weights"].as_array().unwrap();
    assert!(cases.len() >= 24);
    for case in cases {
        let (k, n) = (usize_of(&case["k"]), usize_of(&case["n"]));
        let block = case["block_size"].as_i64().unwrap();
        let label = format!("{} block {block}", case["name"]);
        let w = f32s(&case["w_bits"]);
        let (q, scale, zero) = if block < 0 {
            let (q, s) = quantize_kernel_per_column(&w, k, n, IntRange::INT4).unwrap();
            (q, s, None)
        } else {
            let g = quantize_grouped(&w, k, n, block as usize).unwrap();
            assert_eq!(
                case["scale_shape"],
                serde_json::json!([g.groups, n]),
                "{label}: scales [groups, units]"
            );
            (g.q, g.scale, Some(g.zero))
        };
        let packed = pack_int4_columns(&q, k, n);
        assert_eq!(
            packed,
            ints(&case["packed_kernel"]),
            "{label}: packed kernel"
        );
        // Keras >= 3.14 packs along the units: [k, ceil(n / 2)].
        assert_eq!(
            case["packed_shape"],
            serde_json::json!([k, n.div_ceil(2)]),
            "{label}: packed shape"
        );
        assert_eq!(unpack_int4_columns(&packed, k, n), q, "{label}: unpack");
        assert_eq!(
            bits(&scale),
            bits(&f32s(&case["kernel_scale_bits"])),
            "{label}: scales"
        );
        if let Some(zero) = zero {
            assert_eq!(zero, ints(&case["kernel_zero"]), "{label}: zero points");
        }
        let policy = format!("int4/{block}_from_float32");
        assert_eq!(case["policy"], policy.as_str());
    }
}

#[test]
fn float8_encodings_and_decodings_equal_ml_dtypes() {
    let d = data();
    let f8 = &d["float8"];
    let values = f32s(&f8["values_bits"]);
    for (format, key) in [
        (Float8::E4M3Fn, "float8_e4m3fn"),
        (Float8::E5M2, "float8_e5m2"),
    ] {
        let expected = f8[key]["encode"].as_array().unwrap();
        assert_eq!(expected.len(), values.len(), "{key}: one code per value");
        for (v, code) in values.iter().zip(expected) {
            let ours = format.encode(*v);
            let theirs = code.as_u64().unwrap() as u8;
            // ml_dtypes may keep a NaN's sign; any NaN code is NaN.
            let both_nan = format.decode(ours).is_nan() && format.decode(theirs).is_nan();
            assert!(
                ours == theirs || both_nan,
                "{key}: {v:e} ({:#010x}) -> ours {ours:#04x}, ml_dtypes {theirs:#04x}",
                v.to_bits()
            );
        }
        let decoded = f32s(&f8[key]["decode_bits"]);
        assert_eq!(decoded.len(), 256, "{key}: every code decoded");
        for (code, want) in decoded.iter().enumerate() {
            let ours = format.decode(code as u8);
            assert!(
                ours.to_bits() == want.to_bits() || (ours.is_nan() && want.is_nan()),
                "{key}: decode {code:#04x}: {ours} vs {want}"
            );
        }
        assert_eq!(
            format.max().to_bits(),
            f32s(&f8[key]["max_bits"])[0].to_bits()
        );
    }
}

#[test]
fn float8_quantize_dequantize_equals_keras() {
    let d = data();
    for case in d["float8"]["qdq"].as_array().unwrap() {
        let scale = f32s(&case["scale_bits"])[0];
        let ours: Vec<f32> = f32s(&case["x_bits"])
            .iter()
            .map(|&x| quantize_dequantize(x, scale, Float8::E4M3Fn))
            .collect();
        assert_eq!(bits(&ours), bits(&f32s(&case["y_bits"])), "scale {scale}");
    }
}

#[test]
fn amax_history_and_delayed_scale_equal_keras() {
    let d = data();
    let a = &d["amax_history"];
    let mut history = AmaxHistory::new(a["length"].as_u64().unwrap() as u32);
    let mut scale = 1.0f32;
    for (i, step) in a["steps"].as_array().unwrap().iter().enumerate() {
        history.record(&f32s(&step["x_bits"]));
        scale = delayed_scale(
            history.amax(),
            scale,
            a["dtype_max"].as_f64().unwrap() as f32,
        );
        assert_eq!(
            bits(history.values()),
            bits(&f32s(&step["history_bits"])),
            "step {i}: history"
        );
        assert_eq!(
            scale.to_bits(),
            f32s(&step["scale_bits"])[0].to_bits(),
            "step {i}: scale {scale}"
        );
    }
}

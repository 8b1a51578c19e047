// SPDX-License-Identifier: MIT OR Apache-2.0
//! Rules this crate decides where Keras is silent or lax (spec sections 3-4),
//! each with the error a user sees.

use dtype_policy::{Error, Policy, QuantizedFloat8DTypePolicy};
use serde_json::json;

#[test]
fn amax_history_length_must_be_at_least_one() {
    for bad in [0, -1, i64::from(u32::MAX) + 1] {
        let err = QuantizedFloat8DTypePolicy::new("float8", Some("float32"), bad).unwrap_err();
        assert!(
            matches!(err, Error::AmaxHistoryLengthOutOfRange { received, .. } if received == bad)
        );
        assert!(err.to_string().contains("at least one entry"), "{err}");
    }
    let p = QuantizedFloat8DTypePolicy::new("float8", Some("float32"), 1).unwrap();
    assert_eq!(p.amax_history_length(), 1);
}

#[test]
fn amax_history_length_in_json_is_an_integer_not_a_bool() {
    let config = json!({"mode": "float8", "source_name": "float32", "amax_history_length": true});
    let err = Policy::from_config("QuantizedFloat8DTypePolicy", &config).unwrap_err();
    assert_eq!(err.keras_exception(), "TypeError");
    assert!(err.to_string().contains("must be an integer"), "{err}");
}

#[test]
fn block_and_group_sizes_beyond_u32_are_errors_not_wraparounds() {
    let err = "int4/99999999999_from_float32"
        .parse::<Policy>()
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::ModeIntegerOutOfRange {
                field: "block_size",
                ..
            }
        ),
        "{err}"
    );
    let err = "int4/99999999999999999999999_from_float32"
        .parse::<Policy>()
        .unwrap_err();
    assert!(matches!(err, Error::ModeIntegerOutOfRange { .. }), "{err}");
}

#[test]
fn maps_inside_maps_are_rejected_with_a_reason() {
    let inner = json!({"class_name": "DTypePolicyMap", "config": {"default_policy": null, "policy_map": {}}});
    let outer = json!({"class_name": "DTypePolicyMap", "config": {"default_policy": null, "policy_map": {"a": inner}}});
    let err = dtype_policy::DTypePolicyMap::from_keras_value(&outer).unwrap_err();
    assert!(matches!(err, Error::MapAsValue(ref k) if k == "a"), "{err}");
    let err = Policy::from_keras_value(&inner).unwrap_err();
    assert!(err.to_string().contains("not a single policy"), "{err}");
}

#[test]
fn malformed_serialized_objects_name_what_is_missing() {
    let cases = [
        (
            json!(3),
            "expected a policy name or a serialized policy object",
        ),
        (json!({"config": {}}), "no 'class_name'"),
        (
            json!({"class_name": 1, "config": {}}),
            "'class_name' must be a string",
        ),
        (json!({"class_name": "DTypePolicy"}), "has no 'config'"),
        (
            json!({"class_name": "DTypePolicy", "config": []}),
            "config must be an object",
        ),
        (
            json!({"class_name": "QuantizedDTypePolicy", "config": {}}),
            "required argument: 'mode'",
        ),
    ];
    for (value, expected) in cases {
        let err = Policy::from_keras_value(&value).unwrap_err();
        assert!(err.to_string().contains(expected), "{value}: {err}");
    }
}

#[test]
fn host_quantizers_and_twins_refuse_mismatched_shapes_without_panicking() {
    use dtype_policy::cpu::dense::dense;
    use dtype_policy::format::{DenseKernel, StorageFormat};
    use dtype_policy::ops::{Activation, DenseShape};
    use dtype_policy::quant::abs_max::{IntRange, quantize_kernel_per_column, quantize_rows};
    use dtype_policy::quant::int4::{pack_int4_columns, quantize_grouped};
    assert!(quantize_kernel_per_column(&[1.0; 5], 2, 3, IntRange::INT8).is_err());
    assert!(quantize_rows(&[1.0; 5], 2, 3, IntRange::INT8).is_err());
    assert!(quantize_rows(&[], 1, 0, IntRange::INT8).is_err());
    assert!(quantize_grouped(&[1.0; 6], 2, 3, 0).is_err());
    assert!(pack_int4_columns(&[], 0, 0).is_empty());
    // A kernel of 3 values is not [2, 2]; x of 3 values is not one row of 2.
    let err = DenseKernel::float(&[1.0f32; 3], None, (2, 2)).unwrap_err();
    assert!(matches!(err, Error::Shape(_)), "{err}");
    let kernel = DenseKernel::float(&[1.0f32; 4], None, (2, 2)).unwrap();
    let err = dense::<f32>(
        &kernel,
        StorageFormat::F32,
        DenseShape::MatVec,
        Activation::Linear,
        &[1.0; 3],
        1,
    )
    .unwrap_err();
    assert!(matches!(err, Error::Shape(_)), "{err}");
}

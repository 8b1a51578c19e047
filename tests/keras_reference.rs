// SPDX-License-Identifier: MIT OR Apache-2.0
//! Spec sections 1-4 against released Keras 3.15.1: every recorded case in
//! tests/data/keras_reference.json that does not touch the global policy.
//! (Those are in keras_global.rs, a process of their own.)

mod common;

use common::*;
use dtype_policy::{DType, Policy};
use serde_json::Value;

#[test]
fn fixture_comes_from_keras_3_15_1() {
    let data = reference();
    assert_eq!(data["keras_version"], "3.15.1");
    assert_eq!(data["initial_global_policy"], r#"<DTypePolicy "float32">"#);
    let modes: Vec<&str> = dtype_policy::QuantizationMode::ALL
        .iter()
        .map(|m| m.as_str())
        .collect();
    assert_eq!(data["quantization_modes"], serde_json::json!(modes));
}

#[test]
fn dtype_names_match_keras_standardize_dtype() {
    let data = reference();
    let cases = data["dtypes"].as_array().unwrap();
    assert!(cases.len() > 30);
    for case in cases {
        let input = case["input"].as_str().unwrap();
        assert_outcome(input, input.parse::<DType>(), case, |d, ok| {
            assert_eq!(d.name(), ok["name"], "{input}");
            assert_eq!(d.is_float(), ok["is_float"], "{input}");
            assert_eq!(d.is_int(), ok["is_int"], "{input}");
            // Keras's size table (`dtype_size`) has no float8 or complex
            // entry; ours gives them the sizes that follow from their
            // definitions, the one listed difference. Everywhere else they
            // agree, `string` (no size) included.
            match ok["bits"].as_u64() {
                Some(bits) => assert_eq!(d.bits(), Some(bits as u32), "{input}"),
                None => {
                    let ours_only = [
                        ("float8_e4m3fn", 8),
                        ("float8_e5m2", 8),
                        ("complex64", 64),
                        ("complex128", 128),
                    ];
                    let expected = ours_only
                        .iter()
                        .find(|(name, _)| *name == d.name())
                        .map(|(_, b)| *b);
                    assert_eq!(d.bits(), expected, "{input}: Keras has no size for it");
                }
            }
        });
    }
}

#[test]
fn every_policy_construction_matches_keras() {
    let data = reference();
    let cases = data["policies"].as_array().unwrap();
    assert!(cases.len() > 100);
    let (mut ok, mut err) = (0, 0);
    for case in cases {
        let label = format!("{} {}", case["call"], case["args"]);
        if case.get("ok").is_some() {
            ok += 1;
        } else {
            err += 1;
        }
        assert_outcome(&label, construct(case), case, |p, expected| {
            assert_same_policy(&label, &p, expected);
        });
    }
    // Both halves of the fixture are exercised.
    assert!(ok > 40 && err > 40, "ok {ok}, err {err}");
}

#[test]
fn direct_constructor_calls_match_from_config_with_the_same_keywords() {
    // Keras's from_config is cls(**config): the typed constructors and the
    // JSON path must agree on every recorded direct call.
    let data = reference();
    for case in data["policies"].as_array().unwrap() {
        let class = case["call"].as_str().unwrap();
        if matches!(class, "get" | "deserialize") {
            continue;
        }
        let label = format!("from_config {class} {}", case["args"]);
        assert_outcome(
            &label,
            Policy::from_config(class, &case["args"]),
            case,
            |p, expected| {
                assert_same_policy(&label, &p, expected);
            },
        );
    }
}

#[test]
fn equality_matches_keras() {
    let data = reference();
    for case in data["equality"].as_array().unwrap() {
        let a = construct(&case["a"]).unwrap();
        let b = construct(&case["b"]).unwrap();
        let expected = case["equal"].as_bool().unwrap();
        assert_eq!(a == b, expected, "{a} == {b}");
        assert_eq!(b == a, expected, "{b} == {a}");
    }
}

#[test]
fn map_scripts_match_keras() {
    let data = reference();
    for script in data["maps"].as_array().unwrap() {
        let init = &script["init"];
        // Maps without a default read the global policy; that is float32 in
        // this process, which never changes it (see keras_global.rs).
        let built = map_from_init(init);
        let mut map = match (built, script["init_result"].get("err")) {
            (Ok(map), None) => map,
            (Err(e), Some(err)) => {
                assert_same_error(&format!("DTypePolicyMap({init})"), &e, err);
                continue;
            }
            (Ok(_), Some(err)) => panic!("DTypePolicyMap({init}): Keras failed with {err}"),
            (Err(e), None) => panic!("DTypePolicyMap({init}): {e}"),
        };
        let ops = script["ops"].as_array().unwrap();
        let results = script["results"].as_array().unwrap();
        assert_eq!(ops.len(), results.len());
        for (op, expected) in ops.iter().zip(results) {
            let label = format!("map {init}: {op}");
            assert_outcome(&label, run_map_op(&mut map, op), expected, |v, ok| {
                assert_eq!(text(&v), text(ok), "{label}");
            });
        }
        // Whatever state the script ended in survives Keras JSON. A map
        // without a default is written without entry names, as Keras does,
        // so only the JSON, not the entries, survives that round trip.
        let json = map.to_keras_json();
        let back = dtype_policy::DTypePolicyMap::from_keras_json(&json).unwrap();
        assert_eq!(back.to_keras_json(), json);
        if init.get("default_policy").is_some() {
            assert_eq!(back.to_string(), map.to_string());
        }
    }
}

#[test]
fn map_display_is_keras_repr_without_the_address() {
    let mut map = dtype_policy::DTypePolicyMap::with_default_name("mixed_bfloat16").unwrap();
    map.insert("a/b", "int8_from_mixed_bfloat16").unwrap();
    // Keras: <DTypePolicyMap at 0x7f3b8a854ed0 default_policy=mixed_bfloat16, mapping=[('a/b', 'int8_from_mixed_bfloat16')]>
    assert_eq!(
        map.to_string(),
        "<DTypePolicyMap default_policy=mixed_bfloat16, mapping=[('a/b', 'int8_from_mixed_bfloat16')]>"
    );
    assert_eq!(map.name(), "map_mixed_bfloat16");
}

#[test]
fn serde_reads_and_writes_keras_serialized_objects() {
    let data = reference();
    for case in data["policies"].as_array().unwrap() {
        let Some(ok) = case.get("ok") else { continue };
        let text_in = text(&ok["serialized"]);
        let p: Policy = serde_json::from_str(&text_in).unwrap();
        assert_eq!(serde_json::to_string(&p).unwrap(), text_in);
    }
    let err = serde_json::from_str::<Policy>(r#"{"class_name": "Bogus", "config": {}}"#)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("Unknown dtype policy class_name 'Bogus'"),
        "{err}"
    );
    let _: Value = serde_json::to_value(Policy::from(
        dtype_policy::DTypePolicy::new("float32").unwrap(),
    ))
    .unwrap();
}

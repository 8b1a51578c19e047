// SPDX-License-Identifier: MIT OR Apache-2.0
//! Replays the answers released Keras gave (tests/data/keras_reference.json,
//! written by tools/keras_reference.py) through this crate's API.
#![allow(dead_code)] // each test binary uses a different part

pub mod gpu;
pub mod harness;

use dtype_policy::{
    DTypePolicy, DTypePolicyMap, Error, GroupwiseDTypePolicy, Int4DTypePolicy, Policy,
    QuantizedDTypePolicy, QuantizedFloat8DTypePolicy,
};
use serde_json::Value;

/// f32 values from their bit patterns, as the fixtures store them.
pub fn f32s(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|b| f32::from_bits(b.as_u64().unwrap() as u32))
        .collect()
}

/// int8 values, as the fixtures store them.
pub fn ints(v: &Value) -> Vec<i8> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|b| b.as_i64().unwrap() as i8)
        .collect()
}

/// The recorded Keras answers.
pub fn reference() -> Value {
    serde_json::from_str(include_str!("../data/keras_reference.json"))
        .expect("tests/data/keras_reference.json is valid JSON")
}

/// The part of a Keras error message that ours must contain: the inner
/// message of a deserialization wrapper, without Python-only type names.
pub fn keras_core(message: &str) -> &str {
    let msg = message
        .split_once("Exception encountered: ")
        .map_or(message, |(_, inner)| inner);
    let msg = msg.split_once(".__init__() ").map_or(msg, |(_, rest)| rest);
    let cut = [" (of type", " of type <class"]
        .iter()
        .filter_map(|p| msg.find(p))
        .min()
        .unwrap_or(msg.len());
    msg[..cut].trim_end()
}

/// Checks that `ours` failed the way Keras did (`expected` is `{"kind", "message"}`).
pub fn assert_same_error(case: &str, ours: &Error, expected: &Value) {
    let kind = expected["kind"].as_str().unwrap();
    let message = expected["message"].as_str().unwrap();
    assert_eq!(
        ours.keras_exception(),
        kind,
        "{case}: Keras raised {kind}({message:?}), we returned {ours}"
    );
    let core = keras_core(message);
    assert!(
        ours.to_string().contains(core),
        "{case}: our message\n  {ours}\ndoes not contain Keras's\n  {core}"
    );
}

fn arg<'v>(args: &'v Value, key: &str) -> Option<&'v str> {
    args.get(key).and_then(Value::as_str)
}

/// Runs one recorded construction ("call" + "args") through the typed API.
/// Calls whose arguments have types the Rust API cannot take (a string as
/// `amax_history_length`) go through `from_config` with the same keywords.
pub fn construct(spec: &Value) -> Result<Policy, Error> {
    let class = spec["call"].as_str().unwrap();
    let args = &spec["args"];
    let name = || arg(args, "name").unwrap();
    let mode = || arg(args, "mode").unwrap();
    let source = arg(args, "source_name");
    match class {
        "get" => arg(args, "identifier").unwrap().parse(),
        "deserialize" => Policy::from_keras_value(&args["config"]),
        "DTypePolicy" => DTypePolicy::new(name()).map(Policy::from),
        "FloatDTypePolicy" => {
            DTypePolicy::new(name()).map(|p| Policy::from(p.into_float_dtype_policy_class()))
        }
        "QuantizedDTypePolicy" => QuantizedDTypePolicy::new(mode(), source).map(Policy::from),
        "QuantizedFloat8DTypePolicy" => match args.get("amax_history_length") {
            None => QuantizedFloat8DTypePolicy::new(mode(), source, 1024).map(Policy::from),
            Some(Value::Number(n)) if n.is_i64() => {
                QuantizedFloat8DTypePolicy::new(mode(), source, n.as_i64().unwrap())
                    .map(Policy::from)
            }
            Some(_) => Policy::from_config(class, args),
        },
        "Int4DTypePolicy" => Int4DTypePolicy::new(mode(), source).map(Policy::from),
        "GPTQDTypePolicy" => GroupwiseDTypePolicy::gptq(mode(), source).map(Policy::from),
        "AWQDTypePolicy" => GroupwiseDTypePolicy::awq(mode(), source).map(Policy::from),
        other => panic!("fixture names an unknown call {other}"),
    }
}

/// Compact JSON text, which keeps key order: equal text means equal values
/// in the same order as Keras writes them.
pub fn text(v: &Value) -> String {
    serde_json::to_string(v).unwrap()
}

/// Checks every recorded attribute of a policy Keras built.
pub fn assert_same_policy(case: &str, ours: &Policy, expected: &Value) {
    let s = |k: &str| {
        expected[k]
            .as_str()
            .unwrap_or_else(|| panic!("{case}: {k}"))
    };
    assert_eq!(ours.class_name(), s("class"), "{case}: class");
    assert_eq!(ours.name(), s("name"), "{case}: name");
    assert_eq!(ours.compute_dtype().name(), s("compute_dtype"), "{case}");
    assert_eq!(ours.variable_dtype().name(), s("variable_dtype"), "{case}");
    assert_eq!(
        ours.quantization_mode().map(|m| m.as_str()),
        expected["quantization_mode"].as_str(),
        "{case}: quantization_mode"
    );
    assert_eq!(ours.to_string(), s("repr"), "{case}: repr");
    assert_eq!(
        text(&ours.get_config()),
        text(&expected["config"]),
        "{case}: config"
    );
    assert_eq!(
        text(&ours.to_keras_value()),
        text(&expected["serialized"]),
        "{case}: serialized"
    );
    match ours {
        Policy::Float8(p) => assert_eq!(
            i64::from(p.amax_history_length()),
            expected["amax_history_length"].as_i64().unwrap(),
            "{case}"
        ),
        Policy::Int4(p) => {
            assert_eq!(
                p.block_size(),
                expected["block_size"].as_i64().unwrap(),
                "{case}"
            )
        }
        Policy::Groupwise(p) => {
            assert_eq!(
                i64::from(p.weight_bits()),
                expected["weight_bits"].as_i64().unwrap(),
                "{case}"
            );
            assert_eq!(
                p.group_size(),
                expected["group_size"].as_i64().unwrap(),
                "{case}"
            );
        }
        _ => {}
    }
    // Whatever Keras serializes, we read back and write out unchanged. (Not
    // always to an equal policy: Keras writes "int4/0128" as "int4/128".)
    let back = Policy::from_keras_value(&expected["serialized"])
        .unwrap_or_else(|e| panic!("{case}: reading Keras's JSON back failed: {e}"));
    assert_eq!(
        text(&back.to_keras_value()),
        text(&expected["serialized"]),
        "{case}: serialized round trip"
    );
}

/// Checks one `{"ok": ...}` / `{"err": ...}` answer against ours, with
/// `check_ok` comparing successes.
pub fn assert_outcome<T: std::fmt::Debug>(
    case: &str,
    ours: Result<T, Error>,
    expected: &Value,
    check_ok: impl FnOnce(T, &Value),
) {
    match (ours, expected.get("ok"), expected.get("err")) {
        (Ok(v), Some(ok), None) => check_ok(v, ok),
        (Err(e), None, Some(err)) => assert_same_error(case, &e, err),
        (Ok(v), _, Some(err)) => panic!("{case}: Keras failed with {err}, we returned {v:?}"),
        (Err(e), Some(ok), _) => panic!("{case}: Keras returned {ok}, we failed: {e}"),
        _ => panic!("{case}: malformed fixture {expected}"),
    }
}

/// Builds a map as a recorded `DTypePolicyMap(**init)` call.
pub fn map_from_init(init: &Value) -> Result<DTypePolicyMap, Error> {
    match init.get("default_policy") {
        None | Some(Value::Null) => Ok(DTypePolicyMap::new()),
        Some(Value::String(name)) => DTypePolicyMap::with_default_name(name),
        Some(other) => panic!("fixture map default {other} is not a name"),
    }
}

/// The Keras-JSON form of a map operation's result, for comparison.
pub fn run_map_op(map: &mut DTypePolicyMap, op: &Value) -> Result<Value, Error> {
    let key = || op["key"].as_str().unwrap();
    Ok(match op["op"].as_str().unwrap() {
        "set" => {
            map.insert(key(), op["value"].as_str().unwrap())?;
            Value::Null
        }
        "get" => Value::from(map.get(op["path"].as_str().unwrap())?.to_string()),
        "del" => Value::from(map.remove(key())?.to_string()),
        "contains" => Value::from(map.contains(key())),
        "len" => Value::from(map.len()),
        "keys" => Value::from(map.keys().collect::<Vec<_>>()),
        "name" => Value::from(map.name()),
        "dtypes" => serde_json::json!([
            map.compute_dtype().name(),
            map.variable_dtype().name(),
            map.quantization_mode().map(|m| m.as_str()),
        ]),
        "serialize" => map.to_keras_value(),
        other => panic!("fixture names an unknown map op {other}"),
    })
}

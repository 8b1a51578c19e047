// SPDX-License-Identifier: MIT OR Apache-2.0
//! Every parser and loader, fed arbitrary strings and arbitrary JSON, returns
//! `Ok` or `Err` and never panics. The JSON is drawn from Keras's own
//! vocabulary (class names, config keys, policy names) as well as at random,
//! so the generator reaches deep into the loaders instead of failing at the
//! first key.

use dtype_policy::{
    DType, DTypePolicy, DTypePolicyMap, GroupwiseDTypePolicy, Int4DTypePolicy, Policy,
    QuantizedDTypePolicy, QuantizedFloat8DTypePolicy,
};
use proptest::prelude::*;
use serde_json::{Map, Value};

const WORDS: &[&str] = &[
    "float32",
    "mixed_bfloat16",
    "mixed_float16",
    "bfloat16",
    "float16",
    "int8",
    "int4",
    "float8",
    "gptq",
    "awq",
    "int",
    "int8_from_float32",
    "int4/128",
    "int4/-1",
    "int4/0",
    "gptq/4/128",
    "awq/4/-1",
    "float8_from_float32",
    "_from_",
    "/",
    "DTypePolicy",
    "FloatDTypePolicy",
    "QuantizedDTypePolicy",
    "QuantizedFloat8DTypePolicy",
    "Int4DTypePolicy",
    "GPTQDTypePolicy",
    "AWQDTypePolicy",
    "DTypePolicyMap",
    ".*",
    "[",
    "(",
    "a/b",
    "",
    " ",
    "\u{0}",
    "é",
    "9999999999999999999999",
];

const KEYS: &[&str] = &[
    "module",
    "class_name",
    "config",
    "registered_name",
    "name",
    "mode",
    "source_name",
    "amax_history_length",
    "default_policy",
    "policy_map",
    "x",
];

/// Strings built from Keras's vocabulary, or any string at all.
fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::collection::vec(prop::sample::select(WORDS), 1..4).prop_map(|w| w.concat()),
        any::<String>(),
    ]
}

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        word().prop_map(Value::from),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(4, 48, 6, |inner| {
        let key = prop_oneof![prop::sample::select(KEYS).prop_map(str::to_owned), word()];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::vec((key, inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// A serialized object with a real class name and a config of real keys.
fn serialized_like() -> impl Strategy<Value = Value> {
    let class = prop::sample::select(&WORDS[20..28]);
    let config = prop::collection::vec((prop::sample::select(KEYS), json_value()), 0..4);
    (class, config).prop_map(|(class, config)| {
        let config: Map<String, Value> = config.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        serde_json::json!({"module": "keras", "class_name": class, "config": config, "registered_name": null})
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn string_parsers_never_panic(s in word(), t in word(), n in any::<i64>()) {
        let _ = s.parse::<DType>();
        let _ = s.parse::<Policy>();
        let _ = DTypePolicy::new(&s);
        let _ = QuantizedDTypePolicy::new(&s, Some(&t));
        let _ = QuantizedFloat8DTypePolicy::new(&s, Some(&t), n);
        let _ = Int4DTypePolicy::new(&s, Some(&t));
        let _ = GroupwiseDTypePolicy::gptq(&s, Some(&t));
        let _ = GroupwiseDTypePolicy::awq(&s, Some(&t));
        let _ = DTypePolicyMap::with_default_name(&s);
        let _ = Policy::from_keras_json(&s);
        let _ = DTypePolicyMap::from_keras_json(&s);
    }

    #[test]
    fn map_insert_and_lookup_never_panic(keys in prop::collection::vec((word(), word()), 0..6), paths in prop::collection::vec(word(), 0..6)) {
        let mut map = DTypePolicyMap::with_default(Policy::from(DTypePolicy::from_dtype(DType::Float32)));
        for (key, value) in &keys {
            let _ = map.insert(key.as_str(), value.as_str());
        }
        for path in &paths {
            let _ = map.get(path);
            let _ = map.remove(path);
        }
        let _ = map.to_string();
        // Whatever was accepted survives a Keras JSON round trip.
        let json = map.to_keras_json();
        let back = DTypePolicyMap::from_keras_json(&json);
        prop_assert!(back.is_ok(), "{json}: {:?}", back.err());
    }

    #[test]
    fn json_loaders_never_panic(v in json_value(), class in word()) {
        let _ = Policy::from_keras_value(&v);
        let _ = DTypePolicyMap::from_keras_value(&v);
        let _ = DTypePolicyMap::from_config(&v);
        let _ = Policy::from_config(&class, &v);
        let _ = serde_json::from_value::<Policy>(v.clone());
        let _ = serde_json::from_value::<DTypePolicyMap>(v);
    }

    #[test]
    fn serialized_objects_never_panic_and_what_loads_round_trips(v in serialized_like()) {
        if let Ok(policy) = Policy::from_keras_value(&v) {
            let again = Policy::from_keras_value(&policy.to_keras_value());
            prop_assert!(again.is_ok(), "{policy}: {:?}", again.err());
        }
        let as_map = serde_json::json!({"class_name": "DTypePolicyMap", "config": {"default_policy": v.clone(), "policy_map": {"k": v}}});
        let _ = DTypePolicyMap::from_keras_value(&as_map);
    }
}

/// The round-trip property above is only worth something if the generator
/// makes objects that load: count them over a fixed sample.
#[test]
fn the_serialized_generator_makes_policies_that_load() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, TestRng, TestRunner};
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::deterministic_rng(Config::default().rng_algorithm),
    );
    let strategy = serialized_like();
    let samples = 2000;
    let loaded = (0..samples)
        .filter(|_| {
            let v = strategy.new_tree(&mut runner).unwrap().current();
            Policy::from_keras_value(&v).is_ok()
        })
        .count();
    assert!(
        loaded * 100 >= 3 * samples,
        "only {loaded} of {samples} generated objects load: the round trip is barely tested"
    );
}

// SPDX-License-Identifier: MIT OR Apache-2.0
//! DTypePolicyMap behaviour beyond the recorded Keras cases: regex keys
//! compiled at insert, the compiled set against Keras's one-regex-at-a-time
//! algorithm, and many-path lookups.

use dtype_policy::{DTypePolicyMap, Error, Policy};
use proptest::prelude::*;
use regex::Regex;

fn map() -> DTypePolicyMap {
    DTypePolicyMap::with_default("float32".parse().unwrap())
}

#[test]
fn an_invalid_regex_key_is_rejected_at_insert_and_the_map_is_unchanged() {
    let mut m = map();
    m.insert("ok/.*", "bfloat16").unwrap();
    let err = m.insert("layer[0", "float16").unwrap_err();
    assert!(matches!(err, Error::InvalidRegexKey { ref key, .. } if key == "layer[0"));
    let msg = err.to_string();
    assert!(
        msg.contains("'layer[0'") && msg.contains("not a valid regular expression"),
        "{msg}"
    );
    assert!(
        msg.contains("escape"),
        "the message says how to fix it: {msg}"
    );
    assert_eq!(m.len(), 1);
    assert!(!m.contains("layer[0"));
    assert_eq!(m.get("ok/x").unwrap().name(), "bfloat16");
}

#[test]
fn look_around_is_reported_as_unsupported_syntax() {
    let err = map().insert("dense(?!_1)", "bfloat16").unwrap_err();
    assert!(matches!(err, Error::InvalidRegexKey { .. }), "{err}");
}

#[test]
fn keys_match_whole_paths_only() {
    let mut m = map();
    m.insert("dense", "bfloat16").unwrap();
    m.insert("enc.*/q", "float16").unwrap();
    assert_eq!(m.get("dense").unwrap().name(), "bfloat16");
    assert_eq!(m.get("dense_1").unwrap().name(), "float32");
    assert_eq!(m.get("model/dense").unwrap().name(), "float32");
    assert_eq!(m.get("encoder/q").unwrap().name(), "float16");
    assert_eq!(m.get("encoder/q2").unwrap().name(), "float32");
    assert_eq!(m.get("xencoder/q").unwrap().name(), "float32");
    // `$` is not a way out of the full match, nor is a newline.
    assert_eq!(m.get("encoder/q\n").unwrap().name(), "float32");
}

#[test]
fn keys_with_non_regex_punctuation_still_match_only_themselves() {
    let mut m = map();
    m.insert("dense-1#a&b~", "bfloat16").unwrap();
    assert_eq!(m.get("dense-1#a&b~").unwrap().name(), "bfloat16");
    assert_eq!(m.get("dense-1#a&b~x").unwrap().name(), "float32");
}

#[test]
fn an_exact_key_wins_over_every_regex_even_when_several_match() {
    let mut m = map();
    m.insert("a/.*", "float16").unwrap();
    m.insert(".*/b", "bfloat16").unwrap();
    m.insert("a/b", "float64").unwrap();
    assert_eq!(m.get("a/b").unwrap().name(), "float64");
    let err = m.get("a/c/b").unwrap_err();
    assert!(matches!(err, Error::MultipleMatches { ref keys, .. } if keys == &["a/.*", ".*/b"]));
}

#[test]
fn removing_a_regex_key_updates_lookups() {
    let mut m = map();
    m.insert("a/.*", "float16").unwrap();
    m.insert(".*/b", "bfloat16").unwrap();
    assert!(m.get("a/b").is_err());
    assert_eq!(m.remove("a/.*").unwrap().name(), "float16");
    assert_eq!(m.get("a/b").unwrap().name(), "bfloat16");
    let err = m.remove("a/.*").unwrap_err();
    assert_eq!(err.keras_exception(), "KeyError");
    assert!(err.to_string().contains("'a/.*'"));
    assert_eq!(m.keys().collect::<Vec<_>>(), [".*/b"]);
}

#[test]
fn get_many_equals_get_one_by_one() {
    let mut m = map();
    for i in 0..50 {
        m.insert(format!("block_{i}/attn/.*"), "int8_from_float32")
            .unwrap();
        m.insert(format!("block_{i}/mlp/up"), "int4/128_from_float32")
            .unwrap();
    }
    m.insert(r"block_\d+/mlp/.*", "bfloat16").unwrap();
    let paths: Vec<String> = (0..60)
        .flat_map(|i| {
            ["attn/q", "mlp/up", "mlp/down", "norm"].map(|leaf| format!("block_{i}/{leaf}"))
        })
        .collect();
    let many = m.get_many(paths.iter().map(String::as_str));
    assert_eq!(many.len(), paths.len());
    for (path, got) in paths.iter().zip(many) {
        let one = m.get(path);
        // The same policy, or the same error (message and all).
        let outcome = |r: &dtype_policy::Result<&dtype_policy::Policy>| match r {
            Ok(p) => Ok(p.name().to_owned()),
            Err(e) => Err(e.to_string()),
        };
        assert_eq!(outcome(&got), outcome(&one), "{path}");
    }
    assert_eq!(m.get("block_7/attn/q").unwrap().name(), "int8_from_float32");
    assert_eq!(m.get("block_55/attn/q").unwrap().name(), "float32");
    assert_eq!(m.get("block_55/mlp/up").unwrap().name(), "bfloat16");
    assert_eq!(m.get("block_7/mlp/down").unwrap().name(), "bfloat16");
    // block_7/mlp/up is an exact key, so the mlp regex never competes with it.
    assert_eq!(
        m.get("block_7/mlp/up").unwrap().name(),
        "int4/128_from_float32"
    );
}

#[test]
fn iteration_is_in_insertion_order_and_clones_are_independent() {
    let mut m = map();
    for key in ["z", "a", "m/.*", "b"] {
        m.insert(key, "bfloat16").unwrap();
    }
    let mut copy = m.clone();
    copy.insert("n", "float16").unwrap();
    assert_eq!(
        m.iter().map(|(k, _)| k).collect::<Vec<_>>(),
        ["z", "a", "m/.*", "b"]
    );
    assert_eq!(copy.len(), 5);
    assert_eq!((&m).into_iter().count(), 4);
    assert_eq!(m.get_exact("m/.*").map(Policy::name), Some("bfloat16"));
    assert_eq!(m.get_exact("m/x"), None);
}

/// Keras's algorithm, one regex at a time, as the reference.
fn keras_lookup(
    entries: &[(String, &str)],
    default: &str,
    path: &str,
) -> Result<String, Vec<String>> {
    if let Some((_, p)) = entries.iter().find(|(k, _)| k == path) {
        return Ok((*p).to_owned());
    }
    let matched: Vec<&(String, &str)> = entries
        .iter()
        .filter(|(k, _)| Regex::new(&format!(r"\A(?:{k})\z")).unwrap().is_match(path))
        .collect();
    match matched.as_slice() {
        [] => Ok(default.to_owned()),
        [(_, p)] => Ok((*p).to_owned()),
        many => Err(many.iter().map(|(k, _)| k.clone()).collect()),
    }
}

fn key_strategy() -> impl Strategy<Value = String> {
    let pieces = prop::sample::select(vec![
        "a", "b", "/", ".*", ".", "a.b", "[ab]", "(a|b)", "a+", "b?", "_", r"\d", "1",
    ]);
    prop::collection::vec(pieces, 1..5).prop_map(|v| v.concat())
}

fn path_strategy() -> impl Strategy<Value = String> {
    let pieces = prop::sample::select(vec!["a", "b", "/", "x", ".", "1", "_", "ab"]);
    prop::collection::vec(pieces, 0..7).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn compiled_set_lookup_equals_keras_one_regex_at_a_time(
        keys in prop::collection::vec(key_strategy(), 0..8),
        paths in prop::collection::vec(path_strategy(), 1..10),
    ) {
        let names = ["bfloat16", "float16", "int8_from_float32", "float64"];
        let mut m = map();
        let mut entries = Vec::new();
        for (i, key) in keys.into_iter().enumerate() {
            if m.contains(&key) {
                continue;
            }
            m.insert(key.clone(), names[i % names.len()]).unwrap();
            entries.push((key, names[i % names.len()]));
        }
        for path in &paths {
            let ours = m.get(path).map(|p| p.name().to_owned()).map_err(|e| match e {
                Error::MultipleMatches { keys, .. } => keys,
                other => panic!("{other}"),
            });
            prop_assert_eq!(ours, keras_lookup(&entries, "float32", path), "path {:?}", path);
        }
    }
}

// SPDX-License-Identifier: MIT OR Apache-2.0
//! Spec section 5 (the global policy) and the map configs that resolve names
//! against it, against released Keras 3.15.1; plus what Rust adds: the global
//! policy is process-wide and safe to read and set from many threads.
//!
//! Every test here changes the one global policy, so each holds GLOBAL_LOCK
//! and leaves the policy at float32.

mod common;

use std::sync::{Mutex, MutexGuard};
use std::thread;

use common::*;
use dtype_policy::{
    DTypePolicy, DTypePolicyMap, Error, Policy, QuantizedDTypePolicy, QuantizedFloat8DTypePolicy,
    dtype_policy, set_dtype_policy,
};

static GLOBAL_LOCK: Mutex<()> = Mutex::new(());

/// Holds the lock and puts float32 back when dropped, even on a failed assert.
struct GlobalGuard(#[allow(dead_code)] MutexGuard<'static, ()>);

fn lock_global() -> GlobalGuard {
    let guard = GLOBAL_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    set_dtype_policy("float32").unwrap();
    GlobalGuard(guard)
}

impl Drop for GlobalGuard {
    fn drop(&mut self) {
        set_dtype_policy("float32").unwrap();
    }
}

#[test]
fn set_dtype_policy_and_what_reads_it_match_keras() {
    let _g = lock_global();
    let data = reference();
    for case in data["global"].as_array().unwrap() {
        let name = case["set"].as_str().unwrap();
        set_dtype_policy("float32").unwrap();
        assert_outcome(
            &format!("set_dtype_policy({name})"),
            set_dtype_policy(name),
            case,
            |(), after| {
                assert_eq!(dtype_policy().to_string(), after["global"], "{name}");
                let reads: [(&str, Result<Policy, Error>); 4] = [
                    (
                        "DTypePolicy()",
                        DTypePolicy::from_global().map(Policy::from),
                    ),
                    (
                        "QuantizedDTypePolicy('int8')",
                        QuantizedDTypePolicy::new("int8", None).map(Policy::from),
                    ),
                    (
                        "QuantizedFloat8DTypePolicy('float8')",
                        QuantizedFloat8DTypePolicy::new("float8", None, 1024).map(Policy::from),
                    ),
                    (
                        "DTypePolicyMap().default_policy",
                        Ok(DTypePolicyMap::new().default_policy().clone()),
                    ),
                ];
                for (label, ours) in reads {
                    let label = format!("global {name}: {label}");
                    assert_outcome(
                        &label,
                        ours,
                        &after[label.rsplit(": ").next().unwrap()],
                        |p, repr| {
                            assert_eq!(p.to_string(), *repr, "{label}");
                        },
                    );
                }
            },
        );
    }
}

#[test]
fn map_configs_written_by_keras_load_under_the_global_policy() {
    let _g = lock_global();
    let data = reference();
    for case in data["map_configs"].as_array().unwrap() {
        let global = case["global"].as_str().unwrap();
        set_dtype_policy(global).unwrap();
        let label = format!("global {global}: {}", text(&case["input"]));
        let ours = DTypePolicyMap::from_keras_value(&case["input"]);
        if case
            .get("err")
            .is_some_and(|e| e["kind"] == "AttributeError")
        {
            // Known difference: a map as a map's default makes Keras fail with
            // an unrelated AttributeError; we say what is wrong.
            assert!(
                matches!(ours, Err(Error::MapAsDefault)),
                "{label}: {ours:?}"
            );
            continue;
        }
        assert_outcome(&label, ours, case, |map, ok| {
            assert_eq!(map.name(), ok["name"], "{label}");
            assert_eq!(map.default_policy().to_string(), ok["default"], "{label}");
            let entries: Vec<(String, String)> = map
                .iter()
                .map(|(k, p)| (k.to_owned(), p.to_string()))
                .collect();
            let expected: Vec<(String, String)> = ok["entries"]
                .as_array()
                .unwrap()
                .iter()
                .map(|kv| {
                    // Known difference: Keras names an Int4DTypePolicy made
                    // without a source "int4/..._from_None"; we use the
                    // global policy's name, which is the source it computes with.
                    let repr = kv[1]
                        .as_str()
                        .unwrap()
                        .replace("_from_None", &format!("_from_{global}"));
                    (kv[0].as_str().unwrap().to_owned(), repr)
                })
                .collect();
            assert_eq!(entries, expected, "{label}");
            assert_eq!(
                text(&map.to_keras_value()),
                text(&ok["reserialized"]),
                "{label}"
            );
        });
    }
}

#[test]
fn the_global_policy_is_shared_by_every_thread() {
    let _g = lock_global();
    set_dtype_policy("mixed_bfloat16").unwrap();
    let seen = thread::spawn(|| dtype_policy().name().to_owned())
        .join()
        .unwrap();
    assert_eq!(seen, "mixed_bfloat16");
    thread::spawn(|| set_dtype_policy("int8_from_float32").unwrap())
        .join()
        .unwrap();
    assert_eq!(dtype_policy().name(), "int8_from_float32");
}

#[test]
fn concurrent_reads_and_writes_see_only_whole_policies() {
    let _g = lock_global();
    let names = [
        "float32",
        "mixed_float16",
        "int4/64_from_mixed_bfloat16",
        "float8_from_float32",
    ];
    thread::scope(|scope| {
        for (i, name) in names.iter().enumerate() {
            scope.spawn(move || {
                for round in 0..500 {
                    if (round + i) % 3 == 0 {
                        set_dtype_policy(*name).unwrap();
                    }
                    let seen = dtype_policy();
                    assert!(
                        names.contains(&seen.name()),
                        "read a policy nobody set: {seen}"
                    );
                    // The name and the dtypes always belong to one policy.
                    assert_eq!(seen, seen.name().parse::<Policy>().unwrap());
                }
            });
        }
    });
}

#[test]
fn a_map_resolves_its_default_when_built_not_when_read() {
    let _g = lock_global();
    set_dtype_policy("mixed_bfloat16").unwrap();
    let map = DTypePolicyMap::new();
    set_dtype_policy("float64").unwrap();
    assert_eq!(map.default_policy().name(), "mixed_bfloat16");
    assert_eq!(map.get("anything").unwrap().name(), "mixed_bfloat16");
}

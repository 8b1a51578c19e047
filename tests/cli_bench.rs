// SPDX-License-Identifier: MIT OR Apache-2.0
//! The `dtype-policy` tool end to end: `bench --preset tiny --json` on
//! lavapipe covers every kernel variant, and its JSON has every field of
//! `docs/bench-schema.json` with the documented type; `plan` prints a plan;
//! bad input is an error with a message, not a panic.

mod common;

use std::process::Command;

use serde_json::Value;

fn tool() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_dtype-policy"));
    // No tuning on first use: the bench measures the fixed rule here.
    c.env("WGPU_BACKEND", "vulkan")
        .env("DTYPE_POLICY_TUNING", "off")
        // ... and no table a tuned run on this machine left in the user's cache.
        .env(
            "DTYPE_POLICY_TUNING_CACHE",
            "/nonexistent/dtype-policy-tuning.json",
        );
    c
}

/// `dtype-policy plan --map MAP --layers LAYERS`.
fn plan(map: &str, layers: &std::path::Path) -> std::process::Output {
    tool()
        .args(["plan", "--map", map, "--layers"])
        .arg(layers)
        .output()
        .unwrap()
}

fn type_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_u64() || n.is_i64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Every field of `schema` is in `value` with its type (an integer is a number too).
fn check_fields(value: &Value, schema: &Value, what: &str) {
    for (field, ty) in schema.as_object().unwrap() {
        let got = value
            .get(field)
            .unwrap_or_else(|| panic!("{what}: missing '{field}' in {value}"));
        let t = type_of(got);
        assert!(
            t == ty || (ty == "number" && t == "integer"),
            "{what}: '{field}' is {t}, the schema says {ty}"
        );
    }
}

#[test]
fn bench_tiny_writes_json_of_the_documented_schema() {
    // Fail (not skip) without an adapter, with the way to get one.
    drop(common::gpu::vulkan());
    let dir = std::env::temp_dir().join(format!("dtype-policy-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (json, svg) = (dir.join("out.json"), dir.join("out.svg"));
    let out = tool()
        .args(["bench", "--preset", "tiny", "--reps", "3", "--json"])
        .arg(&json)
        .arg("--svg")
        .arg(&svg)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/docs/bench-schema.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    check_fields(&report, &schema["top"], "report");
    check_fields(&report["probes"], &schema["probes"], "probes");
    assert_eq!(report["schema_version"], schema["schema_version"]);
    let results = report["results"].as_array().unwrap();
    for r in results {
        check_fields(r, &schema["result"], "result");
        assert!(r["median_ms"].as_f64().unwrap() > 0.0);
        assert!(r["min_ms"].as_f64() <= r["median_ms"].as_f64());
        assert!(r["median_ms"].as_f64() <= r["max_ms"].as_f64());
        assert!(r["roofline_fraction"].as_f64().unwrap() > 0.0);
    }
    assert_eq!(report["skipped"], Value::Array(Vec::new()), "{stdout}");
    // Every kernel variant lavapipe has, in both shapes (matrix-vector and
    // tiled; its float matrix-vector kernels load 32 bytes, except in f16
    // and f64).
    let kernels: std::collections::BTreeSet<String> = results
        .iter()
        .map(|r| {
            format!(
                "{} {}",
                r["kernel"].as_str().unwrap(),
                r["variant"].as_str().unwrap()
            )
        })
        .collect();
    for expected in [
        "matvec-wide f32",
        "matvec f16",
        "matvec-wide f16-packed",
        "matvec-wide bf16-packed",
        "matvec f64",
        "int8-wide f32",
        "int8-w f32",
        "int4 f32",
        "float8 f32",
        "tiled f32",
        "tiled f16-packed",
        "int8-tiled f32",
        "int8-w-tiled f32",
        "int4-tiled f32",
        "float8-tiled f32",
    ] {
        assert!(
            kernels.contains(expected),
            "{expected} missing from {kernels:?}"
        );
    }
    assert_eq!(results.len(), 2 * 10, "{kernels:?}");
    let plot = std::fs::read_to_string(&svg).unwrap();
    assert!(plot.starts_with("<svg") && plot.trim_end().ends_with("</svg>"));
    assert!(plot.matches("<circle").count() >= results.len());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn plan_prints_the_plan_and_bad_input_is_an_error() {
    drop(common::gpu::vulkan());
    let dir = std::env::temp_dir().join(format!("dtype-policy-plan-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let layers = dir.join("layers.json");
    std::fs::write(
        &layers,
        r#"[{"path": "decoder/block_0/attention/query", "rows": 1, "k": 512, "n": 512},
            {"path": "lm_head", "rows": 1, "k": 512, "n": 1000, "activation": "gelu"}]"#,
    )
    .unwrap();
    let map = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/data/llm_policy_map.json"
    );
    let out = plan(map, &layers);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("int8_from_mixed_bfloat16"), "{stdout}");
    assert!(stdout.contains("lm_head"), "{stdout}");

    std::fs::write(
        &layers,
        r#"[{"path": "x", "rows": 1, "k": 4, "n": 2, "activation": "sparsemax"}]"#,
    )
    .unwrap();
    let out = plan(map, &layers);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("activation 'sparsemax'"), "{stderr}");

    // Shapes too large for this machine's arithmetic, or empty, are errors
    // that name the layer; never a panic.
    for (layer, what) in [
        (
            r#"{"path": "wide", "rows": 1, "k": 99999999999, "n": 99999999999}"#,
            "too large",
        ),
        (
            r#"{"path": "empty", "rows": 0, "k": 0, "n": 0}"#,
            "rows = 0",
        ),
    ] {
        std::fs::write(&layers, format!("[{layer}]")).unwrap();
        let out = plan(map, &layers);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains("Layer '") && stderr.contains(what),
            "{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }

    let out = tool().args(["bench", "--preset", "huge"]).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unknown preset 'huge'"), "{stderr}");
    assert!(!stderr.contains("Layer ''"), "{stderr}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn quantize_writes_a_keras_file_that_loads_as_quantized() {
    let dir = std::env::temp_dir().join(format!("dtype-policy-quantize-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("mlp_int8.keras");
    let model = format!(
        "{}/tests/data/models/mlp__float32.keras",
        env!("CARGO_MANIFEST_DIR")
    );
    let run = tool()
        .args(["quantize", &model, "--mode", "int8", "--output"])
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        stdout.contains("int8_from_float32") && stdout.contains("skipped"),
        "{stdout}"
    );
    let loaded = dtype_policy::models::Model::load(&out, None).unwrap();
    assert!(
        loaded
            .layers
            .iter()
            .any(|l| l.policy.name() == "int8_from_float32")
    );
    let bad = tool()
        .args(["quantize", &model, "--mode", "int3", "--output"])
        .arg(dir.join("x.keras"))
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("int3"));
    std::fs::remove_dir_all(&dir).ok();
}

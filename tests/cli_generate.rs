// SPDX-License-Identifier: MIT OR Apache-2.0
//! `dtype-policy generate` and `bench --model` end to end on lavapipe: a
//! text prompt through the preset's tokenizer gives KerasHub's text, ids
//! give KerasHub's greedy tokens, stderr holds the tool's own lines only
//! (no Mesa `XDG_RUNTIME_DIR` complaint), the bench's JSON and SVG are
//! written, and bad input is an error with a message.

mod common;

use std::process::Command;

use serde_json::Value;

fn data(file: &str) -> String {
    format!("{}/tests/data/generate/{file}", env!("CARGO_MANIFEST_DIR"))
}

fn tool() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_dtype-policy"));
    // No tuning on first use (its own test below): the fixed rule.
    c.env("WGPU_BACKEND", "vulkan")
        .env("DTYPE_POLICY_TUNING", "off")
        // ... and no table a tuned run on this machine left in the user's cache.
        .env(
            "DTYPE_POLICY_TUNING_CACHE",
            "/nonexistent/dtype-policy-tuning.json",
        )
        .env_remove("XDG_RUNTIME_DIR");
    c
}

fn fixture(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(data(&format!("{name}.json"))).unwrap()).unwrap()
}

#[test]
fn generate_streams_keras_s_text_and_tokens() {
    drop(common::gpu::vulkan());
    let f = fixture("llama");
    let case = &f["cases"][0];
    let text = &case["text"];
    let max = text["max_length"].as_u64().unwrap() as usize
        - text["prompt_ids"].as_array().unwrap().len();
    let out = tool()
        .args(["generate", &data("llama__float32_preset"), "--prompt"])
        .arg(text["prompt"].as_str().unwrap())
        .args(["--max-tokens", &max.to_string()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // The tool prints the new text after the prompt; Keras's output holds both.
    let keras = text["output"].as_str().unwrap();
    let prompt = text["prompt"].as_str().unwrap();
    assert_eq!(
        format!("{prompt}{}", stdout.trim_end_matches('\n')),
        keras,
        "{stderr}"
    );
    assert!(stderr.contains("tokens/s"), "{stderr}");
    assert!(!stderr.contains("XDG_RUNTIME_DIR"), "{stderr}");

    // Ids in, ids out (the .keras file has no tokenizer).
    let prompt: Vec<String> = case["prompt"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.to_string())
        .collect();
    let out = tool()
        .args([
            "generate",
            &data("llama__float32.keras"),
            "--max-tokens",
            "16",
            "--ids",
        ])
        .arg(prompt.join(","))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ids: Vec<u64> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(|t| t.parse().unwrap())
        .collect();
    let want: Vec<u64> = case["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert_eq!(ids, want);
}

#[test]
fn bench_model_writes_json_and_svg() {
    drop(common::gpu::vulkan());
    let dir = std::env::temp_dir().join(format!("dtype-policy-cli-gen-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (json, svg) = (dir.join("gen.json"), dir.join("gen.svg"));
    let out = tool()
        .args([
            "bench",
            "--model",
            &data("gpt2__float32_preset"),
            "--reps",
            "1",
        ])
        .args(["--prompt-tokens", "4", "--decode-tokens", "3", "--json"])
        .arg(&json)
        .arg("--svg")
        .arg(&svg)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("XDG_RUNTIME_DIR"), "{stderr}");
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let policies: Vec<&str> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["policy"].as_str().unwrap())
        .collect();
    assert_eq!(
        policies,
        [
            "float32",
            "mixed_bfloat16",
            "int8 (quantize)",
            "int4 (quantize)"
        ]
    );
    for r in report["results"].as_array().unwrap() {
        for field in ["prompt_tokens_per_s", "decode_tokens_per_s", "step_wall_ms"] {
            assert!(r[field].as_f64().unwrap() > 0.0, "{field} in {r}");
        }
        assert!(
            r["weight_bytes"].as_u64().unwrap() > 0 && r["kv_cache_bytes"].as_u64().unwrap() > 0
        );
    }
    assert!(std::fs::read_to_string(&svg).unwrap().starts_with("<svg"));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_input_is_an_error_with_a_message() {
    for (args, says) in [
        (
            vec!["generate", "missing.keras", "--ids", "1"],
            "missing.keras",
        ),
        (
            vec!["generate", &data("gpt2__float32.keras"), "--prompt", "hi"],
            "no tokenizer",
        ),
        (
            vec![
                "generate",
                &data("gpt2__float32.keras"),
                "--ids",
                "1,100000",
            ],
            "token id 100000",
        ),
        (
            vec![
                "generate",
                &data("gpt2__float32.keras"),
                "--ids",
                "1",
                "--max-tokens",
                "100",
            ],
            "give --max-tokens 63 at most",
        ),
        (
            vec![
                "generate",
                &data("gpt2__float32.keras"),
                "--ids",
                "1",
                "--sampler",
                "beam",
            ],
            "sampler 'beam'",
        ),
        (
            vec![
                "generate",
                &data("gpt2__float32.keras"),
                "--ids",
                "1",
                "--max-tokens",
                "18446744073709551615",
            ],
            "--max-tokens",
        ),
        (
            vec![
                "generate",
                &data("gpt2__float32.keras"),
                "--ids",
                "1",
                "--sampler",
                "top-p",
                "--top-p",
                "nan",
            ],
            "top-p's p is NaN",
        ),
        (
            vec![
                "bench",
                "--model",
                &data("gpt2__float32.keras"),
                "--decode-tokens",
                "1",
            ],
            "2 decode tokens",
        ),
    ] {
        let out = tool().args(&args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

/// The end token stops generation and is not printed (KerasHub's
/// detokenized output strips special tokens): a hot sampler that draws
/// GPT-2's `<|endoftext|>` early.
#[test]
fn the_end_token_stops_and_is_not_printed() {
    drop(common::gpu::vulkan());
    let out = tool()
        .args([
            "generate",
            &data("gpt2__float32_preset"),
            "--ids",
            "556,293",
        ])
        .args(["--max-tokens", "60", "--sampler", "top-p", "--top-p", "1.0"])
        .args(["--temperature", "100", "--seed", "2"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stdout.contains("<|endoftext|>"), "{stdout}");
    let decoded: usize = stderr
        .split("decode: ")
        .nth(1)
        .and_then(|t| t.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(decoded < 59, "the end token was never drawn: {stderr}");
}

#[test]
fn generate_tunes_the_model_s_tiled_kernels_on_first_use_then_reads_the_cache() {
    drop(common::gpu::vulkan());
    let dir = std::env::temp_dir().join(format!("dtype-policy-first-use-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let cache = dir.join("tuning.json");
    let run = || {
        tool()
            .env_remove("DTYPE_POLICY_TUNING")
            .env("DTYPE_POLICY_TUNING_CACHE", &cache)
            .args(["generate", &data("llama__float32_preset"), "--ids", "1,2,3"])
            .args(["--max-tokens", "2"])
            .output()
            .unwrap()
    };
    let first = run();
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert!(first.status.success(), "{stderr}");
    // float32 layers: the float family in f32, both shape classes.
    assert!(
        stderr.contains("tuning 2 tiled kernel choices for this adapter (once; cached in"),
        "{stderr}"
    );
    let table: Value = serde_json::from_str(&std::fs::read_to_string(&cache).unwrap()).unwrap();
    let entries = table["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{table}");
    assert!(
        entries
            .iter()
            .all(|e| e["family"] == "float" && e["storage"] == "f32"),
        "{table}"
    );
    let second = run();
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(second.status.success(), "{stderr}");
    assert!(
        !stderr.contains("tuning"),
        "the cache is read, not measured again: {stderr}"
    );
    assert_eq!(
        first.stdout, second.stdout,
        "greedy tokens do not depend on the tiled kernel"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

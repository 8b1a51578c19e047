// SPDX-License-Identifier: MIT OR Apache-2.0
//! The main job: text generated on the GPU by a KerasHub `LlamaCausalLM`
//! (tests/data/generate/llama__float32_preset: a tiny Llama with random
//! weights and a SentencePiece tokenizer, saved by KerasHub 0.32.0's
//! `save_to_preset`), under a policy map (an int8 embedding and head, int8
//! attention projections, int4 FFN in groups of 128, float32 norms:
//! float weights quantized on load by Keras's quantizers), with a KV cache
//! on the device and one submission per token.
//!
//! Then the same model as Keras saved it under each policy (float32,
//! `quantize("int8")`, mixed_bfloat16, `quantize("int4")`): the 16 greedy
//! tokens of its prompt beside KerasHub's `generate`, and the decode speed.
//!
//! Run: `cargo run --release --example generate [policy_map.json] [prompt]`
//! (`WGPU_BACKEND=gl` or `WGPU_ADAPTER_NAME=...` choose the adapter.)

use std::error::Error;
use std::io::Write;

use dtype_policy::DTypePolicyMap;
use dtype_policy::gpu::context::GpuContext;
use dtype_policy::models::causal_lm::{CausalLm, GenerateOptions};
use serde_json::Value;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/generate");

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_u64)
                .map(|i| i as u32)
                .collect()
        })
        .unwrap_or_default()
}

fn main() -> Result<(), Box<dyn Error>> {
    // SAFETY: first thing in main, before any thread exists.
    unsafe { dtype_policy::gpu::quiet_mesa() };
    let mut args = std::env::args().skip(1);
    let map_path = args.next().unwrap_or_else(|| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/examples/data/generate_policy_map.json"
        )
        .to_owned()
    });
    let prompt = args
        .next()
        .unwrap_or_else(|| "The quick brown fox".to_owned());
    let map = DTypePolicyMap::from_keras_json(&std::fs::read_to_string(&map_path)?)?;
    let mut ctx = GpuContext::new()?;
    let caps = ctx.capabilities().clone();
    let preset = format!("{DATA}/llama__float32_preset");
    let lm = CausalLm::load(&preset, Some(&map))?;
    let tokenizer = lm.tokenizer.clone().ok_or("the preset has no tokenizer")?;

    // The plan of one decode step: each layer's policy, why, kernel, bytes.
    let mut step = lm.model.clone();
    step.set_sequence_length(1)?;
    let plan = step.plan(&caps, 1)?;
    println!("{plan}");

    let prompt_ids = tokenizer.encode_prompt(&prompt)?;
    let options = GenerateOptions {
        max_tokens: 24,
        stop_tokens: tokenizer.end_token_id().into_iter().collect(),
        ..GenerateOptions::default()
    };
    let mut gpu = lm.upload(&mut ctx, prompt_ids.len() + options.max_tokens)?;
    println!(
        "{} under {map_path}, on {} {}: {} weight bytes, {} KV-cache bytes",
        lm.class_name,
        caps.backend,
        caps.adapter_name,
        gpu.weight_bytes(),
        gpu.cache_bytes()
    );
    let mut stream = tokenizer.decode_stream();
    let mut failure = None;
    print!("{prompt}");
    let generated = gpu.generate(&mut ctx, &prompt_ids, &options, |token| {
        match stream.step(token) {
            Ok(text) => print!("{}", text.unwrap_or_default()),
            Err(e) => failure = Some(e),
        }
        let _ = std::io::stdout().flush();
        failure.is_none()
    })?;
    if let Some(e) = failure {
        return Err(e.into());
    }
    println!("{}", stream.finish()?);
    let n = generated.tokens.len();
    println!(
        "{} prompt tokens in {:.1} ms, {} tokens decoded at {:.1} tokens/s\n",
        prompt_ids.len(),
        generated.prompt_time.as_secs_f64() * 1e3,
        n.saturating_sub(1),
        n.saturating_sub(1) as f64 / generated.decode_time.as_secs_f64().max(1e-9)
    );

    // As Keras saved it, beside KerasHub's greedy tokens.
    let fixture: Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{DATA}/llama.json"))?)?;
    println!(
        "{:<16} {:>20} {:>12}",
        "policy", "greedy tokens", "decode t/s"
    );
    for case in fixture["cases"].as_array().ok_or("no cases")? {
        let policy = case["policy"].as_str().unwrap_or_default();
        let global = if policy == "mixed_bfloat16" {
            policy
        } else {
            "float32"
        };
        dtype_policy::policy::global::set_dtype_policy(global)?;
        let lm = CausalLm::load(
            format!("{DATA}/{}", case["file"].as_str().unwrap_or_default()),
            None,
        );
        dtype_policy::policy::global::set_dtype_policy("float32")?;
        let lm = lm?;
        let (prompt, keras) = (ids(&case["prompt"]), ids(&case["tokens"]));
        let mut gpu = lm.upload(&mut ctx, prompt.len() + keras.len())?;
        let options = GenerateOptions {
            max_tokens: keras.len(),
            ..GenerateOptions::default()
        };
        let ours = gpu.generate(&mut ctx, &prompt, &options, |_| true)?;
        let same = ours
            .tokens
            .iter()
            .zip(&keras)
            .take_while(|(a, b)| a == b)
            .count();
        println!(
            "{policy:<16} {:>20} {:>12.1}",
            format!("{same}/{} as Keras", keras.len()),
            (ours.tokens.len() - 1) as f64 / ours.decode_time.as_secs_f64().max(1e-9)
        );
    }
    Ok(())
}

// SPDX-License-Identifier: MIT OR Apache-2.0
//! Routes every layer of a small decoder-only model through a Keras
//! `DTypePolicyMap` and prints which policy each layer gets.
//!
//! Run: `cargo run --release --example route_model [path/to/policy_map.json]`
//!
//! The map is Keras JSON, as a layer's `"dtype"` entry in a model's
//! `config.json`: regex keys give every attention projection int8, the
//! attention output float8, the MLP int4 in groups of 128, the norms float32,
//! and one exact key overrides block 0's down projection.

use std::error::Error;

use dtype_policy::DTypePolicyMap;

const BLOCKS: usize = 4;

/// The layer paths of the model, as Keras's `Layer.path` names them.
fn layer_paths() -> Vec<String> {
    let mut paths = vec!["decoder/token_embedding".to_owned()];
    for b in 0..BLOCKS {
        for layer in [
            "input_norm",
            "attention/query",
            "attention/key",
            "attention/value",
            "attention/output",
            "post_attention_norm",
            "mlp/gate_proj",
            "mlp/up_proj",
            "mlp/down_proj",
        ] {
            paths.push(format!("decoder/block_{b}/{layer}"));
        }
    }
    paths.push("decoder/final_norm".to_owned());
    paths.push("lm_head".to_owned());
    paths
}

fn main() -> Result<(), Box<dyn Error>> {
    // SAFETY: first thing in main, before any thread exists.
    unsafe { dtype_policy::gpu::quiet_mesa() };
    let json = match std::env::args().nth(1) {
        Some(path) => std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read the policy map {path}: {e}"))?,
        None => include_str!("data/llm_policy_map.json").to_owned(),
    };
    let map = DTypePolicyMap::from_keras_json(&json)?;
    println!("{map}\n");

    let paths = layer_paths();
    println!(
        "{:<38} {:<30} {:<9} {:<9} quantization",
        "layer path", "policy", "compute", "variable"
    );
    println!("{}", "-".repeat(100));
    for (path, policy) in paths
        .iter()
        .zip(map.get_many(paths.iter().map(String::as_str)))
    {
        let policy = policy?;
        println!(
            "{:<38} {:<30} {:<9} {:<9} {}",
            path,
            policy.name(),
            policy.compute_dtype().name(),
            policy.variable_dtype().name(),
            policy.quantization_mode().map_or("-", |m| m.as_str()),
        );
    }
    Ok(())
}

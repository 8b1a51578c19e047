// SPDX-License-Identifier: MIT OR Apache-2.0
//! The main job: a transformer encoder block made in Keras 3.15.1
//! (tests/data/models/encoder_causal__*.keras: causal MultiHeadAttention,
//! residual adds, LayerNormalization, a gelu FFN) loaded from its .keras
//! file and run on the best GPU adapter as one recorded forward.
//!
//! First under a policy map (int8 attention projections, a float8 output
//! projection, int4 FFN, float32 norms, mixed_bfloat16 elsewhere), with its
//! plan: each layer's policy, why, its kernel and its weight bytes. Then
//! as Keras saved it under each policy (float and Keras's own quantized
//! variables): the largest difference from Keras's own output, the time
//! per forward and the weight memory.
//!
//! Run: `cargo run --release --example keras_model [policy_map.json]`
//! (`WGPU_BACKEND=gl` or `WGPU_ADAPTER_NAME=...` choose the adapter.)

use std::error::Error;

use dtype_policy::DTypePolicyMap;
use dtype_policy::gpu::context::GpuContext;
use dtype_policy::models::{GpuModel, Model};
use serde_json::Value;

const MODELS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/models");

fn f32s(v: &Value) -> Vec<f32> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_u64)
                .map(|b| f32::from_bits(b as u32))
                .collect()
        })
        .unwrap_or_default()
}

/// GPU time per forward (median of 9 timed runs; the wall clock where
/// the adapter has no timestamps), in ms.
fn time_ms(ctx: &GpuContext, gpu: &GpuModel) -> Result<f64, Box<dyn Error>> {
    let mut t = Vec::new();
    for _ in 0..9 {
        let timing = gpu.forward().time(ctx)?;
        t.push(timing.gpu.unwrap_or(timing.wall).as_secs_f64() * 1e3);
    }
    t.sort_by(f64::total_cmp);
    Ok(t[t.len() / 2])
}

fn main() -> Result<(), Box<dyn Error>> {
    // SAFETY: first thing in main, before any thread exists.
    unsafe { dtype_policy::gpu::quiet_mesa() };
    let map_path = std::env::args().nth(1).unwrap_or_else(|| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/examples/data/encoder_policy_map.json"
        )
        .to_owned()
    });
    let map = DTypePolicyMap::from_keras_json(&std::fs::read_to_string(&map_path)?)?;
    let fixture: Value = serde_json::from_str(&std::fs::read_to_string(format!(
        "{MODELS}/encoder_causal.json"
    ))?)?;
    let cases = fixture["cases"].as_array().ok_or("no cases")?;
    let x = f32s(&cases[0]["inputs"][0]["bits"]);
    let batch = cases[0]["inputs"][0]["shape"][0]
        .as_u64()
        .ok_or("no batch")? as usize;
    let mut ctx = GpuContext::new()?;
    println!("adapter: {}\n", ctx.capabilities());

    // 1. The float32 file under the policy map: quantized on load where
    // the map asks for it, as Keras's Model.quantize does.
    let model = Model::load(
        format!("{MODELS}/encoder_causal__float32.keras"),
        Some(&map),
    )?;
    let gpu = model.upload(&mut ctx, batch)?;
    print!("{}", gpu.plan);
    let y = gpu.run(&ctx, &[&x[..]])?.remove(0);
    let twin = model.run_cpu(&gpu.plan, &[&x[..]])?.remove(0);
    let off = y
        .iter()
        .zip(&twin)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    println!(
        "under {map_path}: {} dispatches in 1 submission, {:.3} ms per forward, {} weight \
         bytes; largest difference from the CPU twins {off:e}\n",
        gpu.dispatches,
        time_ms(&ctx, &gpu)?,
        gpu.plan.weight_bytes()
    );

    // 2. Every policy Keras saved the block under, against Keras's output.
    println!(
        "{:<28} {:>22} {:>14} {:>13}",
        "policy (as Keras saved it)", "largest |ours - Keras|", "ms per forward", "weight bytes"
    );
    for case in cases {
        let file = case["file"].as_str().ok_or("no file")?;
        let model = Model::load(format!("{MODELS}/{file}"), None)?;
        let gpu = model.upload(&mut ctx, batch)?;
        let y = gpu.run(&ctx, &[&x[..]])?.remove(0);
        let keras = f32s(&case["outputs"][0]["bits"]);
        if y.len() != keras.len() {
            return Err(format!("{file}: {} outputs, Keras gave {}", y.len(), keras.len()).into());
        }
        let off = y
            .iter()
            .zip(&keras)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        println!(
            "{:<28} {:>22.3e} {:>14.3} {:>13}",
            case["policy"].as_str().unwrap_or("?"),
            off,
            time_ms(&ctx, &gpu)?,
            gpu.plan.weight_bytes()
        );
    }
    println!(
        "\nKeras's numbers are tests/data/models/encoder_causal.json (tools/keras_model_reference.py); \
         tests/keras_models.rs holds the tolerances."
    );
    Ok(())
}

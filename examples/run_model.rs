// SPDX-License-Identifier: MIT OR Apache-2.0
//! The main job: a small decoder's Dense layers, routed by a Keras
//! `DTypePolicyMap`, run on the best GPU adapter and checked against their
//! CPU twins.
//!
//! Run: `cargo run --release --example run_model [policy_map.json] [rows]`
//! (`WGPU_BACKEND=gl` or `WGPU_ADAPTER_NAME=...` choose the adapter.)
//!
//! For each layer the host looks its path up in the map; the policy and the
//! adapter's capabilities choose a kernel variant and buffer layout; the
//! compiled pipeline for that variant runs. Layers that share a variant
//! share one pipeline.

use std::error::Error;

use dtype_policy::DTypePolicyMap;
use dtype_policy::gpu::context::GpuContext;
use dtype_policy::gpu::dense::Activation;
use dtype_policy::gpu::formats::StorageFormat;
use dtype_policy::plan::{DenseLayerSpec, Plan};

const BLOCKS: usize = 4;
const WIDTH: usize = 512;
const HIDDEN: usize = 1376; // not a multiple of 32: exercises the padding

/// Deterministic values in [-1, 1), scaled for a layer of `fan_in` inputs.
fn values(count: usize, seed: u64, fan_in: usize) -> Vec<f32> {
    dtype_policy::bench::values(count, seed, 1.0 / (fan_in as f32).sqrt())
}

/// The model's Dense layers: per block four attention projections and a
/// two-layer MLP; then the output head. 4 x 6 + 1 = 25 layers.
fn layers(rows: usize) -> Vec<DenseLayerSpec> {
    let dense = |path: String, k, n, activation| DenseLayerSpec {
        path,
        rows,
        k,
        n,
        activation,
        int8_weight_only: false,
    };
    let mut out = Vec::new();
    for b in 0..BLOCKS {
        for proj in ["query", "key", "value", "output"] {
            out.push(dense(
                format!("decoder/block_{b}/attention/{proj}"),
                WIDTH,
                WIDTH,
                Activation::Linear,
            ));
        }
        out.push(dense(
            format!("decoder/block_{b}/mlp/up_proj"),
            WIDTH,
            HIDDEN,
            Activation::Gelu,
        ));
        out.push(dense(
            format!("decoder/block_{b}/mlp/down_proj"),
            HIDDEN,
            WIDTH,
            Activation::Linear,
        ));
    }
    out.push(dense("lm_head".to_owned(), WIDTH, 1000, Activation::Linear));
    out
}

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let json = match args.next() {
        Some(path) => std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read the policy map {path}: {e}"))?,
        None => include_str!("data/llm_policy_map.json").to_owned(),
    };
    let rows: usize = match args.next() {
        Some(r) => r
            .parse()
            .map_err(|_| format!("rows must be a positive integer, got '{r}'"))?,
        None => 1,
    };
    let map = DTypePolicyMap::from_keras_json(&json)?;
    let mut ctx = GpuContext::new()?;
    println!("{}\n", ctx.capabilities());

    let plan = Plan::new(&map, &layers(rows), ctx.capabilities())?;
    println!("{plan}");

    // The largest difference, in units of the last place of the layer's
    // output format at that value (1 ulp: the two straddled a rounding).
    let mut worst = (0f32, 0f64, String::new());
    for (i, row) in plan.rows.iter().enumerate() {
        let s = &row.spec;
        let w = values(s.k * s.n, i as u64 * 2 + 1, s.k);
        let b = values(s.n, i as u64 * 2 + 2, 1);
        let x = values(s.rows * s.k, i as u64 * 2 + 3, 1);
        let weights = row.upload(&ctx, &w, Some(&b))?;
        let gpu = row.run(&mut ctx, &weights, &x)?;
        let cpu = row.run_cpu(&w, Some(&b), &x)?;
        let mantissa_bits = match row.layout.format {
            StorageFormat::F16 => 10,
            StorageFormat::BF16 => 7,
            StorageFormat::F32 => 23,
            StorageFormat::F64 => 52,
        };
        for (g, c) in gpu.iter().zip(&cpu) {
            let err = (g - c).abs();
            if err > worst.0 {
                let ulp = 2f64.powi(f64::from(c.abs()).log2().floor() as i32 - mantissa_bits);
                worst = (err, f64::from(err) / ulp, s.path.clone());
            }
        }
    }
    let stats = ctx.pipeline_stats();
    println!(
        "ran {} layers with {} pipelines compiled ({} reuses)",
        plan.rows.len(),
        stats.compiled,
        stats.reused
    );
    if worst.0 == 0.0 {
        println!("every GPU output equals its CPU twin bit for bit");
    } else {
        println!(
            "largest |GPU - CPU twin| = {:e} = {:.1} ulp of the output format (layer {})",
            worst.0, worst.1, worst.2
        );
    }
    Ok(())
}

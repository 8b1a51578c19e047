// SPDX-License-Identifier: MIT OR Apache-2.0
//! KerasHub backbones from their .keras files (tests/data/backbones): one
//! forward of each at 1 and at 12 tokens (batch 1): the host time to
//! encode and submit it, the GPU span of its dispatches, the wall time of
//! a whole run (ids uploaded, the sequence output read back), and its
//! submissions and creations per forward. Medians of repeated runs, printed
//! as a Markdown table.
//!
//! Run: `cargo bench --bench keras_backbones`

use std::time::Instant;

use dtype_policy::gpu::context::GpuContext;
use dtype_policy::models::Model;

const BACKBONES: [&str; 4] = ["gpt2", "llama", "llama3", "gemma"];
const POLICIES: [&str; 7] = [
    "float32",
    "mixed_float16",
    "mixed_bfloat16",
    "int8_from_float32",
    "int4_from_float32",
    "int8_from_mixed_bfloat16",
    "int4_from_mixed_bfloat16",
];

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn main() {
    let mut ctx =
        GpuContext::new().unwrap_or_else(|e| panic!("the benchmark needs a GPU adapter: {e}"));
    let caps = ctx.capabilities().clone();
    println!(
        "adapter: {} ({}, {})",
        caps.adapter_name, caps.backend, caps.driver
    );
    println!(
        "| backbone | policy | tokens | dispatches | submissions | creations | host encode + \
         submit (µs) | GPU span (ms) | run wall (ms) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for backbone in BACKBONES {
        for policy in POLICIES {
            let file = format!(
                "{}/tests/data/backbones/{backbone}__{policy}.keras",
                env!("CARGO_MANIFEST_DIR")
            );
            let global = if policy.ends_with("mixed_bfloat16") {
                "mixed_bfloat16"
            } else {
                "float32"
            };
            dtype_policy::policy::global::set_dtype_policy(global).unwrap();
            let loaded = Model::load(&file, None).unwrap();
            dtype_policy::policy::global::set_dtype_policy("float32").unwrap();
            for tokens in [1usize, 12] {
                let mut model = loaded.clone();
                model.set_sequence_length(tokens).unwrap();
                let gpu = model.upload(&mut ctx, 1).unwrap();
                let ids: Vec<f32> = (0..tokens).map(|i| (1 + i % 50) as f32).collect();
                let mask = vec![1.0f32; tokens];
                let inputs = [ids.as_slice(), mask.as_slice()];
                gpu.run(&ctx, &inputs).unwrap();
                let before = ctx.counters();
                gpu.run(&ctx, &inputs).unwrap();
                let after = ctx.counters();
                let mut host = Vec::new();
                for _ in 0..50 {
                    let start = Instant::now();
                    gpu.forward().submit(&ctx).unwrap();
                    host.push(start.elapsed().as_secs_f64() * 1e6);
                    ctx.finish().unwrap();
                }
                let mut spans = Vec::new();
                for _ in 0..20 {
                    if let Some(g) = gpu.forward().time(&ctx).unwrap().gpu {
                        spans.push(g.as_secs_f64() * 1e3);
                    }
                }
                let mut walls = Vec::new();
                for _ in 0..20 {
                    let start = Instant::now();
                    gpu.run(&ctx, &inputs).unwrap();
                    walls.push(start.elapsed().as_secs_f64() * 1e3);
                }
                println!(
                    "| {backbone} | {policy} | {tokens} | {} | {} | {} | {:.0} | {:.3} | {:.3} |",
                    gpu.dispatches,
                    after.submissions - before.submissions,
                    (after.buffers - before.buffers)
                        + (after.bind_groups - before.bind_groups)
                        + (after.pipelines - before.pipelines),
                    median(host),
                    median(spans),
                    median(walls),
                );
            }
        }
    }
}

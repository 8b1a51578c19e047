// SPDX-License-Identifier: MIT OR Apache-2.0
//! Keras models from .keras files (tests/data/models): the load time of
//! the largest fixture, and one forward of the Functional encoder block
//! (MultiHeadAttention, Add, LayerNormalization, Dense FFN): the host time
//! to encode and submit it, its GPU time against the sum of its kernels'
//! times, and its submissions per forward.
//!
//! Run: `cargo bench --bench keras_models`

use std::time::{Duration, Instant};

use criterion::Criterion;
use dtype_policy::gpu::context::GpuContext;
use dtype_policy::models::Model;

const LARGEST: &str = "encoder_causal__float8_from_mixed_bfloat16.keras";

fn path(file: &str) -> String {
    format!("{}/tests/data/models/{file}", env!("CARGO_MANIFEST_DIR"))
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let bytes = std::fs::read(path(LARGEST)).unwrap();
    c.bench_function(
        &format!("load {LARGEST} ({} KB)", bytes.len() / 1024),
        |b| b.iter(|| Model::from_bytes(&bytes, LARGEST, None).unwrap()),
    );
    let mut ctx =
        GpuContext::new().unwrap_or_else(|e| panic!("the benchmark needs a GPU adapter: {e}"));
    let adapter = ctx.capabilities().adapter_name.clone();
    let mut lines = Vec::new();
    for file in [
        "encoder__float32.keras",
        "encoder__mixed_bfloat16.keras",
        "encoder__int8_from_float32.keras",
        "encoder_causal__float8_from_mixed_bfloat16.keras",
        // dropout > 0: Keras's explicit attention path.
        "encoder_dropout__mixed_bfloat16.keras",
    ] {
        let model = Model::load(path(file), None).unwrap();
        let gpu = model.upload(&mut ctx, 2).unwrap();
        let x = vec![0.5f32; 2 * 6 * 16];
        gpu.run(&ctx, &[&x[..]]).unwrap();
        let before = ctx.counters();
        gpu.run(&ctx, &[&x[..]]).unwrap();
        let after = ctx.counters();
        c.bench_function(&format!("encode + submit {file} on {adapter}"), |b| {
            b.iter_custom(|iters| {
                let mut host = Duration::ZERO;
                for _ in 0..iters {
                    let start = Instant::now();
                    gpu.forward().submit(&ctx).unwrap();
                    host += start.elapsed();
                    ctx.finish().unwrap();
                }
                host
            })
        });
        let mut spans = Vec::new();
        let mut sums = Vec::new();
        for _ in 0..20 {
            let t = gpu.forward().time(&ctx).unwrap();
            if let Some(g) = t.gpu {
                spans.push(g.as_secs_f64() * 1e3);
                sums.push(
                    t.dispatches
                        .iter()
                        .map(|(_, d)| d.as_secs_f64())
                        .sum::<f64>()
                        * 1e3,
                );
            }
        }
        let median = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
        };
        lines.push(format!(
            "{file}: {} dispatches, {} submission(s) and {} creations per forward; GPU span \
             {:.3} ms against {:.3} ms summed over its kernels (medians of 20)",
            gpu.dispatches,
            after.submissions - before.submissions,
            (after.buffers - before.buffers) + (after.bind_groups - before.bind_groups),
            median(&mut spans),
            median(&mut sums),
        ));
    }
    c.final_summary();
    for line in lines {
        println!("{line}");
    }
}

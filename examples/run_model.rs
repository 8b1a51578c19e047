// SPDX-License-Identifier: MIT OR Apache-2.0
//! The main job: a small decoder's 25 Dense layers, routed by a Keras
//! `DTypePolicyMap`, run on the best GPU adapter as one recorded forward
//! (each layer's output is the next one's input on the GPU, one submission,
//! one read-back) and checked against the chained CPU twins.
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
use dtype_policy::bench::decoder::{Decoder, WIDTH};
use dtype_policy::format::StorageFormat;
use dtype_policy::gpu::context::GpuContext;
use dtype_policy::gpu::recorder::Graph;
use dtype_policy::gpu::tensor::TensorShape;

/// The size of a last place of `format` at `v`.
fn ulp(format: StorageFormat, v: f32) -> f64 {
    let mantissa_bits = match format {
        StorageFormat::F16 => 10,
        StorageFormat::BF16 => 7,
        StorageFormat::F32 => 23,
        StorageFormat::F64 => 52,
    };
    2f64.powi(f64::from(v.abs().max(f32::MIN_POSITIVE)).log2().floor() as i32 - mantissa_bits)
}

fn main() -> Result<(), Box<dyn Error>> {
    // SAFETY: first thing in main, before any thread exists.
    unsafe { dtype_policy::gpu::quiet_mesa() };
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

    let decoder = Decoder::new(&map, ctx.capabilities(), rows)?;
    println!("{}", decoder.plan);

    // The whole decoder as one forward: every layer's input and output are
    // kept (outputs) so that each can be checked against its twin.
    let weights = decoder.upload(&ctx)?;
    let mut graph = Graph::new();
    let x = graph.input(TensorShape::new(rows, WIDTH, decoder.stream)?);
    let kept = decoder.record_every_layer(&mut graph, &weights, x)?;
    let dispatches = graph.dispatches();
    let forward = graph.build(&mut ctx)?;
    let input = decoder.input();
    forward.run(&ctx, &[&input])?;
    let before = ctx.counters();
    let outputs = forward.run(&ctx, &[&input])?;
    let after = ctx.counters();
    let timing = forward.time(&ctx)?;
    println!(
        "ran {} layers as one recorded forward: {dispatches} dispatches, 1 submission, 1 read-back; \
         {}; a second run created {} buffers, {} bind groups, {} pipelines",
        kept.layers.len(),
        match timing.gpu {
            Some(gpu) => format!("{:.2} ms of GPU time", gpu.as_secs_f64() * 1e3),
            None => format!("{:.2} ms wall clock", timing.wall.as_secs_f64() * 1e3),
        },
        after.buffers - before.buffers,
        after.bind_groups - before.bind_groups,
        after.pipelines - before.pipelines,
    );

    // Each layer against its twin on the GPU's own input, in last places of
    // the layer's output format (1 ulp: the two straddled a rounding).
    let mut worst = (0f32, 0f64, String::new());
    for (i, (row, kernel)) in decoder.plan.rows.iter().zip(&decoder.kernels).enumerate() {
        let (gpu_in, gpu_out) = kept.of(&outputs, i);
        let twin = row.run_cpu(kernel, gpu_in)?;
        for (g, c) in gpu_out.iter().zip(&twin) {
            let err = (g - c).abs();
            if err > worst.0 {
                worst = (
                    err,
                    f64::from(err) / ulp(row.layout.format, *c),
                    row.spec.path.clone(),
                );
            }
        }
    }
    if worst.0 == 0.0 {
        println!("every layer's GPU output equals its CPU twin on the same input, bit for bit");
    } else {
        println!(
            "each layer against its CPU twin on the same input: largest difference {:e} = {:.1} ulp \
             of the output format (layer {})",
            worst.0, worst.1, worst.2
        );
    }
    // The logits against the CPU twins chained from the same input.
    let twins = decoder.run_cpu(&input)?;
    let (_, gpu) = kept.of(&outputs, kept.layers.len() - 1);
    let twin = &twins[twins.len() - 1].1;
    let largest = twin.iter().fold(0f32, |m, v| m.max(v.abs()));
    let diff = gpu
        .iter()
        .zip(twin)
        .fold(0f32, |m, (g, c)| m.max((g - c).abs()));
    println!(
        "the logits against the chained CPU twins: largest difference {diff:e} ({:.2}% of the largest logit)",
        100.0 * diff / largest
    );
    Ok(())
}

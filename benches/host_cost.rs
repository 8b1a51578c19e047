// SPDX-License-Identifier: MIT OR Apache-2.0
//! The host side of running a model: building a plan (policy lookup and
//! kernel choice for every layer), submitting a recorded one-layer forward
//! (one Dense dispatch), and replaying the example decoder's 25-layer
//! recorded forward (every format, residual adds and casts: one encoder,
//! one submission). GPU time is excluded: the wait for the GPU is outside
//! the timing. Policy lookup alone is in `benches/policy_lookup.rs`.
//!
//! Run: `cargo bench --bench host_cost`

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use dtype_policy::DTypePolicyMap;
use dtype_policy::bench::decoder::{Decoder, WIDTH};
use dtype_policy::format::{DenseKernel, StorageFormat};
use dtype_policy::gpu::context::{AdapterChoice, GpuContext};
use dtype_policy::gpu::recorder::{Forward, Graph};
use dtype_policy::gpu::shaders::StorageVariant;
use dtype_policy::gpu::tensor::TensorShape;
use dtype_policy::ops::{Activation, DenseShape};
use dtype_policy::plan::{DenseLayerSpec, Plan};

/// A 24-layer decoder routed by a regex map, as in the main job.
fn model() -> (DTypePolicyMap, Vec<DenseLayerSpec>) {
    let mut map = DTypePolicyMap::with_default_name("mixed_bfloat16").unwrap();
    map.insert(
        r"block_\d+/attention/(query|key|value)",
        "int8_from_mixed_bfloat16",
    )
    .unwrap();
    map.insert(r"block_\d+/attention/output", "float8_from_mixed_bfloat16")
        .unwrap();
    map.insert(r"block_\d+/mlp/.*", "int4/128_from_mixed_bfloat16")
        .unwrap();
    let mut layers = Vec::new();
    for b in 0..4 {
        for (name, k, n) in [
            ("attention/query", 4096, 4096),
            ("attention/key", 4096, 4096),
            ("attention/value", 4096, 4096),
            ("attention/output", 4096, 4096),
            ("mlp/up", 4096, 11008),
            ("mlp/down", 11008, 4096),
        ] {
            layers.push(DenseLayerSpec {
                path: format!("block_{b}/{name}"),
                rows: 1,
                k,
                n,
                activation: Activation::Linear,
                int8_weight_only: false,
            });
        }
    }
    (map, layers)
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let mut ctx =
        GpuContext::new().unwrap_or_else(|e| panic!("the benchmark needs a GPU adapter: {e}"));
    let adapter = ctx.capabilities().adapter_name.clone();
    let (map, layers) = model();
    c.bench_function("plan 24 layers (lookup + kernel choice)", |b| {
        b.iter(|| Plan::new(&map, &layers, ctx.capabilities()).unwrap())
    });
    // One small Dense layer, recorded once: what each call costs the host.
    let (k, n) = (64, 64);
    let w: Vec<f32> = (0..k * n).map(|i| (i % 7) as f32 * 0.1).collect();
    let kernel = DenseKernel::float(&w, None, (k, n)).unwrap();
    let weights = ctx.upload_dense(StorageVariant::F32, &kernel).unwrap();
    let mut graph = Graph::new();
    let x = graph.input(TensorShape::new(1, k, StorageFormat::F32).unwrap());
    graph
        .dense(&weights, DenseShape::MatVec, Activation::Linear, x)
        .unwrap();
    let one = graph.build(&mut ctx).unwrap();
    c.bench_function(
        &format!("encode + submit a recorded one-Dense forward on {adapter}"),
        |b| b.iter_custom(|iters| replay(&ctx, &one, iters)),
    );
    // The example decoder: 25 layers of every format as one forward, on
    // this adapter and on wgpu's noop backend (no driver: what wgpu and
    // this crate cost alone).
    let mut noop = GpuContext::with_choice(&AdapterChoice {
        backends: Some(wgpu::Backends::NOOP),
        name: None,
    })
    .unwrap_or_else(|e| panic!("wgpu's noop backend (dev-dependency feature `noop`): {e}"));
    let mut medians = Vec::new();
    for ctx in [&mut ctx, &mut noop] {
        let adapter = format!(
            "{} ({})",
            ctx.capabilities().adapter_name,
            ctx.capabilities().backend
        );
        let (forward, dispatches) = decoder_forward(ctx);
        let mut group = c.benchmark_group("recorded forward");
        group.throughput(Throughput::Elements(LAYERS));
        group.bench_function(
            format!("replay the 25-layer decoder ({dispatches} dispatches) on {adapter}"),
            |b| b.iter_custom(|iters| replay(ctx, &forward, iters)),
        );
        group.finish();
        // Per layer, from a plain median (criterion's throughput says the same).
        let mut t: Vec<f64> = (0..200)
            .map(|_| replay(ctx, &forward, 1).as_secs_f64())
            .collect();
        t.sort_by(f64::total_cmp);
        medians.push((adapter, dispatches, t[t.len() / 2]));
    }
    c.final_summary();
    for (adapter, dispatches, median) in medians {
        println!(
            "replay of the 25-layer decoder ({dispatches} dispatches) on {adapter}: median {:.1} µs, \
             {:.2} µs per layer",
            median * 1e6,
            median * 1e6 / LAYERS as f64
        );
    }
}

/// The example decoder's Dense layers.
const LAYERS: u64 = 25;

/// The example decoder under the main job's map as one forward, run once.
fn decoder_forward(ctx: &mut GpuContext) -> (Forward, usize) {
    let map = DTypePolicyMap::from_keras_json(include_str!("../examples/data/llm_policy_map.json"))
        .unwrap();
    let decoder = Decoder::new(&map, ctx.capabilities(), 1).unwrap();
    let weights = decoder.upload(ctx).unwrap();
    let mut graph = Graph::new();
    let x = graph.input(TensorShape::new(1, WIDTH, decoder.stream).unwrap());
    let layers = decoder.record(&mut graph, &weights, x).unwrap();
    assert_eq!(layers.len() as u64, LAYERS);
    graph.output(layers[layers.len() - 1].output).unwrap();
    let dispatches = graph.dispatches();
    let forward = graph.build(ctx).unwrap();
    forward.run(ctx, &[&decoder.input()]).unwrap();
    (forward, dispatches)
}

/// Host time of `iters` encodes and submissions of `forward`, each waited
/// for outside the timing.
fn replay(ctx: &GpuContext, forward: &Forward, iters: u64) -> Duration {
    let mut host = Duration::ZERO;
    for _ in 0..iters {
        let start = Instant::now();
        forward.submit(ctx).unwrap();
        host += start.elapsed();
        ctx.finish().unwrap();
    }
    host
}

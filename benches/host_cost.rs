// SPDX-License-Identifier: MIT OR Apache-2.0
//! The host side of running a model: building a plan (policy lookup and
//! kernel choice for every layer), and encoding, binding and submitting one
//! Dense dispatch (GPU time excluded: the wait for the GPU is outside the
//! timing). Policy lookup alone is in `benches/policy_lookup.rs`.
//!
//! Run: `cargo bench --bench host_cost`

use std::time::{Duration, Instant};

use criterion::Criterion;
use dtype_policy::DTypePolicyMap;
use dtype_policy::gpu::context::GpuContext;
use dtype_policy::gpu::dense::Activation;
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
    // One small Dense layer, bound once: what each call costs the host.
    let (k, n) = (64, 64);
    let w: Vec<f32> = (0..k * n).map(|i| (i % 7) as f32 * 0.1).collect();
    let weights = ctx
        .upload_dense(
            dtype_policy::gpu::shaders::StorageVariant::F32,
            &w,
            None,
            k,
            n,
        )
        .unwrap();
    let prepared = ctx
        .prepare_dense(
            &weights,
            dtype_policy::gpu::shaders::Kernel::DenseMatVec,
            Activation::Linear,
            &vec![1.0f32; k],
            1,
        )
        .unwrap();
    c.bench_function(
        &format!("encode + bind + submit one Dense dispatch on {adapter}"),
        |b| {
            b.iter_custom(|iters| {
                let mut host = Duration::ZERO;
                for _ in 0..iters {
                    let start = Instant::now();
                    ctx.encode_and_submit(&prepared.passes[0]).unwrap();
                    host += start.elapsed();
                    ctx.finish().unwrap();
                }
                host
            })
        },
    );
    c.final_summary();
}

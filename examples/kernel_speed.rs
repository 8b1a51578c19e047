// SPDX-License-Identifier: MIT OR Apache-2.0
//! Quick speed check of every Dense variant beside the roofline probes, on
//! the best adapter (`WGPU_BACKEND` to choose). The full benchmark is
//! `cargo bench --bench dense_kernels`.
use std::time::Duration;

use dtype_policy::gpu::context::GpuContext;
use dtype_policy::gpu::dense::Activation;
use dtype_policy::gpu::shaders::{Kernel, StorageVariant};

fn best(
    ctx: &GpuContext,
    d: &dtype_policy::gpu::dispatch::PreparedDispatch,
    reps: u32,
) -> Duration {
    ctx.run_prepared(d, 1).unwrap();
    (0..reps)
        .map(|_| ctx.run_prepared(d, 1).unwrap())
        .min()
        .unwrap()
}

fn main() {
    let mut ctx = GpuContext::new().unwrap();
    println!("{}", ctx.capabilities().adapter_name);
    let (m, k, n) = (1usize, 4096usize, 4096usize);
    let w: Vec<f32> = (0..k * n).map(|i| (i % 7) as f32 * 0.1).collect();
    let x: Vec<f32> = (0..m * k).map(|i| (i % 5) as f32 * 0.1).collect();
    for storage in StorageVariant::ALL {
        if storage.needs_shader_f16() && !ctx.capabilities().shader_f16 {
            continue;
        }
        let weights = ctx.upload_dense(storage, &w, None, k, n).unwrap();
        let run = ctx
            .prepare_dense(&weights, Kernel::DenseMatVec, Activation::Linear, &x, m)
            .unwrap();
        let t = best(&ctx, &run.dispatch, 5);
        println!(
            "matvec {:>12} {:>8.1} ms {:>6.2} GB/s",
            storage.name(),
            t.as_secs_f64() * 1e3,
            run.bytes as f64 / t.as_secs_f64() / 1e9
        );
    }
    for mib in [32u64, 64] {
        let probe = ctx.prepare_probe_read(mib << 20).unwrap();
        let t = best(&ctx, &probe.dispatch, 5);
        println!(
            "probe-read {mib} MiB {:>8.1} ms {:>6.2} GB/s",
            t.as_secs_f64() * 1e3,
            probe.bytes as f64 / t.as_secs_f64() / 1e9
        );
    }
    let probe = ctx.prepare_probe_fma(256, 4096).unwrap();
    let t = best(&ctx, &probe.dispatch, 3);
    println!(
        "probe-fma {:>8.1} ms {:>6.2} GFLOP/s",
        t.as_secs_f64() * 1e3,
        probe.flops as f64 / t.as_secs_f64() / 1e9
    );
    let (m, k, n) = (1024usize, 1024usize, 1024usize);
    let w: Vec<f32> = (0..k * n).map(|i| (i % 7) as f32 * 0.1).collect();
    let x: Vec<f32> = (0..m * k).map(|i| (i % 5) as f32 * 0.1).collect();
    for storage in StorageVariant::ALL {
        if storage.needs_shader_f16() && !ctx.capabilities().shader_f16 {
            continue;
        }
        let weights = ctx.upload_dense(storage, &w, None, k, n).unwrap();
        let run = ctx
            .prepare_dense(&weights, Kernel::DenseTiled, Activation::Linear, &x, m)
            .unwrap();
        let t = best(&ctx, &run.dispatch, 2);
        println!(
            "tiled {:>12} {:>8.1} ms {:>6.2} GFLOP/s",
            storage.name(),
            t.as_secs_f64() * 1e3,
            2.0 * (m * k * n) as f64 / t.as_secs_f64() / 1e9
        );
    }
}

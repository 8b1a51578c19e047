// SPDX-License-Identifier: MIT OR Apache-2.0
//! Dense kernel variants beside roofline probes on one adapter (the best
//! one; `WGPU_BACKEND` / `WGPU_ADAPTER_NAME` choose another).
//!
//! - `matvec_1x4096x4096`: the decode case, memory bound. Throughput is the
//!   bytes the kernel reads plus writes (x, W, bias, y); beside it the
//!   streaming-read probe over the same number of bytes.
//! - `matmul_1024x1024x1024`: the tiled kernel. Throughput is FLOP
//!   (2·M·N·K, criterion's "elem/s"); beside it the FMA probe.
//!
//! Criterion's times are wall clock from submission to completion of one
//! dispatch (inputs uploaded and pipelines compiled beforehand), each
//! variant run back to back. After criterion, a summary (GPU timestamps
//! where the adapter has them) runs every variant and its probe in turn,
//! three times in a row per round, and prints each as a fraction of its
//! probe and against the targets, cold (first run: the caches hold the
//! previous submission's data, another variant's or probe's, as when a
//! model's layers follow each other) and warm (third run: weights that
//! fit the last-level cache stay there).
//! `cargo bench --bench dense_kernels -- none` skips criterion and prints
//! the summary alone (about 25 s on lavapipe).
//!
//! Run: `cargo bench --bench dense_kernels`

use std::time::Duration;

use criterion::{Criterion, Throughput};
use dtype_policy::format::{DenseKernel, WeightFormat};
use dtype_policy::gpu::context::GpuContext;
use dtype_policy::gpu::probes::{ARITHMETIC_PROBE_SIZE, PreparedProbe};
use dtype_policy::gpu::recorder::{Forward, Graph};
use dtype_policy::gpu::shaders::StorageVariant;
use dtype_policy::gpu::tensor::TensorShape;
use dtype_policy::ops::{Activation, DenseShape};

/// A Dense layer recorded as a forward, with the bytes one run moves.
struct Layer {
    forward: Forward,
    bytes: u64,
}

struct Setup {
    ctx: GpuContext,
    matvec: Vec<(StorageVariant, Layer)>,
    matmul: Vec<(StorageVariant, Layer)>,
    read_probes: Vec<(u64, PreparedProbe)>,
    /// The quantized layers, with their speed-up targets.
    quantized: Vec<(&'static str, f64, Layer)>,
    fma: PreparedProbe,
}

fn values(count: usize) -> Vec<f32> {
    dtype_policy::bench::values(count, 1, 0.5)
}

/// A layer of `kernel` in `storage` and `shape` on `m` rows, recorded and
/// run once (its input written), in one storage binding: the benchmark
/// times one layer's dispatches.
fn layer(
    ctx: &mut GpuContext,
    kernel: &DenseKernel,
    storage: StorageVariant,
    shape: DenseShape,
    m: usize,
) -> Layer {
    let weights = ctx.upload_dense(storage, kernel).unwrap();
    assert_eq!(
        weights.parts(),
        1,
        "{} {} weights split",
        kernel.format().name(),
        storage.name()
    );
    let mut graph = Graph::new();
    let x = graph.input(TensorShape::new(m, kernel.k(), storage.format()).unwrap());
    let y = graph.dense(&weights, shape, Activation::Linear, x).unwrap();
    graph.output(y).unwrap();
    let forward = graph.build(ctx).unwrap();
    forward.run(ctx, &[&values(m * kernel.k())]).unwrap();
    Layer {
        forward,
        bytes: weights.traffic_bytes(m),
    }
}

fn prepare(
    ctx: &mut GpuContext,
    shape: DenseShape,
    (m, k, n): (usize, usize, usize),
) -> Vec<(StorageVariant, Layer)> {
    let kernel = DenseKernel::float(&values(k * n), None, (k, n)).unwrap();
    let (f16, f64) = (ctx.capabilities().shader_f16, ctx.capabilities().shader_f64);
    StorageVariant::ALL
        .into_iter()
        .filter(|s| (!s.needs_shader_f16() || f16) && (!s.needs_shader_f64() || f64))
        .map(|s| (s, layer(ctx, &kernel, s, shape, m)))
        .collect()
}

fn setup() -> Setup {
    let mut ctx =
        GpuContext::new().unwrap_or_else(|e| panic!("the benchmark needs a GPU adapter: {e}"));
    let matvec = prepare(&mut ctx, DenseShape::MatVec, (1, 4096, 4096));
    let matmul = prepare(&mut ctx, DenseShape::Tiled, (1024, 1024, 1024));
    let w = values(4096 * 4096);
    let mut quantized = Vec::new();
    for (label, target, format) in [
        (
            "int8",
            3.0,
            WeightFormat::Int8 {
                quantized_inputs: true,
            },
        ),
        (
            "int4",
            4.0,
            WeightFormat::Int4 {
                block: None,
                quantized_inputs: false,
            },
        ),
        (
            "int4/128",
            4.0,
            WeightFormat::Int4 {
                block: std::num::NonZeroU32::new(128),
                quantized_inputs: false,
            },
        ),
        (
            "int8 w-only",
            3.0,
            WeightFormat::Int8 {
                quantized_inputs: false,
            },
        ),
        (
            "float8",
            2.5,
            WeightFormat::Float8(dtype_policy::quant::float8::Float8::E4M3Fn),
        ),
    ] {
        let kernel = DenseKernel::quantize(format, &w, None, (4096, 4096)).unwrap();
        quantized.push((
            label,
            target,
            layer(
                &mut ctx,
                &kernel,
                StorageVariant::F32,
                DenseShape::MatVec,
                1,
            ),
        ));
    }
    let mut sizes: Vec<u64> = matvec
        .iter()
        .map(|(_, l)| probe_bytes(&ctx, l.bytes))
        .collect();
    sizes.extend(quantized.iter().map(|(_, _, l)| probe_bytes(&ctx, l.bytes)));
    sizes.sort_unstable();
    sizes.dedup();
    let read_probes = sizes
        .into_iter()
        .map(|b| (b, ctx.prepare_probe_read(b).unwrap()))
        .collect();
    let (workgroups, rounds) = ARITHMETIC_PROBE_SIZE;
    let fma = ctx.prepare_probe_fma(workgroups, rounds).unwrap();
    Setup {
        quantized,
        ctx,
        matvec,
        matmul,
        read_probes,
        fma,
    }
}

/// The probe size for a kernel moving `bytes`: the same, or the largest
/// buffer the adapter binds (f64 at 4096 x 4096 moves more than 128 MiB).
fn probe_bytes(ctx: &GpuContext, bytes: u64) -> u64 {
    dtype_policy::bench::probe_bytes(ctx.capabilities(), bytes)
}

/// Wall clock from submission to completion, `iters` runs one at a time.
fn timed(ctx: &GpuContext, forward: &Forward, iters: u64) -> Duration {
    (0..iters).map(|_| wall(ctx, forward)).sum()
}

fn wall(ctx: &GpuContext, forward: &Forward) -> Duration {
    let start = std::time::Instant::now();
    forward.submit(ctx).unwrap();
    ctx.finish().unwrap();
    start.elapsed()
}

fn bench(c: &mut Criterion, s: &Setup) {
    let adapter = &s.ctx.capabilities().adapter_name;
    let mut group = c.benchmark_group("matvec_1x4096x4096");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for (variant, run) in &s.matvec {
        group.throughput(Throughput::Bytes(run.bytes));
        group.bench_function(format!("{} on {adapter}", variant.name()), |b| {
            b.iter_custom(|iters| timed(&s.ctx, &run.forward, iters))
        });
    }
    for (label, _, run) in &s.quantized {
        group.throughput(Throughput::Bytes(run.bytes));
        let label = if *label == "int8" {
            "int8 (with activation quantizer)"
        } else {
            label
        };
        group.bench_function(format!("{label} on {adapter}"), |b| {
            b.iter_custom(|iters| timed(&s.ctx, &run.forward, iters))
        });
    }
    for (bytes, probe) in &s.read_probes {
        group.throughput(Throughput::Bytes(probe.bytes));
        group.bench_function(
            format!("probe-read {} MiB on {adapter}", bytes >> 20),
            |b| b.iter_custom(|iters| timed(&s.ctx, &probe.forward, iters)),
        );
    }
    group.finish();

    let mut group = c.benchmark_group("matmul_1024x1024x1024");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    group.throughput(Throughput::Elements(2 * 1024 * 1024 * 1024));
    for (variant, run) in &s.matmul {
        group.bench_function(format!("{} on {adapter}", variant.name()), |b| {
            b.iter_custom(|iters| timed(&s.ctx, &run.forward, iters))
        });
    }
    group.throughput(Throughput::Elements(s.fma.flops));
    group.bench_function(format!("probe-fma on {adapter}"), |b| {
        b.iter_custom(|iters| timed(&s.ctx, &s.fma.forward, iters))
    });
    group.finish();
}

/// Median of `n` timed runs (wall clock), after one warm-up run.
fn median(ctx: &GpuContext, forward: &Forward, n: usize) -> f64 {
    wall(ctx, forward);
    let mut t: Vec<f64> = (0..n).map(|_| wall(ctx, forward).as_secs_f64()).collect();
    t.sort_by(f64::total_cmp);
    t[n / 2]
}

/// One matrix-vector row of the summary: its forward, bytes and read probe.
struct Entry<'a> {
    label: String,
    /// The speed-up over f32 it must reach, if any.
    target: Option<f64>,
    forward: &'a Forward,
    bytes: u64,
    probe: &'a PreparedProbe,
}

fn summary(s: &Setup) {
    let caps = s.ctx.capabilities();
    println!(
        "\nsummary on {} ({}, {}): medians of 15 rounds, each running every variant and its \
         probe three times in a row, in turn (so that drift hits all alike)",
        caps.adapter_name, caps.backend, caps.device_type
    );
    let verdict = |ok: bool| if ok { "meets" } else { "MISSES" };
    let probe_for = |bytes: u64| {
        let size = probe_bytes(&s.ctx, bytes);
        &s.read_probes.iter().find(|(b, _)| *b == size).unwrap().1
    };
    let mut entries: Vec<Entry> = s
        .matvec
        .iter()
        .map(|(variant, run)| Entry {
            label: variant.name().to_owned(),
            target: (!matches!(variant, StorageVariant::F32 | StorageVariant::F64)).then_some(1.7),
            forward: &run.forward,
            bytes: run.bytes,
            probe: probe_for(run.bytes),
        })
        .collect();
    for (label, target, run) in &s.quantized {
        entries.push(Entry {
            label: (*label).to_owned(),
            target: Some(*target),
            forward: &run.forward,
            bytes: run.bytes,
            probe: probe_for(run.bytes),
        });
    }
    let runs: Vec<&Forward> = entries
        .iter()
        .flat_map(|e| [e.forward, &e.probe.forward])
        .collect();
    let (cold, warm) = cold_and_warm(&s.ctx, &runs, 15);
    for (regime, medians) in [
        (
            "cold: the first run of three (the caches hold the previous submission's data, as in a model's decode)",
            cold,
        ),
        (
            "warm: the third run of three (weights that fit the last-level cache stay there)",
            warm,
        ),
    ] {
        matvec_rows(regime, &entries, &medians);
    }
    let fma_t = median(&s.ctx, &s.fma.forward, 9);
    let fma = s.fma.flops as f64 / fma_t / 1e9;
    println!(
        "matmul 1024^3: variant, ms, GFLOP/s, fraction of the FMA probe's {fma:.1} GFLOP/s (target >= 0.1 for f32)"
    );
    for (variant, run) in &s.matmul {
        let t = median(&s.ctx, &run.forward, 5);
        let gflops = 2.0 * 1024f64.powi(3) / t / 1e9;
        println!(
            "  {:<12} {:>7.1} ms {:>7.2} GFLOP/s  {:.3}{}",
            variant.name(),
            t * 1e3,
            gflops,
            gflops / fma,
            if *variant == StorageVariant::F32 {
                format!(" ({})", verdict(gflops / fma >= 0.1))
            } else {
                String::new()
            }
        );
    }
}

/// Medians over `reps` rounds; each round runs every submission of `runs`
/// three times in a row, in turn (so that drift over seconds hits all
/// alike). The first run of three finds the caches holding the previous
/// submission's data (cold), the third its own (warm).
fn cold_and_warm(ctx: &GpuContext, runs: &[&Forward], reps: usize) -> (Vec<f64>, Vec<f64>) {
    let time = |forward: &Forward| {
        let t = forward.time(ctx).unwrap();
        t.gpu.unwrap_or(t.wall).as_secs_f64()
    };
    let mut cold = vec![Vec::new(); runs.len()];
    let mut warm = vec![Vec::new(); runs.len()];
    for _ in 0..reps {
        for (i, forward) in runs.iter().enumerate() {
            cold[i].push(time(forward));
            time(forward);
            warm[i].push(time(forward));
        }
    }
    let medians = |samples: Vec<Vec<f64>>| -> Vec<f64> {
        samples
            .into_iter()
            .map(|mut t| {
                t.sort_by(f64::total_cmp);
                t[t.len() / 2]
            })
            .collect()
    };
    (medians(cold), medians(warm))
}

/// The summary's rows for one regime: `medians` holds (variant, probe) pairs.
fn matvec_rows(regime: &str, entries: &[Entry], medians: &[f64]) {
    let verdict = |ok: bool| if ok { "meets" } else { "MISSES" };
    let f32_time = medians[0];
    println!(
        "matvec 1x4096x4096, {regime}: variant, ms, GB/s, probe-read GB/s (same bytes), fraction of it, speed-up over f32 (target)"
    );
    for (e, t) in entries.iter().zip(medians.chunks(2)) {
        let (gbps, probe_gbps) = (
            e.bytes as f64 / t[0] / 1e9,
            e.probe.bytes as f64 / t[1] / 1e9,
        );
        let speedup = f32_time / t[0];
        let speed_note = e.target.map_or(String::new(), |target| {
            format!(
                "  x{speedup:.2} (>= {target}: {})",
                verdict(speedup >= target)
            )
        });
        println!(
            "  {:<12} {:>7.2} ms {:>7.2} GB/s {:>7.2} GB/s  {:.2} (>= 0.7: {}){}  [{} MiB]",
            e.label,
            t[0] * 1e3,
            gbps,
            probe_gbps,
            gbps / probe_gbps,
            verdict(gbps / probe_gbps >= 0.7),
            speed_note,
            e.bytes >> 20
        );
    }
}

fn main() {
    let setup = setup();
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c, &setup);
    c.final_summary();
    summary(&setup);
}

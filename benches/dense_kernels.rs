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
use dtype_policy::gpu::context::GpuContext;
use dtype_policy::gpu::dense::{Activation, PreparedDense};
use dtype_policy::gpu::dispatch::PreparedDispatch;
use dtype_policy::gpu::float8::Float8Scales;
use dtype_policy::gpu::int8::PreparedInt8;
use dtype_policy::gpu::probes::{ARITHMETIC_PROBE_SIZE, PreparedProbe};
use dtype_policy::gpu::shaders::{Kernel, StorageVariant};

struct Setup {
    ctx: GpuContext,
    matvec: Vec<(StorageVariant, PreparedDense)>,
    matmul: Vec<(StorageVariant, PreparedDense)>,
    read_probes: Vec<(u64, PreparedProbe)>,
    int8: PreparedInt8,
    /// int4 and float8: one dispatch each, with their speed-up targets.
    quantized: Vec<(&'static str, f64, PreparedDispatch, u64)>,
    fma: PreparedProbe,
}

/// The one dispatch of a layer whose weights fit one binding (the
/// benchmark times one dispatch).
fn single(mut passes: Vec<PreparedDispatch>) -> PreparedDispatch {
    assert_eq!(passes.len(), 1, "the weights were split across bindings");
    passes.remove(0)
}

fn values(count: usize) -> Vec<f32> {
    dtype_policy::bench::values(count, 1, 0.5)
}

fn prepare(
    ctx: &mut GpuContext,
    kernel: Kernel,
    (m, k, n): (usize, usize, usize),
) -> Vec<(StorageVariant, PreparedDense)> {
    let w = values(k * n);
    let x = values(m * k);
    let (f16, f64) = (ctx.capabilities().shader_f16, ctx.capabilities().shader_f64);
    StorageVariant::ALL
        .into_iter()
        .filter(|s| (!s.needs_shader_f16() || f16) && (!s.needs_shader_f64() || f64))
        .map(|s| {
            let weights = ctx.upload_dense(s, &w, None, k, n).unwrap();
            // One binding each: the benchmark times one dispatch.
            assert_eq!(weights.parts(), 1, "{} weights split", s.name());
            (
                s,
                ctx.prepare_dense(&weights, kernel, Activation::Linear, &x, m)
                    .unwrap(),
            )
        })
        .collect()
}

fn setup() -> Setup {
    let mut ctx =
        GpuContext::new().unwrap_or_else(|e| panic!("the benchmark needs a GPU adapter: {e}"));
    let matvec = prepare(&mut ctx, Kernel::DenseMatVec, (1, 4096, 4096));
    let matmul = prepare(&mut ctx, Kernel::DenseTiled, (1024, 1024, 1024));
    let w = values(4096 * 4096);
    let int8_weights = ctx
        .upload_dense_int8(StorageVariant::F32, &w, None, 4096, 4096)
        .unwrap();
    let int8 = ctx
        .prepare_dense_int8(
            &int8_weights,
            Kernel::DenseInt8,
            Activation::Linear,
            &values(4096),
            1,
        )
        .unwrap();
    let mut quantized = Vec::new();
    for (label, block) in [("int4", None), ("int4/128", std::num::NonZeroU32::new(128))] {
        let weights = ctx
            .upload_dense_int4(StorageVariant::F32, &w, None, (4096, 4096), block)
            .unwrap();
        let run = ctx
            .prepare_dense_int4(
                &weights,
                Kernel::DenseInt4,
                Activation::Linear,
                &values(4096),
                1,
            )
            .unwrap();
        quantized.push((label, 4.0, single(run.passes), run.bytes));
    }
    let weights = ctx
        .upload_dense_int8_weight_only(StorageVariant::F32, &w, None, (4096, 4096))
        .unwrap();
    let run = ctx
        .prepare_dense_int4(
            &weights,
            Kernel::DenseInt8WeightOnly,
            Activation::Linear,
            &values(4096),
            1,
        )
        .unwrap();
    quantized.push(("int8 w-only", 3.0, single(run.passes), run.bytes));
    let weights = ctx
        .upload_dense_float8(
            StorageVariant::F32,
            &w,
            None,
            (4096, 4096),
            Float8Scales::default(),
        )
        .unwrap();
    let run = ctx
        .prepare_dense_float8(
            &weights,
            Kernel::DenseFloat8,
            Activation::Linear,
            &values(4096),
            1,
        )
        .unwrap();
    quantized.push(("float8", 2.5, single(run.passes), run.bytes));
    let mut sizes: Vec<u64> = matvec
        .iter()
        .map(|(_, p)| probe_bytes(&ctx, p.bytes))
        .collect();
    sizes.push(probe_bytes(&ctx, int8.bytes));
    sizes.extend(
        quantized
            .iter()
            .map(|(_, _, _, bytes)| probe_bytes(&ctx, *bytes)),
    );
    sizes.sort_unstable();
    sizes.dedup();
    let read_probes = sizes
        .into_iter()
        .map(|b| (b, ctx.prepare_probe_read(b).unwrap()))
        .collect();
    let (workgroups, rounds) = ARITHMETIC_PROBE_SIZE;
    let fma = ctx.prepare_probe_fma(workgroups, rounds).unwrap();
    Setup {
        int8,
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

fn timed(ctx: &GpuContext, d: &PreparedDispatch, iters: u64) -> Duration {
    (0..iters).map(|_| ctx.run_prepared(d, 1).unwrap()).sum()
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
            b.iter_custom(|iters| timed(&s.ctx, &run.passes[0], iters))
        });
    }
    group.throughput(Throughput::Bytes(s.int8.bytes));
    group.bench_function(
        format!("int8 (with activation quantizer) on {adapter}"),
        |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| s.ctx.run_prepared_passes(&s.int8.passes).unwrap())
                    .sum()
            })
        },
    );
    for (label, _, dispatch, bytes) in &s.quantized {
        group.throughput(Throughput::Bytes(*bytes));
        group.bench_function(format!("{label} on {adapter}"), |b| {
            b.iter_custom(|iters| timed(&s.ctx, dispatch, iters))
        });
    }
    for (bytes, probe) in &s.read_probes {
        group.throughput(Throughput::Bytes(probe.bytes));
        group.bench_function(
            format!("probe-read {} MiB on {adapter}", bytes >> 20),
            |b| b.iter_custom(|iters| timed(&s.ctx, &probe.dispatch, iters)),
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
            b.iter_custom(|iters| timed(&s.ctx, &run.passes[0], iters))
        });
    }
    group.throughput(Throughput::Elements(s.fma.flops));
    group.bench_function(format!("probe-fma on {adapter}"), |b| {
        b.iter_custom(|iters| timed(&s.ctx, &s.fma.dispatch, iters))
    });
    group.finish();
}

/// Median of `n` timed runs, after one warm-up run.
fn median(ctx: &GpuContext, d: &PreparedDispatch, n: usize) -> f64 {
    ctx.run_prepared(d, 1).unwrap();
    let mut t: Vec<f64> = (0..n)
        .map(|_| ctx.run_prepared(d, 1).unwrap().as_secs_f64())
        .collect();
    t.sort_by(f64::total_cmp);
    t[n / 2]
}

/// One matrix-vector row of the summary: its passes, bytes and read probe.
struct Entry<'a> {
    label: String,
    /// The speed-up over f32 it must reach, if any.
    target: Option<f64>,
    passes: Vec<&'a PreparedDispatch>,
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
            passes: vec![&run.passes[0]],
            bytes: run.bytes,
            probe: probe_for(run.bytes),
        })
        .collect();
    entries.push(Entry {
        label: "int8".to_owned(),
        target: Some(3.0),
        passes: s.int8.passes.iter().collect(),
        bytes: s.int8.bytes,
        probe: probe_for(s.int8.bytes),
    });
    for (label, target, dispatch, bytes) in &s.quantized {
        entries.push(Entry {
            label: (*label).to_owned(),
            target: Some(*target),
            passes: vec![dispatch],
            bytes: *bytes,
            probe: probe_for(*bytes),
        });
    }
    let probe_passes: Vec<[&PreparedDispatch; 1]> =
        entries.iter().map(|e| [&e.probe.dispatch]).collect();
    let runs: Vec<&[&PreparedDispatch]> = entries
        .iter()
        .zip(&probe_passes)
        .flat_map(|(e, p)| [e.passes.as_slice(), p.as_slice()])
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
    let fma_t = median(&s.ctx, &s.fma.dispatch, 9);
    let fma = s.fma.flops as f64 / fma_t / 1e9;
    println!(
        "matmul 1024^3: variant, ms, GFLOP/s, fraction of the FMA probe's {fma:.1} GFLOP/s (target >= 0.1 for f32)"
    );
    for (variant, run) in &s.matmul {
        let t = median(&s.ctx, &run.passes[0], 5);
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
fn cold_and_warm(
    ctx: &GpuContext,
    runs: &[&[&PreparedDispatch]],
    reps: usize,
) -> (Vec<f64>, Vec<f64>) {
    let time = |passes: &[&PreparedDispatch]| {
        let t = ctx.time_passes(passes).unwrap();
        t.gpu.unwrap_or(t.wall).as_secs_f64()
    };
    let mut cold = vec![Vec::new(); runs.len()];
    let mut warm = vec![Vec::new(); runs.len()];
    for _ in 0..reps {
        for (i, passes) in runs.iter().enumerate() {
            cold[i].push(time(passes));
            time(passes);
            warm[i].push(time(passes));
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

// SPDX-License-Identifier: MIT OR Apache-2.0
//! Benchmark runs: Dense layers under each policy on one adapter, timed
//! (GPU timestamps where the adapter has them, wall clock otherwise, and
//! labelled so), checked against their CPU twins, and set against roofline
//! probes measured in the same run on the same adapter.
//!
//! Each result's roofline is `min(peak, bandwidth × arithmetic intensity)`:
//! bandwidth from a streaming-read probe over as many bytes as the kernel
//! moves (so both see the same caches), peak from the FMA probe (float
//! kernels) or the `dot4I8Packed` probe (int8 kernels with the activation
//! quantizer). The JSON written by [`BenchReport::to_json`] is described in
//! `docs/bench-schema.md`.

pub mod decoder;
pub mod generation;
pub mod svg;

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};
use crate::gpu::context::{Capabilities, GpuContext};
use crate::gpu::dense::Family;
use crate::gpu::probes::{ARITHMETIC_PROBE_SIZE, PreparedProbe, read_probe_for};
use crate::gpu::recorder::Forward;
use crate::gpu::shaders::StorageVariant;
use crate::ops::Activation;
use crate::plan::{DenseLayerSpec, Plan, PlanRow};
use crate::policy::any::Policy;
use crate::policy::map::DTypePolicyMap;

/// The version of the JSON layout ([`BenchReport::to_json`]).
pub const SCHEMA_VERSION: u32 = 2;

/// Shapes to run: `(m, k, n)` = rows, inputs, outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    /// Two small shapes, one per kernel shape (matrix-vector and tiled),
    /// seconds on a CPU adapter (for tests).
    Tiny,
    /// The decode case and a small prefill, for CI and CPU adapters.
    Quick,
    /// A 7B-class model's Dense shapes: 4096×4096, 4096×11008 and
    /// 11008×4096, for 1 row (decode) and 512 rows (prefill).
    Llm,
}

impl Preset {
    /// The `(m, k, n)` shapes of the preset.
    pub fn shapes(self) -> Vec<(usize, usize, usize)> {
        match self {
            Preset::Tiny => vec![(1, 96, 40), (9, 70, 33)],
            Preset::Quick => vec![(1, 4096, 4096), (64, 512, 512)],
            Preset::Llm => [1, 512]
                .into_iter()
                .flat_map(|m| [(m, 4096, 4096), (m, 4096, 11008), (m, 11008, 4096)])
                .collect(),
        }
    }

    /// The largest buffer of the memory-bandwidth probe, in bytes.
    fn memory_probe_bytes(self) -> u64 {
        match self {
            Preset::Tiny => 16 << 20,
            Preset::Quick => 256 << 20,
            Preset::Llm => 1 << 30,
        }
    }
}

impl FromStr for Preset {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "tiny" => Ok(Preset::Tiny),
            "quick" => Ok(Preset::Quick),
            "llm" => Ok(Preset::Llm),
            other => Err(Error::InvalidArgument(format!(
                "unknown preset '{other}'; expected tiny, quick or llm"
            ))),
        }
    }
}

/// One benchmarked policy: a Keras policy name, and how its layer is set.
#[derive(Debug, Clone)]
pub struct BenchCase {
    /// How the case is labelled (the policy name, plus a note).
    pub label: String,
    /// The policy the layer gets.
    pub policy: Policy,
    /// Keras's int8 Dense without the activation quantizer.
    pub int8_weight_only: bool,
    /// Run the native f16 variant even where routing prefers the packed
    /// one (CPU drivers), so that every variant is measured.
    pub native_f16: bool,
}

impl BenchCase {
    fn new(label: &str, policy: &str) -> Result<Self> {
        Ok(BenchCase {
            label: label.to_owned(),
            policy: policy.parse()?,
            int8_weight_only: false,
            native_f16: false,
        })
    }
}

/// Cases that cover every kernel variant this adapter can run.
pub fn all_cases(caps: &Capabilities) -> Result<Vec<BenchCase>> {
    let mut cases = vec![
        BenchCase::new("float32", "float32")?,
        BenchCase::new("mixed_float16", "mixed_float16")?,
        BenchCase::new("mixed_bfloat16", "mixed_bfloat16")?,
        BenchCase::new("int8_from_float32", "int8_from_float32")?,
        BenchCase {
            int8_weight_only: true,
            ..BenchCase::new("int8_from_float32 (weight-only)", "int8_from_float32")?
        },
        BenchCase::new("int4_from_float32", "int4_from_float32")?,
        BenchCase::new("int4/128_from_float32", "int4/128_from_float32")?,
        BenchCase::new("float8_from_float32", "float8_from_float32")?,
    ];
    if caps.shader_f16 {
        cases.insert(
            2,
            BenchCase {
                native_f16: true,
                ..BenchCase::new("mixed_float16 (native f16)", "mixed_float16")?
            },
        );
    }
    if caps.shader_f64 {
        cases.insert(1, BenchCase::new("float64", "float64")?);
    }
    Ok(cases)
}

/// What to run.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    /// The shapes.
    pub preset: Preset,
    /// The policies.
    pub cases: Vec<BenchCase>,
    /// Timed repetitions per result (after warm-up runs, not counted).
    pub repetitions: usize,
    /// `(m, k, n)` shapes to run instead of the preset's (which still sizes
    /// the memory probe); empty for the preset's.
    pub shapes: Vec<(usize, usize, usize)>,
}

/// A shape written `MxKxN` (rows, inputs, units), each at least 1.
pub fn parse_shape(text: &str) -> Result<(usize, usize, usize)> {
    let bad = || {
        Error::InvalidArgument(format!(
            "'{text}' is not a shape: expected MxKxN with each at least 1, such as 512x4096x4096"
        ))
    };
    let dims: Vec<usize> = text
        .split('x')
        .map(|d| d.trim().parse::<usize>().ok().filter(|&v| v > 0))
        .collect::<Option<_>>()
        .ok_or_else(bad)?;
    match dims[..] {
        [m, k, n] => Ok((m, k, n)),
        _ => Err(bad()),
    }
}

/// The roofline probes' figures, measured in the run.
#[derive(Debug, Clone, Default)]
pub struct ProbeFigures {
    /// Streaming read, GB/s, by the bytes moved: the median of the
    /// figures timed beside the results of that size.
    pub read_gbps: BTreeMap<u64, f64>,
    /// Streaming copy (read + written), GB/s, by the bytes moved.
    pub copy_gbps: BTreeMap<u64, f64>,
    /// The read probe over a buffer far larger than caches: (bytes, GB/s).
    pub memory_gbps: (u64, f64),
    /// Fused multiply-adds, GFLOP/s.
    pub fma_gflops: f64,
    /// `dot4I8Packed`, giga integer operations per second (8 per dot).
    pub dot4_gops: f64,
}

impl ProbeFigures {
    /// The arithmetic probes alone (FMA and `dot4I8Packed`), medians of
    /// `reps` runs; the bandwidth figures are left empty.
    pub fn peaks(ctx: &mut GpuContext, reps: usize) -> Result<ProbeFigures> {
        let (workgroups, rounds) = ARITHMETIC_PROBE_SIZE;
        let fma = ctx.prepare_probe_fma(workgroups, rounds)?;
        let dot4 = ctx.prepare_probe_dot4(workgroups, rounds)?;
        Ok(ProbeFigures {
            fma_gflops: rate(ctx, &fma, fma.flops, reps)?,
            dot4_gops: rate(ctx, &dot4, dot4.flops, reps)?,
            ..ProbeFigures::default()
        })
    }

    /// Whether `dot4I8Packed` looks native. A native packed dot product
    /// does its 8 operations in about the time an FMA does 2, so it runs
    /// near 4x the FMA probe; at under 2x it costs several instructions.
    pub fn dot4_verdict(&self) -> &'static str {
        if self.dot4_gops >= 2.0 * self.fma_gflops {
            "native (>= 2x the FMA probe's operations)"
        } else {
            "emulated (< 2x the FMA probe's operations)"
        }
    }
}

/// One measured (policy, shape).
#[derive(Debug, Clone)]
pub struct BenchResult {
    /// The operation (`dense`).
    pub op: &'static str,
    /// The case's label (policy name and note).
    pub policy: String,
    /// The kernel variant (storage).
    pub variant: String,
    /// The kernel.
    pub kernel: String,
    /// Rows, inputs, outputs.
    pub m: usize,
    /// Inputs.
    pub k: usize,
    /// Outputs.
    pub n: usize,
    /// Median, fastest and slowest time of one call, ms.
    pub median_ms: f64,
    /// Fastest.
    pub min_ms: f64,
    /// Slowest.
    pub max_ms: f64,
    /// 2·m·k·n per median time.
    pub gflops: f64,
    /// Bytes read plus written per median time.
    pub gbps: f64,
    /// Achieved / roofline.
    pub roofline_fraction: f64,
    /// Which probes made the roofline.
    pub roof: String,
    /// The streaming-read probe over the same bytes, GB/s (median), timed
    /// alternately with this result's runs.
    pub read_gbps: f64,
    /// Largest |GPU − CPU twin| over the rows checked.
    pub max_abs_err: f64,
    /// Bytes one call moves.
    pub bytes: u64,
}

impl BenchResult {
    /// FLOP per byte.
    pub fn intensity(&self) -> f64 {
        2.0 * (self.m * self.k * self.n) as f64 / self.bytes as f64
    }
}

/// A whole run.
#[derive(Debug, Clone)]
pub struct BenchReport {
    /// The adapter's capabilities.
    pub adapter: Capabilities,
    /// `gpu-timestamps` or `wall-clock`.
    pub timing: &'static str,
    /// Repetitions per result.
    pub repetitions: usize,
    /// The probes.
    pub probes: ProbeFigures,
    /// The results, in run order.
    pub results: Vec<BenchResult>,
    /// (case, shape, why) of what could not run here.
    pub skipped: Vec<String>,
}

/// Deterministic values in [-scale, scale) from `seed` (a 64-bit LCG), the
/// inputs of benchmarks, tests and examples, so that no RNG crate is needed.
pub fn values(count: usize, seed: u64, scale: f32) -> Vec<f32> {
    const A: u64 = 6364136223846793005;
    const C: u64 = 1442695040888963407;
    let mut state = seed.wrapping_mul(A).wrapping_add(C);
    (0..count)
        .map(|_| {
            state = state.wrapping_mul(A).wrapping_add(C);
            (((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0) * scale
        })
        .collect()
}

/// The bytes of a bandwidth probe for a kernel moving `bytes`: the same, or
/// the adapter's largest storage binding when that is smaller.
pub fn probe_bytes(caps: &Capabilities, bytes: u64) -> u64 {
    bytes.min(caps.max_storage_buffer_binding_size / 32 * 32)
}

/// Median, min and max of timed runs, seconds.
pub type Spread = (f64, f64, f64);

/// Median, min and max of `reps` timed runs of each forward in `runs`,
/// after two warm-ups. The runs alternate (a, b, a, b, ...), so that a
/// kernel and the probe it is set against see the same state of the
/// machine: on a shared CPU adapter the speed drifts by up to 2x over
/// seconds.
pub fn time_alternating(ctx: &GpuContext, runs: &[&Forward], reps: usize) -> Result<Vec<Spread>> {
    for forward in runs {
        for _ in 0..2 {
            forward.time(ctx)?;
        }
    }
    let mut samples = vec![Vec::with_capacity(reps.max(1)); runs.len()];
    for _ in 0..reps.max(1) {
        for (forward, t) in runs.iter().zip(&mut samples) {
            let timing = forward.time(ctx)?;
            t.push(timing.gpu.unwrap_or(timing.wall).as_secs_f64());
        }
    }
    Ok(samples
        .into_iter()
        .map(|mut t| {
            t.sort_by(f64::total_cmp);
            (t[t.len() / 2], t[0], t[t.len() - 1])
        })
        .collect())
}

/// `amount` (bytes or operations) per median run of a probe, in giga per second.
fn rate(ctx: &GpuContext, probe: &PreparedProbe, amount: u64, reps: usize) -> Result<f64> {
    let t = time_alternating(ctx, &[&probe.forward], reps)?[0].0;
    Ok(amount as f64 / t / 1e9)
}

/// Rows of the CPU twin compared per result (the twin is slow on big shapes).
const CHECKED_ROWS: usize = 4;

/// Runs `config` on `ctx`; `progress(done, total, what)` is called before
/// each result.
pub fn run(
    ctx: &mut GpuContext,
    config: &BenchConfig,
    mut progress: impl FnMut(usize, usize, &str),
) -> Result<BenchReport> {
    let caps = ctx.capabilities().clone();
    let reps = config.repetitions.max(1);
    let shapes = if config.shapes.is_empty() {
        config.preset.shapes()
    } else {
        config.shapes.clone()
    };
    let total = shapes.len() * config.cases.len() + 1;
    progress(0, total, "probes");
    let mut probes = ProbeFigures::peaks(ctx, reps)?;
    let p = ctx.prepare_probe_read(probe_bytes(&caps, config.preset.memory_probe_bytes()))?;
    probes.memory_gbps = (p.bytes, rate(ctx, &p, p.bytes, reps)?);

    let mut results = Vec::new();
    let mut skipped = Vec::new();
    let mut read_probes = BTreeMap::new();
    let mut done = 1;
    for &(m, k, n) in &shapes {
        for case in &config.cases {
            let what = format!("{} {m}x{k}x{n}", case.label);
            progress(done, total, &what);
            done += 1;
            match run_one(ctx, &mut read_probes, case, (m, k, n), reps) {
                Ok((result, on_dot4)) => {
                    let result = with_roofline(ctx, &mut probes, result, on_dot4, reps)?;
                    results.push(result);
                }
                Err(e) => skipped.push(format!("{what}: {e}")),
            }
        }
    }
    progress(total, total, "done");
    let mut read_figures: BTreeMap<u64, Vec<f64>> = BTreeMap::new();
    for r in &results {
        let size = probe_bytes(&caps, r.bytes);
        read_figures.entry(size).or_default().push(r.read_gbps);
    }
    for (size, mut figures) in read_figures {
        figures.sort_by(f64::total_cmp);
        probes.read_gbps.insert(size, figures[figures.len() / 2]);
    }
    Ok(BenchReport {
        timing: if caps.timestamp_query {
            "gpu-timestamps"
        } else {
            "wall-clock"
        },
        adapter: caps,
        repetitions: reps,
        probes,
        results,
        skipped,
    })
}

/// The planned layer of `case` at one shape.
fn plan_row(
    case: &BenchCase,
    (m, k, n): (usize, usize, usize),
    caps: &Capabilities,
) -> Result<PlanRow> {
    let map = DTypePolicyMap::with_default(case.policy.clone());
    let spec = DenseLayerSpec {
        path: "bench/dense".to_owned(),
        rows: m,
        k,
        n,
        activation: Activation::Linear,
        int8_weight_only: case.int8_weight_only,
    };
    let mut row = Plan::new(&map, &[spec], caps)?.rows.remove(0);
    if case.native_f16 {
        row.choice.storage = StorageVariant::F16Native;
        row.choice.matvec = Family::Float.matvec_on(StorageVariant::F16Native, caps);
        row.choice.reason = format!("{}; native f16 chosen by the benchmark", row.choice.reason);
        row.layout = row.choice.layout(k, n)?;
    }
    Ok(row)
}

fn run_one(
    ctx: &mut GpuContext,
    read_probes: &mut BTreeMap<u64, PreparedProbe>,
    case: &BenchCase,
    (m, k, n): (usize, usize, usize),
    reps: usize,
) -> Result<(BenchResult, bool)> {
    let row = plan_row(case, (m, k, n), ctx.capabilities())?;
    // Int8 with the activation quantizer runs on dot4I8Packed: its roof.
    let on_dot4 = Family::of(row.choice.format) == Family::Int8;
    let w = values(k * n, (k * 31 + n) as u64, 1.0 / (k as f32).sqrt());
    let b = values(n, n as u64, 0.1);
    let x = values(m * k, (m * 7 + k) as u64, 1.0);
    let kernel = row.quantize(&w, Some(&b))?;
    let weights = row.upload(ctx, &kernel)?;
    let forward = row.forward(ctx, &weights)?;
    let bytes = weights.traffic_bytes(m);
    // A fast wrong kernel is not a result: compare with the twin.
    let y = forward.run(ctx, &[&x])?.remove(0);
    // The read probe over as many bytes, timed alternately with the kernel.
    let probe_size = probe_bytes(ctx.capabilities(), bytes);
    let probe = match read_probes.entry(probe_size) {
        Entry::Occupied(e) => e.into_mut(),
        Entry::Vacant(e) => e.insert(ctx.prepare_probe_read(probe_size)?),
    };
    let spreads = time_alternating(ctx, &[&forward, &probe.forward], reps)?;
    let (median, min, max) = spreads[0];
    let read_gbps = probe.bytes as f64 / spreads[1].0 / 1e9;
    let rows = m.min(CHECKED_ROWS);
    let mut twin_row = row.clone();
    twin_row.spec.rows = rows;
    let twin = twin_row.run_cpu(&kernel, &x[..rows * k])?;
    let mut max_abs_err = 0f64;
    let mut scale = 1f64;
    for (g, c) in y.iter().zip(&twin) {
        max_abs_err = max_abs_err.max(f64::from((g - c).abs()));
        scale = scale.max(f64::from(c.abs()));
    }
    // 16-bit outputs are one rounding apart at most; anything near 1% of
    // the outputs' scale is a wrong kernel.
    if max_abs_err.is_nan() || max_abs_err > 1e-2 * scale {
        return Err(Error::Unsupported(format!(
            "the GPU result differs from the CPU twin by {max_abs_err:e} (outputs up to {scale:e}): \
             not reported"
        ))
        .in_layer(&row.spec.path));
    }
    let flops = 2.0 * (m * k * n) as f64;
    Ok((
        BenchResult {
            op: "dense",
            policy: case.label.clone(),
            variant: row.choice.storage.name().to_owned(),
            // The adapter's (tuned) kernel.
            kernel: weights.kernel(row.choice.shape, m).short_name().to_owned(),
            m,
            k,
            n,
            median_ms: median * 1e3,
            min_ms: min * 1e3,
            max_ms: max * 1e3,
            gflops: flops / median / 1e9,
            gbps: bytes as f64 / median / 1e9,
            roofline_fraction: 0.0,
            roof: String::new(),
            read_gbps,
            max_abs_err,
            bytes,
        },
        on_dot4,
    ))
}

/// Fills the roofline fields from the read probe timed beside the result,
/// and measures the copy probe at the result's byte count the first time it
/// is seen.
fn with_roofline(
    ctx: &mut GpuContext,
    probes: &mut ProbeFigures,
    mut r: BenchResult,
    on_dot4: bool,
    reps: usize,
) -> Result<BenchResult> {
    let probe_bytes = probe_bytes(ctx.capabilities(), r.bytes);
    if let Entry::Vacant(slot) = probes.copy_gbps.entry(probe_bytes) {
        let p = ctx.prepare_probe_copy(probe_bytes)?;
        slot.insert(rate(ctx, &p, p.bytes, reps)?);
    }
    let bandwidth = r.read_gbps;
    let (peak, peak_name) = if on_dot4 {
        (probes.dot4_gops, "probe-dot4")
    } else {
        (probes.fma_gflops, "probe-fma")
    };
    let memory_roof = bandwidth * r.intensity();
    let roof = memory_roof.min(peak);
    r.roofline_fraction = r.gflops / roof;
    r.roof = if memory_roof <= peak {
        format!(
            "probe-read {} ({bandwidth:.1} GB/s)",
            size_text(probe_bytes)
        )
    } else {
        format!("{peak_name} ({peak:.1} G/s)")
    };
    Ok(r)
}

/// `12.0 MiB`, `2.7 KiB`.
fn size_text(bytes: u64) -> String {
    if bytes >= 1 << 20 {
        format!("{:.1} MiB", bytes as f64 / 1048576.0)
    } else {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    }
}

impl BenchReport {
    /// The report as JSON (layout: `docs/bench-schema.md`).
    pub fn to_json(&self) -> serde_json::Value {
        let a = &self.adapter;
        let results: Vec<serde_json::Value> = self
            .results
            .iter()
            .map(|r| {
                serde_json::json!({
                    "adapter": a.adapter_name,
                    "backend": a.backend,
                    "driver": a.driver,
                    "op": r.op,
                    "policy": r.policy,
                    "variant": r.variant,
                    "kernel": r.kernel,
                    "m": r.m,
                    "k": r.k,
                    "n": r.n,
                    "median_ms": r.median_ms,
                    "min_ms": r.min_ms,
                    "max_ms": r.max_ms,
                    "gflops": r.gflops,
                    "gbps": r.gbps,
                    "bytes": r.bytes,
                    "roofline_fraction": r.roofline_fraction,
                    "roof": r.roof,
                    "read_gbps": r.read_gbps,
                    "max_abs_err": r.max_abs_err,
                    "timing": self.timing,
                })
            })
            .collect();
        let by_bytes = |m: &BTreeMap<u64, f64>| -> serde_json::Value {
            m.iter()
                .map(|(b, g)| serde_json::json!({"bytes": b, "gbps": g}))
                .collect()
        };
        serde_json::json!({
            "schema_version": SCHEMA_VERSION,
            "adapter": a.adapter_name,
            "backend": a.backend,
            "driver": a.driver,
            "device_type": a.device_type,
            "timing": self.timing,
            "repetitions": self.repetitions,
            "probes": {
                "read": by_bytes(&self.probes.read_gbps),
                "copy": by_bytes(&self.probes.copy_gbps),
                "memory": {"bytes": self.probes.memory_gbps.0, "gbps": self.probes.memory_gbps.1},
                "read_load_bytes": read_probe_for(a).spec().probe_vector_bytes,
                "fma_gflops": self.probes.fma_gflops,
                "dot4_gops": self.probes.dot4_gops,
                "dot4_verdict": self.probes.dot4_verdict(),
            },
            "results": results,
            "skipped": self.skipped,
        })
    }
}

impl fmt::Display for BenchReport {
    /// The results as a table, the probes above it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let a = &self.adapter;
        writeln!(
            f,
            "{} ({}, {}), timing: {}, median of {} runs",
            a.adapter_name, a.backend, a.device_type, self.timing, self.repetitions
        )?;
        let p = &self.probes;
        writeln!(
            f,
            "probes: memory {:.1} GB/s ({} MiB read, {}-byte loads), FMA {:.1} GFLOP/s, dot4I8Packed {:.1} Gop/s: {}",
            p.memory_gbps.1,
            p.memory_gbps.0 >> 20,
            read_probe_for(a).spec().probe_vector_bytes,
            p.fma_gflops,
            p.dot4_gops,
            p.dot4_verdict()
        )?;
        writeln!(
            f,
            "{:<34} {:<16} {:<12} {:>14} {:>9} {:>9} {:>9} {:>8} {:>6}  {:<10} roof",
            "policy",
            "variant",
            "kernel",
            "m x k x n",
            "median ms",
            "GFLOP/s",
            "GB/s",
            "max err",
            "roof%",
            "spread ms"
        )?;
        for r in &self.results {
            writeln!(
                f,
                "{:<34} {:<16} {:<12} {:>14} {:>9.3} {:>9.2} {:>9.2} {:>8.1e} {:>5.0}%  {:<10} {}",
                r.policy,
                r.variant,
                r.kernel,
                format!("{}x{}x{}", r.m, r.k, r.n),
                r.median_ms,
                r.gflops,
                r.gbps,
                r.max_abs_err,
                r.roofline_fraction * 100.0,
                format!("{:.2}-{:.2}", r.min_ms, r.max_ms),
                r.roof
            )?;
        }
        for s in &self.skipped {
            writeln!(f, "skipped: {s}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shape_is_three_positive_sizes() {
        assert_eq!(parse_shape("512x4096x11008").unwrap(), (512, 4096, 11008));
        for bad in ["", "512x4096", "1x2x3x4", "0x1x1", "ax1x1", "-1x1x1"] {
            let err = parse_shape(bad).unwrap_err().to_string();
            assert!(err.contains(&format!("'{bad}' is not a shape")), "{err}");
        }
    }
}

// SPDX-License-Identifier: MIT OR Apache-2.0
//! `dtype-policy`: what each adapter can do and which kernel each policy
//! gets there (`info`), a policy map's plan for a model (`plan`), and
//! kernel benchmarks against roofline probes (`bench`).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use dtype_policy::bench::{self, BenchConfig, Preset, ProbeFigures};
use dtype_policy::gpu::context::{AdapterChoice, GpuContext};
use dtype_policy::ops::Activation;
use dtype_policy::plan::{DenseLayerSpec, Plan};
use dtype_policy::routing::select_dense;
use dtype_policy::{DTypePolicyMap, Policy};

#[derive(Parser)]
#[command(
    name = "dtype-policy",
    version,
    about = "Keras dtype policies driving wgpu kernels"
)]
struct Cli {
    /// Backend to search: vulkan, metal, dx12, gl (default: WGPU_BACKEND, else all).
    #[arg(long, global = true)]
    backend: Option<String>,
    /// Part of the adapter's name (default: WGPU_ADAPTER_NAME, else the best).
    #[arg(long, global = true)]
    adapter: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The adapters found, their capabilities, and the kernel every policy gets on each.
    Info,
    /// The plan of a model: each layer's policy, kernel variant, layout, reason and bytes.
    Plan {
        /// A DTypePolicyMap as Keras writes it (JSON).
        #[arg(long)]
        map: PathBuf,
        /// Layers as JSON: [{"path": ..., "rows": 1, "k": 4096, "n": 4096,
        /// "activation": "gelu", "int8_weight_only": false}, ...].
        #[arg(long)]
        layers: PathBuf,
    },
    /// Times Dense kernels for every policy and shape of a preset, checks each
    /// against its CPU twin, and sets it against roofline probes.
    Bench {
        /// tiny, quick (CI, CPU adapters) or llm (7B-class decode and prefill).
        #[arg(long, default_value = "quick")]
        preset: String,
        /// Timed repetitions per result, after two warm-up runs.
        #[arg(long, default_value_t = 9)]
        reps: usize,
        /// Only the policies whose label contains one of these (comma separated).
        #[arg(long, value_delimiter = ',')]
        policies: Vec<String>,
        /// Write the results as JSON (docs/bench-schema.md).
        #[arg(long)]
        json: Option<PathBuf>,
        /// Write a roofline plot of the results as SVG.
        #[arg(long)]
        svg: Option<PathBuf>,
    },
}

/// `--backend`, as `WGPU_BACKEND` spells backends.
fn backends(name: &Option<String>) -> Result<Option<wgpu::Backends>, String> {
    let Some(name) = name else { return Ok(None) };
    let backends = wgpu::Backends::from_comma_list(name);
    if backends.is_empty() {
        return Err(format!(
            "unknown backend '{name}'; expected vulkan, metal, dx12 or gl"
        ));
    }
    Ok(Some(backends))
}

fn open(cli: &Cli) -> Result<GpuContext, String> {
    let choice = AdapterChoice {
        backends: backends(&cli.backend)?,
        name: cli.adapter.clone(),
    };
    GpuContext::with_choice(&choice).map_err(|e| e.to_string())
}

/// The policies `info` routes: every float policy and a quantized one of each mode.
const INFO_POLICIES: [&str; 11] = [
    "float32",
    "float16",
    "mixed_float16",
    "bfloat16",
    "mixed_bfloat16",
    "float64",
    "int8_from_float32",
    "int8_from_mixed_bfloat16",
    "int4_from_float32",
    "int4/128_from_mixed_bfloat16",
    "float8_from_float32",
];

fn info(cli: &Cli) -> Result<(), String> {
    let backends = backends(&cli.backend)?;
    let adapters = GpuContext::adapters(backends);
    if adapters.is_empty() {
        return Err(dtype_policy::gpu::GpuError::NoAdapter {
            backends: format!("{:?}", backends.unwrap_or(wgpu::Backends::all())),
        }
        .to_string());
    }
    for info in adapters {
        let choice = AdapterChoice {
            backends: Some(wgpu::Backends::from(info.backend)),
            name: Some(info.name.clone()),
        };
        let mut ctx = match GpuContext::with_choice(&choice) {
            Ok(ctx) => ctx,
            Err(e) => {
                println!("{} ({:?}): cannot open: {e}\n", info.name, info.backend);
                continue;
            }
        };
        println!("{}", ctx.capabilities());
        let verdict = dot4_verdict(&mut ctx).unwrap_or_else(|e| format!("not measured: {e}"));
        println!("  dot4I8Packed: {verdict}");
        println!("  kernels per policy (1 row | 512 rows):");
        for name in INFO_POLICIES {
            let policy: Policy = name
                .parse()
                .map_err(|e: dtype_policy::Error| e.to_string())?;
            for rows in [1, 512] {
                match select_dense(&policy, rows, ctx.capabilities()) {
                    Ok(c) => println!(
                        "    {name:<30} rows {rows:<4} {} {}: {}",
                        c.kernel().short_name(),
                        c.storage.name(),
                        c.reason
                    ),
                    Err(e) => println!("    {name:<30} rows {rows:<4} cannot run: {e}"),
                }
            }
        }
        println!();
    }
    Ok(())
}

/// Times the dot4I8Packed probe against the FMA probe.
fn dot4_verdict(ctx: &mut GpuContext) -> Result<String, dtype_policy::Error> {
    let p = ProbeFigures::peaks(ctx, 5)?;
    Ok(format!(
        "{} ({:.1} Gop/s against {:.1} GFLOP/s of FMA)",
        p.dot4_verdict(),
        p.dot4_gops,
        p.fma_gflops
    ))
}

fn plan(cli: &Cli, map: &PathBuf, layers: &PathBuf) -> Result<(), String> {
    let read = |p: &PathBuf| {
        std::fs::read_to_string(p).map_err(|e| format!("cannot read {}: {e}", p.display()))
    };
    let map = DTypePolicyMap::from_keras_json(&read(map)?).map_err(|e| e.to_string())?;
    let layers = parse_layers(&read(layers)?)?;
    let ctx = open(cli)?;
    let plan = Plan::new(&map, &layers, ctx.capabilities()).map_err(|e| e.to_string())?;
    print!("{plan}");
    Ok(())
}

/// Layers from JSON (see `Command::Plan`).
fn parse_layers(text: &str) -> Result<Vec<DenseLayerSpec>, String> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("layers: {e}"))?;
    let list = value
        .as_array()
        .ok_or("layers: expected a JSON list of layers")?;
    list.iter()
        .enumerate()
        .map(|(i, l)| {
            let field = |name: &str| -> Result<usize, String> {
                l.get(name)
                    .and_then(serde_json::Value::as_u64)
                    .map(|v| v as usize)
                    .ok_or(format!(
                        "layer {i}: '{name}' must be a non-negative integer"
                    ))
            };
            let path = l
                .get("path")
                .and_then(|p| p.as_str())
                .ok_or(format!("layer {i}: 'path' must be a string"))?;
            let activation = match l.get("activation").and_then(|a| a.as_str()) {
                None => Activation::Linear,
                Some(name) => name
                    .parse()
                    .map_err(|e: dtype_policy::Error| format!("layer {i}: {e}"))?,
            };
            Ok(DenseLayerSpec {
                path: path.to_owned(),
                rows: field("rows")?,
                k: field("k")?,
                n: field("n")?,
                activation,
                int8_weight_only: l
                    .get("int8_weight_only")
                    .and_then(|b| b.as_bool())
                    .unwrap_or(false),
            })
        })
        .collect()
}

fn run_bench(
    cli: &Cli,
    preset: &str,
    reps: usize,
    policies: &[String],
    json: &Option<PathBuf>,
    svg: &Option<PathBuf>,
) -> Result<(), String> {
    let preset: Preset = preset
        .parse()
        .map_err(|e: dtype_policy::Error| e.to_string())?;
    let mut ctx = open(cli)?;
    let mut cases = bench::all_cases(ctx.capabilities()).map_err(|e| e.to_string())?;
    if !policies.is_empty() {
        cases.retain(|c| policies.iter().any(|p| c.label.contains(p.as_str())));
        if cases.is_empty() {
            return Err(format!("no policy matches {policies:?}"));
        }
    }
    let config = BenchConfig {
        preset,
        cases,
        repetitions: reps,
    };
    let mut stderr = std::io::stderr();
    let report = bench::run(&mut ctx, &config, |done, total, what| {
        let width = 30;
        let filled = done * width / total.max(1);
        let _ = write!(
            stderr,
            "\r[{}{}] {done}/{total} {what:<48}",
            "#".repeat(filled),
            " ".repeat(width - filled)
        );
        let _ = stderr.flush();
    })
    .map_err(|e| e.to_string())?;
    eprintln!();
    print!("{report}");
    if let Some(path) = json {
        let text = serde_json::to_string_pretty(&report.to_json()).map_err(|e| e.to_string())?;
        std::fs::write(path, text + "\n")
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    if let Some(path) = svg {
        std::fs::write(path, report.to_svg())
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Info => info(&cli),
        Command::Plan { map, layers } => plan(&cli, map, layers),
        Command::Bench {
            preset,
            reps,
            policies,
            json,
            svg,
        } => run_bench(&cli, preset, *reps, policies, json, svg),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dtype-policy: {e}");
            ExitCode::FAILURE
        }
    }
}

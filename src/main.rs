// SPDX-License-Identifier: MIT OR Apache-2.0
//! `dtype-policy`: what each adapter can do and which kernel each policy
//! gets there (`info`), the plan of a Keras model or of a policy map's
//! layers (`plan`), a Keras model run on inputs (`run`), a Keras model
//! quantized as Keras's `Model.quantize` does and saved (`quantize`), and
//! kernel benchmarks against roofline probes (`bench`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand};
use dtype_policy::bench::{self, BenchConfig, Preset, ProbeFigures};
use dtype_policy::gpu::context::{AdapterChoice, GpuContext};
use dtype_policy::io::npy::NpyArray;
use dtype_policy::models::Model;
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
        /// A Keras model (.keras) or a KerasHub preset folder; or give --layers.
        model: Option<PathBuf>,
        /// A DTypePolicyMap as Keras writes it (JSON): every layer's policy
        /// by its path (default for a .keras file: each layer's own).
        #[arg(long)]
        map: Option<PathBuf>,
        /// Layers as JSON instead of a model: [{"path": ..., "rows": 1,
        /// "k": 4096, "n": 4096, "activation": "gelu", "int8_weight_only":
        /// false}, ...] (needs --map).
        #[arg(long)]
        layers: Option<PathBuf>,
        /// Samples per run (for a model).
        #[arg(long, default_value_t = 1)]
        batch: usize,
        /// Tokens per sample, for a KerasHub backbone (its inputs take any length).
        #[arg(long, default_value_t = 1)]
        tokens: usize,
    },
    /// Runs a Keras model (.keras, or a KerasHub preset folder) on inputs
    /// from .npy files (float32, the batch first; a backbone's token_ids and
    /// padding_mask as [batch, tokens]), on the GPU as one recorded forward;
    /// writes the outputs.
    Run {
        /// The model (.keras file or preset folder).
        model: PathBuf,
        /// An input (.npy), one per model input in order.
        #[arg(long, required = true)]
        input: Vec<PathBuf>,
        /// A DTypePolicyMap (JSON) giving every layer's policy by its path.
        #[arg(long)]
        map: Option<PathBuf>,
        /// Where to write the output (.npy; several outputs: NAME.0.npy, ...).
        #[arg(long, default_value = "output.npy")]
        output: PathBuf,
    },
    /// Quantizes a Keras model (.keras) as Keras's `Model.quantize` does and
    /// saves it as a .keras file that Keras loads; lists the layers skipped.
    Quantize {
        /// The model.
        model: PathBuf,
        /// int8, int4 (groups of 128) or float8.
        #[arg(long)]
        mode: String,
        /// Quantize only the layers whose name this regex finds (Keras's `filters`).
        #[arg(long)]
        filter: Option<String>,
        /// Where to write the quantized model.
        #[arg(long)]
        output: PathBuf,
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

fn read_text(p: &PathBuf) -> Result<String, String> {
    std::fs::read_to_string(p).map_err(|e| format!("cannot read {}: {e}", p.display()))
}

fn read_map(map: &Option<PathBuf>) -> Result<Option<DTypePolicyMap>, String> {
    map.as_ref()
        .map(|p| DTypePolicyMap::from_keras_json(&read_text(p)?).map_err(|e| e.to_string()))
        .transpose()
}

fn plan(
    cli: &Cli,
    model: &Option<PathBuf>,
    map: &Option<PathBuf>,
    layers: &Option<PathBuf>,
    (batch, tokens): (usize, usize),
) -> Result<(), String> {
    let map = read_map(map)?;
    let ctx = open(cli)?;
    match (model, layers, map) {
        (Some(model), None, map) => {
            let mut model = Model::load(model, map.as_ref()).map_err(|e| e.to_string())?;
            if model.dynamic_sequence {
                model
                    .set_sequence_length(tokens)
                    .map_err(|e| e.to_string())?;
            }
            let plan = model
                .plan(ctx.capabilities(), batch)
                .map_err(|e| e.to_string())?;
            print!("{plan}");
        }
        (None, Some(layers), Some(map)) => {
            let layers = parse_layers(&read_text(layers)?)?;
            let plan = Plan::new(&map, &layers, ctx.capabilities()).map_err(|e| e.to_string())?;
            print!("{plan}");
        }
        _ => {
            return Err(
                "plan takes a model (.keras, with an optional --map) or --layers with --map"
                    .to_owned(),
            );
        }
    }
    Ok(())
}

fn quantize_model(
    model: &Path,
    mode: &str,
    filter: Option<&str>,
    output: &Path,
) -> Result<(), String> {
    let mut m = Model::load(model, None).map_err(|e| e.to_string())?;
    let skipped = m.quantize(mode, filter).map_err(|e| e.to_string())?;
    let bytes = m.to_keras().map_err(|e| e.to_string())?;
    std::fs::write(output, &bytes)
        .map_err(|e| format!("cannot write {}: {e}", output.display()))?;
    for layer in &m.layers {
        println!("{:<32} {}", layer.path, layer.policy.name());
    }
    if !skipped.is_empty() {
        println!("skipped (no quantized form): {}", skipped.join(", "));
    }
    println!("wrote {} ({} bytes)", output.display(), bytes.len());
    Ok(())
}

fn run_model(
    cli: &Cli,
    model: &PathBuf,
    inputs: &[PathBuf],
    map: &Option<PathBuf>,
    output: &Path,
) -> Result<(), String> {
    let map = read_map(map)?;
    let start = Instant::now();
    let mut model = Model::load(model, map.as_ref()).map_err(|e| e.to_string())?;
    let loaded = start.elapsed();
    let arrays = inputs
        .iter()
        .map(|p| {
            let bytes =
                std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()))?;
            NpyArray::from_bytes(&bytes, &p.display().to_string()).map_err(|e| e.to_string())
        })
        .collect::<Result<Vec<_>, String>>()?;
    let batch = arrays
        .first()
        .and_then(|a| a.shape.first().copied())
        .ok_or("the first input has no batch axis")?;
    if model.dynamic_sequence {
        let tokens = arrays[0]
            .shape
            .get(1)
            .copied()
            .ok_or("a backbone's inputs are [batch, tokens]")?;
        model
            .set_sequence_length(tokens)
            .map_err(|e| e.to_string())?;
    }
    for (a, &i) in arrays.iter().zip(&model.inputs) {
        let want = &model.layers[i].shape;
        if a.shape.first() != Some(&batch) || a.shape[1..] != want[..] {
            return Err(format!(
                "input '{}' has shape {:?}; the model takes [{batch}, {}]",
                model.layers[i].name,
                a.shape,
                want.iter()
                    .map(usize::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    let mut ctx = open(cli)?;
    let gpu = model.upload(&mut ctx, batch).map_err(|e| e.to_string())?;
    print!("{}", gpu.plan);
    let refs: Vec<&[f32]> = arrays.iter().map(|a| a.values.as_slice()).collect();
    let outputs = gpu.run(&ctx, &refs).map_err(|e| e.to_string())?;
    let timing = gpu.forward().time(&ctx).map_err(|e| e.to_string())?;
    let twins = model.run_cpu(&gpu.plan, &refs).map_err(|e| e.to_string())?;
    let largest = outputs
        .iter()
        .zip(&twins)
        .flat_map(|(g, t)| g.iter().zip(t).map(|(a, b)| (a - b).abs()))
        // A NaN counts as the largest difference (f32::max would drop it).
        .fold(
            0.0f32,
            |m, d| if d.is_nan() { f32::INFINITY } else { m.max(d) },
        );
    println!(
        "loaded in {:.1} ms; one forward: {} dispatches, 1 submission, {:.3} ms wall{}; \
         {} bytes of tensors; largest difference from the CPU twins {largest:e}",
        loaded.as_secs_f64() * 1e3,
        gpu.dispatches,
        timing.wall.as_secs_f64() * 1e3,
        timing
            .gpu
            .map(|g| format!(", {:.3} ms on the GPU", g.as_secs_f64() * 1e3))
            .unwrap_or_default(),
        gpu.forward().tensor_bytes()
    );
    for (i, (values, &o)) in outputs.into_iter().zip(&model.outputs).enumerate() {
        let path = if model.outputs.len() == 1 {
            output.to_path_buf()
        } else {
            output.with_extension(format!("{i}.npy"))
        };
        let mut shape = vec![batch];
        shape.extend(&model.layers[o].shape);
        let bytes = NpyArray { shape, values }.to_bytes();
        std::fs::write(&path, bytes)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        println!("wrote {}", path.display());
    }
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
        Command::Plan {
            model,
            map,
            layers,
            batch,
            tokens,
        } => plan(&cli, model, map, layers, (*batch, *tokens)),
        Command::Run {
            model,
            input,
            map,
            output,
        } => run_model(&cli, model, input, map, output),
        Command::Quantize {
            model,
            mode,
            filter,
            output,
        } => quantize_model(model, mode, filter.as_deref(), output),
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

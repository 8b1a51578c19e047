// SPDX-License-Identifier: MIT OR Apache-2.0
//! Peer comparison: burn-wgpu's f32 matmul beside dtype-policy's Dense layer
//! (float32, mixed_bfloat16, int8_from_float32), in one process, on the same
//! wgpu adapter, on the same shapes, timed the same way.
//!
//! Each timed call, on both sides, is what an application pays for one
//! product with the weights already on the device: upload x from the host,
//! run, read y back to the host, timed with `std::time::Instant` around the
//! whole call. The weights are uploaded once, before any timing. Each side
//! warms up with [`WARMUPS`] calls first (burn autotunes its matmul on its
//! first calls; ours compiles nothing then, its pipelines being made when
//! the forward is built). The timed calls alternate round-robin over the
//! four runs (burn, ours float32, ours bf16, ours int8), so that all of them
//! see the same state of a shared CPU adapter, whose speed drifts over
//! seconds.
//!
//! Every run's y is checked (length first, then sampled entries) against
//! an f64 CPU product of the same host x and w, and ours also against the
//! crate's CPU twin of the routed kernel: a wrong result stops the run.
//!
//! Run: `cargo run --release -- [--shapes MxKxN,...] [--reps N] [--json PATH]`
//! (`WGPU_BACKEND`, `WGPU_ADAPTER_NAME` choose the adapter; `WGPU_BACKEND`
//! defaults to `vulkan` here. burn is then put on that adapter explicitly.)

use std::error::Error;
use std::time::Instant;

use burn_tensor::wgpu::WgpuBackend;
use burn_tensor::{Device, DeviceKind, Tensor, TensorData};
use dtype_policy::DTypePolicyMap;
use dtype_policy::bench::values;
use dtype_policy::gpu::context::{Capabilities, GpuContext};
use dtype_policy::gpu::recorder::Forward;
use dtype_policy::ops::Activation;
use dtype_policy::plan::{DenseLayerSpec, Plan, PlanRow};
use serde_json::{Value, json};

type Res<T> = Result<T, Box<dyn Error>>;

/// Untimed calls before the timed ones, per run.
const WARMUPS: usize = 3;

/// The shapes run by default: `(m, k, n)`.
const DEFAULT_SHAPES: [(usize, usize, usize); 3] =
    [(64, 512, 512), (1024, 1024, 1024), (512, 4096, 4096)];

/// Our policies, in table order.
const POLICIES: [&str; 3] = ["float32", "mixed_bfloat16", "int8_from_float32"];

/// Largest |y − f64 reference| allowed on the sampled entries, as a fraction
/// of the largest |reference| among them (at least 1): f32 arithmetic is far
/// inside 1e-3; bf16 storage rounds x, w and y to 8 mantissa bits; int8
/// quantizes w per column and x per row (errors near 0.5% of the scale).
fn tolerance(label: &str) -> f64 {
    match label {
        "mixed_bfloat16" => 3e-2,
        "int8_from_float32" => 5e-2,
        _ => 1e-3,
    }
}

/// The burn-wgpu version resolved in this crate's Cargo.lock.
fn burn_version() -> String {
    let lock = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.lock"));
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line.trim() == "name = \"burn-wgpu\"" {
            if let Some(v) = lines
                .next()
                .and_then(|l| l.trim().strip_prefix("version = "))
            {
                return v.trim_matches('"').to_owned();
            }
        }
    }
    "unknown".to_owned()
}

struct Args {
    shapes: Vec<(usize, usize, usize)>,
    reps: usize,
    json: Option<String>,
}

const USAGE: &str = "usage: dtype-policy-peer [--shapes MxKxN[,MxKxN...]] [--reps N] [--json PATH]\n\
    default shapes: 64x512x512,1024x1024x1024,512x4096x4096; default reps: 5\n\
    WGPU_BACKEND (default vulkan here) and WGPU_ADAPTER_NAME choose the adapter of both sides";

fn parse_shape(s: &str) -> Res<(usize, usize, usize)> {
    let dims: Vec<usize> = s
        .split('x')
        .map(|d| d.trim().parse::<usize>())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("bad shape '{s}' ({e}); expected MxKxN"))?;
    match dims[..] {
        [m, k, n] if m > 0 && k > 0 && n > 0 => Ok((m, k, n)),
        _ => Err(format!("bad shape '{s}'; expected MxKxN, all positive").into()),
    }
}

fn parse_args() -> Res<Args> {
    let mut args = Args {
        shapes: DEFAULT_SHAPES.to_vec(),
        reps: 5,
        json: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (a.clone(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))
        };
        match flag.as_str() {
            "--shapes" => {
                args.shapes = value()?
                    .split(',')
                    .filter(|s| !s.trim().is_empty())
                    .map(parse_shape)
                    .collect::<Res<_>>()?;
                if args.shapes.is_empty() {
                    return Err(format!("--shapes names no shape\n{USAGE}").into());
                }
            }
            "--reps" => {
                args.reps = value()?
                    .parse()
                    .map_err(|e| format!("--reps: {e}\n{USAGE}"))?;
                if args.reps == 0 {
                    return Err("--reps must be at least 1".into());
                }
            }
            "--json" => args.json = Some(value()?),
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument '{other}'\n{USAGE}").into()),
        }
    }
    Ok(args)
}

/// Median, min, max of seconds.
fn spread(mut t: Vec<f64>) -> (f64, f64, f64) {
    t.sort_by(f64::total_cmp);
    (t[t.len() / 2], t[0], t[t.len() - 1])
}

/// Entries of y to check: corners, middles and a few scattered ones.
fn sample_entries(m: usize, n: usize) -> Vec<(usize, usize)> {
    let mut e = Vec::new();
    for &i in &[0, m / 2, m - 1] {
        for &j in &[0, n / 2, n - 1] {
            e.push((i, j));
        }
    }
    let mut s: u64 = 0x9E37_79B9_7F4A_7C15 ^ (m * 31 + n) as u64;
    for _ in 0..7 {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        e.push((((s >> 33) as usize) % m, ((s >> 13) as usize) % n));
    }
    e.sort_unstable();
    e.dedup();
    e
}

/// y[i, j] of x[m, k] · w[k, n] in f64.
fn reference(x: &[f32], w: &[f32], (k, n): (usize, usize), (i, j): (usize, usize)) -> f64 {
    (0..k)
        .map(|p| f64::from(x[i * k + p]) * f64::from(w[p * n + j]))
        .sum()
}

/// Checks y's length and its sampled entries against the f64 reference;
/// returns the largest absolute error.
fn check(
    who: &str,
    y: &[f32],
    x: &[f32],
    w: &[f32],
    (m, k, n): (usize, usize, usize),
    tol: f64,
) -> Res<f64> {
    if y.len() != m * n {
        return Err(format!(
            "{who}: y has {} values, expected {m} x {n} = {}",
            y.len(),
            m * n
        )
        .into());
    }
    let mut err = 0f64;
    let mut scale = 1f64;
    for (i, j) in sample_entries(m, n) {
        let r = reference(x, w, (k, n), (i, j));
        let g = f64::from(y[i * n + j]);
        let e = (g - r).abs();
        if e.is_nan() {
            return Err(format!("{who}: y[{i}, {j}] = {g}, reference {r}").into());
        }
        err = err.max(e);
        scale = scale.max(r.abs());
    }
    if err > tol * scale {
        return Err(format!(
            "{who}: y differs from the f64 CPU reference by {err:e} on sampled entries \
             (allowed {:e}): a broken run, not reported",
            tol * scale
        )
        .into());
    }
    Ok(err)
}

/// The burn device on the adapter our context opened: same graphics API,
/// same adapter (by its index among the adapters of its type, as cubecl
/// counts them), verified by name afterwards.
fn burn_device(caps: &Capabilities) -> Res<(Device, Value)> {
    let api = match caps.backend.as_str() {
        "Vulkan" => WgpuBackend::Vulkan,
        "Gl" => WgpuBackend::Gl,
        "Metal" => WgpuBackend::Metal,
        "Dx12" => WgpuBackend::Dx12,
        other => {
            return Err(
                format!("our adapter is on backend {other}, which burn cannot select").into(),
            );
        }
    };
    let same_type: Vec<String> = GpuContext::adapters(None)
        .into_iter()
        .filter(|a| {
            format!("{:?}", a.backend) == caps.backend
                && format!("{:?}", a.device_type) == caps.device_type
        })
        .map(|a| a.name)
        .collect();
    let index = same_type
        .iter()
        .position(|name| *name == caps.adapter_name)
        .ok_or_else(|| {
            format!(
                "our adapter '{}' is not among {same_type:?}",
                caps.adapter_name
            )
        })?;
    let kind = match caps.device_type.as_str() {
        "DiscreteGpu" => DeviceKind::DiscreteGpu(index),
        "IntegratedGpu" => DeviceKind::IntegratedGpu(index),
        "VirtualGpu" => DeviceKind::VirtualGpu(index),
        "Cpu" if index == 0 => DeviceKind::Cpu,
        _ => DeviceKind::DefaultDevice,
    };
    let (device, setup) = Device::wgpu_options()
        .graphics_api(api)
        .device_kind(kind.clone())
        .init_with_setup()
        .map_err(|e| format!("burn could not open {kind:?} on {api:?}: {e}"))?;
    let info = setup.adapter.get_info();
    let backend = format!("{:?}", info.backend);
    if info.name != caps.adapter_name || backend != caps.backend {
        return Err(format!(
            "burn opened '{}' ({backend}), not our adapter '{}' ({}): not the same adapter",
            info.name, caps.adapter_name, caps.backend
        )
        .into());
    }
    let identity = device.identity();
    let desc = json!({
        "name": info.name,
        "backend": backend,
        "driver": format!("{} {}", info.driver, info.driver_info).trim(),
        "device_type": format!("{:?}", info.device_type),
        "selected_as": format!("Device::wgpu_options().graphics_api({api:?}).device_kind({kind:?})"),
        // cubecl's identity fingerprint is the adapter's vendor/device ids
        // (`spirv_<vendor>_<device>` in every build); the compiler follows
        // the build: burn-wgpu without its `vulkan` feature has no
        // cubecl-spirv, so its kernels go to wgpu as WGSL, as ours do.
        "compiler": "WGSL through wgpu/naga (burn-wgpu built without its `vulkan` feature)",
        "identity_fingerprint": identity.as_ref().map(|i| i.fingerprint.clone()),
        "burn_device": format!("{device:?}"),
    });
    Ok((device, desc))
}

/// One timed call of burn: x uploaded from the host, x · w, y read back.
fn burn_call(device: &Device, w: &Tensor<2>, x: TensorData) -> Res<Vec<f32>> {
    let x = Tensor::<2>::from_data(x, device);
    let y = x.matmul(w.clone());
    let data = y
        .try_into_data()
        .map_err(|e| format!("burn read-back: {e:?}"))?;
    Ok(data
        .try_into_vec::<f32>()
        .map_err(|e| format!("burn y: {e:?}"))?)
}

/// Ours: one Dense layer as the crate's routing plans it, built into a forward.
struct Ours {
    label: &'static str,
    row: PlanRow,
    forward: Forward,
    kernel: dtype_policy::format::DenseKernel,
}

fn ours(
    ctx: &mut GpuContext,
    label: &'static str,
    w: &[f32],
    (m, k, n): (usize, usize, usize),
) -> Res<Ours> {
    let map = DTypePolicyMap::with_default_name(label)?;
    let spec = DenseLayerSpec {
        path: "peer/dense".to_owned(),
        rows: m,
        k,
        n,
        activation: Activation::Linear,
        int8_weight_only: false,
    };
    let row = Plan::new(&map, &[spec], ctx.capabilities())?.rows.remove(0);
    let kernel = row.quantize(w, None)?;
    let weights = row.upload(ctx, &kernel)?;
    let forward = row.forward(ctx, &weights)?;
    Ok(Ours {
        label,
        row,
        forward,
        kernel,
    })
}

/// One timed call of ours: x uploaded, the forward run, y read back.
fn ours_call(ctx: &GpuContext, o: &Ours, x: &[f32]) -> Res<Vec<f32>> {
    Ok(o.forward.run(ctx, &[x])?.remove(0))
}

/// Ours against the crate's CPU twin of the routed kernel on its first rows.
fn check_twin(o: &Ours, y: &[f32], x: &[f32], (m, k, n): (usize, usize, usize)) -> Res<f64> {
    let rows = m.min(2);
    let mut twin_row = o.row.clone();
    twin_row.spec.rows = rows;
    let twin = twin_row.run_cpu(&o.kernel, &x[..rows * k])?;
    let mut err = 0f64;
    let mut scale = 1f64;
    for (g, c) in y[..rows * n].iter().zip(&twin) {
        err = err.max(f64::from((g - c).abs()));
        scale = scale.max(f64::from(c.abs()));
    }
    if err.is_nan() || err > 1e-2 * scale {
        return Err(format!(
            "ours {}: y differs from the crate's CPU twin by {err:e}: a broken run, not reported",
            o.label
        )
        .into());
    }
    Ok(err)
}

#[derive(Default, Clone)]
struct Timed {
    median_ms: f64,
    min_ms: f64,
    max_ms: f64,
    gflops: f64,
    max_abs_err: f64,
}

fn timed(samples: Vec<f64>, flops: f64, max_abs_err: f64) -> Timed {
    let (median, min, max) = spread(samples);
    Timed {
        median_ms: median * 1e3,
        min_ms: min * 1e3,
        max_ms: max * 1e3,
        gflops: flops / median / 1e9,
        max_abs_err,
    }
}

fn timed_json(t: &Timed) -> Value {
    json!({
        "median_ms": t.median_ms,
        "min_ms": t.min_ms,
        "max_ms": t.max_ms,
        "gflops": t.gflops,
        "max_abs_err_vs_f64_reference": t.max_abs_err,
    })
}

fn main() -> Res<()> {
    // SAFETY: first thing in main, before any thread exists.
    unsafe { dtype_policy::gpu::quiet_mesa() };
    let args = parse_args()?;
    if std::env::var_os("WGPU_BACKEND").is_none() {
        // SAFETY: still single-threaded: no GPU runtime has started yet.
        unsafe { std::env::set_var("WGPU_BACKEND", "vulkan") };
    }
    let command_line: Vec<String> = std::env::args().collect();
    let backend_env = std::env::var("WGPU_BACKEND").unwrap_or_default();
    let adapter_env = std::env::var("WGPU_ADAPTER_NAME").ok();

    let mut ctx = GpuContext::new()?;
    let caps = ctx.capabilities().clone();
    println!(
        "ours : {} ({}, {}, {}) [WGPU_BACKEND={backend_env}{}]",
        caps.adapter_name,
        caps.backend,
        caps.device_type,
        caps.driver,
        adapter_env
            .as_deref()
            .map(|a| format!(", WGPU_ADAPTER_NAME={a}"))
            .unwrap_or_default()
    );
    let (device, burn_adapter) = burn_device(&caps)?;
    let version = burn_version();
    println!(
        "burn : {} ({}, {}, {}) burn-wgpu {version}, {}, kernels as {}",
        burn_adapter["name"].as_str().unwrap_or("?"),
        burn_adapter["backend"].as_str().unwrap_or("?"),
        burn_adapter["device_type"].as_str().unwrap_or("?"),
        burn_adapter["driver"].as_str().unwrap_or("?"),
        burn_adapter["selected_as"].as_str().unwrap_or("?"),
        burn_adapter["compiler"].as_str().unwrap_or("?"),
    );
    println!(
        "timing: wall clock (Instant) around upload x + product + read y back; weights resident; \
         {WARMUPS} warm-ups per run, then {} timed calls alternating burn / ours; median (min)",
        args.reps
    );

    let mut rows_json = Vec::new();
    let mut table = Vec::new();
    for &(m, k, n) in &args.shapes {
        let shape = format!("{m}x{k}x{n}");
        let flops = 2.0 * (m * k * n) as f64;
        eprintln!("[{shape}] preparing");
        let w = values(k * n, (k * 31 + n) as u64, 1.0 / (k as f32).sqrt());
        let x = values(m * k, (m * 7 + k) as u64, 1.0);

        // burn: weights uploaded once, then resident.
        let w_burn = Tensor::<2>::from_data(TensorData::new(w.clone(), [k, n]), &device);
        device.sync().map_err(|e| format!("burn sync: {e:?}"))?;
        // ours: each policy's Dense, routed, uploaded, built.
        let mut runs = Vec::new();
        let mut skipped = Vec::new();
        for label in POLICIES {
            match ours(&mut ctx, label, &w, (m, k, n)) {
                Ok(o) => runs.push(o),
                Err(e) => {
                    eprintln!("[{shape}] ours {label}: skipped: {e}");
                    skipped.push((label, e.to_string()));
                }
            }
        }

        // Warm-ups; the first result of each run is checked.
        eprintln!("[{shape}] warm-up (burn autotunes here)");
        let t = Instant::now();
        let mut burn_err = 0.0;
        for i in 0..WARMUPS {
            let y = burn_call(&device, &w_burn, TensorData::new(x.clone(), [m, k]))?;
            if i == 0 {
                burn_err = check("burn f32", &y, &x, &w, (m, k, n), tolerance("float32"))?;
            }
        }
        let burn_warmup_s = t.elapsed().as_secs_f64();
        let mut errs = Vec::new();
        let mut twin_errs = Vec::new();
        for o in &runs {
            let mut err = 0.0;
            let mut twin_err = 0.0;
            for i in 0..WARMUPS {
                let y = ours_call(&ctx, o, &x)?;
                if i == 0 {
                    let who = format!("ours {}", o.label);
                    err = check(&who, &y, &x, &w, (m, k, n), tolerance(o.label))?;
                    twin_err = check_twin(o, &y, &x, (m, k, n))?;
                }
            }
            errs.push(err);
            twin_errs.push(twin_err);
        }

        // Timed, round-robin.
        eprintln!("[{shape}] timing {} x {} runs", args.reps, runs.len() + 1);
        let mut burn_t = Vec::with_capacity(args.reps);
        let mut ours_t = vec![Vec::with_capacity(args.reps); runs.len()];
        let mut last_burn = Vec::new();
        let mut last_ours = vec![Vec::new(); runs.len()];
        for _ in 0..args.reps {
            let xd = TensorData::new(x.clone(), [m, k]);
            let t = Instant::now();
            let y = burn_call(&device, &w_burn, xd)?;
            burn_t.push(t.elapsed().as_secs_f64());
            last_burn = y;
            for (i, o) in runs.iter().enumerate() {
                let t = Instant::now();
                let y = ours_call(&ctx, o, &x)?;
                ours_t[i].push(t.elapsed().as_secs_f64());
                last_ours[i] = y;
            }
        }
        // The last timed results too, so a run that broke mid-way is caught.
        check(
            "burn f32 (timed)",
            &last_burn,
            &x,
            &w,
            (m, k, n),
            tolerance("float32"),
        )?;
        for (o, y) in runs.iter().zip(&last_ours) {
            let who = format!("ours {} (timed)", o.label);
            check(&who, y, &x, &w, (m, k, n), tolerance(o.label))?;
        }

        let burn = timed(burn_t, flops, burn_err);
        let ours_timed: Vec<Timed> = ours_t
            .into_iter()
            .zip(&errs)
            .map(|(t, &e)| timed(t, flops, e))
            .collect();
        let find = |label: &str| -> Option<(&Ours, &Timed, f64)> {
            runs.iter()
                .position(|o| o.label == label)
                .map(|i| (&runs[i], &ours_timed[i], twin_errs[i]))
        };
        let f32_run = find("float32");
        let ratio = f32_run.map(|(_, t, _)| burn.median_ms / t.median_ms);

        let cell = |label: &str| match find(label) {
            Some((_, t, _)) => format!("{:.2} ({:.2})", t.median_ms, t.min_ms),
            None => "n/a".to_owned(),
        };
        let gf = |label: &str| match find(label) {
            Some((_, t, _)) => format!("{:.1}", t.gflops),
            None => "n/a".to_owned(),
        };
        table.push(vec![
            shape.clone(),
            format!("{:.2} ({:.2})", burn.median_ms, burn.min_ms),
            format!("{:.1}", burn.gflops),
            cell("float32"),
            gf("float32"),
            ratio
                .map(|r| format!("{r:.2}"))
                .unwrap_or_else(|| "n/a".to_owned()),
            cell("mixed_bfloat16"),
            gf("mixed_bfloat16"),
            cell("int8_from_float32"),
            gf("int8_from_float32"),
        ]);

        let mut ours_json = serde_json::Map::new();
        for label in POLICIES {
            let v = match find(label) {
                Some((o, t, twin)) => {
                    let mut v = timed_json(t);
                    v["variant"] = json!(o.row.choice.storage.name());
                    v["kernel"] = json!(o.row.choice.kernel().short_name());
                    v["weight_format"] = json!(o.row.choice.format.name());
                    v["routing_reason"] = json!(o.row.choice.reason);
                    v["max_abs_err_vs_cpu_twin"] = json!(twin);
                    v
                }
                None => json!({
                    "skipped": skipped.iter().find(|(l, _)| *l == label).map(|(_, e)| e.clone()),
                }),
            };
            ours_json.insert(label.to_owned(), v);
        }
        let mut burn_json = timed_json(&burn);
        burn_json["warmup_s_including_autotune"] = json!(burn_warmup_s);
        let get = |label: &str, f: fn(&Timed) -> f64| find(label).map(|(_, t, _)| f(t));
        rows_json.push(json!({
            "shape": shape,
            "m": m, "k": k, "n": n,
            "flops": flops,
            "burn_f32_median_ms": burn.median_ms,
            "burn_f32_min_ms": burn.min_ms,
            "burn_f32_gflops": burn.gflops,
            "ours_float32_median_ms": get("float32", |t| t.median_ms),
            "ours_float32_min_ms": get("float32", |t| t.min_ms),
            "ours_float32_gflops": get("float32", |t| t.gflops),
            "ratio_burn_over_ours_float32": ratio,
            "ours_bf16_median_ms": get("mixed_bfloat16", |t| t.median_ms),
            "ours_bf16_min_ms": get("mixed_bfloat16", |t| t.min_ms),
            "ours_bf16_gflops": get("mixed_bfloat16", |t| t.gflops),
            "ours_int8_median_ms": get("int8_from_float32", |t| t.median_ms),
            "ours_int8_min_ms": get("int8_from_float32", |t| t.min_ms),
            "ours_int8_gflops": get("int8_from_float32", |t| t.gflops),
            "burn_f32": burn_json,
            "ours": ours_json,
        }));
        eprintln!("[{shape}] done");
    }

    let header = [
        "shape",
        "burn f32 ms",
        "GFLOP/s",
        "ours f32 ms",
        "GFLOP/s",
        "burn/ours",
        "ours bf16 ms",
        "GFLOP/s",
        "ours int8 ms",
        "GFLOP/s",
    ];
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in &table {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.len());
        }
    }
    let line = |cells: Vec<String>| {
        cells
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (c, w))| {
                if i == 0 {
                    format!("{c:<w$}")
                } else {
                    format!("{c:>w$}")
                }
            })
            .collect::<Vec<_>>()
            .join("  ")
    };
    println!();
    println!("{}", line(header.iter().map(|h| h.to_string()).collect()));
    for r in &table {
        println!("{}", line(r.clone()));
    }
    println!(
        "(ms: median (min) of {} calls; burn/ours: median over median, > 1 means ours is faster)",
        args.reps
    );

    if let Some(path) = &args.json {
        let report = json!({
            "tool": "dtype-policy-peer",
            "command_line": command_line,
            "env": { "WGPU_BACKEND": backend_env, "WGPU_ADAPTER_NAME": adapter_env },
            "burn_version": version,
            "burn_crates": "burn-wgpu (default features: std, autotune, fusion) + burn-tensor (wgpu)",
            "adapters": {
                "burn": burn_adapter,
                "ours": {
                    "name": caps.adapter_name,
                    "backend": caps.backend,
                    "driver": caps.driver,
                    "device_type": caps.device_type,
                },
            },
            "adapter_burn": burn_adapter["name"],
            "adapter_ours": caps.adapter_name,
            "timing": format!(
                "wall clock (std::time::Instant) around one call: upload x, product, read y back \
                 to the host; weights resident; {WARMUPS} warm-ups per run, then the timed calls \
                 alternate burn, ours float32, ours bf16, ours int8"
            ),
            "warmups": WARMUPS,
            "reps": args.reps,
            "inputs": "x in [-1, 1), w in [-1/sqrt(k), 1/sqrt(k)) from dtype_policy::bench::values; no bias",
            "results": rows_json,
        });
        if let Some(dir) = std::path::Path::new(path).parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir)?;
            }
        }
        std::fs::write(path, serde_json::to_string_pretty(&report)? + "\n")?;
        println!("wrote {path}");
    }
    Ok(())
}

// SPDX-License-Identifier: MIT OR Apache-2.0
//! [`GpuContext`]: one adapter, its device and queue, what it can do, and the
//! compiled pipelines.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::error::Result;
use crate::gpu::GpuError;
use crate::gpu::buffers::GpuCounters;
use crate::gpu::pipelines::PipelineCache;
use crate::gpu::tuning::{TuningKey, TuningTable, default_cache_path};

/// What an adapter can do, as far as the kernels care. Plain data, so that
/// kernel selection is testable without a GPU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capabilities {
    /// The adapter's name (`llvmpipe (LLVM 15.0.6, 256 bits)`).
    pub adapter_name: String,
    /// The backend (`Vulkan`, `Gl`, `Metal`, `Dx12`).
    pub backend: String,
    /// The driver and its version, where the backend reports them.
    pub driver: String,
    /// Whether it is a CPU, integrated or discrete GPU.
    pub device_type: String,
    /// `wgpu::Features::SHADER_F16`: f16 in shaders.
    pub shader_f16: bool,
    /// `wgpu::Features::SHADER_F64`: f64 in shaders.
    pub shader_f64: bool,
    /// `wgpu::Features::SHADER_INT64`: u64 in shaders (the 32-byte loads of
    /// the wide read probe).
    pub shader_int64: bool,
    /// `wgpu::Features::SUBGROUP`.
    pub subgroups: bool,
    /// Smallest and largest subgroup size, when subgroups exist.
    pub subgroup_size: Option<(u32, u32)>,
    /// `wgpu::Features::TIMESTAMP_QUERY`.
    pub timestamp_query: bool,
    /// `wgpu::Features::PIPELINE_CACHE`.
    pub pipeline_cache: bool,
    /// The WGSL `packed_4x8_integer_dot_product` language feature (`dot4I8Packed`).
    pub packed_4x8_dot: bool,
    /// Largest storage buffer binding, in bytes.
    pub max_storage_buffer_binding_size: u64,
    /// Workgroup memory per workgroup, in bytes.
    pub max_workgroup_storage_size: u32,
    /// Invocations per workgroup.
    pub max_invocations_per_workgroup: u32,
}

impl Capabilities {
    /// The capabilities of a typical adapter without f16 or subgroups, such as
    /// the GL backend on llvmpipe; for tests and plans made without a GPU.
    pub fn baseline(adapter_name: &str) -> Self {
        Capabilities {
            adapter_name: adapter_name.to_owned(),
            backend: "Gl".to_owned(),
            driver: String::new(),
            device_type: "Cpu".to_owned(),
            shader_f16: false,
            shader_f64: false,
            shader_int64: false,
            subgroups: false,
            subgroup_size: None,
            timestamp_query: false,
            pipeline_cache: false,
            packed_4x8_dot: true,
            max_storage_buffer_binding_size: 128 << 20,
            max_workgroup_storage_size: 16 << 10,
            max_invocations_per_workgroup: 256,
        }
    }
}

impl fmt::Display for Capabilities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let yes = |b: bool| if b { "yes" } else { "no" };
        writeln!(
            f,
            "{} ({}, {})",
            self.adapter_name, self.backend, self.device_type
        )?;
        writeln!(
            f,
            "  shader f16: {}   f64: {}   int64: {}",
            yes(self.shader_f16),
            yes(self.shader_f64),
            yes(self.shader_int64)
        )?;
        match self.subgroup_size {
            Some((lo, hi)) => writeln!(f, "  subgroups: yes, size {lo}..={hi}")?,
            None => writeln!(f, "  subgroups: no")?,
        }
        writeln!(
            f,
            "  timestamp queries: {}   pipeline cache: {}   dot4I8Packed: {}",
            yes(self.timestamp_query),
            yes(self.pipeline_cache),
            yes(self.packed_4x8_dot)
        )?;
        write!(
            f,
            "  max storage binding: {} MiB   workgroup memory: {} KiB",
            self.max_storage_buffer_binding_size >> 20,
            self.max_workgroup_storage_size >> 10
        )
    }
}

/// Which adapter to open.
#[derive(Debug, Clone, Default)]
pub struct AdapterChoice {
    /// Backends to search; `None` means `WGPU_BACKEND`, else all.
    pub backends: Option<wgpu::Backends>,
    /// A case-insensitive part of the adapter's name; `None` means
    /// `WGPU_ADAPTER_NAME`, else the best adapter (high performance).
    pub name: Option<String>,
}

/// An open device on one adapter, with its pipeline cache.
pub struct GpuContext {
    pub(crate) device: wgpu::Device,
    pub(crate) queue: wgpu::Queue,
    capabilities: Capabilities,
    pub(crate) pipelines: PipelineCache,
    lost: Arc<Mutex<Option<String>>>,
    /// Buffers, bind groups, submissions, read-backs (pipelines: the cache
    /// counts them), by [`Counter`].
    counters: [AtomicU64; 4],
    /// The tiled kernels measured fastest here (gpu::tuning), from the
    /// cache when it was made for this adapter.
    tuning: TuningTable,
    /// Why a cache found was not used.
    tuning_warnings: Vec<String>,
}

/// What [`GpuContext`] counts besides pipelines.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Counter {
    Buffer,
    BindGroup,
    Submission,
    ReadBack,
}

impl GpuContext {
    /// Opens the best adapter, honouring `WGPU_BACKEND` and `WGPU_ADAPTER_NAME`.
    pub fn new() -> Result<Self> {
        Self::with_choice(&AdapterChoice::default())
    }

    /// Opens the adapter `choice` describes.
    pub fn with_choice(choice: &AdapterChoice) -> Result<Self> {
        Ok(pollster::block_on(Self::open(choice))?)
    }

    /// Every adapter on `backends` (`None`: `WGPU_BACKEND`, else all), for
    /// listing them; open one with [`GpuContext::with_choice`].
    pub fn adapters(backends: Option<wgpu::Backends>) -> Vec<wgpu::AdapterInfo> {
        let (instance, backends) = instance(backends);
        pollster::block_on(instance.enumerate_adapters(backends))
            .iter()
            .map(wgpu::Adapter::get_info)
            .collect()
    }

    async fn open(choice: &AdapterChoice) -> Result<Self, GpuError> {
        let (instance, backends) = instance(choice.backends);
        let wanted = choice
            .name
            .clone()
            .or_else(|| std::env::var("WGPU_ADAPTER_NAME").ok());
        let adapter = match wanted {
            Some(wanted) => {
                let adapters = instance.enumerate_adapters(backends).await;
                let lower = wanted.to_lowercase();
                let found: Vec<String> = adapters
                    .iter()
                    .map(|a| format!("{} ({:?})", a.get_info().name, a.get_info().backend))
                    .collect();
                adapters
                    .into_iter()
                    .find(|a| a.get_info().name.to_lowercase().contains(&lower))
                    .ok_or_else(|| GpuError::AdapterNotFound {
                        wanted,
                        found: if found.is_empty() {
                            "none".to_owned()
                        } else {
                            found.join(", ")
                        },
                    })?
            }
            None => instance
                .request_adapter(&wgpu::RequestAdapterOptions {
                    power_preference: wgpu::PowerPreference::HighPerformance,
                    ..Default::default()
                })
                .await
                .map_err(|_| GpuError::NoAdapter {
                    backends: format!("{backends:?}"),
                })?,
        };
        let capabilities = read_capabilities(&instance, &adapter);
        // Ask for exactly what the adapter has of what the kernels can use.
        let wanted_features = wgpu::Features::SHADER_F16
            | wgpu::Features::SHADER_F64
            | wgpu::Features::SUBGROUP
            | wgpu::Features::TIMESTAMP_QUERY
            | wgpu::Features::PIPELINE_CACHE
            | wgpu::Features::SHADER_INT64;
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("dtype-policy"),
                required_features: adapter.features() & wanted_features,
                required_limits: adapter.limits(),
                ..Default::default()
            })
            .await
            .map_err(|e| GpuError::RequestDevice {
                adapter: capabilities.adapter_name.clone(),
                message: e.to_string(),
            })?;
        let lost = Arc::new(Mutex::new(None));
        let lost_flag = Arc::clone(&lost);
        device.set_device_lost_callback(move |reason, message| {
            let mut slot = lost_flag.lock().unwrap_or_else(|e| e.into_inner());
            *slot = Some(format!("{reason:?}: {message}"));
        });
        // Errors are caught with error scopes around every operation; this
        // keeps wgpu's default handler (a panic) away from anything missed.
        device.on_uncaptured_error(Arc::new(|error| {
            eprintln!("dtype-policy: uncaptured wgpu error: {error}");
        }));
        let pipelines = PipelineCache::new(&device, &capabilities);
        let key = TuningKey::of(&capabilities);
        let (tuning, tuning_warnings) = match default_cache_path() {
            Some(path) => TuningTable::load(&path, &key),
            None => (TuningTable::new(key), Vec::new()),
        };
        Ok(GpuContext {
            device,
            queue,
            capabilities,
            pipelines,
            lost,
            counters: Default::default(),
            tuning,
            tuning_warnings,
        })
    }

    /// Lowers the largest storage binding this context creates to `bytes`
    /// (never above the adapter's limit): Dense weights larger than that
    /// are split by outputs across bindings, and other buffers larger than
    /// that are errors. For keeping allocations small, and for tests of
    /// the split on small layers.
    pub fn limit_storage_bindings(&mut self, bytes: u64) {
        let limit = &mut self.capabilities.max_storage_buffer_binding_size;
        *limit = (*limit).min(bytes);
    }

    /// What this adapter can do.
    pub fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    /// The tiled kernels measured fastest on this adapter (empty until
    /// tuned, or when no cache for it was found).
    pub fn tuning(&self) -> &TuningTable {
        &self.tuning
    }

    /// Why a tuning cache that was found was not used (corrupt, another
    /// schema, another adapter, driver or kernel version): for the caller
    /// to show.
    pub fn tuning_warnings(&self) -> &[String] {
        &self.tuning_warnings
    }

    /// Replaces the tuning table (a fresh measurement, or an empty one to
    /// route by the fixed rule); later uploads use it.
    pub fn set_tuning(&mut self, table: TuningTable) {
        self.tuning = table;
    }

    /// The wgpu device, for callers that add their own work.
    pub fn device(&self) -> &wgpu::Device {
        &self.device
    }

    /// Compiled and reused pipeline counts.
    pub fn pipeline_stats(&self) -> crate::gpu::pipelines::PipelineStats {
        self.pipelines.stats()
    }

    /// What this context has done so far: buffers, bind groups and
    /// pipelines created, submissions, read-backs.
    pub fn counters(&self) -> GpuCounters {
        let get = |c: Counter| self.counters[c as usize].load(Ordering::Relaxed);
        GpuCounters {
            buffers: get(Counter::Buffer),
            bind_groups: get(Counter::BindGroup),
            pipelines: self.pipelines.stats().compiled as u64,
            submissions: get(Counter::Submission),
            read_backs: get(Counter::ReadBack),
        }
    }

    pub(crate) fn count(&self, counter: Counter) {
        self.counters[counter as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// `Err(DeviceLost)` once the device is gone.
    pub(crate) fn check_alive(&self) -> Result<()> {
        let lost = self.lost.lock().unwrap_or_else(|e| e.into_inner());
        match &*lost {
            Some(reason) => Err(GpuError::DeviceLost(reason.clone()).into()),
            None => Ok(()),
        }
    }

    /// Runs `f` inside validation and out-of-memory error scopes and turns
    /// anything they catch into an `Err`.
    pub(crate) fn scoped<T>(&self, during: &str, f: impl FnOnce() -> T) -> Result<T> {
        self.check_alive()?;
        let value = with_error_scopes(&self.device, during, f)?;
        self.check_alive()?;
        Ok(value)
    }
}

/// A wgpu instance for `backends` (`None`: `WGPU_BACKEND`, else all), and
/// the backends it searches. wgpu's noop backend (which executes nothing;
/// wgpu's `noop` feature) only when it is asked for alone: for measuring
/// the host cost of wgpu and this crate without a driver's.
fn instance(backends: Option<wgpu::Backends>) -> (wgpu::Instance, wgpu::Backends) {
    let backends = backends
        .or_else(wgpu::Backends::from_env)
        .unwrap_or(wgpu::Backends::all());
    let mut descriptor = wgpu::InstanceDescriptor {
        backends,
        ..wgpu::InstanceDescriptor::new_without_display_handle()
    };
    descriptor.backend_options.noop.enable = backends == wgpu::Backends::NOOP;
    let instance = wgpu::Instance::new(descriptor);
    (instance, backends)
}

/// Runs `f` inside validation and out-of-memory error scopes of `device`.
pub(crate) fn with_error_scopes<T>(
    device: &wgpu::Device,
    during: &str,
    f: impl FnOnce() -> T,
) -> Result<T, GpuError> {
    let oom = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
    let validation = device.push_error_scope(wgpu::ErrorFilter::Validation);
    let value = f();
    let validation_error = pollster::block_on(validation.pop());
    let oom_error = pollster::block_on(oom.pop());
    match validation_error.or(oom_error) {
        Some(error) => Err(GpuError::Wgpu {
            during: during.to_owned(),
            message: error.to_string(),
        }),
        None => Ok(value),
    }
}

fn read_capabilities(instance: &wgpu::Instance, adapter: &wgpu::Adapter) -> Capabilities {
    let info = adapter.get_info();
    let features = adapter.features();
    let limits = adapter.limits();
    let subgroups = features.contains(wgpu::Features::SUBGROUP);
    Capabilities {
        adapter_name: info.name.clone(),
        backend: format!("{:?}", info.backend),
        driver: format!("{} {}", info.driver, info.driver_info)
            .trim()
            .to_owned(),
        device_type: format!("{:?}", info.device_type),
        shader_f16: features.contains(wgpu::Features::SHADER_F16),
        shader_f64: features.contains(wgpu::Features::SHADER_F64),
        shader_int64: features.contains(wgpu::Features::SHADER_INT64),
        subgroups,
        subgroup_size: subgroups.then_some((info.subgroup_min_size, info.subgroup_max_size)),
        timestamp_query: features.contains(wgpu::Features::TIMESTAMP_QUERY),
        pipeline_cache: features.contains(wgpu::Features::PIPELINE_CACHE),
        packed_4x8_dot: instance
            .wgsl_language_features()
            .contains(wgpu::WgslLanguageFeatures::Packed4x8IntegerDotProduct),
        max_storage_buffer_binding_size: limits.max_storage_buffer_binding_size,
        max_workgroup_storage_size: limits.max_compute_workgroup_storage_size,
        max_invocations_per_workgroup: limits.max_compute_invocations_per_workgroup,
    }
}

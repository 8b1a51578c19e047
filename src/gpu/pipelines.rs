// SPDX-License-Identifier: MIT OR Apache-2.0
//! Compiled compute pipelines, one per distinct (kernel, storage variant,
//! specialization) per device, reused by every layer that needs it.

use std::collections::HashMap;
use std::sync::Arc;

use crate::error::Result;
use crate::gpu::context::Capabilities;
use crate::gpu::kernels::{Binding, Kernel};
use crate::gpu::shaders::{StorageVariant, XShare, compose};

/// What distinguishes one compiled pipeline from another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PipelineKey {
    /// The kernel family.
    pub kernel: Kernel,
    /// The storage variant.
    pub storage: StorageVariant,
    /// The value of the kernel's specializing override constant
    /// ([`crate::gpu::kernels::KernelSpec::specialization`]): the activation
    /// of a Dense kernel, the input format of a cast; 0 for the others.
    pub specialization: u32,
    /// The value of the kernel's mode override constant
    /// ([`crate::gpu::kernels::KernelSpec::mode`]): `WRITE_ACCUMULATOR` (0
    /// or 1) of the int8 kernels (raw i32 sums instead of y, for comparing
    /// with the CPU twin bit for bit), `GROUPING` of the weight-only kernels
    /// ([`crate::gpu::dense::grouping`]), `WEIGHTS_E5M2` (0 or 1) of
    /// float8. 0 for the kernels without one.
    pub mode: u32,
}

/// How often pipelines were compiled and reused.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PipelineStats {
    /// Pipelines compiled (cache misses).
    pub compiled: usize,
    /// Requests served from the cache.
    pub reused: usize,
}

/// The pipelines of one device.
pub(crate) struct PipelineCache {
    pipelines: HashMap<PipelineKey, Arc<wgpu::ComputePipeline>>,
    layouts: HashMap<Kernel, (wgpu::BindGroupLayout, wgpu::PipelineLayout)>,
    /// wgpu's driver-level cache, where the adapter has one.
    driver_cache: Option<wgpu::PipelineCache>,
    /// How the quantized matrix-vector kernels share activations here.
    x_share: XShare,
    stats: PipelineStats,
}

impl PipelineCache {
    pub(crate) fn new(device: &wgpu::Device, caps: &Capabilities) -> Self {
        let layouts = Kernel::ALL
            .into_iter()
            .map(|kernel| (kernel, layouts_of(device, kernel)))
            .collect();
        let driver_cache = caps.pipeline_cache.then(|| {
            // SAFETY: no data is passed, so there is nothing to validate.
            unsafe {
                device.create_pipeline_cache(&wgpu::PipelineCacheDescriptor {
                    label: Some("dtype-policy"),
                    data: None,
                    fallback: true,
                })
            }
        });
        PipelineCache {
            pipelines: HashMap::new(),
            layouts,
            driver_cache,
            x_share: XShare::for_adapter(caps),
            stats: PipelineStats::default(),
        }
    }

    pub(crate) fn stats(&self) -> PipelineStats {
        self.stats
    }

    /// The bind group layout of a kernel's bindings.
    pub(crate) fn bind_group_layout(&self, kernel: Kernel) -> &wgpu::BindGroupLayout {
        &self.layouts[&kernel].0
    }

    /// The pipeline for `key`, compiled on first use. Compilation errors
    /// are returned, caught by the caller's error scope.
    pub(crate) fn get_or_compile(
        &mut self,
        device: &wgpu::Device,
        key: PipelineKey,
    ) -> Result<Arc<wgpu::ComputePipeline>> {
        if let Some(pipeline) = self.pipelines.get(&key) {
            self.stats.reused += 1;
            return Ok(Arc::clone(pipeline));
        }
        let label = format!("{}/{}", key.kernel.file(), key.storage.name());
        let source = compose(key.kernel, key.storage, self.x_share)?;
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(&label),
            source: wgpu::ShaderSource::Wgsl(source.into()),
        });
        let spec = key.kernel.spec();
        let mut constants = Vec::new();
        if let Some(name) = spec.specialization {
            constants.push((name, f64::from(key.specialization)));
        }
        constants.extend_from_slice(spec.fixed);
        if let Some(name) = spec.mode {
            constants.push((name, f64::from(key.mode)));
        }
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(&label),
            layout: Some(&self.layouts[&key.kernel].1),
            module: &module,
            entry_point: Some("main"),
            compilation_options: wgpu::PipelineCompilationOptions {
                constants: &constants,
                zero_initialize_workgroup_memory: false,
            },
            cache: self.driver_cache.as_ref(),
        });
        let pipeline = Arc::new(pipeline);
        self.pipelines.insert(key, Arc::clone(&pipeline));
        self.stats.compiled += 1;
        Ok(pipeline)
    }
}

/// Explicit layouts from the kernel's binding list (never `layout: None`).
fn layouts_of(
    device: &wgpu::Device,
    kernel: Kernel,
) -> (wgpu::BindGroupLayout, wgpu::PipelineLayout) {
    let entries: Vec<wgpu::BindGroupLayoutEntry> = kernel
        .spec()
        .bindings
        .iter()
        .enumerate()
        .map(|(i, binding)| {
            let buffer = |ty, min| wgpu::BindingType::Buffer {
                ty,
                has_dynamic_offset: false,
                min_binding_size: wgpu::BufferSize::new(min),
            };
            let ty = match *binding {
                Binding::Uniform(min) => buffer(wgpu::BufferBindingType::Uniform, min),
                Binding::Storage {
                    read_only,
                    min_bytes,
                } => buffer(wgpu::BufferBindingType::Storage { read_only }, min_bytes),
                Binding::ChunkTexture => wgpu::BindingType::Texture {
                    sample_type: wgpu::TextureSampleType::Uint,
                    view_dimension: wgpu::TextureViewDimension::D2,
                    multisampled: false,
                },
            };
            wgpu::BindGroupLayoutEntry {
                binding: i as u32,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty,
                count: None,
            }
        })
        .collect();
    let bind_group_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: Some(kernel.file()),
        entries: &entries,
    });
    let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
        label: Some(kernel.file()),
        bind_group_layouts: &[Some(&bind_group_layout)],
        immediate_size: 0,
    });
    (bind_group_layout, pipeline_layout)
}

impl crate::gpu::context::GpuContext {
    /// The pipeline of `key`, compiled on first use inside error scopes (a
    /// bad shader is an `Err`): plans compile theirs ahead of a run.
    pub fn compile(&mut self, key: PipelineKey) -> Result<Arc<wgpu::ComputePipeline>> {
        if key.kernel.spec().needs_int64 && !self.capabilities().shader_int64 {
            return Err(crate::error::Error::Unsupported(format!(
                "{} needs SHADER_INT64, which the adapter '{}' lacks",
                key.kernel.short_name(),
                self.capabilities().adapter_name
            )));
        }
        let device = self.device.clone();
        crate::gpu::context::with_error_scopes(&device, "pipeline compilation", || {
            self.pipelines.get_or_compile(&device, key)
        })?
    }
}

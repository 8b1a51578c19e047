// SPDX-License-Identifier: MIT OR Apache-2.0
//! Compiled compute pipelines, one per distinct (kernel, storage variant,
//! specialization) per device, reused by every layer that needs it.

use std::collections::HashMap;
use std::sync::Arc;

use crate::gpu::GpuError;
use crate::gpu::context::Capabilities;
use crate::gpu::shaders::{Kernel, StorageVariant, compose};

/// What distinguishes one compiled pipeline from another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PipelineKey {
    /// The kernel family.
    pub kernel: Kernel,
    /// The storage variant.
    pub storage: StorageVariant,
    /// The `ACTIVATION` override constant.
    pub activation: u32,
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
    pub(crate) dense_layout: wgpu::BindGroupLayout,
    pipeline_layout: wgpu::PipelineLayout,
    /// wgpu's driver-level cache, where the adapter has one.
    driver_cache: Option<wgpu::PipelineCache>,
    stats: PipelineStats,
}

fn storage_entry(binding: u32, read_only: bool, min_bytes: u64) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Storage { read_only },
            has_dynamic_offset: false,
            min_binding_size: wgpu::BufferSize::new(min_bytes),
        },
        count: None,
    }
}

impl PipelineCache {
    pub(crate) fn new(device: &wgpu::Device, caps: &Capabilities) -> Self {
        // Layout of shaders/shared/dense_bindings.wgsl.
        let dense_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("dense"),
            entries: &[
                wgpu::BindGroupLayoutEntry {
                    binding: 0,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Uniform,
                        has_dynamic_offset: false,
                        min_binding_size: wgpu::BufferSize::new(16),
                    },
                    count: None,
                },
                // x and W^T are read as vec4<u32>, bias and y by the word.
                storage_entry(1, true, 16),
                storage_entry(2, true, 16),
                storage_entry(3, true, 4),
                storage_entry(4, false, 4),
            ],
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("dense"),
            bind_group_layouts: &[Some(&dense_layout)],
            immediate_size: 0,
        });
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
            dense_layout,
            pipeline_layout,
            driver_cache,
            stats: PipelineStats::default(),
        }
    }

    pub(crate) fn stats(&self) -> PipelineStats {
        self.stats
    }

    /// The pipeline for `key`, compiled on first use. Compilation errors
    /// are returned, caught by the caller's error scope.
    pub(crate) fn get_or_compile(
        &mut self,
        device: &wgpu::Device,
        key: PipelineKey,
    ) -> Result<Arc<wgpu::ComputePipeline>, GpuError> {
        if let Some(pipeline) = self.pipelines.get(&key) {
            self.stats.reused += 1;
            return Ok(Arc::clone(pipeline));
        }
        let label = format!("{}/{}", key.kernel.file(), key.storage.name());
        let source = compose(key.kernel, key.storage)?;
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(&label),
            source: wgpu::ShaderSource::Wgsl(source.into()),
        });
        let constants = [("ACTIVATION", f64::from(key.activation))];
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(&label),
            layout: Some(&self.pipeline_layout),
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

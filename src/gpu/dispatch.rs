// SPDX-License-Identifier: MIT OR Apache-2.0
//! Buffers in and out of the GPU, and one dispatch of a cached pipeline,
//! each inside error scopes so that wgpu's errors come back as `Err`.

use crate::gpu::GpuError;
use crate::gpu::context::{GpuContext, with_error_scopes};
use crate::gpu::pipelines::PipelineKey;

use std::sync::Arc;
use std::time::{Duration, Instant};

/// A kernel with its buffers bound, ready to be run again and again (for
/// benchmarks: no upload, no compilation, no read-back in the timing).
pub struct PreparedDispatch {
    key: PipelineKey,
    pipeline: Arc<wgpu::ComputePipeline>,
    bind_group: wgpu::BindGroup,
    groups: (u32, u32),
}

/// How long a timed run took.
#[derive(Debug, Clone, Copy)]
pub struct PassTiming {
    /// From submission to completion, seen by the host.
    pub wall: Duration,
    /// The GPU's timestamps around the passes, where the adapter has them.
    pub gpu: Option<Duration>,
}

impl PreparedDispatch {
    /// The pipeline it runs.
    pub fn key(&self) -> PipelineKey {
        self.key
    }
}

impl GpuContext {
    /// `Err(BufferTooLarge)` when one binding of `bytes` exceeds the adapter's limit.
    pub(crate) fn check_binding(&self, label: &str, bytes: u64) -> Result<(), GpuError> {
        let limit = self.capabilities().max_storage_buffer_binding_size;
        if bytes > limit {
            return Err(GpuError::BufferTooLarge {
                label: label.to_owned(),
                bytes,
                limit,
            });
        }
        Ok(())
    }

    /// A storage buffer holding `words`, after checking the binding limit.
    pub(crate) fn storage_buffer(
        &self,
        label: &str,
        words: &[u32],
        usage: wgpu::BufferUsages,
    ) -> Result<wgpu::Buffer, GpuError> {
        self.check_binding(label, (words.len() * 4) as u64)?;
        self.upload(label, bytemuck::cast_slice(words), usage)
    }

    /// A buffer holding `bytes`. Written through the queue, not mapped at
    /// creation: wgpu's mapped-at-creation helper panics on a lost device.
    pub(crate) fn upload(
        &self,
        label: &str,
        bytes: &[u8],
        usage: wgpu::BufferUsages,
    ) -> Result<wgpu::Buffer, GpuError> {
        self.scoped(&format!("upload of {label}"), || {
            let buffer = self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: bytes.len() as u64,
                usage: usage | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            self.queue.write_buffer(&buffer, 0, bytes);
            buffer
        })
    }

    /// A uniform buffer holding `value` (a kernel's dims struct).
    pub(crate) fn uniform_buffer<T: bytemuck::Pod>(
        &self,
        label: &str,
        value: &T,
    ) -> Result<wgpu::Buffer, GpuError> {
        self.upload(
            label,
            bytemuck::bytes_of(value),
            wgpu::BufferUsages::UNIFORM,
        )
    }

    /// A storage buffer a kernel writes and the host reads back.
    pub(crate) fn output_buffer(&self, label: &str, bytes: u64) -> Result<wgpu::Buffer, GpuError> {
        self.check_binding(label, bytes)?;
        self.scoped(&format!("creation of {label}"), || {
            self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: bytes,
                usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            })
        })
    }

    /// Compiles WGSL on this device and reports its errors: for checking a
    /// hand-written shader variant before benchmarking it.
    pub fn check_wgsl(&self, label: &str, source: &str) -> Result<(), GpuError> {
        self.scoped(label, || {
            self.device
                .create_shader_module(wgpu::ShaderModuleDescriptor {
                    label: Some(label),
                    source: wgpu::ShaderSource::Wgsl(source.into()),
                })
        })
        .map(drop)
        .map_err(|e| match e {
            GpuError::Wgpu { message, .. } => GpuError::Shader {
                label: label.to_owned(),
                message,
            },
            other => other,
        })
    }

    /// Binds `buffers` in order to the kernel's bindings and dispatches
    /// `groups` workgroups of the pipeline `key` (compiled on first use).
    pub(crate) fn dispatch(
        &mut self,
        key: PipelineKey,
        buffers: &[&wgpu::Buffer],
        groups: (u32, u32),
    ) -> Result<(), GpuError> {
        let prepared = self.prepare(key, buffers, groups)?;
        self.submit_all(&[&prepared])
    }

    /// Compiles (or reuses) the pipeline and binds `buffers`, ready to run.
    pub(crate) fn prepare(
        &mut self,
        key: PipelineKey,
        buffers: &[&wgpu::Buffer],
        groups: (u32, u32),
    ) -> Result<PreparedDispatch, GpuError> {
        let bindings: Vec<wgpu::BufferBinding> = buffers
            .iter()
            .map(|b| b.as_entire_buffer_binding())
            .collect();
        self.prepare_bindings(key, &bindings, groups)
    }

    /// [`GpuContext::prepare`] with ranges of buffers (a part of a layer
    /// split across bindings writes its columns of y through an offset).
    pub(crate) fn prepare_bindings(
        &mut self,
        key: PipelineKey,
        bindings: &[wgpu::BufferBinding],
        groups: (u32, u32),
    ) -> Result<PreparedDispatch, GpuError> {
        self.check_alive()?;
        let device = self.device.clone();
        let pipeline = with_error_scopes(&device, "pipeline compilation", || {
            self.pipelines.get_or_compile(&device, key)
        })??;
        let bind_group = self.scoped(&format!("binding of {}", key.kernel.file()), || {
            let entries: Vec<wgpu::BindGroupEntry> = bindings
                .iter()
                .enumerate()
                .map(|(i, b)| wgpu::BindGroupEntry {
                    binding: i as u32,
                    resource: wgpu::BindingResource::Buffer(b.clone()),
                })
                .collect();
            self.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some(key.kernel.file()),
                layout: self.pipelines.bind_group_layout(key.kernel),
                entries: &entries,
            })
        })?;
        Ok(PreparedDispatch {
            key,
            pipeline,
            bind_group,
            groups,
        })
    }

    /// Encodes several prepared dispatches, in order, in one command buffer
    /// and submits it (each in its own pass, so each sees the last's writes).
    pub(crate) fn submit_all(&self, prepared: &[&PreparedDispatch]) -> Result<(), GpuError> {
        let label = prepared.first().map_or("nothing", |p| p.key.kernel.file());
        self.scoped(&format!("dispatch of {label}"), || {
            let encoder = self.encode(prepared, None);
            self.queue.submit([encoder.finish()]);
        })
    }

    /// The passes in a command encoder; with `timestamps`, the first pass's
    /// start and the last pass's end are written to queries 0 and 1.
    fn encode(
        &self,
        prepared: &[&PreparedDispatch],
        timestamps: Option<&wgpu::QuerySet>,
    ) -> wgpu::CommandEncoder {
        let mut encoder = self.device.create_command_encoder(&Default::default());
        let last = prepared.len().saturating_sub(1);
        for (i, p) in prepared.iter().enumerate() {
            let timestamp_writes = timestamps.filter(|_| i == 0 || i == last).map(|query_set| {
                wgpu::ComputePassTimestampWrites {
                    query_set,
                    beginning_of_pass_write_index: (i == 0).then_some(0),
                    end_of_pass_write_index: (i == last).then_some(1),
                }
            });
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: None,
                timestamp_writes,
            });
            pass.set_pipeline(&p.pipeline);
            pass.set_bind_group(0, &p.bind_group, &[]);
            pass.dispatch_workgroups(p.groups.0, p.groups.1, 1);
        }
        encoder
    }

    /// Submits the passes and waits; the wall-clock time from submission
    /// to completion.
    fn wall_clock(&self, passes: &[&PreparedDispatch]) -> Result<Duration, GpuError> {
        let start = Instant::now();
        self.submit_all(passes)?;
        self.wait()?;
        Ok(start.elapsed())
    }

    /// Runs a prepared dispatch `times` times and waits for the GPU; returns
    /// the wall-clock time from submission to completion.
    pub fn run_prepared(
        &self,
        prepared: &PreparedDispatch,
        times: u32,
    ) -> Result<Duration, GpuError> {
        self.wall_clock(&vec![prepared; times as usize])
    }

    /// Runs prepared passes once, in order in one submission, and waits;
    /// returns the wall-clock time from submission to completion.
    pub fn run_prepared_passes(&self, passes: &[PreparedDispatch]) -> Result<Duration, GpuError> {
        self.wall_clock(&passes.iter().collect::<Vec<_>>())
    }

    /// Runs prepared passes once, in order in one submission, and waits;
    /// returns the wall-clock time and, where the adapter has timestamp
    /// queries, the GPU's own time from the first pass's start to the last
    /// pass's end.
    pub fn time_passes(&self, passes: &[&PreparedDispatch]) -> Result<PassTiming, GpuError> {
        if !self.capabilities().timestamp_query || passes.is_empty() {
            return Ok(PassTiming {
                wall: self.wall_clock(passes)?,
                gpu: None,
            });
        }
        // One query set and resolve buffer per context, made on first use.
        let (queries, resolve) = match self.timestamps.get() {
            Some(made) => made,
            None => {
                let made = self.scoped("timestamp queries", || {
                    let queries = self.device.create_query_set(&wgpu::QuerySetDescriptor {
                        label: Some("pass timestamps"),
                        ty: wgpu::QueryType::Timestamp,
                        count: 2,
                    });
                    let resolve = self.device.create_buffer(&wgpu::BufferDescriptor {
                        label: Some("timestamps"),
                        size: 16,
                        usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                        mapped_at_creation: false,
                    });
                    (queries, resolve)
                })?;
                self.timestamps.get_or_init(|| made)
            }
        };
        let start = Instant::now();
        self.scoped("timed dispatch", || {
            let mut encoder = self.encode(passes, Some(queries));
            encoder.resolve_query_set(queries, 0..2, resolve, 0);
            self.queue.submit([encoder.finish()]);
        })?;
        self.wait()?;
        let wall = start.elapsed();
        let ticks = self.read_back(resolve)?;
        let begin = u64::from(ticks[0]) | (u64::from(ticks[1]) << 32);
        let end = u64::from(ticks[2]) | (u64::from(ticks[3]) << 32);
        let nanos = end.saturating_sub(begin) as f64 * f64::from(self.queue.get_timestamp_period());
        Ok(PassTiming {
            wall,
            gpu: Some(Duration::from_secs_f64(nanos * 1e-9)),
        })
    }

    /// Encodes one prepared dispatch in a command buffer and submits it,
    /// without waiting: the host's cost of one kernel launch.
    pub fn encode_and_submit(&self, prepared: &PreparedDispatch) -> Result<(), GpuError> {
        self.submit_all(&[prepared])
    }

    /// Blocks until the GPU has finished all submitted work; for callers
    /// that submit with [`GpuContext::encode_and_submit`].
    pub fn finish(&self) -> Result<(), GpuError> {
        self.wait()
    }

    /// Blocks until the GPU has finished all submitted work.
    pub(crate) fn wait(&self) -> Result<(), GpuError> {
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| GpuError::Wgpu {
                during: "wait for the GPU".to_owned(),
                message: e.to_string(),
            })?;
        self.check_alive()
    }

    /// Copies a storage buffer back to the host.
    pub(crate) fn read_back(&self, buffer: &wgpu::Buffer) -> Result<Vec<u32>, GpuError> {
        let size = buffer.size();
        let staging = self.scoped("read-back", || {
            let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("read-back"),
                size,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            let mut encoder = self.device.create_command_encoder(&Default::default());
            encoder.copy_buffer_to_buffer(buffer, 0, &staging, 0, size);
            self.queue.submit([encoder.finish()]);
            staging
        })?;
        let (tx, rx) = std::sync::mpsc::channel();
        staging.map_async(wgpu::MapMode::Read, .., move |r| {
            let _ = tx.send(r);
        });
        self.wait()?;
        rx.recv()
            .map_err(|_| GpuError::DeviceLost("the read-back never completed".to_owned()))?
            .map_err(|e| GpuError::Wgpu {
                during: "read-back mapping".to_owned(),
                message: e.to_string(),
            })?;
        let view = staging.get_mapped_range(..).map_err(|e| GpuError::Wgpu {
            during: "read-back view".to_owned(),
            message: e.to_string(),
        })?;
        let words = bytemuck::cast_slice(&view).to_vec();
        drop(view);
        staging.unmap();
        Ok(words)
    }
}

// SPDX-License-Identifier: MIT OR Apache-2.0
//! Buffers in and out of the GPU, each made inside error scopes (wgpu's
//! errors come back as `Err`) and counted ([`GpuCounters`]), with every
//! submission and read-back, so that a test can show what a recorded
//! forward does when it runs again: one submission, one read-back, and no
//! buffer, bind group or pipeline created.

use crate::error::Result;
use crate::gpu::GpuError;
use crate::gpu::context::{Counter, GpuContext};

/// What a context has done so far: GPU objects created, work submitted,
/// buffers read back.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GpuCounters {
    /// Buffers created (weights, tensors, uniforms, staging).
    pub buffers: u64,
    /// Bind groups created.
    pub bind_groups: u64,
    /// Compute pipelines compiled.
    pub pipelines: u64,
    /// Command buffers submitted to the queue.
    pub submissions: u64,
    /// Staging buffers mapped to read results back.
    pub read_backs: u64,
}

impl GpuContext {
    /// `Err(BufferTooLarge)` when one binding of `bytes` exceeds the adapter's limit.
    pub(crate) fn check_binding(&self, label: &str, bytes: u64) -> Result<()> {
        let limit = self.capabilities().max_storage_buffer_binding_size;
        if bytes > limit {
            return Err(GpuError::BufferTooLarge {
                label: label.to_owned(),
                bytes,
                limit,
            }
            .into());
        }
        Ok(())
    }

    /// A buffer of `size` bytes (zeroed, as wgpu makes every buffer), counted.
    pub(crate) fn create_buffer(
        &self,
        label: &str,
        size: u64,
        usage: wgpu::BufferUsages,
    ) -> Result<wgpu::Buffer> {
        let buffer = self.scoped(&format!("creation of {label}"), || {
            self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size,
                usage,
                mapped_at_creation: false,
            })
        })?;
        self.count(Counter::Buffer);
        Ok(buffer)
    }

    /// A storage buffer holding `words`, after checking the binding limit.
    pub(crate) fn storage_buffer(&self, label: &str, words: &[u32]) -> Result<wgpu::Buffer> {
        self.check_binding(label, (words.len() * 4) as u64)?;
        self.upload(
            label,
            bytemuck::cast_slice(words),
            // COPY_SRC: weights are copied into chunk textures (gpu::mirror).
            wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
        )
    }

    /// A buffer holding `bytes`. Written through the queue, not mapped at
    /// creation: wgpu's mapped-at-creation helper panics on a lost device.
    pub(crate) fn upload(
        &self,
        label: &str,
        bytes: &[u8],
        usage: wgpu::BufferUsages,
    ) -> Result<wgpu::Buffer> {
        let buffer = self.create_buffer(
            label,
            bytes.len() as u64,
            usage | wgpu::BufferUsages::COPY_DST,
        )?;
        self.scoped(&format!("upload of {label}"), || {
            self.queue.write_buffer(&buffer, 0, bytes)
        })?;
        Ok(buffer)
    }

    /// A bind group of `layout` with `bindings` in order, counted.
    pub(crate) fn create_bind_group(
        &self,
        label: &str,
        layout: &wgpu::BindGroupLayout,
        bindings: &[wgpu::BindingResource],
    ) -> Result<wgpu::BindGroup> {
        let group = self.scoped(&format!("binding of {label}"), || {
            let entries: Vec<wgpu::BindGroupEntry> = bindings
                .iter()
                .enumerate()
                .map(|(i, b)| wgpu::BindGroupEntry {
                    binding: i as u32,
                    resource: b.clone(),
                })
                .collect();
            self.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some(label),
                layout,
                entries: &entries,
            })
        })?;
        self.count(Counter::BindGroup);
        Ok(group)
    }

    /// Compiles WGSL on this device and reports its errors: for checking a
    /// hand-written shader variant before benchmarking it.
    pub fn check_wgsl(&self, label: &str, source: &str) -> Result<()> {
        self.scoped(label, || {
            self.device
                .create_shader_module(wgpu::ShaderModuleDescriptor {
                    label: Some(label),
                    source: wgpu::ShaderSource::Wgsl(source.into()),
                })
        })
        .map(drop)
        .map_err(|e| match e {
            crate::Error::Gpu(GpuError::Wgpu { message, .. }) => GpuError::Shader {
                label: label.to_owned(),
                message,
            }
            .into(),
            other => other,
        })
    }

    /// Maps a `MAP_READ` buffer after the GPU has written it and hands its
    /// words to `read`, then unmaps it: the one read-back of a run.
    pub(crate) fn read_mapped<R>(
        &self,
        staging: &wgpu::Buffer,
        read: impl FnOnce(&[u32]) -> R,
    ) -> Result<R> {
        self.count(Counter::ReadBack);
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
        let value = read(bytemuck::cast_slice(&view));
        drop(view);
        staging.unmap();
        Ok(value)
    }

    /// Copies a storage buffer back to the host through a new staging
    /// buffer (for one-off reads; a recorded forward keeps its own).
    pub(crate) fn read_back(&self, buffer: &wgpu::Buffer) -> Result<Vec<u32>> {
        let size = buffer.size();
        let staging = self.create_buffer(
            "read-back",
            size,
            wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        )?;
        self.scoped("read-back", || {
            let mut encoder = self.device.create_command_encoder(&Default::default());
            encoder.copy_buffer_to_buffer(buffer, 0, &staging, 0, size);
            self.submit(encoder);
        })?;
        self.read_mapped(&staging, <[u32]>::to_vec)
    }

    /// Submits one encoder's commands, counted.
    pub(crate) fn submit(&self, encoder: wgpu::CommandEncoder) {
        self.count(Counter::Submission);
        self.queue.submit([encoder.finish()]);
    }

    /// Blocks until the GPU has finished all submitted work.
    pub fn finish(&self) -> Result<()> {
        self.wait()
    }

    /// Blocks until the GPU has finished all submitted work.
    pub(crate) fn wait(&self) -> Result<()> {
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| GpuError::Wgpu {
                during: "wait for the GPU".to_owned(),
                message: e.to_string(),
            })?;
        self.check_alive()
    }
}

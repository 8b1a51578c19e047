// SPDX-License-Identifier: MIT OR Apache-2.0
//! Roofline probes, run on the same adapter as the kernels they judge: a
//! streaming read (bytes per second) and fused multiply-adds (FLOP per
//! second).

use bytemuck::{Pod, Zeroable};

use crate::gpu::GpuError;
use crate::gpu::context::GpuContext;
use crate::gpu::dispatch::PreparedDispatch;
use crate::gpu::pipelines::PipelineKey;
use crate::gpu::shaders::{Kernel, StorageVariant};

/// The uniform of the probe shaders (`ProbeDims`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
struct ProbeDims {
    vecs: u32,
    run: u32,
    iterations: u32,
    _pad: u32,
}

/// Invocations the streaming-read probe spreads its buffer over.
const READ_INVOCATIONS: u64 = 4096;

/// A probe ready to run, with the work one run does.
pub struct PreparedProbe {
    /// The bound dispatch.
    pub dispatch: PreparedDispatch,
    /// Bytes one run reads plus writes.
    pub bytes: u64,
    /// Floating-point operations one run does.
    pub flops: u64,
}

impl GpuContext {
    /// A streaming read of `bytes` (rounded up to 16): each of 4096
    /// invocations sums a contiguous run of `vec4<u32>`.
    pub fn prepare_probe_read(&mut self, bytes: u64) -> Result<PreparedProbe, GpuError> {
        let vecs = bytes.div_ceil(16).max(1);
        let run = vecs.div_ceil(READ_INVOCATIONS);
        let invocations = vecs.div_ceil(run);
        let data: Vec<u32> = (0..vecs * 4).map(|i| i as u32).collect();
        let data = self.storage_buffer("probe data", &data, wgpu::BufferUsages::STORAGE)?;
        let dims = ProbeDims {
            vecs: vecs as u32,
            run: run as u32,
            iterations: 0,
            _pad: 0,
        };
        let groups = invocations.div_ceil(64) as u32;
        let prepared =
            self.prepare_probe(Kernel::ProbeRead, dims, &data, invocations * 4, groups)?;
        Ok(PreparedProbe {
            dispatch: prepared,
            bytes: vecs * 16 + invocations * 4,
            flops: 0,
        })
    }

    /// `workgroups` x 64 invocations of `iterations` rounds of 16 FMAs.
    pub fn prepare_probe_fma(
        &mut self,
        workgroups: u32,
        iterations: u32,
    ) -> Result<PreparedProbe, GpuError> {
        let seed: Vec<u32> = [1.0f32, 0.5, 0.25, 0.125]
            .iter()
            .map(|v| v.to_bits())
            .collect();
        let seed = self.storage_buffer("probe seed", &seed, wgpu::BufferUsages::STORAGE)?;
        let dims = ProbeDims {
            vecs: 1,
            run: 1,
            iterations,
            _pad: 0,
        };
        let invocations = u64::from(workgroups) * 64;
        let prepared =
            self.prepare_probe(Kernel::ProbeFma, dims, &seed, invocations * 4, workgroups)?;
        Ok(PreparedProbe {
            dispatch: prepared,
            bytes: 16 + invocations * 4,
            flops: invocations * u64::from(iterations) * 32,
        })
    }

    fn prepare_probe(
        &mut self,
        kernel: Kernel,
        dims: ProbeDims,
        input: &wgpu::Buffer,
        out_bytes: u64,
        groups: u32,
    ) -> Result<PreparedDispatch, GpuError> {
        if groups > 65_535 {
            return Err(GpuError::Shape(format!(
                "a probe of {groups} workgroups is too large"
            )));
        }
        let dims = self.upload(
            "probe dims",
            bytemuck::bytes_of(&dims),
            wgpu::BufferUsages::UNIFORM,
        )?;
        let out = self.output_buffer("probe sums", out_bytes)?;
        let key = PipelineKey {
            kernel,
            storage: StorageVariant::F32,
            specialization: 0,
            flag: false,
        };
        self.prepare(key, &[&dims, input, &out], (groups, 1))
    }
}

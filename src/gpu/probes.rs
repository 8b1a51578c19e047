// SPDX-License-Identifier: MIT OR Apache-2.0
//! Roofline probes, run on the same adapter as the kernels they judge: a
//! streaming read and a copy (bytes per second), fused multiply-adds (FLOP
//! per second) and packed int8 dot products (integer operations per second).

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
    /// A streaming read of `bytes` (rounded up to 16): each of up to 4096
    /// invocations sums a contiguous run of `vec4<u32>`.
    pub fn prepare_probe_read(&mut self, bytes: u64) -> Result<PreparedProbe, GpuError> {
        let vecs = bytes.div_ceil(16).max(1);
        let (dispatch, invocations) =
            self.prepare_streaming(Kernel::ProbeRead, vecs, |invocations| invocations * 4)?;
        Ok(PreparedProbe {
            dispatch,
            bytes: vecs * 16 + invocations * 4,
            flops: 0,
        })
    }

    /// A streaming copy moving `bytes` in all (rounded up to 32): half read,
    /// half written, each of up to 4096 invocations copying a contiguous run.
    pub fn prepare_probe_copy(&mut self, bytes: u64) -> Result<PreparedProbe, GpuError> {
        let vecs = (bytes / 2).div_ceil(16).max(1);
        let (dispatch, _) = self.prepare_streaming(Kernel::ProbeCopy, vecs, |_| vecs * 16)?;
        Ok(PreparedProbe {
            dispatch,
            bytes: vecs * 32,
            flops: 0,
        })
    }

    /// A streaming probe over `vecs` vectors of 16 bytes, in contiguous runs
    /// per invocation; `out_bytes(invocations)` sizes its output.
    fn prepare_streaming(
        &mut self,
        kernel: Kernel,
        vecs: u64,
        out_bytes: impl Fn(u64) -> u64,
    ) -> Result<(PreparedDispatch, u64), GpuError> {
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
        let prepared = self.prepare_probe(kernel, dims, &data, out_bytes(invocations), groups)?;
        Ok((prepared, invocations))
    }

    /// `workgroups` x 64 invocations of `iterations` rounds of four
    /// `dot4I8Packed` (8 integer operations each, counted in `flops`).
    pub fn prepare_probe_dot4(
        &mut self,
        workgroups: u32,
        iterations: u32,
    ) -> Result<PreparedProbe, GpuError> {
        let seed = [0x0102_0304u32, 0x7f80_1122, 0x3344_5566, 0x0a0b_0c0d];
        self.prepare_arithmetic(Kernel::ProbeDot4, seed, workgroups, iterations)
    }

    /// `workgroups` x 64 invocations of `iterations` rounds of 16 FMAs.
    pub fn prepare_probe_fma(
        &mut self,
        workgroups: u32,
        iterations: u32,
    ) -> Result<PreparedProbe, GpuError> {
        let seed = [1.0f32, 0.5, 0.25, 0.125].map(f32::to_bits);
        self.prepare_arithmetic(Kernel::ProbeFma, seed, workgroups, iterations)
    }

    /// An arithmetic probe on registers: 32 operations per round.
    fn prepare_arithmetic(
        &mut self,
        kernel: Kernel,
        seed: [u32; 4],
        workgroups: u32,
        iterations: u32,
    ) -> Result<PreparedProbe, GpuError> {
        let seed = self.storage_buffer("probe seed", &seed, wgpu::BufferUsages::STORAGE)?;
        let dims = ProbeDims {
            vecs: 1,
            run: 1,
            iterations,
            _pad: 0,
        };
        let invocations = u64::from(workgroups) * 64;
        let prepared = self.prepare_probe(kernel, dims, &seed, invocations * 4, workgroups)?;
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
        let dims = self.uniform_buffer("probe dims", &dims)?;
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

// SPDX-License-Identifier: MIT OR Apache-2.0
//! Roofline probes, run on the same adapter as the kernels they judge: a
//! streaming read and a copy (bytes per second), fused multiply-adds (FLOP
//! per second) and packed int8 dot products (integer operations per second).

use crate::error::{Error, Result};
use crate::gpu::context::{Capabilities, GpuContext};
use crate::gpu::kernels::Kernel;
use crate::gpu::pipelines::PipelineKey;
use crate::gpu::recorder::{Bind, Forward, Graph, Step};
use crate::gpu::shaders::StorageVariant;

/// The uniform of the probe shaders (`ProbeDims` in shaders/shared/probe_dims.wgsl).
#[derive(Debug, Clone, Copy)]
struct ProbeDims {
    vecs: u32,
    run: u32,
    iterations: u32,
}

/// Invocations the streaming-read probe spreads its buffer over.
const READ_INVOCATIONS: u64 = 4096;

/// The FMA probe's seed: m, k, base, step (shaders/probe_fma.wgsl). m = 1
/// and k a power of two keep every value exact, so that its twin
/// (`cpu::probes::fma_sums`) can check every chain and step.
pub const FMA_PROBE_SEED: [f32; 4] = [1.0, 0.015625, 0.5, 0.25];

/// The `dot4I8Packed` probe's seed (shaders/probe_dot4.wgsl): its
/// multiplier word (each byte at least 1) and the chains' start.
pub const DOT4_PROBE_SEED: [u32; 4] = [0x0102_0304, 0x7f80_1122, 0x3344_5566, 0x0a0b_0c0d];

/// Workgroups and rounds of a standard arithmetic probe run (FMA or
/// dot4I8Packed): 16384 invocations x 256 rounds x 512 operations, about
/// 2.1 G operations (13 ms for FMAs on lavapipe, 2 cores).
pub const ARITHMETIC_PROBE_SIZE: (u32, u32) = (256, 256);

/// A probe ready to run, with the work one run does.
pub struct PreparedProbe {
    /// The recorded dispatch.
    pub forward: Forward,
    /// Bytes one run reads plus writes.
    pub bytes: u64,
    /// Floating-point operations one run does.
    pub flops: u64,
    /// How the streaming-read probe walks its data (`None` for the others),
    /// for its CPU twin [`crate::cpu::probes::read_sums`].
    pub read_shape: Option<ReadShape>,
    /// What the probe writes (sums, copies), so that no work is dropped.
    out: wgpu::Buffer,
}

/// Word `i` of a streaming probe's buffer: a non-linear hash of `i`, so
/// that neither the xor over a vector cancels (as with `i` itself) nor
/// different runs of vectors share a sum (as with any linear map), and the
/// read probe's sums show which vectors it read.
pub fn probe_word(i: u64) -> u32 {
    // The "lowbias32" integer mixer.
    let mut x = (i as u32) ^ ((i >> 32) as u32);
    x ^= x >> 16;
    x = x.wrapping_mul(0x7feb_352d);
    x ^= x >> 15;
    x = x.wrapping_mul(0x846c_a68b);
    x ^ (x >> 16)
}

/// The read probe an adapter gets: [`Kernel::ProbeReadWide`] (32-byte
/// loads) where it has SHADER_INT64, else [`Kernel::ProbeRead`] (16 bytes).
pub fn read_probe_for(caps: &Capabilities) -> Kernel {
    if caps.shader_int64 {
        Kernel::ProbeReadWide
    } else {
        Kernel::ProbeRead
    }
}

/// How a streaming-read probe walks its data ([`probe_word`]): invocation
/// `g` sums vectors `g · run ..` up to `vecs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadShape {
    /// Vectors in the buffer.
    pub vecs: u64,
    /// Vectors per invocation (the last invocation may have fewer).
    pub run: u64,
    /// Whether the vectors are `vec4<u64>` (32-byte loads) rather than `vec4<u32>`.
    pub wide: bool,
}

impl GpuContext {
    /// A streaming read of `bytes` (rounded up to the load size): each of up
    /// to 4096 invocations sums a contiguous run of vectors, with the widest
    /// loads the adapter has ([`Kernel::ProbeReadWide`], 32 bytes, where it
    /// has SHADER_INT64, else [`Kernel::ProbeRead`], 16 bytes), so that the
    /// memory roof is the fastest read.
    pub fn prepare_probe_read(&mut self, bytes: u64) -> Result<PreparedProbe> {
        let kernel = self.read_probe_kernel();
        let vec_bytes = kernel.spec().probe_vector_bytes;
        let vecs = bytes.div_ceil(vec_bytes).max(1);
        let (mut probe, shape) =
            self.prepare_streaming(kernel, (vecs, vec_bytes), |invocations| invocations * 4)?;
        probe.read_shape = Some(shape);
        Ok(probe)
    }

    /// What a probe wrote in its last run (the read probe: one sum per
    /// invocation, to compare with [`crate::cpu::probes::read_sums`]).
    pub fn probe_output(&self, probe: &PreparedProbe) -> Result<Vec<u32>> {
        self.read_back(&probe.out)
    }

    /// The read probe this adapter gets: [`Kernel::ProbeReadWide`] where it
    /// has SHADER_INT64, else [`Kernel::ProbeRead`].
    pub fn read_probe_kernel(&self) -> Kernel {
        read_probe_for(self.capabilities())
    }

    /// A streaming copy moving `bytes` in all (rounded up to 32): half read,
    /// half written, each of up to 4096 invocations copying a contiguous run.
    pub fn prepare_probe_copy(&mut self, bytes: u64) -> Result<PreparedProbe> {
        let vecs = (bytes / 2).div_ceil(16).max(1);
        let (probe, _) = self.prepare_streaming(Kernel::ProbeCopy, (vecs, 16), |_| vecs * 16)?;
        Ok(probe)
    }

    /// A streaming probe over `vecs` vectors of `vec_bytes` bytes, in
    /// contiguous runs per invocation; `out_bytes(invocations)` sizes its
    /// output. Bytes moved: the vectors read plus the output.
    fn prepare_streaming(
        &mut self,
        kernel: Kernel,
        (vecs, vec_bytes): (u64, u64),
        out_bytes: impl Fn(u64) -> u64,
    ) -> Result<(PreparedProbe, ReadShape)> {
        // The limit first, so that no host buffer is built for a size the
        // adapter cannot bind (and no count overflows).
        let data_bytes = vecs.saturating_mul(vec_bytes);
        self.check_binding("probe data", data_bytes)?;
        let run = vecs.div_ceil(READ_INVOCATIONS);
        let invocations = vecs.div_ceil(run);
        let too_many =
            |what: &str| Error::Shape(format!("a probe of {vecs} vectors has too many {what}"));
        let dims = ProbeDims {
            vecs: u32::try_from(vecs).map_err(|_| too_many("vectors"))?,
            run: u32::try_from(run).map_err(|_| too_many("vectors per invocation"))?,
            iterations: 0,
        };
        let data: Vec<u32> = (0..data_bytes / 4).map(probe_word).collect();
        let data = self.storage_buffer("probe data", &data)?;
        let groups = invocations.div_ceil(64) as u32;
        let written = out_bytes(invocations);
        let (forward, out) = self.prepare_probe(kernel, dims, &data, written, groups)?;
        let probe = PreparedProbe {
            forward,
            bytes: data_bytes + written,
            flops: 0,
            read_shape: None,
            out,
        };
        let shape = ReadShape {
            vecs,
            run,
            wide: vec_bytes == 32,
        };
        Ok((probe, shape))
    }

    /// `workgroups` x 64 invocations of `iterations` rounds of 64
    /// `dot4I8Packed` (8 integer operations each, counted in `flops`).
    pub fn prepare_probe_dot4(
        &mut self,
        workgroups: u32,
        iterations: u32,
    ) -> Result<PreparedProbe> {
        self.prepare_arithmetic(Kernel::ProbeDot4, DOT4_PROBE_SEED, workgroups, iterations)
    }

    /// `workgroups` x 64 invocations of `iterations` rounds of 256 FMAs
    /// (64 of vec4).
    pub fn prepare_probe_fma(&mut self, workgroups: u32, iterations: u32) -> Result<PreparedProbe> {
        let seed = FMA_PROBE_SEED.map(f32::to_bits);
        self.prepare_arithmetic(Kernel::ProbeFma, seed, workgroups, iterations)
    }

    /// An arithmetic probe on registers: 512 operations per round.
    fn prepare_arithmetic(
        &mut self,
        kernel: Kernel,
        seed: [u32; 4],
        workgroups: u32,
        iterations: u32,
    ) -> Result<PreparedProbe> {
        let seed = self.storage_buffer("probe seed", &seed)?;
        let dims = ProbeDims {
            vecs: 1,
            run: 1,
            iterations,
        };
        let invocations = u64::from(workgroups) * 64;
        let (forward, out) =
            self.prepare_probe(kernel, dims, &seed, invocations * 4, workgroups)?;
        Ok(PreparedProbe {
            forward,
            bytes: 16 + invocations * 4,
            flops: invocations * u64::from(iterations) * 512,
            read_shape: None,
            out,
        })
    }

    /// A one-dispatch forward of a probe reading `input` and writing a new
    /// buffer of `out_bytes` (returned too, for its twin check).
    fn prepare_probe(
        &mut self,
        kernel: Kernel,
        dims: ProbeDims,
        input: &wgpu::Buffer,
        out_bytes: u64,
        groups: u32,
    ) -> Result<(Forward, wgpu::Buffer)> {
        if groups > 65_535 {
            return Err(Error::Shape(format!(
                "a probe of {groups} workgroups is too large"
            )));
        }
        self.check_binding("probe sums", out_bytes)?;
        let out = self.create_buffer(
            "probe sums",
            out_bytes,
            wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
        )?;
        let mut graph = Graph::new();
        graph.push(Step {
            key: PipelineKey {
                kernel,
                storage: StorageVariant::F32,
                specialization: 0,
                mode: 0,
            },
            label: kernel.short_name().to_owned(),
            uniform: [dims.vecs, dims.run, dims.iterations, 0, 0, 0, 0, 0],
            bindings: vec![Bind::Buffer(input.clone()), Bind::Buffer(out.clone())],
            groups: (groups, 1),
        });
        Ok((graph.build(self)?, out))
    }
}

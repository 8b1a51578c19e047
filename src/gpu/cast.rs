// SPDX-License-Identifier: MIT OR Apache-2.0
//! Casts between f32, f16 and bf16 buffers on the GPU (round to nearest
//! even; infinities and NaN kept, overflow to infinity), for converting
//! weights or activations without a trip through the host.

use bytemuck::{Pod, Zeroable};

use crate::gpu::GpuError;
use crate::gpu::context::GpuContext;
use crate::gpu::formats::StorageFormat;
use crate::gpu::pipelines::PipelineKey;
use crate::gpu::shaders::{Kernel, StorageVariant};

/// The uniform of shaders/cast.wgsl (`CastDims`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
struct CastDims {
    count: u32,
    _pad: [u32; 3],
}

const _: () = assert!(std::mem::size_of::<CastDims>() == 16);

impl StorageFormat {
    /// The `IN_FORMAT` value of shaders/cast.wgsl.
    const fn cast_code(self) -> u32 {
        match self {
            StorageFormat::F32 => 0,
            StorageFormat::F16 => 1,
            StorageFormat::BF16 => 2,
        }
    }

    /// The storage helper that writes this format (no feature needed).
    const fn writer(self) -> StorageVariant {
        match self {
            StorageFormat::F32 => StorageVariant::F32,
            StorageFormat::F16 => StorageVariant::F16Packed,
            StorageFormat::BF16 => StorageVariant::BF16Packed,
        }
    }

    /// 32-bit words that hold `count` values.
    pub const fn words_for(self, count: usize) -> usize {
        count.div_ceil(self.values_per_word())
    }
}

impl GpuContext {
    /// Casts `count` values held in `words` (in format `from`) to format
    /// `to`, on the GPU, and returns the words of the result.
    pub fn cast(
        &mut self,
        from: StorageFormat,
        to: StorageFormat,
        words: &[u32],
        count: usize,
    ) -> Result<Vec<u32>, GpuError> {
        if count == 0 || words.len() != from.words_for(count) {
            return Err(GpuError::Shape(format!(
                "{count} {from:?} values take {} words, got {}; count must be at least 1",
                from.words_for(count),
                words.len()
            )));
        }
        let groups = count.div_ceil(2).div_ceil(64);
        if groups > 65_535 {
            return Err(GpuError::Shape(format!(
                "{count} values need {groups} workgroups, more than 65535; cast in parts"
            )));
        }
        let input = self.storage_buffer("cast input", words, wgpu::BufferUsages::STORAGE)?;
        let out_bytes = (to.words_for(count).max(1) * 4) as u64;
        self.check_binding("cast output", out_bytes)?;
        let dims = CastDims {
            count: count as u32,
            _pad: [0; 3],
        };
        let dims_buf = self.upload(
            "cast dims",
            bytemuck::bytes_of(&dims),
            wgpu::BufferUsages::UNIFORM,
        )?;
        let key = PipelineKey {
            kernel: Kernel::Cast,
            storage: to.writer(),
            specialization: from.cast_code(),
        };
        let output = self.output_buffer("cast output", out_bytes)?;
        self.dispatch(key, &[&dims_buf, &input, &output], (groups as u32, 1))?;
        let mut out = self.read_back(&output)?;
        out.truncate(to.words_for(count));
        Ok(out)
    }
}

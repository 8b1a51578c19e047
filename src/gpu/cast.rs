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

/// The `IN_FORMAT` value of shaders/cast.wgsl and the storage helper that
/// writes a format; `None` for f64, which the cast kernel does not handle.
fn cast_codes(format: StorageFormat) -> Option<(u32, StorageVariant)> {
    match format {
        StorageFormat::F32 => Some((0, StorageVariant::F32)),
        StorageFormat::F16 => Some((1, StorageVariant::F16Packed)),
        StorageFormat::BF16 => Some((2, StorageVariant::BF16Packed)),
        StorageFormat::F64 => None,
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
        let (Some((from_code, _)), Some((_, writer))) = (cast_codes(from), cast_codes(to)) else {
            return Err(GpuError::Shape(format!(
                "the cast kernel converts between f32, f16 and bf16, not {from:?} -> {to:?}"
            )));
        };
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
        let dims_buf = self.uniform_buffer("cast dims", &dims)?;
        let key = PipelineKey {
            kernel: Kernel::Cast,
            storage: writer,
            specialization: from_code,
            mode: 0,
        };
        let output = self.output_buffer("cast output", out_bytes)?;
        self.dispatch(key, &[&dims_buf, &input, &output], (groups as u32, 1))?;
        let mut out = self.read_back(&output)?;
        out.truncate(to.words_for(count));
        Ok(out)
    }
}

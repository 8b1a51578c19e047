// SPDX-License-Identifier: MIT OR Apache-2.0
//! Chunk textures: a buffer's 16-byte chunks copied into an rgba32uint
//! texture, [`MIRROR_WIDTH`] chunks per texture row, for kernels that fetch
//! them with `textureLoad` (shaders/shared/chunk_texture.wgsl). On CPU
//! drivers this is the fast path: Mesa 22's llvmpipe loads a storage buffer
//! lane by lane with a branch per lane, but fetches texels with vector
//! gathers (a 1024^3 f32 product: 1.5 s from buffers, 80 ms from textures,
//! with the same register tiles).

use crate::error::{Error, Result};
use crate::gpu::context::GpuContext;

/// Chunks per texture row (a power of two: the shader splits a chunk index
/// with a mask and a shift; 64 KiB rows meet the 256-byte row alignment of
/// buffer-to-texture copies).
pub const MIRROR_WIDTH: u32 = 4096;

/// Invocations of a register-tile workgroup: one subgroup on lavapipe,
/// sharing x rows through `subgroupBroadcast`.
pub const TILE_LANES: u32 = 8;

const CHUNK_BYTES: u64 = 16;
const ROW_BYTES: u64 = MIRROR_WIDTH as u64 * CHUNK_BYTES;

/// A texture holding the chunks of a buffer of `bytes`.
#[derive(Debug, Clone)]
pub(crate) struct ChunkTexture {
    pub(crate) texture: wgpu::Texture,
    pub(crate) view: wgpu::TextureView,
    /// The bytes of the buffer it mirrors.
    pub(crate) bytes: u64,
}

/// The texture extent for `bytes` of chunks, or an error naming the limit.
fn extent(bytes: u64, max_dimension: u32) -> Result<wgpu::Extent3d> {
    let rows = bytes.div_ceil(ROW_BYTES).max(1);
    if rows > u64::from(max_dimension) {
        return Err(Error::Shape(format!(
            "{bytes} bytes need {rows} texture rows of {MIRROR_WIDTH} chunks, more than the \
             adapter's {max_dimension}"
        )));
    }
    Ok(wgpu::Extent3d {
        width: MIRROR_WIDTH,
        height: rows as u32,
        depth_or_array_layers: 1,
    })
}

impl GpuContext {
    /// An empty chunk texture for a buffer of `bytes`.
    pub(crate) fn chunk_texture(&self, label: &str, bytes: u64) -> Result<ChunkTexture> {
        if !bytes.is_multiple_of(CHUNK_BYTES) {
            return Err(Error::Shape(format!(
                "{label}: {bytes} bytes are not whole 16-byte chunks"
            )));
        }
        let size = extent(bytes, self.device.limits().max_texture_dimension_2d)?;
        let texture = self.scoped(&format!("chunk texture for {label}"), || {
            self.device.create_texture(&wgpu::TextureDescriptor {
                label: Some(label),
                size,
                mip_level_count: 1,
                sample_count: 1,
                dimension: wgpu::TextureDimension::D2,
                format: wgpu::TextureFormat::Rgba32Uint,
                usage: wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
                view_formats: &[],
            })
        })?;
        let view = texture.create_view(&Default::default());
        Ok(ChunkTexture {
            texture,
            view,
            bytes,
        })
    }

    /// A chunk texture filled from `buffer` now (weights: once).
    pub(crate) fn mirror_of(&self, label: &str, buffer: &wgpu::Buffer) -> Result<ChunkTexture> {
        let mirror = self.chunk_texture(label, buffer.size())?;
        let mut encoder = self.device.create_command_encoder(&Default::default());
        encode_copy(&mut encoder, buffer, &mirror);
        self.scoped(&format!("copy of {label} into its texture"), || {
            self.submit(encoder)
        })?;
        Ok(mirror)
    }
}

/// Records the copy of `buffer` (its first `mirror.bytes`) into `mirror`:
/// whole texture rows, then the last partial row.
pub(crate) fn encode_copy(
    encoder: &mut wgpu::CommandEncoder,
    buffer: &wgpu::Buffer,
    mirror: &ChunkTexture,
) {
    let full_rows = (mirror.bytes / ROW_BYTES) as u32;
    let tail_chunks = ((mirror.bytes % ROW_BYTES) / CHUNK_BYTES) as u32;
    let copy =
        |encoder: &mut wgpu::CommandEncoder, offset: u64, y: u32, width: u32, height: u32| {
            encoder.copy_buffer_to_texture(
                wgpu::TexelCopyBufferInfo {
                    buffer,
                    layout: wgpu::TexelCopyBufferLayout {
                        offset,
                        bytes_per_row: Some(ROW_BYTES as u32),
                        rows_per_image: None,
                    },
                },
                wgpu::TexelCopyTextureInfo {
                    texture: &mirror.texture,
                    mip_level: 0,
                    origin: wgpu::Origin3d { x: 0, y, z: 0 },
                    aspect: wgpu::TextureAspect::All,
                },
                wgpu::Extent3d {
                    width,
                    height,
                    depth_or_array_layers: 1,
                },
            );
        };
    if full_rows > 0 {
        copy(encoder, 0, 0, MIRROR_WIDTH, full_rows);
    }
    if tail_chunks > 0 {
        copy(
            encoder,
            u64::from(full_rows) * ROW_BYTES,
            full_rows,
            tail_chunks,
            1,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extents_cover_the_chunks_and_refuse_what_the_adapter_cannot_hold() {
        assert_eq!(extent(16, 16384).unwrap().height, 1);
        assert_eq!(extent(ROW_BYTES, 16384).unwrap().height, 1);
        assert_eq!(extent(ROW_BYTES + 16, 16384).unwrap().height, 2);
        let err = extent(ROW_BYTES * 3, 2).unwrap_err().to_string();
        assert!(err.contains("more than the adapter's 2"), "{err}");
    }
}

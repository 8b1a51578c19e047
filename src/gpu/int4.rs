// SPDX-License-Identifier: MIT OR Apache-2.0
//! Keras's int4 Dense on the GPU: weights quantized on the host exactly as
//! `Dense.quantize("int4")` does (per output channel, or in groups of
//! `block_size` input rows with zero points), activations in the compute
//! dtype, weights dequantized in the kernel (shaders/dense_int4.wgsl).
//!
//! Layout: int4 values eight per u32 along the inner dimension, the lowest k
//! in the lowest nibble (two's complement). Worked example: the weights
//! `[1, -2, 3, -4, 0, 0, 0, 7]` of one column pack to `0x7000_c3e1`.
//! K is padded with zeros to a multiple of [`K_ALIGN`]; W is transposed, N
//! rounded up to even. Scales are f32, `[n]` or `[groups, n]`; zero points
//! int8, four per u32 along n. Both tables have [`table_columns`] columns,
//! so that the kernel reads eight outputs' scales and zero points with
//! three vector loads.

use std::num::NonZeroU32;

use bytemuck::{Pod, Zeroable};

use crate::gpu::GpuError;
use crate::gpu::context::GpuContext;
use crate::gpu::dense::{
    Activation, K_ALIGN, RowsIo, WeightPart, check_family, check_kernel_shape, table_columns,
    table_part,
};
use crate::gpu::dispatch::PreparedDispatch;
use crate::gpu::formats::{HostFloat, StorageFormat};
use crate::gpu::int8::{int8_columns, pack_i8_words, pack_transposed, upload_int8_parts};
use crate::gpu::pipelines::PipelineKey;
use crate::gpu::shaders::{Kernel, StorageVariant};
use crate::quant::abs_max::{IntRange, quantize_kernel_per_column};
use crate::quant::int4::quantize_grouped;

/// The uniform of dense_int4.wgsl (`Int4Dims`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
struct Int4Dims {
    m: u32,
    n: u32,
    k_vecs: u32,
    y_row_words: u32,
    block: u32,
    n_padded: u32,
    groups: u32,
    _pad: u32,
}

/// Packs int4 values (in [-8, 7]) eight per u32, the lowest index in the
/// lowest nibble.
pub fn pack_i4_words(values: &[i8]) -> Vec<u32> {
    values
        .chunks(8)
        .map(|q| {
            q.iter().enumerate().fold(0u32, |w, (i, &v)| {
                w | (u32::from(v as u8 & 0x0f) << (4 * i))
            })
        })
        .collect()
}

/// A weight-only quantized Dense layer's weights on the GPU: int4 (per
/// channel or grouped) or int8 (per channel), read by dense_int4.wgsl.
pub struct WeightOnlyWeights {
    kernel: Kernel,
    storage: StorageVariant,
    k: usize,
    n: usize,
    block: Option<NonZeroU32>,
    groups: usize,
    /// Split by outputs across storage bindings when the weights exceed
    /// the adapter's limit for one. Zero points only when grouped; per
    /// channel their binding gets the scales, never read.
    parts: Vec<WeightPart>,
}

impl WeightOnlyWeights {
    /// Bytes of weights, scales, zero points and bias on the GPU.
    pub fn gpu_bytes(&self) -> u64 {
        self.parts.iter().map(WeightPart::bytes).sum()
    }

    /// How many storage bindings (and dispatches) the weights take.
    pub fn parts(&self) -> usize {
        self.parts.len()
    }
}

/// The `GROUPING` override of the weight-only kernels for `kernel` and a
/// group size along k (`None`: per channel): 0 per channel; 2 grouped with
/// blocks that are whole steps of the matrix-vector kernel (32 k), scaled
/// once per group; 1 any other grouping, each weight dequantized with its
/// group (the tiled kernel always). Separate pipelines, because a CPU driver
/// runs the code of a branch it does not take (lavapipe masks both sides).
pub fn grouping(kernel: Kernel, block: Option<NonZeroU32>) -> u32 {
    match block {
        None => 0,
        Some(b) if b.get().is_multiple_of(32) && !kernel.is_tiled() => 2,
        Some(_) => 1,
    }
}

impl GpuContext {
    /// Quantizes `w` (`[k, n]`) to int4 as Keras does (per channel when
    /// `block` is `None`, else in groups of `block` rows) and uploads it;
    /// `storage` is the format of the activations and outputs.
    pub fn upload_dense_int4<T: HostFloat>(
        &self,
        storage: StorageVariant,
        w: &[T],
        bias: Option<&[T]>,
        (k, n): (usize, usize),
        block: Option<NonZeroU32>,
    ) -> Result<WeightOnlyWeights, GpuError> {
        check_kernel_shape(w.len(), bias.map(<[T]>::len), k, n)?;
        if !Kernel::DenseInt4.supports(storage) {
            return Err(GpuError::Unsupported(format!(
                "int4 Dense computes in f32, f16 or bf16, not {}",
                storage.name()
            )));
        }
        let w32: Vec<f32> = w.iter().map(|v| v.to_f64() as f32).collect();
        let (q, scale, zero, groups) = match block {
            None => {
                let (q, s) = quantize_kernel_per_column(&w32, k, n, IntRange::INT4)
                    .map_err(|e| GpuError::Shape(e.to_string()))?;
                (q, s, Vec::new(), 1)
            }
            Some(b) => {
                let g = quantize_grouped(&w32, k, n, b.get() as usize)
                    .map_err(|e| GpuError::Shape(e.to_string()))?;
                (g.q, g.scale, g.zero, g.groups)
            }
        };
        let (kp, np) = (k.div_ceil(K_ALIGN) * K_ALIGN, n.div_ceil(2) * 2);
        let words = pack_transposed((k, n), (kp, np), |i, j| q[i * n + j], pack_i4_words);
        let format = storage.format();
        let mut b = vec![0f32; np];
        if let Some(bias) = bias {
            for (dst, src) in b.iter_mut().zip(bias) {
                *dst = format.round(src.to_f64()) as f32;
            }
        }
        // Each part's columns of every group's scales and zero points,
        // padded to table_columns of its outputs.
        let parts = self.upload_parts(
            "int4",
            (&words, kp / 8),
            (&StorageFormat::F32.encode(&b), 1),
            |part| {
                let scales = table_part(&scale, n, part, 1.0);
                let zeros =
                    (!zero.is_empty()).then(|| pack_i8_words(&table_part(&zero, n, part, 0)));
                (Some(StorageFormat::F32.encode(&scales)), zeros)
            },
        )?;
        Ok(WeightOnlyWeights {
            kernel: Kernel::DenseInt4,
            storage,
            k,
            n,
            block,
            groups,
            parts,
        })
    }

    /// Quantizes `w` (`[k, n]`) to int8 per output column as Keras does and
    /// uploads it for Keras's int8 Dense without an activation quantizer
    /// (`Int8QuantizationConfig(activation_quantizer=None)`):
    /// `y = (x · q) / s_w`, activations in the compute dtype. Run it with
    /// [`GpuContext::dense_int4`].
    pub fn upload_dense_int8_weight_only<T: HostFloat>(
        &self,
        storage: StorageVariant,
        w: &[T],
        bias: Option<&[T]>,
        (k, n): (usize, usize),
    ) -> Result<WeightOnlyWeights, GpuError> {
        let columns = int8_columns(Kernel::DenseInt8WeightOnly, storage, w, bias, (k, n))?;
        let kp = k.div_ceil(K_ALIGN) * K_ALIGN;
        Ok(WeightOnlyWeights {
            kernel: Kernel::DenseInt8WeightOnly,
            storage,
            k,
            n,
            block: None,
            groups: 1,
            parts: upload_int8_parts(self, "int8", &columns, kp)?,
        })
    }

    /// Runs Keras's int4 Dense (or weight-only int8) on `m` rows of `x`
    /// (`[m, k]`) with `kernel`: the weights' matrix-vector kernel
    /// ([`Kernel::DenseInt4`], [`Kernel::DenseInt8WeightOnly`]) or its
    /// tiled one ([`Kernel::tiled`]).
    pub fn dense_int4<T: HostFloat>(
        &mut self,
        weights: &WeightOnlyWeights,
        kernel: Kernel,
        activation: Activation,
        x: &[T],
        m: usize,
    ) -> Result<Vec<T>, GpuError> {
        let run = self.prepare_dense_int4(weights, kernel, activation, x, m)?;
        self.submit_all(&run.passes.iter().collect::<Vec<_>>())?;
        self.read_rows(&run.io)
    }

    /// Uploads `x` and binds the int4 kernel, ready to run again and again
    /// with [`GpuContext::run_prepared`] (for benchmarks).
    pub fn prepare_dense_int4<T: HostFloat>(
        &mut self,
        weights: &WeightOnlyWeights,
        kernel: Kernel,
        activation: Activation,
        x: &[T],
        m: usize,
    ) -> Result<PreparedInt4, GpuError> {
        check_family(weights.kernel, kernel)?;
        let (k, n) = (weights.k, weights.n);
        let io = self.rows_io("int4", weights.storage, activation, x, (m, k, n))?;
        let key = PipelineKey {
            kernel,
            storage: weights.storage,
            specialization: activation as u32,
            mode: grouping(kernel, weights.block),
        };
        // 32 int4 or 16 int8 values per vec4<u32> of weights.
        let values_per_vec = if weights.kernel == Kernel::DenseInt4 {
            32
        } else {
            16
        };
        // A dispatch per part of the weights.
        let dims = |part: &WeightPart, outputs: usize| Int4Dims {
            m: m as u32,
            n: outputs as u32,
            k_vecs: (io.k_padded / values_per_vec) as u32,
            y_row_words: io.row_words as u32,
            block: weights.block.map_or(1, NonZeroU32::get),
            n_padded: table_columns(part.len) as u32,
            groups: weights.groups as u32,
            _pad: 0,
        };
        let passes = self.prepare_parts(key, (m, n), &weights.parts, dims, |part| {
            let scale = part.scale.as_ref().unwrap_or(&part.w);
            vec![
                io.x.as_entire_buffer_binding(),
                part.w.as_entire_buffer_binding(),
                part.bias.as_entire_buffer_binding(),
                part.y_binding(&io.y, io.format),
                scale.as_entire_buffer_binding(),
                part.zero
                    .as_ref()
                    .unwrap_or(scale)
                    .as_entire_buffer_binding(),
            ]
        })?;
        // x is read once per part.
        let x_bytes = io.x.size() * passes.len() as u64;
        let bytes = x_bytes + weights.gpu_bytes() + io.y_bytes();
        Ok(PreparedInt4 { passes, io, bytes })
    }
}

/// An int4 Dense call with its inputs on the GPU, ready to run.
pub struct PreparedInt4 {
    /// The bound dispatches, one per part of the weights (one unless they
    /// were split across storage bindings), run in order.
    pub passes: Vec<PreparedDispatch>,
    io: RowsIo,
    /// Bytes one run reads plus writes.
    pub bytes: u64,
}

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
    Activation, K_ALIGN, RowsIo, check_family, check_kernel_shape, table_columns,
};
use crate::gpu::dispatch::PreparedDispatch;
use crate::gpu::formats::{HostFloat, StorageFormat};
use crate::gpu::int8::{int8_columns, pack_i8_words, pack_transposed};
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
    w: wgpu::Buffer,
    scale: wgpu::Buffer,
    /// Grouped only; per channel the binding gets `scale`, never read.
    zero: Option<wgpu::Buffer>,
    bias: wgpu::Buffer,
}

impl WeightOnlyWeights {
    /// Bytes of weights, scales, zero points and bias on the GPU.
    pub fn gpu_bytes(&self) -> u64 {
        let zero = self.zero.as_ref().map_or(0, wgpu::Buffer::size);
        self.w.size() + self.scale.size() + zero + self.bias.size()
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
        // Tables padded from n to table_columns(n) per group.
        let nt = table_columns(n);
        let pad = |table: &[f32], fill: f32| -> Vec<f32> {
            table
                .chunks(n)
                .flat_map(|row| row.iter().copied().chain(std::iter::repeat_n(fill, nt - n)))
                .collect()
        };
        let scales = pad(&scale, 1.0);
        let zeros: Option<Vec<i8>> = (!zero.is_empty()).then(|| {
            let z: Vec<f32> = zero.iter().map(|&v| f32::from(v)).collect();
            pad(&z, 0.0).iter().map(|&v| v as i8).collect()
        });
        let format = storage.format();
        let mut b = vec![0f32; np];
        if let Some(bias) = bias {
            for (dst, src) in b.iter_mut().zip(bias) {
                *dst = format.round(src.to_f64()) as f32;
            }
        }
        let f32_words = |v: &[f32]| StorageFormat::F32.encode(v);
        let usage = wgpu::BufferUsages::STORAGE;
        Ok(WeightOnlyWeights {
            kernel: Kernel::DenseInt4,
            storage,
            k,
            n,
            block,
            groups,
            w: self.storage_buffer("int4 weights", &words, usage)?,
            scale: self.storage_buffer("int4 scales", &f32_words(&scales), usage)?,
            zero: zeros
                .map(|z| self.storage_buffer("int4 zero points", &pack_i8_words(&z), usage))
                .transpose()?,
            bias: self.storage_buffer("int4 bias", &f32_words(&b), usage)?,
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
        let (words, scales, b) =
            int8_columns(Kernel::DenseInt8WeightOnly, storage, w, bias, (k, n))?;
        let usage = wgpu::BufferUsages::STORAGE;
        Ok(WeightOnlyWeights {
            kernel: Kernel::DenseInt8WeightOnly,
            storage,
            k,
            n,
            block: None,
            groups: 1,
            w: self.storage_buffer("int8 weights", &words, usage)?,
            scale: self.storage_buffer(
                "int8 scales",
                &StorageFormat::F32.encode(&scales),
                usage,
            )?,
            zero: None,
            bias: self.storage_buffer("int8 bias", &StorageFormat::F32.encode(&b), usage)?,
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
        self.submit_all(&[&run.dispatch])?;
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
        let dims = Int4Dims {
            m: m as u32,
            n: n as u32,
            // 32 int4 or 16 int8 values per vec4<u32> of weights.
            k_vecs: (io.k_padded
                / if weights.kernel == Kernel::DenseInt4 {
                    32
                } else {
                    16
                }) as u32,
            y_row_words: io.row_words as u32,
            block: weights.block.map_or(1, NonZeroU32::get),
            n_padded: table_columns(n) as u32,
            groups: weights.groups as u32,
            _pad: 0,
        };
        let dims = self.uniform_buffer("int4 dims", &dims)?;
        let key = PipelineKey {
            kernel,
            storage: weights.storage,
            specialization: activation as u32,
            mode: grouping(kernel, weights.block),
        };
        let buffers = [
            &dims,
            &io.x,
            &weights.w,
            &weights.bias,
            &io.y,
            &weights.scale,
            weights.zero.as_ref().unwrap_or(&weights.scale),
        ];
        let dispatch = self.prepare(key, &buffers, GpuContext::dense_groups(kernel, m, n)?)?;
        let bytes = io.x.size() + weights.gpu_bytes() + io.y.size();
        Ok(PreparedInt4 {
            dispatch,
            io,
            bytes,
        })
    }
}

/// An int4 Dense call with its inputs on the GPU, ready to run.
pub struct PreparedInt4 {
    /// The bound dispatch.
    pub dispatch: PreparedDispatch,
    io: RowsIo,
    /// Bytes one run reads plus writes.
    pub bytes: u64,
}

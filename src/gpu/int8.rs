// SPDX-License-Identifier: MIT OR Apache-2.0
//! Keras's int8 Dense on the GPU: weights quantized on the host (per output
//! column, exactly as `Dense.quantize("int8")`), activations quantized per
//! row on the GPU (shaders/quantize_rows.wgsl), then `dot4I8Packed` with
//! exact i32 accumulation (shaders/dense_int8.wgsl).
//!
//! Layout: int8 values four per u32 along the inner dimension (lowest k in
//! the lowest byte), so one word of activations meets one word of weights in
//! a dot product. K is padded with zeros to a multiple of [`K_ALIGN`]; W is
//! stored transposed, N rounded up to even. Worked example: the weights
//! `[1, -2, 3, -4]` of one column pack to the word `0xfc03_fe01`.

use bytemuck::{Pod, Zeroable};

use crate::gpu::GpuError;
use crate::gpu::context::GpuContext;
use crate::gpu::dense::{
    Activation, K_ALIGN, RowsIo, WeightPart, check_family, check_kernel_shape, table_columns,
    table_part,
};
use crate::gpu::dispatch::PreparedDispatch;
use crate::gpu::formats::{HostFloat, StorageFormat};
use crate::gpu::pipelines::PipelineKey;
use crate::gpu::shaders::{Kernel, StorageVariant};
use crate::quant::abs_max::{IntRange, quantize_kernel_per_column};

/// The uniforms of quantize_rows.wgsl and dense_int8.wgsl.
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
struct Dims4 {
    a: u32,
    b: u32,
    c: u32,
    d: u32,
}

/// Packs int8 values four per u32, the lowest index in the lowest byte.
pub fn pack_i8_words(values: &[i8]) -> Vec<u32> {
    values
        .chunks(4)
        .map(|q| {
            q.iter()
                .enumerate()
                .fold(0u32, |w, (i, &v)| w | (u32::from(v as u8) << (8 * i)))
        })
        .collect()
}

/// An int8 Dense call with its inputs on the GPU, ready to run.
pub struct PreparedInt8 {
    /// The activation quantizer's pass, then the product's.
    pub passes: Vec<PreparedDispatch>,
    /// Bytes one run reads plus writes, both passes.
    pub bytes: u64,
}

/// W^T of a `[k, n]` matrix of small integers (`value(i, j)`), each of the
/// `n_padded` columns padded with zeros to `k_padded` and packed along k by
/// `pack` (four int8 or eight int4 per u32); columns past `n` are zeros.
pub(crate) fn pack_transposed(
    (k, n): (usize, usize),
    (k_padded, n_padded): (usize, usize),
    value: impl Fn(usize, usize) -> i8,
    pack: fn(&[i8]) -> Vec<u32>,
) -> Vec<u32> {
    let mut column = vec![0i8; k_padded];
    let mut words = Vec::new();
    for j in 0..n_padded {
        column.fill(0);
        if j < n {
            for (i, c) in column.iter_mut().take(k).enumerate() {
                *c = value(i, j);
            }
        }
        words.extend(pack(&column));
    }
    words
}

/// Packed int8 words of W^T, the per-column scales, the rounded bias.
pub(crate) type Int8Columns = (Vec<u32>, Vec<f32>, Vec<f32>);

/// A kernel `[k, n]` quantized to int8 per output column as Keras does and
/// laid out for `kernel` (W^T, four per u32 along k), with its scales and its
/// bias rounded to the compute dtype, padded to N rounded up to even.
pub(crate) fn int8_columns<T: HostFloat>(
    kernel: Kernel,
    storage: StorageVariant,
    w: &[T],
    bias: Option<&[T]>,
    (k, n): (usize, usize),
) -> Result<Int8Columns, GpuError> {
    check_kernel_shape(w.len(), bias.map(<[T]>::len), k, n)?;
    if !kernel.supports(storage) {
        return Err(GpuError::Unsupported(format!(
            "int8 Dense computes in f32, f16 or bf16, not {}",
            storage.name()
        )));
    }
    let w32: Vec<f32> = w.iter().map(|v| v.to_f64() as f32).collect();
    let (q, mut scales) = quantize_kernel_per_column(&w32, k, n, IntRange::INT8)
        .map_err(|e| GpuError::Shape(e.to_string()))?;
    let (kp, np) = (k.div_ceil(K_ALIGN) * K_ALIGN, n.div_ceil(2) * 2);
    let words = pack_transposed((k, n), (kp, np), |i, j| q[i * n + j], pack_i8_words);
    scales.resize(table_columns(n), 1.0);
    let format = storage.format();
    let b = (0..np)
        .map(|j| {
            bias.filter(|_| j < n)
                .map_or(0.0, |b| format.round(b[j].to_f64()) as f32)
        })
        .collect();
    Ok((words, scales, b))
}

/// An int8 Dense layer's weights on the GPU, split by outputs across
/// storage bindings when they exceed the adapter's limit for one.
pub struct Int8Weights {
    storage: StorageVariant,
    k: usize,
    n: usize,
    parts: Vec<WeightPart>,
}

impl Int8Weights {
    /// Bytes of weights, scales and bias on the GPU.
    pub fn gpu_bytes(&self) -> u64 {
        self.parts.iter().map(WeightPart::bytes).sum()
    }

    /// How many storage bindings (and product dispatches) the weights take.
    pub fn parts(&self) -> usize {
        self.parts.len()
    }
}

/// A layer's int8 weight parts: each run of outputs of `words` (W^T rows of
/// `kp` int8, four per u32), its scales (a row of `scales`) and bias.
pub(crate) fn upload_int8_parts(
    ctx: &GpuContext,
    label: &str,
    (words, scales, b): &Int8Columns,
    kp: usize,
) -> Result<Vec<WeightPart>, GpuError> {
    let f32_words = |v: &[f32]| StorageFormat::F32.encode(v);
    ctx.upload_parts(label, (words, kp / 4), (&f32_words(b), 1), |part| {
        (
            Some(f32_words(&table_part(scales, scales.len(), part, 1.0))),
            None,
        )
    })
}

impl GpuContext {
    /// Quantizes a Dense kernel `w` (`[k, n]`, Keras's layout) to int8 on the
    /// host as Keras does and uploads it; `storage` is the format of the
    /// activations and outputs (the policy's compute dtype).
    pub fn upload_dense_int8<T: HostFloat>(
        &self,
        storage: StorageVariant,
        w: &[T],
        bias: Option<&[T]>,
        k: usize,
        n: usize,
    ) -> Result<Int8Weights, GpuError> {
        let columns = int8_columns(Kernel::DenseInt8, storage, w, bias, (k, n))?;
        let kp = k.div_ceil(K_ALIGN) * K_ALIGN;
        Ok(Int8Weights {
            storage,
            k,
            n,
            parts: upload_int8_parts(self, "int8", &columns, kp)?,
        })
    }

    /// Runs Keras's int8 Dense on `m` rows of `x` (`[m, k]`).
    pub fn dense_int8<T: HostFloat>(
        &mut self,
        weights: &Int8Weights,
        kernel: Kernel,
        activation: Activation,
        x: &[T],
        m: usize,
    ) -> Result<Vec<T>, GpuError> {
        let (run, io) = self.prepare_int8(weights, kernel, activation, false, x, m)?;
        self.submit_all(&run.iter().collect::<Vec<_>>())?;
        self.read_rows(&io)
    }

    /// The raw i32 accumulators of the int8 product `[m, n]` (for checking
    /// against the CPU twin bit for bit). Needs a 32-bit output format.
    pub fn dense_int8_accumulators<T: HostFloat>(
        &mut self,
        weights: &Int8Weights,
        kernel: Kernel,
        x: &[T],
        m: usize,
    ) -> Result<Vec<i32>, GpuError> {
        if weights.storage != StorageVariant::F32 {
            return Err(GpuError::Unsupported(
                "accumulators are read through f32 weights".to_owned(),
            ));
        }
        let (run, io) = self.prepare_int8(weights, kernel, Activation::Linear, true, x, m)?;
        self.submit_all(&run.iter().collect::<Vec<_>>())?;
        let mut words = self.read_back(&io.y)?;
        words.truncate(m * io.row_words);
        Ok(words.into_iter().map(|w| w as i32).collect())
    }

    fn prepare_int8<T: HostFloat>(
        &mut self,
        weights: &Int8Weights,
        kernel: Kernel,
        activation: Activation,
        write_accumulator: bool,
        x: &[T],
        m: usize,
    ) -> Result<(Vec<PreparedDispatch>, RowsIo), GpuError> {
        check_family(Kernel::DenseInt8, kernel)?;
        let (k, n) = (weights.k, weights.n);
        let io = self.rows_io("int8", weights.storage, activation, x, (m, k, n))?;
        let kp = io.k_padded;
        let q_row_words = kp / 4;
        let q_buf = self.output_buffer("int8 quantized x", (m * q_row_words * 4) as u64)?;
        let x_scale = self.output_buffer("int8 x scales", (m * 4).max(4) as u64)?;
        let values_per_chunk = weights.storage.format().values_per_chunk();
        let qdims = Dims4 {
            a: m as u32,
            b: (kp / values_per_chunk) as u32,
            c: q_row_words as u32,
            d: 0,
        };
        let qdims = self.uniform_buffer("quantize dims", &qdims)?;
        let quantize = PipelineKey {
            kernel: Kernel::QuantizeRows,
            storage: weights.storage,
            specialization: 0,
            mode: 0,
        };
        let quantize = self.prepare(quantize, &[&qdims, &io.x, &q_buf, &x_scale], (m as u32, 1))?;
        let key = PipelineKey {
            kernel,
            storage: weights.storage,
            specialization: activation as u32,
            mode: u32::from(write_accumulator),
        };
        // The product, a dispatch per part of the weights.
        let dims = |_: &WeightPart, outputs: usize| Dims4 {
            a: m as u32,
            b: outputs as u32,
            c: (kp / 16) as u32,
            d: io.row_words as u32,
        };
        let products = self.prepare_parts(key, (m, n), &weights.parts, dims, |part| {
            vec![
                q_buf.as_entire_buffer_binding(),
                part.w.as_entire_buffer_binding(),
                part.bias.as_entire_buffer_binding(),
                part.y_binding(&io.y, io.format),
                x_scale.as_entire_buffer_binding(),
                part.scale
                    .as_ref()
                    .unwrap_or(&part.w)
                    .as_entire_buffer_binding(),
            ]
        })?;
        let passes = std::iter::once(quantize).chain(products).collect();
        Ok((passes, io))
    }

    /// Uploads `x` and binds both passes (activation quantizer, int8
    /// product), ready to run again and again with
    /// [`GpuContext::run_prepared_passes`] (for benchmarks).
    pub fn prepare_dense_int8<T: HostFloat>(
        &mut self,
        weights: &Int8Weights,
        kernel: Kernel,
        activation: Activation,
        x: &[T],
        m: usize,
    ) -> Result<PreparedInt8, GpuError> {
        let (passes, io) = self.prepare_int8(weights, kernel, activation, false, x, m)?;
        let q_bytes = (m * io.k_padded) as u64;
        // x read and q written, then per part of the weights q read; W,
        // scales, bias read and y written.
        let q_reads = passes.len() as u64 - 1;
        let bytes = io.x.size() + (1 + q_reads) * q_bytes + weights.gpu_bytes() + io.y_bytes();
        Ok(PreparedInt8 { passes, bytes })
    }
}

// SPDX-License-Identifier: MIT OR Apache-2.0
//! Keras's float8 Dense on the GPU (inference): weights quantized on the
//! host to e4m3fn codes as Keras's `quantize_and_dequantize` does
//! (`clip(W / s_w, -448, 448)`, round to nearest even), four per u32 along
//! the inner dimension (lowest k in the lowest byte); activations
//! quantize-dequantized in the kernel (shaders/dense_float8.wgsl) with a
//! per-tensor scale. Scales are Keras's `inputs_scale` and `kernel_scale`
//! (1.0 for a freshly quantized layer; trained layers carry their own).

use bytemuck::{Pod, Zeroable};

use crate::gpu::GpuError;
use crate::gpu::context::GpuContext;
use crate::gpu::dense::{
    Activation, K_ALIGN, RowsIo, WeightPart, check_family, check_kernel_shape,
};
use crate::gpu::dispatch::PreparedDispatch;
use crate::gpu::formats::{HostFloat, StorageFormat};
use crate::gpu::int8::{pack_i8_words, pack_transposed};
use crate::gpu::pipelines::PipelineKey;
use crate::gpu::shaders::{Kernel, StorageVariant};
use crate::quant::float8::Float8;

/// The uniform of dense_float8.wgsl (`Float8Dims`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
struct Float8Dims {
    m: u32,
    n: u32,
    k_vecs: u32,
    y_row_words: u32,
    x_scale: f32,
    w_scale: f32,
    weight_nans: u32,
    fold_scale: u32,
}

/// The largest kernel scale: 2^100, so that 256 times it is a finite f32.
pub const MAX_KERNEL_SCALE: f32 = 1.267_650_6e30;

/// The per-tensor scales of a float8 Dense layer (Keras's `inputs_scale`
/// and `kernel_scale`): values are divided by them before encoding.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Float8Scales {
    /// The activations' scale.
    pub inputs: f32,
    /// The kernel's scale.
    pub kernel: f32,
}

impl Default for Float8Scales {
    /// A freshly quantized Keras layer's scales: 1.0.
    fn default() -> Self {
        Float8Scales {
            inputs: 1.0,
            kernel: 1.0,
        }
    }
}

/// A float8 Dense layer's weights on the GPU.
pub struct Float8Weights {
    storage: StorageVariant,
    format8: Float8,
    k: usize,
    n: usize,
    scales: Float8Scales,
    /// Some code is NaN (the kernel then decodes e4m3 exactly, slower).
    nan_codes: bool,
    /// Split by outputs across storage bindings when the codes exceed the
    /// adapter's limit for one.
    parts: Vec<WeightPart>,
}

impl Float8Weights {
    /// Bytes of codes and bias on the GPU.
    pub fn gpu_bytes(&self) -> u64 {
        self.parts.iter().map(WeightPart::bytes).sum()
    }

    /// How many storage bindings (and dispatches) the codes take.
    pub fn parts(&self) -> usize {
        self.parts.len()
    }
}

impl GpuContext {
    /// Encodes `w` (`[k, n]`) to e4m3fn codes with the kernel scale and
    /// uploads them; `storage` is the format of the activations and outputs.
    /// The bias is rounded to the compute dtype, and through bfloat16 first
    /// when that is float32, as Keras does.
    pub fn upload_dense_float8<T: HostFloat>(
        &self,
        storage: StorageVariant,
        w: &[T],
        bias: Option<&[T]>,
        (k, n): (usize, usize),
        scales: Float8Scales,
    ) -> Result<Float8Weights, GpuError> {
        self.upload_dense_float8_as(Float8::E4M3Fn, storage, w, bias, (k, n), scales)
    }

    /// [`GpuContext::upload_dense_float8`] with the weights stored in
    /// `format8`: e4m3fn as Keras, or e5m2 (a storage choice, range 57344,
    /// two mantissa bits; the activations stay e4m3fn).
    pub fn upload_dense_float8_as<T: HostFloat>(
        &self,
        format8: Float8,
        storage: StorageVariant,
        w: &[T],
        bias: Option<&[T]>,
        (k, n): (usize, usize),
        scales: Float8Scales,
    ) -> Result<Float8Weights, GpuError> {
        check_kernel_shape(w.len(), bias.map(<[T]>::len), k, n)?;
        if !Kernel::DenseFloat8.supports(storage) {
            return Err(GpuError::Unsupported(format!(
                "float8 Dense computes in f32, f16 or bf16, not {}",
                storage.name()
            )));
        }
        if !(scales.inputs.is_finite()
            && scales.inputs > 0.0
            && scales.kernel.is_finite()
            && scales.kernel > 0.0)
        {
            return Err(GpuError::Unsupported(format!(
                "float8 scales must be positive and finite, got {scales:?}"
            )));
        }
        // The kernel multiplies by 256 · kernel scale (see dense_float8.wgsl).
        if scales.kernel > MAX_KERNEL_SCALE {
            return Err(GpuError::Unsupported(format!(
                "float8 kernel scale {} is above {MAX_KERNEL_SCALE:e}; no float8 weights need one that large",
                scales.kernel
            )));
        }
        let max = format8.max();
        // Keras reads the kernel autocast to the compute dtype and divides it
        // there by the scale cast to it.
        let format = storage.format();
        let c = |v: f32| format.round(f64::from(v)) as f32;
        let kernel_scale = c(scales.kernel);
        let (kp, np) = (k.div_ceil(K_ALIGN) * K_ALIGN, n.div_ceil(2) * 2);
        let code = |i: usize, j: usize| {
            let v = c(c(w[i * n + j].to_f64() as f32) / kernel_scale).clamp(-max, max);
            format8.encode(v) as i8
        };
        let words = pack_transposed((k, n), (kp, np), code, pack_i8_words);
        let nan_codes = format8 == Float8::E4M3Fn
            && words
                .iter()
                .any(|w| w.to_le_bytes().iter().any(|b| b & 0x7f == 0x7f));
        let mut b = vec![0f32; np];
        if let Some(bias) = bias {
            for (dst, src) in b.iter_mut().zip(bias) {
                *dst = float8_bias(format, src.to_f64());
            }
        }
        let parts = self.upload_parts(
            "float8",
            (&words, kp / 4),
            (&StorageFormat::F32.encode(&b), 1),
            |_| (None, None),
        )?;
        Ok(Float8Weights {
            storage,
            format8,
            k,
            n,
            scales,
            nan_codes,
            parts,
        })
    }

    /// Runs Keras's float8 Dense on `m` rows of `x` (`[m, k]`) with
    /// `kernel`: [`Kernel::DenseFloat8`] (matrix-vector) or
    /// [`Kernel::DenseFloat8Tiled`].
    pub fn dense_float8<T: HostFloat>(
        &mut self,
        weights: &Float8Weights,
        kernel: Kernel,
        activation: Activation,
        x: &[T],
        m: usize,
    ) -> Result<Vec<T>, GpuError> {
        let run = self.prepare_dense_float8(weights, kernel, activation, x, m)?;
        self.submit_all(&run.passes.iter().collect::<Vec<_>>())?;
        self.read_rows(&run.io)
    }

    /// Uploads `x` and binds the float8 kernel, ready to run again and
    /// again with [`GpuContext::run_prepared`] (for benchmarks).
    pub fn prepare_dense_float8<T: HostFloat>(
        &mut self,
        weights: &Float8Weights,
        kernel: Kernel,
        activation: Activation,
        x: &[T],
        m: usize,
    ) -> Result<PreparedFloat8, GpuError> {
        check_family(Kernel::DenseFloat8, kernel)?;
        let (k, n) = (weights.k, weights.n);
        let io = self.rows_io("float8", weights.storage, activation, x, (m, k, n))?;
        // Keras casts the scales to the compute dtype.
        let format = weights.storage.format();
        let scale = |s: f32| format.round(f64::from(s)) as f32;
        let key = PipelineKey {
            kernel,
            storage: weights.storage,
            specialization: activation as u32,
            mode: u32::from(weights.format8 == Float8::E5M2),
        };
        // A dispatch per part of the codes.
        let dims = |_: &WeightPart, outputs: usize| Float8Dims {
            m: m as u32,
            n: outputs as u32,
            k_vecs: (io.k_padded / 16) as u32,
            y_row_words: io.row_words as u32,
            x_scale: scale(weights.scales.inputs),
            w_scale: scale(weights.scales.kernel),
            weight_nans: u32::from(weights.nan_codes),
            fold_scale: u32::from(fold_scale(
                weights.format8,
                scale(weights.scales.kernel),
                scale(weights.scales.inputs),
            )),
        };
        let passes = self.prepare_parts(key, (m, n), &weights.parts, dims, |part| {
            vec![
                io.x.as_entire_buffer_binding(),
                part.w.as_entire_buffer_binding(),
                part.bias.as_entire_buffer_binding(),
                part.y_binding(&io.y, io.format),
            ]
        })?;
        // x is read once per part.
        let x_bytes = io.x.size() * passes.len() as u64;
        let bytes = x_bytes + weights.gpu_bytes() + io.y_bytes();
        Ok(PreparedFloat8 { passes, io, bytes })
    }
}

/// A float8 Dense call with its inputs on the GPU, ready to run.
pub struct PreparedFloat8 {
    /// The bound dispatches, one per part of the codes (one unless they
    /// were split across storage bindings), run in order.
    pub passes: Vec<PreparedDispatch>,
    io: RowsIo,
    /// Bytes one run reads plus writes.
    pub bytes: u64,
}

/// Whether the matrix-vector kernel may multiply its sums by the kernel
/// scale `s_w` instead of every weight, with the same result: every
/// weight times `s_w` is exact ([`exact_in_any_format`]) and `s_x` keeps
/// every product and partial sum normal and finite both ways (|x| is at
/// most 448 · s_x, and no smaller than 2^-9 · s_x when not zero; decoded
/// weights lie between 2^-17 and 57344).
fn fold_scale(format8: Float8, s_w: f32, s_x: f32) -> bool {
    exact_in_any_format(format8, s_w) && (2f32.powi(-60)..=2f32.powi(60)).contains(&s_x)
}

/// Whether every `format8` value times `s` is exact in f32, f16 and bf16,
/// so that the kernel may scale sums instead of weights: `s` is a power of
/// two within f16's range for the format (e4m3: 448 · 2^7 < 65504 and
/// 2^-9 · 2^-15 = 2^-24; e5m2: 57344 · 2^0, 2^-16 · 2^-8).
fn exact_in_any_format(format8: Float8, s: f32) -> bool {
    let exponent = ((s.to_bits() >> 23) & 0xff) as i32 - 127;
    let range = match format8 {
        Float8::E4M3Fn => -15..=7,
        Float8::E5M2 => -8..=0,
    };
    s > 0.0 && s.to_bits() & 0x7f_ffff == 0 && range.contains(&exponent)
}

/// Keras's float8 bias: rounded through bfloat16 when the compute dtype is
/// float32 (for XLA's bias-add fusion), else to the compute dtype.
pub fn float8_bias(format: StorageFormat, b: f64) -> f32 {
    if format == StorageFormat::F32 {
        StorageFormat::BF16.round(b) as f32
    } else {
        format.round(b) as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_powers_of_two_in_f16_range_fold() {
        assert!(exact_in_any_format(Float8::E4M3Fn, 1.0));
        assert!(exact_in_any_format(Float8::E4M3Fn, 128.0));
        assert!(exact_in_any_format(Float8::E4M3Fn, 2f32.powi(-15)));
        assert!(!exact_in_any_format(Float8::E4M3Fn, 256.0));
        assert!(!exact_in_any_format(Float8::E4M3Fn, 2f32.powi(-16)));
        assert!(!exact_in_any_format(Float8::E4M3Fn, 0.3));
        assert!(!exact_in_any_format(Float8::E5M2, 2.0));
        assert!(exact_in_any_format(Float8::E5M2, 0.25));
        assert!(fold_scale(Float8::E4M3Fn, 1.0, 0.3));
        assert!(!fold_scale(Float8::E4M3Fn, 1.0, 1e30));
        assert!(!fold_scale(Float8::E4M3Fn, 1.0, 1e-30));
    }
}

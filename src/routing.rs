// SPDX-License-Identifier: MIT OR Apache-2.0
//! Policy to kernel: the one place where Keras policies meet the GPU
//! runtime. A pure function of (policy, problem shape, adapter
//! capabilities), so it is tested without a GPU.

use crate::error::{Error, Result};
use crate::format::WeightFormat;
use crate::gpu::context::Capabilities;
use crate::gpu::dense::{DenseLayout, Family, pipeline_of};
use crate::gpu::kernels::{Kernel, MATVEC_OUTPUTS};
use crate::gpu::pipelines::PipelineKey;
use crate::gpu::shaders::{StorageVariant, XShare};
use crate::ops::{Activation, DenseShape};
use crate::policy::any::Policy;
use crate::policy::dtype::DType;
use crate::policy::quantized::QuantizationMode;
use crate::quant::float8::Float8;

/// Up to this many rows, Dense runs the matrix-vector kernel (memory bound:
/// it streams each weight once per row); above, the tiled kernel, which
/// reuses each staged weight for 64 rows.
pub const MATVEC_MAX_ROWS: usize = DenseShape::MATVEC_MAX_ROWS;

/// The kernel a Dense layer runs, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DenseChoice {
    /// How the weights are stored.
    pub format: WeightFormat,
    /// Matrix-vector or tiled.
    pub shape: DenseShape,
    /// How the activations (and float weights) are stored and read.
    pub storage: StorageVariant,
    /// Why, in words: the policy's part, then the shape's.
    pub reason: String,
    /// The matrix-vector kernel on the adapter ([`Family::matvec_on`]).
    pub matvec: Kernel,
}

impl DenseChoice {
    /// The kernel it runs.
    pub fn kernel(&self) -> Kernel {
        match self.shape {
            DenseShape::MatVec => self.matvec,
            DenseShape::Tiled => Family::of(self.format).kernel(self.shape),
        }
    }

    /// The pipeline it runs with `activation`.
    pub fn pipeline(&self, activation: Activation) -> PipelineKey {
        pipeline_of(self.kernel(), self.format, self.storage, activation)
    }

    /// Where the layer's values sit on the GPU; `Err` for a shape that is
    /// empty or too large to address.
    pub fn layout(&self, k: usize, n: usize) -> Result<DenseLayout> {
        DenseLayout::new(self.storage.format(), self.format, k, n)
    }

    /// Bytes the layer's weights take on an adapter whose storage bindings
    /// hold at most `limit`: its layout's, plus the lanes copy of W^T its
    /// matrix-vector kernel reads on a CPU driver
    /// ([`DenseLayout::lanes_bytes`]).
    pub fn weight_bytes(&self, k: usize, n: usize, limit: u64) -> Result<u64> {
        let layout = self.layout(k, n)?;
        let lanes = match self.matvec.spec().lanes_layout {
            true => layout.lanes_bytes(limit).unwrap_or(0),
            false => 0,
        };
        Ok(layout.weight_bytes().saturating_add(lanes))
    }
}

/// The weight format a policy stores a Dense kernel in, as Keras does (by
/// the quantization mode, whatever the policy class); for int8 policies,
/// `int8_weight_only` is the layer's `Int8QuantizationConfig` without an
/// activation quantizer.
pub fn weight_format(policy: &Policy, int8_weight_only: bool) -> Result<WeightFormat> {
    Ok(match (policy, policy.quantization_mode()) {
        (_, None) => WeightFormat::Float,
        (_, Some(QuantizationMode::Int8)) => WeightFormat::Int8 {
            quantized_inputs: !int8_weight_only,
        },
        (Policy::Int4(p), _) => WeightFormat::Int4 {
            block: p.group_size(),
            quantized_inputs: false,
        },
        (_, Some(QuantizationMode::Int4)) => WeightFormat::Int4 {
            block: None,
            quantized_inputs: false,
        },
        (_, Some(QuantizationMode::Float8)) => WeightFormat::Float8(Float8::E4M3Fn),
        (_, Some(mode)) => {
            return Err(Error::Unsupported(format!(
                "{} quantizes with {mode}; no {mode} Dense kernel exists here (GPTQ and AWQ need \
                 their calibrated weights), so use the source policy '{}' for this layer",
                policy.name(),
                policy.float_source().name()
            )));
        }
    })
}

/// Chooses the Dense kernel for `policy` on an adapter with `caps`, for
/// `rows` rows of input.
pub fn select_dense(policy: &Policy, rows: usize, caps: &Capabilities) -> Result<DenseChoice> {
    select_dense_with(policy, rows, caps, false)
}

/// [`select_dense`], and for int8 policies whether the layer quantizes its
/// activations (Keras's default) or only its weights.
pub fn select_dense_with(
    policy: &Policy,
    rows: usize,
    caps: &Capabilities,
    int8_weight_only: bool,
) -> Result<DenseChoice> {
    let format = weight_format(policy, int8_weight_only)?;
    let name = policy.name();
    let (storage, why) = match policy.compute_dtype() {
        DType::Float32 => (
            StorageVariant::F32,
            "f32 storage, f32 arithmetic".to_owned(),
        ),
        // CPU drivers (lavapipe, llvmpipe, WARP) emulate f16 arithmetic in
        // software; the packed form gives the same numbers faster there
        // (lavapipe, 1 x 4096 x 4096: 5.3 ms native against 3.2 ms packed).
        DType::Float16 if caps.shader_f16 && caps.device_type == "Cpu" => (
            StorageVariant::F16Packed,
            "f16 packed in u32: the adapter is a CPU driver, where f16 types are emulated; same \
             numbers as native f16, faster"
                .to_owned(),
        ),
        DType::Float16 if caps.shader_f16 => (
            StorageVariant::F16Native,
            "f16 (SHADER_F16): weights uploaded once in f16, f32 accumulation".to_owned(),
        ),
        DType::Float16 => (
            StorageVariant::F16Packed,
            "f16 packed in u32: the adapter lacks SHADER_F16; same numbers as native f16"
                .to_owned(),
        ),
        DType::BFloat16 => (
            StorageVariant::BF16Packed,
            "bf16 packed in u32 (WGSL has no bf16): f32 arithmetic, round to nearest even on store"
                .to_owned(),
        ),
        DType::Float64 if caps.shader_f64 => (
            StorageVariant::F64,
            "f64 (SHADER_F64): f64 storage and arithmetic; linear and relu activations only"
                .to_owned(),
        ),
        DType::Float64 => {
            return Err(Error::Unsupported(format!(
                "{name} computes in float64, which needs SHADER_F64; the adapter '{}' lacks it. \
                 Use float32, or an adapter with f64 shaders",
                caps.adapter_name
            )));
        }
        other => {
            return Err(Error::Unsupported(format!(
                "{name} computes in {other}; Dense kernels exist for float32, float16, bfloat16 \
                 and float64"
            )));
        }
    };
    let shape = DenseShape::for_rows(rows);
    let what = match format {
        WeightFormat::Float => {
            let matvec = Family::Float.matvec_on(storage, caps);
            let shape_why = match shape {
                DenseShape::MatVec if matvec.spec().needs_int64 => {
                    format!("rows={rows} <= {MATVEC_MAX_ROWS}: matrix-vector{WIDE_LOADS}")
                }
                DenseShape::MatVec => format!("rows={rows} <= {MATVEC_MAX_ROWS}: matrix-vector"),
                DenseShape::Tiled => {
                    format!("rows={rows} > {MATVEC_MAX_ROWS}: tiled matrix-matrix")
                }
            };
            return Ok(DenseChoice {
                format,
                shape,
                storage,
                reason: format!("{name} -> {}: {why}; {shape_why}", storage.name()),
                matvec,
            });
        }
        WeightFormat::Int8 {
            quantized_inputs: true,
        } => "int8: weights int8 per output column, activations quantized per row on the GPU, \
              dot4I8Packed with i32 accumulation (Keras's int8 Dense)"
            .to_owned(),
        WeightFormat::Int8 { .. } => "int8 weight-only: weights int8 per output column, \
              activations unquantized, y = (x . q) / scale (Keras's int8 Dense without an \
              activation quantizer)"
            .to_owned(),
        WeightFormat::Float8(_) => "float8: weights e4m3fn (per-tensor scale), activations \
              quantize-dequantized in the kernel, f32 accumulation (Keras's float8 Dense)"
            .to_owned(),
        WeightFormat::Int4 { block: Some(b), .. } => format!(
            "int4/{b}: weights int4 in groups of {b} rows with zero points, dequantized in the \
             kernel (Keras's grouped int4 Dense)"
        ),
        WeightFormat::Int4 { .. } => "int4: weights int4 per output column, eight per u32, \
              activations unquantized, y = (x . q) / scale (Keras's per-channel int4 Dense)"
            .to_owned(),
    };
    if storage == StorageVariant::F64 {
        return Err(Error::Unsupported(format!(
            "{name}: quantized Dense computes in f32, f16 or bf16, not float64"
        )));
    }
    // Activations in the compute dtype's format; f16 as packed words.
    let storage = if storage == StorageVariant::F16Native {
        StorageVariant::F16Packed
    } else {
        storage
    };
    let matvec = Family::of(format).matvec_on(storage, caps);
    let kernel = match shape {
        DenseShape::MatVec => matvec,
        DenseShape::Tiled => Family::of(format).kernel(shape),
    };
    Ok(DenseChoice {
        format,
        shape,
        storage,
        matvec,
        reason: format!(
            "{name} -> {what}, outputs in {}; rows={rows}: {}",
            storage.name(),
            shape_reason(kernel, caps)
        ),
    })
}

/// What a reason adds for the matrix-vector kernels that load 32 bytes.
const WIDE_LOADS: &str = ", W^T in 32-byte loads laid out for the SIMD lanes (SHADER_INT64 on a CPU driver, which \
     pays per load)";

/// How a quantized kernel's shape divides the work, in words.
fn shape_reason(kernel: Kernel, caps: &Capabilities) -> String {
    if kernel.is_tiled() {
        return "tiled, 64 rows x 32 outputs per workgroup".to_owned();
    }
    let outputs = MATVEC_OUTPUTS;
    let shared = match XShare::for_adapter(caps) {
        _ if !kernel.spec().shares_x => "",
        XShare::SubgroupOf8 | XShare::Subgroup => ", x shared by subgroup broadcast",
        XShare::Plain => ", x read by every invocation (no subgroups of 8)",
    };
    let loads = if kernel.spec().needs_int64 {
        WIDE_LOADS
    } else {
        ""
    };
    format!("one invocation per row and {outputs} outputs{shared}{loads}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::num::NonZeroU32;

    fn caps(shader_f16: bool) -> Capabilities {
        Capabilities {
            shader_f16,
            device_type: "DiscreteGpu".to_owned(),
            ..Capabilities::baseline("test adapter")
        }
    }

    fn choose(policy: &str, rows: usize, f16: bool) -> Result<DenseChoice> {
        select_dense(&policy.parse().unwrap(), rows, &caps(f16))
    }

    #[test]
    fn float_policies_choose_by_compute_dtype_and_capabilities() {
        assert_eq!(
            choose("float32", 1, true).unwrap().storage,
            StorageVariant::F32
        );
        assert_eq!(
            choose("mixed_float16", 1, true).unwrap().storage,
            StorageVariant::F16Native
        );
        assert_eq!(
            choose("float16", 1, false).unwrap().storage,
            StorageVariant::F16Packed
        );
        assert_eq!(
            choose("mixed_bfloat16", 1, true).unwrap().storage,
            StorageVariant::BF16Packed
        );
        assert_eq!(
            choose("bfloat16", 1, false).unwrap().storage,
            StorageVariant::BF16Packed
        );
    }

    #[test]
    fn cpu_drivers_get_packed_f16_even_with_shader_f16() {
        let cpu = Capabilities {
            shader_f16: true,
            ..Capabilities::baseline("lavapipe")
        };
        let choice = select_dense(&"mixed_float16".parse().unwrap(), 1, &cpu).unwrap();
        assert_eq!(choice.storage, StorageVariant::F16Packed);
        assert!(choice.reason.contains("CPU driver"), "{}", choice.reason);
    }

    #[test]
    fn the_reason_says_why_in_words() {
        let reason = choose("mixed_float16", 1, false).unwrap().reason;
        assert!(
            reason.starts_with(
                "mixed_float16 -> f16-packed: f16 packed in u32: the adapter lacks SHADER_F16"
            ),
            "{reason}"
        );
        assert!(reason.ends_with("rows=1 <= 8: matrix-vector"), "{reason}");
    }

    #[test]
    fn rows_choose_the_kernel_shape() {
        assert_eq!(
            choose("float32", MATVEC_MAX_ROWS, false).unwrap().kernel(),
            Kernel::DenseMatVec
        );
        assert_eq!(
            choose("float32", MATVEC_MAX_ROWS + 1, false)
                .unwrap()
                .kernel(),
            Kernel::DenseTiled
        );
    }

    #[test]
    fn float64_runs_where_the_adapter_has_shader_f64() {
        let caps = Capabilities {
            shader_f64: true,
            ..caps(false)
        };
        let choice = select_dense(&"float64".parse().unwrap(), 1, &caps).unwrap();
        assert_eq!(choice.storage, StorageVariant::F64);
    }

    #[test]
    fn int8_policies_get_the_int8_kernel_with_outputs_in_the_compute_dtype() {
        let c = choose("int8_from_float32", 1, true).unwrap();
        assert_eq!(
            (c.kernel(), c.storage),
            (Kernel::DenseInt8, StorageVariant::F32)
        );
        let c = choose("int8_from_mixed_bfloat16", 64, true).unwrap();
        assert_eq!(
            (c.kernel(), c.storage),
            (Kernel::DenseInt8Tiled, StorageVariant::BF16Packed)
        );
        assert!(
            c.reason
                .ends_with("rows=64: tiled, 64 rows x 32 outputs per workgroup"),
            "{}",
            c.reason
        );
        assert!(c.reason.contains("dot4I8Packed"), "{}", c.reason);
        // 4096 x 4096: int8 weights and scales are at most 0.26 of f32's bytes.
        let f32_bytes = choose("float32", 1, true)
            .unwrap()
            .layout(4096, 4096)
            .unwrap()
            .weight_bytes();
        let int8_bytes = c.layout(4096, 4096).unwrap().weight_bytes();
        assert!(
            (int8_bytes as f64) <= 0.26 * f32_bytes as f64,
            "{int8_bytes} vs {f32_bytes}"
        );
    }

    #[test]
    fn int4_policies_get_the_int4_kernel_and_a_fraction_of_the_bytes() {
        let f32_bytes = choose("float32", 1, true)
            .unwrap()
            .layout(4096, 4096)
            .unwrap()
            .weight_bytes();
        let c = choose("int4_from_float32", 1, true).unwrap();
        assert_eq!(
            (c.kernel(), c.format),
            (
                Kernel::DenseInt4,
                WeightFormat::Int4 {
                    block: None,
                    quantized_inputs: false
                }
            )
        );
        let per_channel = c.layout(4096, 4096).unwrap().weight_bytes();
        let c = choose("int4/128_from_mixed_bfloat16", 1, true).unwrap();
        assert_eq!(
            (c.kernel(), c.storage),
            (Kernel::DenseInt4, StorageVariant::BF16Packed)
        );
        assert_eq!(
            c.format,
            WeightFormat::Int4 {
                block: NonZeroU32::new(128),
                quantized_inputs: false
            }
        );
        let grouped = c.layout(4096, 4096).unwrap().weight_bytes();
        for bytes in [per_channel, grouped] {
            assert!(
                (bytes as f64) <= 0.14 * f32_bytes as f64,
                "{bytes} vs {f32_bytes}"
            );
        }
    }

    #[test]
    fn float8_policies_get_the_float8_kernel_at_a_quarter_of_the_bytes() {
        let f32_bytes = choose("float32", 1, true)
            .unwrap()
            .layout(4096, 4096)
            .unwrap()
            .weight_bytes();
        let c = choose("float8_from_float32", 1, true).unwrap();
        assert_eq!(c.kernel(), Kernel::DenseFloat8);
        let bytes = c.layout(4096, 4096).unwrap().weight_bytes();
        assert!(
            (bytes as f64) <= 0.26 * f32_bytes as f64,
            "{bytes} vs {f32_bytes}"
        );
    }

    #[test]
    fn quantized_policies_get_their_tiled_kernel_above_the_matvec_rows() {
        let rows = MATVEC_MAX_ROWS + 1;
        for (policy, kernel) in [
            ("int8_from_float32", Kernel::DenseInt8Tiled),
            ("int4_from_float32", Kernel::DenseInt4Tiled),
            ("int4/128_from_float32", Kernel::DenseInt4Tiled),
            ("float8_from_mixed_float16", Kernel::DenseFloat8Tiled),
        ] {
            let c = choose(policy, rows, true).unwrap();
            assert_eq!(c.kernel(), kernel, "{policy}");
            assert!(
                c.reason
                    .ends_with("tiled, 64 rows x 32 outputs per workgroup"),
                "{}",
                c.reason
            );
            assert_eq!(
                choose(policy, MATVEC_MAX_ROWS, true)
                    .unwrap()
                    .kernel()
                    .tiled(),
                kernel
            );
        }
        let policy = "int8_from_float32".parse().unwrap();
        let c = select_dense_with(&policy, rows, &caps(true), true).unwrap();
        assert_eq!(c.kernel(), Kernel::DenseInt8WeightOnlyTiled);
        // The tiled kernels read the same layout as their matrix-vector ones.
        let one = select_dense_with(&policy, 1, &caps(true), true).unwrap();
        assert_eq!(
            c.layout(4096, 11008).unwrap(),
            one.layout(4096, 11008).unwrap()
        );
    }

    #[test]
    fn the_reason_says_how_quantized_kernels_share_activations() {
        let policy = "int4_from_float32".parse().unwrap();
        let with = Capabilities {
            subgroups: true,
            subgroup_size: Some((8, 8)),
            ..caps(false)
        };
        let c = select_dense(&policy, 1, &with).unwrap();
        assert!(
            c.reason
                .ends_with("one invocation per row and 8 outputs, x shared by subgroup broadcast"),
            "{}",
            c.reason
        );
        let narrow = Capabilities {
            subgroup_size: Some((4, 8)),
            ..with.clone()
        };
        let c = select_dense(&policy, 1, &narrow).unwrap();
        assert!(
            c.reason
                .ends_with("x read by every invocation (no subgroups of 8)"),
            "{}",
            c.reason
        );
        let c = select_dense(&"int8_from_float32".parse().unwrap(), 1, &with).unwrap();
        assert!(
            c.reason.ends_with("one invocation per row and 8 outputs"),
            "{}",
            c.reason
        );
    }

    #[test]
    fn int8_weight_only_is_chosen_per_layer() {
        let policy = "int8_from_mixed_bfloat16".parse().unwrap();
        let c = select_dense_with(&policy, 1, &caps(true), true).unwrap();
        assert_eq!(
            (c.kernel(), c.storage),
            (Kernel::DenseInt8WeightOnly, StorageVariant::BF16Packed)
        );
        assert!(c.reason.contains("int8 weight-only"), "{}", c.reason);
        let c = select_dense_with(&policy, 1, &caps(true), false).unwrap();
        assert_eq!(c.kernel(), Kernel::DenseInt8);
    }

    #[test]
    fn what_cannot_run_is_a_clear_error() {
        let err = choose("float64", 1, false).unwrap_err().to_string();
        assert!(
            err.contains("needs SHADER_F64") && err.contains("test adapter"),
            "{err}"
        );
        let err = choose("gptq/4/128_from_float32", 1, false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("no gptq Dense kernel exists here"), "{err}");
        assert!(err.contains("'float32'"), "{err}");
        let err = choose("int32", 1, false).unwrap_err().to_string();
        assert!(err.contains("computes in int32"), "{err}");
    }
}

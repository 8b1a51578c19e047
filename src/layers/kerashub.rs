// SPDX-License-Identifier: MIT OR Apache-2.0
//! KerasHub's layers (keras-hub 0.32.0) by their names, as its backbones
//! build and store them: `ReversibleEmbedding` (Keras's, tied or not),
//! `PositionEmbedding`, `RotaryEmbedding` and Llama's variant with Llama
//! 3.1's frequency adjustment, and the projections of Llama's and Gemma's
//! attentions. The backbones themselves are assembled in
//! [`crate::models::backbones`].

use serde_json::json;

use super::{Embedding, Projection, RmsNormalization, stored_or_quantized};
use crate::error::{Error, Result};
use crate::format::kernel::KernelAxes;
use crate::format::{DenseKernel, WeightFormat};
use crate::io::h5::{ArrayValues, LayerVariables};
use crate::policy::any::Policy;

/// A rotary position embedding: the inverse frequencies of its feature
/// pairs, as KerasHub computes them in float32 (the kernel makes the cos
/// and sin of `position * inv_freq`).
#[derive(Debug, Clone, PartialEq)]
pub struct Rope {
    /// `[head_dim / 2]` inverse frequencies.
    pub inv_freq: Vec<f32>,
}

/// KerasHub's `PositionEmbedding`: a learned float table `[max_positions,
/// dim]`, held (as an Embedding's) as the float Dense kernel of its
/// transpose.
#[derive(Debug, Clone)]
pub struct PositionEmbedding {
    /// `sequence_length`: the positions the table holds.
    pub max_positions: usize,
    /// Features per position.
    pub dim: usize,
    /// The table's transpose `[dim, max_positions]`.
    pub table: DenseKernel,
}

/// Llama 3.1's rope frequency adjustment (`rope_frequency_adjustment_factor`,
/// `rope_low_freq_factor`, `rope_high_freq_factor`,
/// `rope_pretraining_sequence_length`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Llama31Scaling {
    /// `rope_frequency_adjustment_factor`.
    pub factor: f64,
    /// `rope_low_freq_factor`.
    pub low_freq_factor: f64,
    /// `rope_high_freq_factor`.
    pub high_freq_factor: f64,
    /// `rope_pretraining_sequence_length`.
    pub pretraining_sequence_length: f64,
}

/// `LlamaRotaryEmbedding._get_inverse_freq`, op by op in float32 (Python
/// scalars meet float32 tensors as float32): `1 / max_wavelength **
/// (arange(0, dim, 2) / dim)`, then Llama 3.1's smoothing where given.
/// (KerasHub 0.32.0's Llama rope reads no `rope_position_scaling_factor`:
/// its override of `_get_inverse_freq` drops it, and so does this.)
pub fn llama_inverse_frequencies(
    head_dim: usize,
    max_wavelength: f64,
    scaling: Option<Llama31Scaling>,
) -> Vec<f32> {
    let dim = head_dim as f32;
    let base = max_wavelength as f32;
    let mut inv: Vec<f32> = (0..head_dim / 2)
        .map(|i| 1.0 / base.powf((2 * i) as f32 / dim))
        .collect();
    if let Some(s) = scaling {
        let low_wavelen = (s.pretraining_sequence_length / s.low_freq_factor) as f32;
        let high_wavelen = (s.pretraining_sequence_length / s.high_freq_factor) as f32;
        let factor = s.factor as f32;
        let two_pi = (2.0 * std::f64::consts::PI) as f32;
        let pretrain = s.pretraining_sequence_length as f32;
        let (low, span) = (
            s.low_freq_factor as f32,
            (s.high_freq_factor - s.low_freq_factor) as f32,
        );
        for f in &mut inv {
            let wavelen = two_pi / *f;
            if wavelen > low_wavelen {
                *f /= factor;
            }
            let smooth = (pretrain / wavelen - low) / span;
            let smoothed = (1.0 - smooth) * (*f / factor) + smooth * *f;
            if wavelen >= high_wavelen && wavelen <= low_wavelen {
                *f = smoothed;
            }
        }
    }
    inv
}

/// `RotaryEmbedding._get_inverse_freq` of KerasHub's base layer with
/// `rope_type="linear"` (Gemma's): `max_wavelength ** -(arange(0, dim, 2)
/// / dim) / scaling_factor`, in float32.
pub fn rotary_inverse_frequencies(
    head_dim: usize,
    max_wavelength: f64,
    scaling_factor: f64,
) -> Vec<f32> {
    let dim = head_dim as f32;
    let base = max_wavelength as f32;
    (0..head_dim / 2)
        .map(|i| base.powf(-((2 * i) as f32 / dim)) / scaling_factor as f32)
        .collect()
}

/// The variables of the reverse projection an untied `ReversibleEmbedding`
/// stores after its table's, for its table's format.
fn reverse_variables(format: WeightFormat) -> usize {
    match format {
        WeightFormat::Int4 { block: Some(_), .. } => 3,
        WeightFormat::Int8 { .. } | WeightFormat::Int4 { .. } => 2,
        _ => 1,
    }
}

/// The format a `ReversibleEmbedding`'s table is stored in: `quantized`
/// (the table's format under its policy) where its first variable is
/// int8, else float (a float table, quantized on load where the policy
/// says so).
fn stored_table_format(vars: &LayerVariables, quantized: WeightFormat) -> WeightFormat {
    let stored_float = vars
        .vars
        .first()
        .is_some_and(|a| !matches!(a.values, ArrayValues::I8(_)));
    if stored_float {
        WeightFormat::Float
    } else {
        quantized
    }
}

/// Keras's `ReversibleEmbedding` of `vocab` ids of `dim` features, in the
/// weight format of its policy: its table read as an Embedding's (the
/// forward direction); an untied one's reverse projection (the output head
/// of a causal LM) is checked to be there.
pub fn reversible_embedding(
    (vocab, dim): (usize, usize),
    tied: bool,
    format: WeightFormat,
    vars: &LayerVariables,
) -> Result<Embedding> {
    let stored = stored_table_format(vars, super::embedding::table_format(format));
    let table_vars = super::embedding::variable_count(stored);
    let want = table_vars + if tied { 0 } else { reverse_variables(stored) };
    if vars.vars.len() != want {
        return Err(Error::Shape(format!(
            "a {} ReversibleEmbedding of {vocab} x {dim} ({}) stores {want} variables, the file \
             has {}",
            stored.name(),
            if tied { "tied" } else { "untied" },
            vars.vars.len()
        )));
    }
    let table = LayerVariables {
        name: vars.name.clone(),
        vars: vars.vars[..table_vars].to_vec(),
    };
    super::embedding::embedding(
        &json!({"input_dim": vocab, "output_dim": dim}),
        format,
        &table,
    )
}

/// The reverse projection of a `ReversibleEmbedding` of `vocab` ids of
/// `dim` features (a causal LM's output head), as the Dense kernel `[dim,
/// vocab]` it multiplies by, in the weight format of its policy (`format`,
/// the table's): for a tied one, the table itself; for an untied one, its
/// `reverse_embeddings` variables after the table's (float ones quantized
/// where the format is int8 or int4, as `Model.quantize` would). Keras
/// quantizes the head's inputs per row for int8 and int4 (its
/// `inputs_quantizer`); the grouped int4 head multiplies those by the
/// dequantized weights, which the grouped kernel does with unquantized
/// inputs (the one difference, within the int4 tolerance).
pub fn reverse_projection(
    (vocab, dim): (usize, usize),
    tied: bool,
    format: WeightFormat,
    table: &Embedding,
    vars: &LayerVariables,
) -> Result<DenseKernel> {
    if tied {
        return Ok(table.table.with_quantized_inputs(true));
    }
    // As stored (float variables quantized on load: one table variable).
    let stored = stored_table_format(vars, table.table.format());
    let table_vars = super::embedding::variable_count(stored);
    let mut reverse = LayerVariables {
        name: vars.name.clone(),
        vars: vars.vars.get(table_vars..).unwrap_or_default().to_vec(),
    };
    // The grouped int4 head shares the table's g_idx (its last variable),
    // and Keras keeps its zero point in float32 (a Dense's is int8): whole
    // numbers in int8's range, taken exactly or refused.
    if matches!(stored, WeightFormat::Int4 { block: Some(_), .. }) && reverse.vars.len() == 3 {
        let zero = &mut reverse.vars[2];
        if let Some(values) = zero.values.to_f32() {
            let whole = values
                .iter()
                .map(|&v| (v.fract() == 0.0 && (-128.0..=127.0).contains(&v)).then_some(v as i8))
                .collect::<Option<Vec<i8>>>()
                .ok_or_else(|| {
                    Error::Shape(
                        "reverse_embeddings_zero holds values that are not int8 zero points"
                            .to_owned(),
                    )
                })?;
            zero.values = ArrayValues::I8(whole);
        }
        reverse.vars.push(vars.vars[table_vars - 1].clone());
    }
    let head_format = match super::embedding::table_format(format) {
        WeightFormat::Int8 { .. } => WeightFormat::Int8 {
            quantized_inputs: true,
        },
        WeightFormat::Int4 { block, .. } => WeightFormat::Int4 {
            block,
            quantized_inputs: block.is_none(),
        },
        other => other,
    };
    Ok(stored_or_quantized(
        &reverse,
        false,
        head_format,
        (dim, vocab),
        KernelAxes::Dense,
    )?
    .with_quantized_inputs(!matches!(head_format, WeightFormat::Float)))
}

/// KerasHub's `PositionEmbedding` of `max_positions` positions of `dim`
/// features from its one variable, `embeddings`.
pub fn position_embedding(
    (max_positions, dim): (usize, usize),
    vars: &LayerVariables,
) -> Result<PositionEmbedding> {
    let table = match vars.vars.as_slice() {
        [a] if a.shape == [max_positions, dim] => a.values.to_f32(),
        _ => None,
    }
    .ok_or_else(|| {
        Error::Shape(format!(
            "a PositionEmbedding of {max_positions} positions of {dim} features stores one float \
             table [{max_positions}, {dim}]; the file has {:?}",
            vars.vars.iter().map(|a| &a.shape).collect::<Vec<_>>()
        ))
    })?;
    let transposed: Vec<f32> = (0..dim * max_positions)
        .map(|i| table[(i % max_positions) * dim + i / max_positions])
        .collect();
    Ok(PositionEmbedding {
        max_positions,
        dim,
        table: DenseKernel::float(&transposed, None, (dim, max_positions))?,
    })
}

/// Llama's `LlamaLayerNorm` or Gemma's `RMSNormalization` (`plus_one`)
/// over `features`, from its one variable, `scale`.
pub fn rms_norm(
    epsilon: f32,
    features: usize,
    plus_one: bool,
    vars: &LayerVariables,
) -> Result<RmsNormalization> {
    Ok(RmsNormalization {
        epsilon,
        scale: super::rms_scale(features, vars)?,
        plus_one,
    })
}

/// One of an attention's EinsumDense projections at `path`, under
/// `policy`, from its variables (float ones quantized where the policy is
/// quantized, as `Model.quantize` would).
pub fn projection(
    path: String,
    policy: Policy,
    vars: &LayerVariables,
    use_bias: bool,
    (k, n): (usize, usize),
    axes: KernelAxes,
) -> Result<Projection> {
    let format = crate::routing::weight_format(&policy, false)?;
    let kernel =
        stored_or_quantized(vars, use_bias, format, (k, n), axes).map_err(|e| e.in_layer(&path))?;
    Ok(Projection {
        path,
        policy,
        kernel,
        axes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn llama_frequencies_are_keras_s() {
        // KerasHub 0.32.0, head_dim 8, max_wavelength 10000 (float32).
        let inv = llama_inverse_frequencies(8, 10000.0, None);
        let want = [1.0f32, 0.1, 0.01, 0.001];
        assert_eq!(inv.len(), want.len());
        for (a, b) in inv.iter().zip(want) {
            assert!((a - b).abs() <= 2.0 * f32::EPSILON * b, "{a} against {b}");
        }
        // Llama 3.1's adjustment: wavelengths 2 pi / f of 6.3, 63, 628 and
        // 6283 against 16 and 64: kept, smoothed, divided, divided.
        let s = Llama31Scaling {
            factor: 8.0,
            low_freq_factor: 1.0,
            high_freq_factor: 4.0,
            pretraining_sequence_length: 64.0,
        };
        let scaled = llama_inverse_frequencies(8, 10000.0, Some(s));
        assert_eq!(scaled[0], inv[0]);
        assert_eq!(scaled[2], inv[2] / 8.0);
        assert_eq!(scaled[3], inv[3] / 8.0);
        let smooth = (64.0 / (2.0 * std::f32::consts::PI / inv[1]) - 1.0) / 3.0;
        let want = (1.0 - smooth) * (inv[1] / 8.0) + smooth * inv[1];
        assert!((scaled[1] - want).abs() <= 2.0 * f32::EPSILON * want);
    }

    #[test]
    fn base_frequencies_divide_by_the_scaling_factor() {
        let inv = rotary_inverse_frequencies(4, 10000.0, 2.0);
        assert_eq!(inv[0], 0.5);
        assert!((inv[1] - 0.005).abs() < 1e-9);
    }
}

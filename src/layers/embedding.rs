// SPDX-License-Identifier: MIT OR Apache-2.0
//! Keras's Embedding: its config, its variables as Keras 3.15.1 stores them
//! (float `embeddings`; int8 `embeddings` and per-row `embeddings_scale`;
//! int4 packed along the output axis with per-row scales, or per group with
//! zero points and `g_idx`), and its table as the [`DenseKernel`] of the
//! transpose. Keras quantizes an Embedding's rows as a Dense layer's
//! columns (abs-max per row; groups along the output axis), so the Dense
//! quantizers, applied to the transpose, are Keras's for it.

use serde_json::Value;

use super::{Owned, bool_key, f32s, i8s, usize_key};
use crate::error::{Error, Result};
use crate::format::kernel::{KerasDenseVariables, KernelAxes};
use crate::format::{DenseKernel, KernelValues, WeightFormat};
use crate::io::h5::{Array, ArrayValues, LayerVariables};
use crate::quant::int4::{pack_int4_columns, unpack_int4_columns};

/// A Keras Embedding.
#[derive(Debug, Clone)]
pub struct Embedding {
    /// `input_dim`: the vocabulary.
    pub input_dim: usize,
    /// `output_dim`: values per id.
    pub output_dim: usize,
    /// The table's transpose `[output_dim, input_dim]`, in the layer's
    /// weight format.
    pub table: DenseKernel,
}

/// `[rows, cols]` row-major to `[cols, rows]`.
fn transpose<T: Copy>(v: &[T], rows: usize, cols: usize) -> Vec<T> {
    (0..rows * cols)
        .map(|i| v[(i % rows) * cols + i / rows])
        .collect()
}

/// The names of an Embedding's variables in Keras's order for `format`.
fn names(format: WeightFormat) -> &'static [&'static str] {
    match format {
        WeightFormat::Int8 { .. } | WeightFormat::Int4 { block: None, .. } => {
            &["embeddings", "embeddings_scale"]
        }
        WeightFormat::Int4 { block: Some(_), .. } => {
            &["embeddings", "embeddings_scale", "embeddings_zero", "g_idx"]
        }
        _ => &["embeddings"],
    }
}

/// How many variables an Embedding's table stores in `format`.
pub fn variable_count(format: WeightFormat) -> usize {
    names(table_format(format)).len()
}

/// The format of an Embedding's table for a layer policy's weight format:
/// no activations to quantize, and float for float8 (Keras has no float8
/// Embedding).
pub fn table_format(format: WeightFormat) -> WeightFormat {
    match format {
        WeightFormat::Float8(_) => WeightFormat::Float,
        WeightFormat::Int8 { .. } => WeightFormat::Int8 {
            quantized_inputs: false,
        },
        WeightFormat::Int4 { block, .. } => WeightFormat::Int4 {
            block,
            quantized_inputs: false,
        },
        WeightFormat::Float => WeightFormat::Float,
    }
}

/// An Embedding from its config, the weight format its policy gives (a
/// float8 policy runs it as float: Keras has no float8 Embedding), and its
/// variables (float ones quantized here where the format is int8 or int4,
/// as `Model.quantize` would).
pub fn embedding(config: &Value, format: WeightFormat, vars: &LayerVariables) -> Result<Embedding> {
    let class = "Embedding";
    let input_dim = usize_key(config, "input_dim", class)?;
    let output_dim = usize_key(config, "output_dim", class)?;
    if bool_key(config, "mask_zero", false)? {
        return Err(Error::Unsupported(
            "an Embedding with mask_zero=True (its mask is not carried to later layers here); \
             pass an explicit mask instead"
                .to_owned(),
        ));
    }
    if config.get("lora_rank").is_some_and(|v| !v.is_null()) {
        return Err(Error::Unsupported(format!(
            "an Embedding with lora_rank={}",
            config["lora_rank"]
        )));
    }
    let format = table_format(format);
    let stored_float = vars.vars.len() == 1
        && vars
            .vars
            .first()
            .is_some_and(|a| a.values.to_f32().is_some());
    let table = if stored_float && format != WeightFormat::Float {
        read(vars, WeightFormat::Float, (input_dim, output_dim))?.requantize(format)?
    } else {
        read(vars, format, (input_dim, output_dim))?
    };
    Ok(Embedding {
        input_dim,
        output_dim,
        table,
    })
}

/// The table's transpose from Keras's variables in `format`.
fn read(
    vars: &LayerVariables,
    format: WeightFormat,
    (vocab, dim): (usize, usize),
) -> Result<DenseKernel> {
    let names = names(format);
    if vars.vars.len() != names.len() {
        return Err(Error::Shape(format!(
            "a {} Embedding stores {} variables ({}), the file has {}",
            format.name(),
            names.len(),
            names.join(", "),
            vars.vars.len()
        )));
    }
    let shaped = |i: usize, shape: &[usize]| -> Result<&Array> {
        let a = &vars.vars[i];
        if a.shape != shape {
            return Err(Error::Shape(format!(
                "Embedding {} of shape {:?}; an Embedding of {vocab} x {dim} in {} stores {shape:?}",
                names[i],
                a.shape,
                format.name()
            )));
        }
        Ok(a)
    };
    let int8 = |a: &Array, what: &str| -> Result<Vec<i8>> {
        match &a.values {
            ArrayValues::I8(v) => Ok(v.clone()),
            other => Err(Error::Shape(format!(
                "Embedding {what} of type {}, expected int8",
                other.dtype()
            ))),
        }
    };
    // The transposed variables, as a Dense kernel of `dim` inputs and
    // `vocab` outputs stores them.
    let mut owned: Vec<Array> = Vec::new();
    match format {
        WeightFormat::Float => {
            let a = shaped(0, &[vocab, dim])?;
            let values = match &a.values {
                ArrayValues::F64(v) => ArrayValues::F64(transpose(v, vocab, dim)),
                other => ArrayValues::F32(transpose(
                    &other.to_f32().ok_or_else(|| {
                        Error::Shape(format!(
                            "Embedding embeddings of type {}, expected a float",
                            other.dtype()
                        ))
                    })?,
                    vocab,
                    dim,
                )),
            };
            owned.push(Array {
                shape: vec![dim, vocab],
                values,
            });
        }
        WeightFormat::Int8 { .. } => {
            let q = int8(shaped(0, &[vocab, dim])?, "embeddings")?;
            owned.push(Array {
                shape: vec![dim, vocab],
                values: ArrayValues::I8(transpose(&q, vocab, dim)),
            });
            owned.push(shaped(1, &[vocab])?.clone());
        }
        WeightFormat::Int4 { block, .. } => {
            let packed = int8(shaped(0, &[vocab, dim.div_ceil(2)])?, "embeddings")?;
            let q = transpose(&unpack_int4_columns(&packed, vocab, dim), vocab, dim);
            owned.push(Array {
                shape: vec![dim, vocab.div_ceil(2)],
                values: ArrayValues::I8(pack_int4_columns(&q, dim, vocab)),
            });
            match block {
                None => owned.push(shaped(1, &[vocab])?.clone()),
                Some(b) => {
                    let groups = dim.div_ceil(b.get() as usize);
                    let scale = shaped(1, &[vocab, groups])?;
                    let scale = scale.values.to_f32().ok_or_else(|| {
                        Error::Shape("Embedding embeddings_scale is not a float".to_owned())
                    })?;
                    let zero = int8(shaped(2, &[vocab, groups])?, "embeddings_zero")?;
                    owned.push(Array {
                        shape: vec![groups, vocab],
                        values: ArrayValues::F32(transpose(&scale, vocab, groups)),
                    });
                    owned.push(Array {
                        shape: vec![groups, vocab],
                        values: ArrayValues::I8(transpose(&zero, vocab, groups)),
                    });
                    owned.push(shaped(3, &[dim])?.clone());
                }
            }
        }
        WeightFormat::Float8(_) => unreachable!("float8 runs an Embedding as float"),
    }
    let owned: Vec<Owned> = owned.iter().map(Owned::of).collect();
    let var = |i: usize| owned.get(i).map(Owned::variable).transpose();
    let grouped = matches!(format, WeightFormat::Int4 { block: Some(_), .. });
    DenseKernel::from_keras(
        format,
        (dim, vocab),
        KernelAxes::Dense,
        &KerasDenseVariables {
            kernel: var(0)?.expect("one variable at least"),
            bias: None,
            kernel_scale: var(1)?,
            kernel_zero: if grouped { var(2)? } else { None },
            g_idx: if grouped { var(3)? } else { None },
            inputs_scale: None,
        },
    )
}

/// The Embedding's variables as Keras stores them, by Keras's names in
/// Keras's order (the inverse of reading them).
pub fn variables(e: &Embedding) -> Result<Vec<(&'static str, Array)>> {
    let (vocab, dim) = (e.input_dim, e.output_dim);
    Ok(match e.table.values() {
        KernelValues::Float(w) => {
            let values = match w {
                crate::format::FloatValues::F64(v) => ArrayValues::F64(transpose(v, dim, vocab)),
                other => ArrayValues::F32(transpose(&other.to_f32(), dim, vocab)),
            };
            vec![(
                "embeddings",
                Array {
                    shape: vec![vocab, dim],
                    values,
                },
            )]
        }
        KernelValues::Int8 { q, scale, .. } => vec![
            (
                "embeddings",
                i8s(vec![vocab, dim], transpose(q, dim, vocab)),
            ),
            ("embeddings_scale", f32s(vec![vocab], scale.clone())),
        ],
        KernelValues::Int4 {
            q,
            scale,
            zero,
            block,
            ..
        } => {
            let rows = transpose(q, dim, vocab);
            let mut out = vec![(
                "embeddings",
                i8s(
                    vec![vocab, dim.div_ceil(2)],
                    pack_int4_columns(&rows, vocab, dim),
                ),
            )];
            match (zero, block) {
                (Some(zero), Some(b)) => {
                    let groups = dim.div_ceil(b.get() as usize);
                    out.push((
                        "embeddings_scale",
                        f32s(vec![vocab, groups], transpose(scale, groups, vocab)),
                    ));
                    out.push((
                        "embeddings_zero",
                        i8s(vec![vocab, groups], transpose(zero, groups, vocab)),
                    ));
                    let g_idx = (0..dim).map(|i| (i / b.get() as usize) as f32).collect();
                    out.push(("g_idx", f32s(vec![dim], g_idx)));
                }
                _ => out.push(("embeddings_scale", f32s(vec![vocab], scale.clone()))),
            }
            out
        }
        KernelValues::Float8 { .. } => {
            return Err(Error::Unsupported(
                "a float8 Embedding (Keras has no float8 Embedding)".to_owned(),
            ));
        }
    })
}

/// `e` with its variables replaced by `vars` (in Keras's order, as
/// [`variables`] lists them), in its own format.
pub fn reload(e: &Embedding, vars: &LayerVariables) -> Result<Embedding> {
    Ok(Embedding {
        table: read(vars, e.table.format(), (e.input_dim, e.output_dim))?,
        ..e.clone()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_read_back_in_every_format() {
        let (vocab, dim) = (5, 7);
        let w: Vec<f32> = (0..vocab * dim).map(|i| (i as f32 * 0.37).sin()).collect();
        let vars = LayerVariables {
            name: None,
            vars: vec![Array {
                shape: vec![vocab, dim],
                values: ArrayValues::F32(w),
            }],
        };
        let config = serde_json::json!({"input_dim": vocab, "output_dim": dim});
        for format in [
            WeightFormat::Float,
            WeightFormat::Int8 {
                quantized_inputs: false,
            },
            WeightFormat::Int4 {
                block: None,
                quantized_inputs: false,
            },
            WeightFormat::Int4 {
                block: std::num::NonZeroU32::new(4),
                quantized_inputs: false,
            },
        ] {
            let e = embedding(&config, format, &vars).unwrap();
            assert_eq!(e.table.format(), format);
            let stored = LayerVariables {
                name: None,
                vars: variables(&e).unwrap().into_iter().map(|(_, a)| a).collect(),
            };
            assert_eq!(stored.vars.len(), names(format).len());
            let again = reload(&e, &stored).unwrap();
            assert_eq!(again.table, e.table, "{format:?}");
        }
    }
}

// SPDX-License-Identifier: MIT OR Apache-2.0
//! safetensors files of Keras variables, each named by its Keras path
//! (`model/dense/kernel`, `model/dense/kernel_scale`), in the type Keras
//! stores it in (float32, float64, float16, bfloat16, int8).

use std::collections::BTreeMap;

use half::{bf16, f16};
use safetensors::{Dtype, SafeTensors, tensor::TensorView};

use crate::error::{Error, Result};
use crate::io::h5::{Array, ArrayValues};

/// Reads every tensor of a safetensors file; `name` names it in messages.
/// Offsets, shapes and sizes are checked by the reader before anything is
/// copied; a tensor of a type Keras does not store is an error naming it.
pub fn read(bytes: &[u8], name: &str) -> Result<BTreeMap<String, Array>> {
    let file = SafeTensors::deserialize(bytes)
        .map_err(|e| Error::file(name, format!("not a safetensors file: {e}")))?;
    let mut out = BTreeMap::new();
    for (key, view) in file.tensors() {
        let data = view.data();
        let words = |size: usize| data.chunks_exact(size);
        let values = match view.dtype() {
            Dtype::F32 => ArrayValues::F32(
                words(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect(),
            ),
            Dtype::F64 => ArrayValues::F64(
                words(8)
                    .map(|b| f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
                    .collect(),
            ),
            Dtype::F16 => {
                ArrayValues::F16(words(2).map(|b| f16::from_le_bytes([b[0], b[1]])).collect())
            }
            Dtype::BF16 => ArrayValues::BF16(
                words(2)
                    .map(|b| bf16::from_le_bytes([b[0], b[1]]))
                    .collect(),
            ),
            Dtype::I8 => ArrayValues::I8(data.iter().map(|&b| b as i8).collect()),
            other => {
                return Err(Error::file(
                    name,
                    format!(
                        "tensor '{key}' is {other:?}; Keras's variables are float32, float64, \
                         float16, bfloat16 or int8"
                    ),
                ));
            }
        };
        out.insert(
            key,
            Array {
                shape: view.shape().to_vec(),
                values,
            },
        );
    }
    Ok(out)
}

/// A safetensors file of `tensors`, by name.
pub fn write(tensors: &[(String, Array)]) -> Result<Vec<u8>> {
    let bytes: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(name, a)| {
            let (dtype, data): (Dtype, Vec<u8>) = match &a.values {
                ArrayValues::F32(v) => {
                    (Dtype::F32, v.iter().flat_map(|x| x.to_le_bytes()).collect())
                }
                ArrayValues::F64(v) => {
                    (Dtype::F64, v.iter().flat_map(|x| x.to_le_bytes()).collect())
                }
                ArrayValues::F16(v) => {
                    (Dtype::F16, v.iter().flat_map(|x| x.to_le_bytes()).collect())
                }
                ArrayValues::BF16(v) => (
                    Dtype::BF16,
                    v.iter().flat_map(|x| x.to_le_bytes()).collect(),
                ),
                ArrayValues::I8(v) => (Dtype::I8, v.iter().map(|&x| x as u8).collect()),
                ArrayValues::Other(what) => {
                    return Err(Error::Unsupported(format!(
                        "variable '{name}' of type {what} in a safetensors file"
                    )));
                }
            };
            Ok((name.clone(), dtype, a.shape.clone(), data))
        })
        .collect::<Result<_>>()?;
    let views = bytes
        .iter()
        .map(|(name, dtype, shape, data)| {
            TensorView::new(*dtype, shape.clone(), data)
                .map(|v| (name.as_str(), v))
                .map_err(|e| Error::Shape(format!("variable '{name}': {e}")))
        })
        .collect::<Result<Vec<_>>>()?;
    safetensors::serialize(views, None)
        .map_err(|e| Error::InvalidArgument(format!("a safetensors file: {e}")))
}

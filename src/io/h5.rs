// SPDX-License-Identifier: MIT OR Apache-2.0
//! `model.weights.h5`: Keras's variables, read with the pure-Rust
//! `hdf5-pure` reader (no system library).
//!
//! Keras writes one group per layer (`layers/<child>/.../vars`) whose
//! datasets `0`, `1`, ... are the layer's variables in order, absent ones
//! skipped (see `shared/spec/keras-models.md` section 2), and whose `name`
//! attribute is the layer's name. Each dataset's size (its shape times its
//! element size) is checked against the file's length before it is read,
//! and so is the sum of all of them, so a lying header cannot make this
//! allocate more than the file holds.

use std::collections::BTreeMap;

use half::{bf16, f16};
use hdf5_pure::{DType, Datatype, DatatypeByteOrder};

use crate::error::{Error, Result};

/// How deep groups may nest (Keras's are a handful deep).
const MAX_DEPTH: usize = 32;
/// How many groups a file may have (a 10,000-layer model has about as many).
const MAX_GROUPS: usize = 1 << 20;

/// A variable's values, in the type Keras stored them in.
#[derive(Debug, Clone, PartialEq)]
pub enum ArrayValues {
    /// float32.
    F32(Vec<f32>),
    /// float64.
    F64(Vec<f64>),
    /// float16.
    F16(Vec<f16>),
    /// bfloat16 (2-byte opaque data with `dtype="bfloat16"`).
    BF16(Vec<bf16>),
    /// int8.
    I8(Vec<i8>),
    /// A type no layer here reads (an optimizer's int64, say), described.
    Other(String),
}

impl ArrayValues {
    /// The Keras dtype name (`"float32"`), or the description of another type.
    pub fn dtype(&self) -> &str {
        match self {
            ArrayValues::F32(_) => "float32",
            ArrayValues::F64(_) => "float64",
            ArrayValues::F16(_) => "float16",
            ArrayValues::BF16(_) => "bfloat16",
            ArrayValues::I8(_) => "int8",
            ArrayValues::Other(what) => what,
        }
    }

    /// Float values as f32 (float16, bfloat16 and float64 converted: f64
    /// rounded to nearest); `None` for integers and other types.
    pub fn to_f32(&self) -> Option<Vec<f32>> {
        Some(match self {
            ArrayValues::F32(v) => v.clone(),
            ArrayValues::F64(v) => v.iter().map(|&x| x as f32).collect(),
            ArrayValues::F16(v) => v.iter().map(|x| x.to_f32()).collect(),
            ArrayValues::BF16(v) => v.iter().map(|x| x.to_f32()).collect(),
            ArrayValues::I8(_) | ArrayValues::Other(_) => return None,
        })
    }
}

/// One variable: its shape (`[]` for a scalar) and values (row-major).
#[derive(Debug, Clone, PartialEq)]
pub struct Array {
    /// Its shape.
    pub shape: Vec<usize>,
    /// Its values.
    pub values: ArrayValues,
}

/// A layer's variables as its group holds them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LayerVariables {
    /// The group's `name` attribute: the layer's name when it was saved.
    pub name: Option<String>,
    /// `vars/0`, `vars/1`, ... in order.
    pub vars: Vec<Array>,
}

/// Every layer's variables in a weights file, by the path of its group
/// without the trailing `/vars` (`layers/dense_1`,
/// `layers/multi_head_attention/query_dense`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WeightsFile {
    /// The layers' variables, by group path.
    pub layers: BTreeMap<String, LayerVariables>,
}

impl WeightsFile {
    /// Reads a weights file from its bytes; `name` names it in messages.
    pub fn from_bytes(bytes: Vec<u8>, name: &str) -> Result<Self> {
        let bad = |what: &str, e: hdf5_pure::Error| Error::file(name, format!("{what}: {e}"));
        let budget = bytes.len() as u64;
        let file = hdf5_pure::File::from_bytes(bytes).map_err(|e| bad("not an HDF5 file", e))?;
        let mut out = WeightsFile::default();
        let root = file.root();
        let has_layers = root
            .iter_groups()
            .map_err(|e| bad("the root group cannot be read", e))?
            .find(|(n, _)| n == "layers");
        let Some((_, layers)) = has_layers else {
            return Ok(out);
        };
        let mut left = budget;
        let mut groups = 0usize;
        let mut stack = vec![("layers".to_owned(), layers, 0usize)];
        while let Some((path, group, depth)) = stack.pop() {
            groups += 1;
            if depth > MAX_DEPTH || groups > MAX_GROUPS {
                return Err(Error::file(
                    name,
                    format!(
                        "groups nest deeper than {MAX_DEPTH} or number more than {MAX_GROUPS} \
                         (at '{path}'): not a Keras weights file"
                    ),
                ));
            }
            let at = |e| bad(&format!("group '{path}'"), e);
            for (child, sub) in group.iter_groups().map_err(at)? {
                if child == "vars" {
                    let vars = read_vars(&sub, &path, name, &mut left)?;
                    out.layers.insert(path.clone(), vars);
                } else {
                    stack.push((format!("{path}/{child}"), sub, depth + 1));
                }
            }
        }
        Ok(out)
    }

    /// The variables of the layer whose group is `path` (`layers/dense`).
    pub fn layer(&self, path: &str) -> Option<&LayerVariables> {
        self.layers.get(path)
    }
}

/// The datasets `0..n` of a `vars` group.
fn read_vars(
    group: &hdf5_pure::Group,
    path: &str,
    file: &str,
    left: &mut u64,
) -> Result<LayerVariables> {
    let at = |what: String| Error::file(file, format!("'{path}/vars': {what}"));
    let name = group
        .attrs()
        .map_err(|e| at(format!("attributes cannot be read: {e}")))?
        .get("name")
        .and_then(|v| v.as_str().map(str::to_owned));
    let mut datasets: Vec<(usize, hdf5_pure::Dataset)> = Vec::new();
    for (key, ds) in group
        .iter_datasets()
        .map_err(|e| at(format!("cannot be listed: {e}")))?
    {
        let index = key
            .parse::<usize>()
            .map_err(|_| at(format!("a variable named '{key}', not an index")))?;
        datasets.push((index, ds));
    }
    datasets.sort_by_key(|(i, _)| *i);
    let mut vars = Vec::with_capacity(datasets.len());
    for (expected, (index, ds)) in datasets.into_iter().enumerate() {
        if index != expected {
            return Err(at(format!(
                "variable {index} follows {} variables: indices must run 0, 1, ...",
                expected
            )));
        }
        vars.push(read_array(&ds, left).map_err(|e| at(format!("variable {index}: {e}")))?);
    }
    Ok(LayerVariables { name, vars })
}

/// One dataset, after checking that it fits in what is left of the file.
fn read_array(ds: &hdf5_pure::Dataset, left: &mut u64) -> std::result::Result<Array, String> {
    let e = |e: hdf5_pure::Error| e.to_string();
    let dims = ds.shape().map_err(e)?;
    let element = ds.element_size().map_err(e)?;
    let count = dims
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| format!("a shape of {dims:?} overflows"))?;
    let bytes = count
        .checked_mul(element)
        .filter(|&b| b <= *left)
        .ok_or_else(|| {
            format!(
                "a shape of {dims:?} of {element}-byte values is more than the {left} bytes of \
                 the file not yet read"
            )
        })?;
    *left -= bytes;
    let shape = dims
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| format!("dimension {d} is too large")))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let dtype = ds.dtype().map_err(e)?;
    let values = match dtype {
        DType::F32 => ArrayValues::F32(ds.read_f32().map_err(e)?),
        DType::F64 => ArrayValues::F64(ds.read_f64().map_err(e)?),
        DType::I8 => ArrayValues::I8(ds.read_i8().map_err(e)?),
        DType::Other(t) => match *t {
            Datatype::FloatingPoint {
                size: 2,
                byte_order,
                ..
            } => ArrayValues::F16(
                halves(&ds.read_raw().map_err(e)?, byte_order)
                    .into_iter()
                    .map(f16::from_bits)
                    .collect(),
            ),
            Datatype::Opaque { size: 2, .. } if is_bfloat16(ds) => ArrayValues::BF16(
                halves(&ds.read_raw().map_err(e)?, DatatypeByteOrder::LittleEndian)
                    .into_iter()
                    .map(bf16::from_bits)
                    .collect(),
            ),
            other => ArrayValues::Other(format!("{other:?}")),
        },
        other => ArrayValues::Other(format!("{other:?}")),
    };
    let len = match &values {
        ArrayValues::F32(v) => v.len(),
        ArrayValues::F64(v) => v.len(),
        ArrayValues::F16(v) => v.len(),
        ArrayValues::BF16(v) => v.len(),
        ArrayValues::I8(v) => v.len(),
        ArrayValues::Other(_) => count as usize,
    };
    if len as u64 != count {
        return Err(format!("{len} values for a shape of {dims:?}"));
    }
    Ok(Array { shape, values })
}

/// h5py stores ml_dtypes' bfloat16 as 2-byte opaque data tagged with a
/// `dtype="bfloat16"` attribute.
fn is_bfloat16(ds: &hdf5_pure::Dataset) -> bool {
    ds.attrs()
        .ok()
        .and_then(|a| {
            a.get("dtype")
                .and_then(|v| v.as_str().map(|s| s == "bfloat16"))
        })
        .unwrap_or(false)
}

/// 16-bit words from raw bytes in `order`.
fn halves(raw: &[u8], order: DatatypeByteOrder) -> Vec<u16> {
    raw.chunks_exact(2)
        .map(|b| match order {
            DatatypeByteOrder::BigEndian => u16::from_be_bytes([b[0], b[1]]),
            _ => u16::from_le_bytes([b[0], b[1]]),
        })
        .collect()
}

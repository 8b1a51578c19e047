// SPDX-License-Identifier: MIT OR Apache-2.0
//! `model.weights.h5`: Keras's variables, read by this crate's own small
//! HDF5 reader (`h5/reader.rs`: the subset h5py writes for Keras, every
//! field bounds-checked, nothing recursive).
//!
//! Keras writes one group per layer (`layers/<child>/.../vars`) whose
//! datasets `0`, `1`, ... are the layer's variables in order, absent ones
//! skipped (see `shared/spec/keras-models.md` section 2), and whose `name`
//! attribute is the layer's name. Each dataset's size (its shape times its
//! element size) is checked against the file's length before it is read,
//! and so is the sum of all of them (a dataset linked twice counts twice),
//! so a lying header cannot make this allocate more than the file holds;
//! names, paths and strings have a like budget of their own.
//!
//! [`WeightsFile::to_bytes`] writes such a file (`h5/writer.rs`), in the
//! layout h5py gives Keras's files, so that h5py, Keras and this reader
//! read it back.

use std::collections::BTreeMap;

use half::{bf16, f16};

use crate::error::{Error, Result};

mod reader;
mod writer;

use reader::{Group, Object, Reader, Type};

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
        let bad = |what: &str, e: String| Error::file(name, format!("{what}: {e}"));
        let (mut reader, root) = Reader::open(&bytes).map_err(|e| Error::file(name, e))?;
        let root = reader
            .object(root)
            .and_then(|o| o.as_group())
            .and_then(|g| g.ok_or_else(|| "not a group".to_owned()))
            .map_err(|e| bad("the root group", e))?;
        let mut out = WeightsFile::default();
        let mut layers = None;
        for (child, addr) in reader
            .children(root)
            .map_err(|e| bad("the root group", e))?
        {
            if child == "layers" {
                let object = reader.object(addr).and_then(|o| o.as_group());
                layers = object.map_err(|e| bad("group 'layers'", e))?;
            }
        }
        let Some(layers) = layers else {
            return Ok(out);
        };
        let mut left = bytes.len() as u64;
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
            for (child, addr) in reader.children(group).map_err(at)? {
                let object = reader.object(addr).map_err(at)?;
                let Some(sub) = object.as_group().map_err(at)? else {
                    continue;
                };
                // Paths are text too: charged, however often a name recurs.
                if child == "vars" {
                    let vars = read_vars(&mut reader, &object, sub, &path, name, &mut left)?;
                    reader.charge(path.len()).map_err(at)?;
                    out.layers.insert(path.clone(), vars);
                } else {
                    reader.charge(path.len() + 1 + child.len()).map_err(at)?;
                    stack.push((format!("{path}/{child}"), sub, depth + 1));
                }
            }
        }
        Ok(out)
    }

    /// The bytes of a `model.weights.h5` holding these variables, laid out
    /// as Keras's `H5IOStore` lays them out and h5py writes them (HDF5's
    /// original format, as h5py's default `libver="earliest"`), so that
    /// Keras's `load_model` and [`WeightsFile::from_bytes`] read them back.
    ///
    /// Each layer at `path` becomes a group `path/vars` (the groups above
    /// it created once, shared) holding datasets `0`, `1`, ... of its
    /// variables' shapes and dtypes, with the layer's name as a string
    /// attribute `name` of `vars` where it has one. bfloat16 is stored as
    /// h5py stores ml_dtypes' bfloat16: 2-byte opaque data with a string
    /// attribute `dtype="bfloat16"`. A layer without variables is written
    /// as an empty `vars` group, as Keras writes one (a `Dropout`, say)
    /// because it has a name. Keras's `vars` group for the model itself
    /// (at the root) is not read into a `WeightsFile`, and is not written:
    /// Keras loads a model without variables of its own from a file without
    /// it. The output depends only on `self`: the same variables give the
    /// same bytes.
    ///
    /// # Errors
    ///
    /// A path that [`WeightsFile::from_bytes`] would not read back as it
    /// is (not under `layers`, an empty, `.` or `vars` component, a NUL,
    /// groups nested deeper than it reads); a name holding a NUL; a
    /// variable of [`ArrayValues::Other`], or whose values do not fill its
    /// shape; a rank over HDF5's 32.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let bad = |e: String| Error::file("model.weights.h5", format!("cannot be written: {e}"));
        let mut root = writer::Group::default();
        for (path, layer) in &self.layers {
            let at = |e: String| bad(format!("layer '{path}': {e}"));
            let parts: Vec<_> = path.split('/').collect();
            // `from_bytes` reads below `layers` only, and not below `vars`.
            if parts.first() != Some(&"layers") || parts.contains(&"vars") {
                return Err(at("not a path 'layers/...' without a 'vars' part".into()));
            }
            if parts.len() > MAX_DEPTH + 1 {
                return Err(at(format!("more than {MAX_DEPTH} groups below 'layers'")));
            }
            let mut group = &mut root;
            for part in parts {
                group = group.group(part).map_err(at)?;
            }
            let vars = group.group("vars").map_err(at)?;
            vars.name = layer.name.as_deref();
            for (index, array) in layer.vars.iter().enumerate() {
                let dataset = writer::Node::Dataset(array);
                vars.links.insert(index.to_string(), dataset);
            }
        }
        writer::write(&root).map_err(bad)
    }

    /// The variables of the layer whose group is `path` (`layers/dense`).
    pub fn layer(&self, path: &str) -> Option<&LayerVariables> {
        self.layers.get(path)
    }
}

/// The datasets `0..n` of a `vars` group.
fn read_vars<'a>(
    reader: &mut Reader<'a>,
    object: &Object<'a>,
    group: Group,
    path: &str,
    file: &str,
    left: &mut u64,
) -> Result<LayerVariables> {
    let at = |what: String| Error::file(file, format!("'{path}/vars': {what}"));
    let name = reader.string_attribute(object, "name").map_err(at)?;
    let mut datasets = Vec::new();
    for (key, addr) in reader.children(group).map_err(at)? {
        if !reader.object(addr).map_err(at)?.is_dataset() {
            continue;
        }
        let index = key
            .parse::<usize>()
            .map_err(|_| at(format!("a variable named '{key}', not an index")))?;
        // The address, not the parsed header: one header at a time in memory.
        datasets.push((index, addr));
    }
    datasets.sort_by_key(|(i, _)| *i);
    let mut vars = Vec::with_capacity(datasets.len());
    for (expected, (index, addr)) in datasets.into_iter().enumerate() {
        if index != expected {
            return Err(at(format!(
                "variable {index} follows {expected} variables: indices must run 0, 1, ..."
            )));
        }
        let array = reader
            .object(addr)
            .and_then(|object| read_array(reader, &object, left));
        vars.push(array.map_err(|e| at(format!("variable {index}: {e}")))?);
    }
    Ok(LayerVariables { name, vars })
}

/// One dataset, after checking that it fits in what is left of the file.
fn read_array<'a>(
    reader: &mut Reader<'a>,
    object: &Object<'a>,
    left: &mut u64,
) -> std::result::Result<Array, String> {
    let ds = reader.dataset(object)?;
    let bytes = ds.data.len() as u64;
    if bytes > *left {
        return Err(format!(
            "a shape of {:?} of {bytes} bytes is more than the {left} bytes of the file not yet \
             read",
            ds.dims
        ));
    }
    *left -= bytes;
    let shape = ds
        .dims
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| format!("dimension {d} is too large")))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let data = ds.data;
    let values = match ds.dtype {
        (Type::Float(big), 4) => ArrayValues::F32(decode(data, big, f32::from_le_bytes)),
        (Type::Float(big), 8) => ArrayValues::F64(decode(data, big, f64::from_le_bytes)),
        (Type::Float(big), 2) => ArrayValues::F16(decode(data, big, f16::from_le_bytes)),
        (Type::Int(true, _), 1) => ArrayValues::I8(decode(data, false, i8::from_le_bytes)),
        // h5py stores ml_dtypes' bfloat16 as 2-byte opaque data tagged with
        // a `dtype="bfloat16"` attribute, in the writer's (little-endian) order.
        (Type::Opaque, 2)
            if reader.string_attribute(object, "dtype")?.as_deref() == Some("bfloat16") =>
        {
            ArrayValues::BF16(decode(data, false, bf16::from_le_bytes))
        }
        (other, size) => ArrayValues::Other(other.describe(size)),
    };
    Ok(Array { shape, values })
}

/// `N`-byte values from raw bytes, big-endian ones (`big`) swapped first.
fn decode<const N: usize, T>(raw: &[u8], big: bool, from_le: fn([u8; N]) -> T) -> Vec<T> {
    let (words, _) = raw.as_chunks::<N>();
    words
        .iter()
        .map(|&word| {
            let mut word = word;
            if big {
                word.reverse();
            }
            from_le(word)
        })
        .collect()
}

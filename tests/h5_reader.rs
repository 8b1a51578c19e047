// SPDX-License-Identifier: MIT OR Apache-2.0
//! The HDF5 reader of `io::h5`: every weights file of the fixtures reads as
//! h5py reads it (`tests/data/h5_oracle.json`, from `tools/h5_oracle.py`),
//! and hostile files (a dataset never written, datatypes nested thousands
//! deep, cycles, random corruption) give `Err` or an unsupported dtype,
//! never a panic, deep recursion or an allocation beyond the file's bytes.

use std::io::{Cursor, Read};

use dtype_policy::io::h5::{ArrayValues, WeightsFile};
use proptest::prelude::*;
use serde_json::Value;

/// A file under `tests/data/`.
fn data(path: &str) -> Vec<u8> {
    let full = format!("{}/tests/data/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

/// `model.weights.h5` of a `.keras` fixture, or an `.h5` file as it is.
fn weights(path: &str) -> Vec<u8> {
    let bytes = data(path);
    if !path.ends_with(".keras") {
        return bytes;
    }
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).unwrap();
    let mut member = zip.by_name("model.weights.h5").unwrap();
    let mut out = Vec::new();
    member.read_to_end(&mut out).unwrap();
    out
}

/// Values widened to f64 (exactly), for the numeric dtypes read.
fn as_f64(values: &ArrayValues) -> Option<Vec<f64>> {
    Some(match values {
        ArrayValues::F32(v) => v.iter().map(|&x| f64::from(x)).collect(),
        ArrayValues::F64(v) => v.clone(),
        ArrayValues::F16(v) => v.iter().map(|x| f64::from(x.to_f32())).collect(),
        ArrayValues::BF16(v) => v.iter().map(|x| f64::from(x.to_f32())).collect(),
        ArrayValues::I8(v) => v.iter().map(|&x| f64::from(x)).collect(),
        ArrayValues::Other(_) => return None,
    })
}

/// Whether two checksums agree to rounding (the oracle sums exactly).
fn close(a: f64, b: f64, scale: f64) -> bool {
    (a - b).abs() <= 1e-9 * scale.abs() + 1e-12
}

#[test]
fn every_fixture_reads_as_h5py_reads_it() {
    let oracle: Value = serde_json::from_slice(&data("h5_oracle.json")).unwrap();
    let files = oracle.as_object().unwrap();
    assert!(files.len() >= 30, "{} files in the oracle", files.len());
    for (file, layers) in files {
        let w = WeightsFile::from_bytes(weights(file), file).unwrap_or_else(|e| panic!("{e}"));
        let expected = layers.as_object().unwrap();
        let paths: Vec<_> = w.layers.keys().collect();
        assert_eq!(paths, expected.keys().collect::<Vec<_>>(), "{file}");
        for (path, group) in expected {
            let layer = w.layer(path).unwrap();
            let at = format!("{file}: {path}");
            assert_eq!(layer.name.as_deref(), group["name"].as_str(), "{at}");
            let vars = group["vars"].as_array().unwrap();
            assert_eq!(layer.vars.len(), vars.len(), "{at}");
            for (i, (array, var)) in layer.vars.iter().zip(vars).enumerate() {
                let at = format!("{at}/vars/{i}");
                let shape: Vec<usize> = serde_json::from_value(var["shape"].clone()).unwrap();
                assert_eq!(array.shape, shape, "{at}");
                assert_eq!(array.values.dtype(), var["dtype"].as_str().unwrap(), "{at}");
                let Some(sum) = var["sum"].as_f64() else {
                    assert!(matches!(array.values, ArrayValues::Other(_)), "{at}");
                    continue;
                };
                let values = as_f64(&array.values).unwrap();
                assert_eq!(values.len(), shape.iter().product::<usize>(), "{at}");
                let abs_sum = var["abs_sum"].as_f64().unwrap();
                assert!(close(values.iter().sum(), sum, abs_sum), "{at}: sum");
                let ours: f64 = values.iter().map(|x| x.abs()).sum();
                assert!(close(ours, abs_sum, abs_sum), "{at}: sum of magnitudes");
                let first: Vec<f64> = serde_json::from_value(var["first"].clone()).unwrap();
                assert_eq!(first.len(), values.len().min(3), "{at}");
                for (a, b) in values.iter().zip(&first) {
                    assert!(close(*a, *b, *b), "{at}: {a} against {b}");
                }
            }
        }
    }
}

#[test]
fn bfloat16_and_float16_models_keep_their_dtype() {
    for (file, dtype) in [
        ("h5/bfloat16.weights.h5", "bfloat16"),
        ("h5/float16.weights.h5", "float16"),
    ] {
        let w = WeightsFile::from_bytes(weights(file), file).unwrap();
        let dense = w.layer("layers/dense").unwrap();
        assert_eq!(dense.vars[0].shape, [3, 4], "{file}");
        for layer in w.layers.values() {
            for var in &layer.vars {
                assert_eq!(var.values.dtype(), dtype, "{file}");
                assert!(var.values.to_f32().is_some(), "{file}");
            }
        }
    }
}

#[test]
fn a_two_level_btree_and_unusual_layouts_are_read() {
    let w = WeightsFile::from_bytes(weights("h5/btree.weights.h5"), "btree.h5").unwrap();
    let wide = w.layer("layers/wide").unwrap();
    assert_eq!(wide.name.as_deref(), Some("wide"));
    assert_eq!(wide.vars.len(), 150);
    assert!(
        wide.vars[1..]
            .iter()
            .all(|v| v.values == ArrayValues::F32(vec![0.5]))
    );

    let w = WeightsFile::from_bytes(weights("h5/dtypes.weights.h5"), "dtypes.h5").unwrap();
    let mixed = &w.layer("layers/mixed").unwrap().vars;
    let dtypes: Vec<_> = mixed.iter().map(|v| v.values.dtype()).collect();
    let expected = ["float64", "int8", "int32", "float32", "float32", "float32"];
    assert_eq!(dtypes, expected);
    // Big-endian float32, converted.
    assert_eq!(mixed[3].values, ArrayValues::F32(vec![1.5, -2.25, 3.0]));
    assert_eq!(mixed[4].shape, Vec::<usize>::new());
    assert_eq!(mixed[5].shape, [0, 3]);
    // Compact storage, and a fixed-length string for the name.
    let query = w.layer("layers/mha/query_dense").unwrap();
    assert_eq!(query.name.as_deref(), Some("query"));
    assert_eq!(query.vars[0].values, ArrayValues::F32(vec![0.5, 1.5, 2.5]));
    // Only `layers` is walked: the optimizer's variables are not read.
    assert_eq!(w.layers.len(), 2);
}

/// Reads `bytes` on a thread of a small stack: deep recursion would crash it.
fn read_on_small_stack(bytes: Vec<u8>) -> Result<WeightsFile, String> {
    std::thread::Builder::new()
        .stack_size(64 * 1024)
        .spawn(move || WeightsFile::from_bytes(bytes, "hostile.h5").map_err(|e| e.to_string()))
        .unwrap()
        .join()
        .expect("the reader panicked")
}

#[test]
fn hostile_files_are_refused_without_recursing() {
    let refused = [
        ("unwritten.h5", "never written"),
        ("btree_cycle.h5", "reached twice"),
        ("group_loop.h5", "reached twice"),
        ("continuation_cycle.h5", "a cycle"),
    ];
    for (file, why) in refused {
        let err = read_on_small_stack(weights(&format!("h5/{file}"))).unwrap_err();
        assert!(
            err.starts_with("hostile.h5") && err.contains(why),
            "{file}: {err}"
        );
    }
    // Datatypes nested 900 and 1200 deep: described by their top level,
    // never walked.
    for (file, what) in [
        ("nested_compound.h5", "a compound of 4 bytes"),
        ("nested_vlen.h5", "a variable-length sequence of 4 bytes"),
    ] {
        let w = read_on_small_stack(weights(&format!("h5/{file}"))).unwrap();
        let var = &w.layer("layers/dense").unwrap().vars[0];
        assert_eq!(var.values, ArrayValues::Other(what.into()), "{file}");
    }
}

#[test]
fn every_truncation_is_refused() {
    for file in ["models/mlp__float32.keras", "h5/btree.weights.h5"] {
        let h5 = weights(file);
        assert!(WeightsFile::from_bytes(h5.clone(), "w.h5").is_ok());
        for len in 0..h5.len() {
            let r = WeightsFile::from_bytes(h5[..len].to_vec(), "w.h5");
            assert!(r.is_err(), "{file} cut to {len} bytes");
        }
    }
}

/// One corruption of a weights file.
#[derive(Debug, Clone)]
enum Edit {
    /// A byte overwritten.
    Byte(prop::sample::Index, u8),
    /// 8 bytes overwritten (all ones, 2^60, random, ...).
    Wide(prop::sample::Index, u64),
    /// Cut short, the superblock's end-of-file address made to agree.
    Cut(prop::sample::Index),
}

fn edit() -> impl Strategy<Value = Edit> {
    let wide = prop_oneof![
        Just(u64::MAX),
        Just(1u64 << 60),
        Just(1u64 << 40),
        Just(0u64),
        any::<u64>()
    ];
    prop_oneof![
        4 => (any::<prop::sample::Index>(), any::<u8>()).prop_map(|(i, v)| Edit::Byte(i, v)),
        4 => (any::<prop::sample::Index>(), wide).prop_map(|(i, v)| Edit::Wide(i, v)),
        1 => any::<prop::sample::Index>().prop_map(Edit::Cut),
    ]
}

/// The files corrupted: a Keras model's, the two-level B-tree, the dtypes.
const CORRUPTED: [&str; 4] = [
    "models/mlp__float32.keras",
    "models/encoder__int8_from_float32.keras",
    "h5/btree.weights.h5",
    "h5/dtypes.weights.h5",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 10000, ..ProptestConfig::default() })]

    /// Corrupted anywhere: `Ok` or `Err`, never a panic, and never more
    /// values than the file has bytes.
    #[test]
    fn corrupt_files_never_panic_nor_overallocate(
        file in 0..CORRUPTED.len(),
        edits in proptest::collection::vec(edit(), 1..6),
    ) {
        let mut h5 = weights(CORRUPTED[file]);
        for e in edits {
            match e {
                // A cut may have left nothing to write into.
                Edit::Byte(at, v) if !h5.is_empty() => {
                    let i = at.index(h5.len());
                    h5[i] = v;
                }
                Edit::Wide(at, v) if h5.len() >= 8 => {
                    let i = at.index(h5.len() - 7);
                    h5[i..i + 8].copy_from_slice(&v.to_le_bytes());
                }
                Edit::Cut(at) => {
                    h5.truncate(at.index(h5.len() + 1));
                    let len = h5.len() as u64;
                    if let Some(eof) = h5.get_mut(40..48) {
                        eof.copy_from_slice(&len.to_le_bytes());
                    }
                }
                Edit::Byte(..) | Edit::Wide(..) => {}
            }
        }
        if let Ok(w) = WeightsFile::from_bytes(h5.clone(), "w.h5") {
            let held: usize = w
                .layers
                .values()
                .flat_map(|l| &l.vars)
                .map(|a| a.shape.iter().product::<usize>())
                .sum();
            prop_assert!(held <= h5.len());
        }
    }
}

// SPDX-License-Identifier: MIT OR Apache-2.0
//! The HDF5 writer of `io::h5` (`WeightsFile::to_bytes`): every fixture's
//! weights and hand-built files of every dtype read back as they were
//! written, and what the writer writes now is what h5py 3.16 and Keras
//! 3.15.1 read (`tests/data/h5_written.json`, made by
//! `tools/h5_writer_check.py` from the files these tests leave in
//! `target/tmp/h5_written/`): the same bytes, and h5py's and Keras's view
//! of them equal to our reader's.

use std::collections::BTreeSet;
use std::path::PathBuf;

use dtype_policy::io::archive::KerasArchive;
use dtype_policy::io::h5::{Array, ArrayValues, LayerVariables, WeightsFile};
use half::{bf16, f16};
use serde_json::Value;

/// The fixtures whose rewritten weights the check script loads in Keras
/// and compares on the fixture's inputs (`.keras` under `models/`, bare
/// weights under `h5/`): float32, float16, bfloat16 and mixed policies,
/// int8, int4 and float8 Dense. Keras 3.15.1 cannot load the quantized
/// encoder fixtures at all (their MultiHeadAttention's EinsumDense layers
/// find no variables), so the encoder is checked unquantized.
const KERAS_CHECKED: [&str; 9] = [
    "models/mlp__float32.keras",
    "models/mlp__mixed_bfloat16.keras",
    "models/mlp__int8_from_float32.keras",
    "models/mlp__int4_from_mixed_bfloat16.keras",
    "models/encoder__mixed_float16.keras",
    "models/mlp__float8_from_mixed_bfloat16.keras",
    "models/attention_cross__mixed_bfloat16.keras",
    "h5/bfloat16.weights.h5",
    "h5/float16.weights.h5",
];

/// A path under `tests/data/`.
fn data(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(path)
}

/// The `model.weights.h5` of a fixture (`.keras`), or the file itself.
fn fixture_weights(path: &str) -> Vec<u8> {
    let full = data(path);
    if path.ends_with(".keras") {
        return KerasArchive::open(&full).unwrap().weights;
    }
    std::fs::read(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

/// Where these tests leave the files they write, for the check script.
fn written(name: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("h5_written")
        .join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    path
}

/// FNV-1a, 64 bits: the script computes the same of the bytes it read.
fn fnv1a64(bytes: &[u8]) -> String {
    let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("{hash:016x}")
}

/// A float32 variable.
fn f32s(shape: &[usize], v: Vec<f32>) -> Array {
    let shape = shape.to_vec();
    let values = ArrayValues::F32(v);
    Array { shape, values }
}

/// Another variable.
fn array(shape: &[usize], values: ArrayValues) -> Array {
    let shape = shape.to_vec();
    Array { shape, values }
}

/// A file of `(path, name, variables)`.
fn file(layers: Vec<(&str, Option<&str>, Vec<Array>)>) -> WeightsFile {
    let mut w = WeightsFile::default();
    for (path, name, vars) in layers {
        let name = name.map(str::to_owned);
        w.layers
            .insert(path.to_owned(), LayerVariables { name, vars });
    }
    w
}

/// The hand-built files, by name.
fn cases() -> Vec<(&'static str, WeightsFile)> {
    let f16s = |v: &[f32]| ArrayValues::F16(v.iter().map(|&x| f16::from_f32(x)).collect());
    let bf16s = |v: &[f32]| ArrayValues::BF16(v.iter().map(|&x| bf16::from_f32(x)).collect());
    let subnormal = f32::from_bits(1);
    let dtypes = file(vec![
        (
            "layers/all",
            Some("all_dtypes"),
            vec![
                f32s(
                    &[2, 3],
                    vec![0.0, -0.0, 1.5, f32::INFINITY, subnormal, f32::MAX],
                ),
                array(&[3], ArrayValues::F64(vec![1.0 / 3.0, -1e300, 5e-324])),
                array(&[2, 2], f16s(&[1.0, 6e-8, f32::NEG_INFINITY, -2.5])),
                array(&[5], bf16s(&[1.0, -0.0078125, 3.0e38, 1e-40, 65504.0])),
                array(&[5], ArrayValues::I8(vec![-128, -1, 0, 1, 127])),
                f32s(&[], vec![42.0]),
                array(&[], bf16s(&[-3.5])),
                f32s(&[0, 3], vec![]),
                array(&[3, 0, 2], ArrayValues::I8(vec![])),
                array(&[1, 1, 1, 1, 2], ArrayValues::F64(vec![2.0, -2.0])),
            ],
        ),
        ("layers/no_name", None, vec![f32s(&[1], vec![7.0])]),
        ("layers/dropout", Some("dropout"), vec![]),
    ]);
    let long_part = "p".repeat(300);
    let long_path = format!("layers/{long_part}");
    let long_name = "n".repeat(4100); // more than a 4 KiB heap collection holds
    let deep: String = (0..32).map(|i| format!("/d{i}")).collect();
    let deep = format!("layers{deep}");
    let names = file(vec![
        ("layers", Some("layers itself"), vec![f32s(&[1], vec![1.0])]),
        ("layers/mha", Some("mha"), vec![f32s(&[1], vec![2.0])]),
        (
            "layers/mha/query_dense",
            Some("query"),
            vec![f32s(&[2], vec![3.0, 4.0])],
        ),
        (
            "layers/mha/key_dense",
            Some("key"),
            vec![f32s(&[1], vec![5.0])],
        ),
        ("layers/mha/value_dense", Some(""), vec![]),
        (&long_path, Some(&long_name), vec![f32s(&[1], vec![6.0])]),
        (
            "layers/dénse_ü_密集",
            Some("dénse 密集 🙂"),
            vec![f32s(&[1], vec![8.0])],
        ),
        ("layers/spaces and.dots:colons", Some("a name"), vec![]),
        (&deep, Some("deepest"), vec![f32s(&[1], vec![9.0])]),
    ]);
    // 260 links in one group need a B-tree of two levels (one node holds
    // 32 symbol-table nodes of 8); 20 layers need three symbol-table nodes.
    let wide = (0..260).map(|i| f32s(&[], vec![i as f32])).collect();
    let mut many = file(vec![("layers/wide", Some("wide"), wide)]);
    for i in 0..20 {
        let vars = vec![f32s(&[2], vec![i as f32, -(i as f32)])];
        let name = Some(format!("dense_{i}"));
        many.layers
            .insert(format!("layers/dense_{i}"), LayerVariables { name, vars });
    }
    vec![("dtypes", dtypes), ("names", names), ("many", many)]
}

/// Asserts that two files are equal, naming the first variable that differs
/// (a whole file's values would bury it).
fn assert_same(ours: &WeightsFile, expected: &WeightsFile, what: &str) {
    let paths = |w: &WeightsFile| w.layers.keys().cloned().collect::<Vec<_>>();
    assert_eq!(paths(ours), paths(expected), "{what}: layer paths");
    for (path, layer) in &expected.layers {
        let read = &ours.layers[path];
        assert_eq!(read.name, layer.name, "{what}: {path}: name");
        assert_eq!(
            read.vars.len(),
            layer.vars.len(),
            "{what}: {path}: variables"
        );
        for (i, (a, b)) in read.vars.iter().zip(&layer.vars).enumerate() {
            let brief = |x: &Array| format!("{} {:?}", x.values.dtype(), x.shape);
            assert!(
                a == b,
                "{what}: {path}/vars/{i}: {} read, {} written",
                brief(a),
                brief(b)
            );
        }
    }
    assert!(ours == expected, "{what}");
}

/// A fixture's weights as read, written, and read again.
fn round_trip(path: &str) -> (WeightsFile, WeightsFile, Vec<u8>) {
    let read = WeightsFile::from_bytes(fixture_weights(path), path).unwrap();
    let bytes = read.to_bytes().unwrap_or_else(|e| panic!("{path}: {e}"));
    let again = WeightsFile::from_bytes(bytes.clone(), "written").unwrap_or_else(|e| panic!("{e}"));
    (read, again, bytes)
}

#[test]
fn every_fixture_reads_back_as_it_was_written() {
    let mut files: Vec<_> = std::fs::read_dir(data("models"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.ends_with(".keras"))
        .map(|name| format!("models/{name}"))
        .collect();
    files.sort();
    assert!(files.len() >= 30, "{} fixtures", files.len());
    files.extend(
        [
            "h5/bfloat16.weights.h5",
            "h5/float16.weights.h5",
            "h5/btree.weights.h5",
        ]
        .map(String::from),
    );
    for path in &files {
        let (read, again, _) = round_trip(path);
        assert!(!read.layers.is_empty(), "{path}");
        assert_same(&again, &read, path);
    }
}

#[test]
fn hand_built_files_of_every_dtype_read_back_as_they_were_written() {
    for (name, case) in cases() {
        let bytes = case.to_bytes().unwrap_or_else(|e| panic!("{name}: {e}"));
        let again = WeightsFile::from_bytes(bytes.clone(), name).unwrap_or_else(|e| panic!("{e}"));
        assert_same(&again, &case, name);
        assert_eq!(
            case.to_bytes().unwrap(),
            bytes,
            "{name}: the same file twice"
        );
    }
}

#[test]
fn an_empty_file_reads_back_empty() {
    let bytes = WeightsFile::default().to_bytes().unwrap();
    let again = WeightsFile::from_bytes(bytes, "empty").unwrap();
    assert_eq!(again, WeightsFile::default());
}

#[test]
fn what_cannot_be_written_or_read_back_is_refused() {
    let one = || vec![f32s(&[1], vec![1.0])];
    let other = vec![array(&[1], ArrayValues::Other("int32".into()))];
    let short = vec![f32s(&[2, 2], vec![1.0])];
    let overflowing = vec![f32s(&[usize::MAX, 2], vec![])];
    let rank_33 = vec![f32s(&[1; 33], vec![1.0])];
    let deep: String = (0..33).map(|i| format!("/d{i}")).collect();
    let deep = format!("layers{deep}");
    // (path, name, variables, what the message says)
    let refused = [
        ("model/dense", None, one(), "not a path 'layers/...'"),
        ("layers/vars/x", None, one(), "without a 'vars' part"),
        ("layers//x", None, one(), "\"\" cannot name"),
        ("layers/.", None, one(), "\".\" cannot name"),
        ("layers/a\0b", None, one(), "cannot name an HDF5 link"),
        (&deep, None, one(), "more than 32 groups"),
        ("layers/a", Some("a\0b"), one(), "holds a NUL"),
        ("layers/a", None, other, "int32 cannot be written"),
        ("layers/a", None, short, "1 values for a shape of [2, 2]"),
        ("layers/a", None, overflowing, "0 values for a shape of"),
        ("layers/a", None, rank_33, "a rank of 33"),
    ];
    for (path, name, vars, expected) in refused {
        let e = file(vec![(path, name, vars)]).to_bytes();
        let e = e.expect_err(path).to_string();
        assert!(e.contains(expected), "{path}: {e}");
    }
}

/// h5py's record of one file, or a message saying how to make it.
fn h5py_record<'v>(record: &'v Value, key: &str, name: &str) -> &'v Value {
    record[key].get(name).unwrap_or_else(|| {
        panic!(
            "no h5py record of '{name}' in tests/data/h5_written.json: run \
             `KERAS_BACKEND=jax python tools/h5_writer_check.py` after this test wrote \
             target/tmp/h5_written/"
        )
    })
}

/// Checks that `bytes` are the bytes h5py read; returns h5py's record.
fn same_bytes<'v>(record: &'v Value, key: &str, name: &str, bytes: &[u8]) -> &'v Value {
    let entry = h5py_record(record, key, name);
    let msg = "the writer's output changed since h5py and Keras checked it: rerun \
               tools/h5_writer_check.py and review its report";
    assert_eq!(entry["size"], bytes.len(), "{name}: {msg}");
    assert_eq!(entry["fnv1a64"], fnv1a64(bytes).as_str(), "{name}: {msg}");
    entry
}

/// The little-endian bytes of values, in hex, as numpy's `tobytes()`.
fn hex(values: &ArrayValues) -> String {
    let bytes: Vec<u8> = match values {
        ArrayValues::F32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        ArrayValues::F64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        ArrayValues::F16(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        ArrayValues::BF16(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        ArrayValues::I8(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        ArrayValues::Other(what) => panic!("{what}"),
    };
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// numpy's name for the dtype h5py reads (opaque bytes for bfloat16).
fn h5py_dtype(values: &ArrayValues) -> &str {
    match values {
        ArrayValues::BF16(_) => "|V2",
        other => other.dtype(),
    }
}

#[test]
fn h5py_and_keras_read_what_the_writer_writes_now() {
    let text = std::fs::read(data("h5_written.json")).unwrap_or_default();
    // Written first: the script reads them even when the record is missing.
    for (name, case) in cases() {
        std::fs::write(written(&format!("{name}.h5")), case.to_bytes().unwrap()).unwrap();
    }
    for path in KERAS_CHECKED {
        let (_, _, bytes) = round_trip(path);
        std::fs::write(written(&format!("fixtures/{}", flat(path))), bytes).unwrap();
    }
    let record: Value = serde_json::from_slice(&text).unwrap_or(Value::Null);
    for (name, case) in cases() {
        let name = format!("{name}.h5");
        let bytes = case.to_bytes().unwrap();
        let entry = same_bytes(&record, "files", &name, &bytes);
        let ours = WeightsFile::from_bytes(bytes, &name).unwrap();
        let (groups, datasets) = (&entry["groups"], &entry["datasets"]);
        let mut expected_groups = BTreeSet::new();
        let mut dataset_count = 0;
        for (path, layer) in &ours.layers {
            let mut prefix = String::new();
            for part in path.split('/') {
                prefix = if prefix.is_empty() {
                    part.to_owned()
                } else {
                    format!("{prefix}/{part}")
                };
                expected_groups.insert(prefix.clone());
            }
            let vars = format!("{path}/vars");
            let attrs = &groups[&vars];
            match &layer.name {
                Some(n) => assert_eq!(
                    attrs,
                    &serde_json::json!({"name": {"str": n}}),
                    "{name}: {vars}"
                ),
                None => assert_eq!(attrs, &serde_json::json!({}), "{name}: {vars}"),
            }
            expected_groups.insert(vars.clone());
            let keras = &entry["keras"][path];
            assert_eq!(
                keras.as_array().map(Vec::len),
                Some(layer.vars.len()),
                "{name}: {path}"
            );
            for (i, var) in layer.vars.iter().enumerate() {
                let at = format!("{name}: {vars}/{i}");
                // [dtype, shape, hex, attributes] as h5py read them.
                let bf16_tag = serde_json::json!({"dtype": {"str": "bfloat16"}});
                let is_bf16 = matches!(var.values, ArrayValues::BF16(_));
                let attrs = if is_bf16 {
                    bf16_tag
                } else {
                    serde_json::json!({})
                };
                let expected = serde_json::json!([
                    h5py_dtype(&var.values),
                    var.shape,
                    hex(&var.values),
                    attrs
                ]);
                assert_eq!(datasets[format!("{vars}/{i}")], expected, "{at}");
                // Keras's own H5IOStore (bfloat16 converted as it converts
                // it): [dtype, the same shape and bytes as h5py's].
                assert_eq!(
                    keras[i],
                    serde_json::json!([var.values.dtype(), true]),
                    "{at}"
                );
                dataset_count += 1;
            }
        }
        let h5py_groups: BTreeSet<_> = groups.as_object().unwrap().keys().cloned().collect();
        assert_eq!(h5py_groups, expected_groups, "{name}");
        assert_eq!(datasets.as_object().unwrap().len(), dataset_count, "{name}");
    }
    for path in KERAS_CHECKED {
        let (_, _, bytes) = round_trip(path);
        let entry = same_bytes(&record, "keras_loads", &flat(path), &bytes);
        assert_eq!(entry["outputs_equal"], true, "{path}: {entry}");
        assert!(entry["compared"].as_u64().unwrap() > 0, "{path}: {entry}");
    }
}

/// A fixture's rewritten weights' file name (`mlp__float32.weights.h5`).
fn flat(path: &str) -> String {
    let name = path.rsplit('/').next().unwrap();
    match name.strip_suffix(".keras") {
        Some(stem) => format!("{stem}.weights.h5"),
        None => name.to_owned(),
    }
}

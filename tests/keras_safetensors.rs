// SPDX-License-Identifier: MIT OR Apache-2.0
//! Models' variables to and from safetensors files, named by Keras paths:
//! every fixture's variables (float, Keras's int8, int4 and float8) round
//! trip exactly, and bad files give errors that name what is wrong, never
//! a panic.

use dtype_policy::io::h5::ArrayValues;
use dtype_policy::models::Model;
use proptest::prelude::*;

fn load(file: &str) -> Model {
    Model::load(
        format!("{}/tests/data/models/{file}", env!("CARGO_MANIFEST_DIR")),
        None,
    )
    .unwrap()
}

const FILES: &[&str] = &[
    "mlp__float32.keras",
    "mlp__mixed_bfloat16.keras",
    "mlp__int8_from_float32.keras",
    "mlp__int4_from_mixed_bfloat16.keras",
    "mlp__float8_from_float32.keras",
    "encoder__int8_from_mixed_bfloat16.keras",
    "encoder__int4_from_float32.keras",
    "encoder_causal__float8_from_mixed_bfloat16.keras",
];

#[test]
fn every_variable_round_trips_through_safetensors() {
    for file in FILES {
        let model = load(file);
        let bytes = model.to_safetensors().unwrap();
        let names: Vec<String> = model
            .variables()
            .unwrap()
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        // Keras paths: the layer (and sublayer), then the variable.
        let first = format!("{}/", model.layers[1].path);
        assert!(names[0].starts_with(&first), "{file}: {names:?}");
        assert!(
            names.iter().all(|n| !n.starts_with('/')),
            "{file}: {names:?}"
        );
        assert!(
            names.iter().any(|n| n.ends_with("/kernel")),
            "{file}: {names:?}"
        );
        // Every float variable but g_idx moved by 0.5 (scales stay positive): the
        // model reads the moved values, then the file's again.
        let mut moved = model.variables().unwrap();
        for (name, a) in &mut moved {
            // g_idx is the grouping itself, and float8's histories and
            // gradient scale are training state this crate does not keep.
            if name.ends_with("/g_idx")
                || name.ends_with("_history")
                || name.ends_with("/outputs_grad_scale")
            {
                continue;
            }
            if let ArrayValues::F32(v) = &mut a.values {
                v.iter_mut().for_each(|x| *x += 0.5);
            }
        }
        let mut other = load(file);
        let moved_bytes = dtype_policy::io::safetensors::write(&moved).unwrap();
        other
            .load_safetensors(&moved_bytes, "moved.safetensors")
            .unwrap();
        // (Compared without printing: the arrays are long.)
        assert!(
            other.variables().unwrap() == moved,
            "{file}: the moved values were not read"
        );
        assert!(
            other.variables().unwrap() != model.variables().unwrap(),
            "{file}"
        );
        other.load_safetensors(&bytes, "v.safetensors").unwrap();
        assert!(
            other.variables().unwrap() == model.variables().unwrap(),
            "{file}: not restored"
        );
        let kinds =
            |m: &Model| format!("{:?}", m.layers.iter().map(|l| &l.kind).collect::<Vec<_>>());
        assert_eq!(kinds(&other), kinds(&model), "{file}");
    }
}

#[test]
fn a_file_that_lacks_or_misshapes_a_variable_is_refused_by_name() {
    let model = load("mlp__int8_from_float32.keras");
    let mut vars = model.variables().unwrap();
    let (gone, _) = vars.remove(0);
    let bytes = dtype_policy::io::safetensors::write(&vars).unwrap();
    let mut m = load("mlp__int8_from_float32.keras");
    let err = m
        .load_safetensors(&bytes, "v.safetensors")
        .unwrap_err()
        .to_string();
    assert!(err.contains(&gone), "{err}");
    // A kernel of the wrong shape: refused, and the model unchanged.
    let mut vars = model.variables().unwrap();
    vars[0].1.shape.reverse();
    let bytes = dtype_policy::io::safetensors::write(&vars).unwrap();
    let before = format!("{:?}", m.layers[1].kind);
    let err = m
        .load_safetensors(&bytes, "v.safetensors")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("kernel") && err.contains(&model.layers[1].path),
        "{err}"
    );
    assert_eq!(format!("{:?}", m.layers[1].kind), before);
    // Float values where the int8 layer stores int8.
    let float = load("mlp__float32.keras").to_safetensors().unwrap();
    assert!(m.load_safetensors(&float, "v.safetensors").is_err());
}

#[test]
fn truncated_files_are_refused() {
    let bytes = load("mlp__int4_from_mixed_bfloat16.keras")
        .to_safetensors()
        .unwrap();
    let mut m = load("mlp__int4_from_mixed_bfloat16.keras");
    for len in (0..bytes.len()).step_by(53) {
        let err = m
            .load_safetensors(&bytes[..len], "v.safetensors")
            .unwrap_err();
        assert!(err.to_string().contains("v.safetensors"), "{len}: {err}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    /// Random bytes, and 8-byte fields of huge values, written anywhere
    /// (the header's length and its JSON included): `Ok` or `Err`, never
    /// a panic.
    #[test]
    fn corrupt_safetensors_never_panic(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u64>(), any::<bool>()), 1..6),
    ) {
        let mut bytes = load("mlp__float8_from_float32.keras").to_safetensors().unwrap();
        for (at, v, wide) in edits {
            let i = at.index(bytes.len() - 8);
            if wide {
                bytes[i..i + 8].copy_from_slice(&v.to_le_bytes());
            } else {
                bytes[i] = v as u8;
            }
        }
        let _ = dtype_policy::io::safetensors::read(&bytes, "v.safetensors");
        let mut m = load("mlp__float8_from_float32.keras");
        let _ = m.load_safetensors(&bytes, "v.safetensors");
    }
}

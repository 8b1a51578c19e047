// SPDX-License-Identifier: MIT OR Apache-2.0
//! `Model::to_keras`: a model quantized here saves to `.keras` and loads
//! back with the same variables, policies and outputs; the files in
//! tests/data/models/saved/ are what it writes today (regenerate with
//! `DTYPE_POLICY_WRITE_SAVED=1 cargo test --test keras_save`), and
//! tools/keras_load_check.py checks that Keras 3.15.1 loads each and gives
//! the outputs of the file Keras quantized itself.

use dtype_policy::gpu::context::Capabilities;
use dtype_policy::models::Model;

fn data(path: &str) -> String {
    format!("{}/tests/data/models/{path}", env!("CARGO_MANIFEST_DIR"))
}

/// (fixture, mode): Sequential and Functional, every weight format Keras
/// reloads (it cannot reload a quantized MultiHeadAttention, so the
/// encoder is saved float and after a quantize filtered to its Dense
/// layers).
const SAVED: [(&str, &str, Option<&str>); 14] = [
    ("rms__mixed_float16", "int4", None),
    ("encoder_dropout__float32", "", None),
    ("einsum__float32", "int8", None),
    ("einsum__float32", "int4", None),
    ("einsum__mixed_bfloat16", "float8", None),
    ("mlp__float32", "int8", None),
    ("mlp__float32", "int4", None),
    ("mlp__float32", "float8", None),
    ("mlp__mixed_bfloat16", "int4", None),
    ("mlp__mixed_bfloat16", "int8", None),
    ("embedder__float32", "int8", None),
    ("embedder__float32", "int4", None),
    ("encoder__float32", "int8", Some("^dense")),
    ("encoder__float32", "", None),
];

fn saved_name(fixture: &str, mode: &str, filter: Option<&str>) -> String {
    let mode = if mode.is_empty() { "none" } else { mode };
    let part = if filter.is_some() { "_dense_only" } else { "" };
    format!("saved/{fixture}__{mode}{part}.keras")
}

#[test]
fn quantized_models_save_to_keras_and_load_back_unchanged() {
    let write = std::env::var_os("DTYPE_POLICY_WRITE_SAVED").is_some();
    for (fixture, mode, filter) in SAVED {
        let mut model = Model::load(data(&format!("{fixture}.keras")), None).unwrap();
        if !mode.is_empty() {
            model.quantize(mode, filter).unwrap();
        }
        let bytes = model.to_keras().unwrap();
        let name = saved_name(fixture, mode, filter);
        let again = Model::from_bytes(&bytes, &name, None).unwrap();
        assert_eq!(
            format!("{:?}", again.variables().unwrap()),
            format!("{:?}", model.variables().unwrap()),
            "{name}: variables"
        );
        for (a, b) in model.layers.iter().zip(&again.layers) {
            assert_eq!(a.policy.name(), b.policy.name(), "{name}: {}", a.path);
        }
        // The same outputs from the twins (the GPU runs the same weights).
        let plan = model
            .plan(&Capabilities::baseline("a CPU plan"), 1)
            .unwrap();
        let inputs: Vec<Vec<f32>> = model
            .inputs
            .iter()
            .map(|&i| {
                let n: usize = model.layers[i].shape.iter().product();
                (0..n).map(|j| (j % 5) as f32).collect()
            })
            .collect();
        let refs: Vec<&[f32]> = inputs.iter().map(Vec::as_slice).collect();
        assert_eq!(
            model.run_cpu(&plan, &refs).unwrap(),
            again.run_cpu(&plan, &refs).unwrap(),
            "{name}: outputs"
        );
        let path = data(&name);
        if write {
            std::fs::write(&path, &bytes).unwrap();
        } else {
            let committed = std::fs::read(&path).unwrap();
            assert!(committed == bytes, "{name}: not what to_keras writes today");
        }
    }
}

#[test]
fn keras_loads_every_saved_file_with_its_own_numbers() {
    let check: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(data("saved/keras_check.json")).unwrap())
            .unwrap();
    assert_eq!(check["keras_version"], "3.15.1");
    let files = check["files"].as_array().unwrap();
    let mut names: Vec<String> = SAVED
        .iter()
        .map(|(f, m, q)| saved_name(f, m, *q).trim_start_matches("saved/").to_owned())
        .collect();
    names.sort();
    let checked: Vec<&str> = files.iter().map(|f| f["file"].as_str().unwrap()).collect();
    assert_eq!(
        checked, names,
        "run tools/keras_load_check.py after changing SAVED"
    );
    for f in files {
        for key in ["outputs_equal", "variables_equal", "policies_equal"] {
            assert_eq!(f[key], true, "{}: {key}", f["file"]);
        }
    }
}

#[test]
fn a_model_without_its_config_is_refused() {
    let mut model = Model::load(data("mlp__float32.keras"), None).unwrap();
    model.config = serde_json::json!({});
    assert!(model.to_keras().is_err());
}

// SPDX-License-Identifier: MIT OR Apache-2.0
//! `Model::quantize` against Keras's `Model.quantize`: the float models of
//! tests/data/models quantized here give the variables and policy names of
//! the same models quantized by Keras 3.15.1 and saved (float8: the float
//! kernel, bias and policy; Keras's file holds scales calibrated after
//! quantizing, ours are a fresh layer's 1.0).

use dtype_policy::format::KernelValues;
use dtype_policy::layers::LayerKind;
use dtype_policy::models::Model;

fn load(file: &str) -> Model {
    Model::load(
        format!("{}/tests/data/models/{file}", env!("CARGO_MANIFEST_DIR")),
        None,
    )
    .unwrap()
}

#[test]
fn quantize_gives_keras_s_variables_and_policy_names() {
    for source in ["float32", "mixed_bfloat16"] {
        for mode in ["int8", "int4", "float8"] {
            let mut ours = load(&format!("mlp__{source}.keras"));
            let skipped = ours.quantize(mode, None).unwrap();
            let keras = load(&format!("mlp__{mode}_from_{source}.keras"));
            assert_eq!(ours.layers.len(), keras.layers.len());
            let mut dense = 0;
            for (a, b) in ours.layers.iter().zip(&keras.layers) {
                let label = format!("{mode} from {source}: {}", b.path);
                assert_eq!(a.policy.name(), b.policy.name(), "{label}: policy");
                match (&a.kind, &b.kind) {
                    (LayerKind::Dense(x), LayerKind::Dense(y)) => {
                        dense += 1;
                        match (x.kernel.values(), y.kernel.values()) {
                            (
                                KernelValues::Float8 { w: wx, .. },
                                KernelValues::Float8 { w: wy, .. },
                            ) => {
                                assert_eq!(wx, wy, "{label}: float8 kernel");
                                assert_eq!(x.kernel.bias(), y.kernel.bias(), "{label}: bias");
                            }
                            _ => assert_eq!(x.kernel, y.kernel, "{label}: variables"),
                        }
                    }
                    (LayerKind::Dense(_), _) | (_, LayerKind::Dense(_)) => {
                        panic!("{label}: layer kinds differ")
                    }
                    _ => {}
                }
            }
            assert_eq!(dense, 4);
            // LayerNormalization, Dropout and Activation have no quantized form.
            let classes: Vec<&str> = skipped
                .iter()
                .map(|p| {
                    let l = ours.layers.iter().find(|l| &l.path == p).unwrap();
                    l.class_name.as_str()
                })
                .collect();
            assert_eq!(classes, ["LayerNormalization", "Dropout", "Activation"]);
        }
    }
}

#[test]
fn quantize_takes_a_filter_and_refuses_what_keras_refuses() {
    let mut model = load("mlp__float32.keras");
    // Keras's filter: a regex searched in each layer's name.
    let first = model.layers[1].name.clone();
    model
        .quantize("int8", Some(&format!("^{}$", regex::escape(&first))))
        .unwrap();
    assert_eq!(model.layers[1].policy.name(), "int8_from_float32");
    assert_eq!(model.layers[3].policy.name(), "float32");
    // Already quantized: refused, and the model is left as it was.
    let before = model.layers[3].policy.name().to_owned();
    let err = model.quantize("int4", None).unwrap_err().to_string();
    assert!(
        err.contains("already quantized") && err.contains(&first),
        "{err}"
    );
    assert_eq!(model.layers[3].policy.name(), before);
    let err = model.quantize("int3", None).unwrap_err().to_string();
    assert!(err.contains("int3"), "{err}");
    assert!(model.quantize("int8", Some("(")).is_err());
}

#[test]
fn a_map_with_quantized_policies_quantizes_float_weights_on_load_as_keras() {
    // Keras's layer names in the int8 file differ (another process's
    // counters), so the map matches every Dense layer by a regex.
    let mut map = dtype_policy::DTypePolicyMap::with_default_name("float32").unwrap();
    map.insert(r"dense(_\d+)?", "int8_from_float32").unwrap();
    let ours = Model::load(
        format!(
            "{}/tests/data/models/mlp__float32.keras",
            env!("CARGO_MANIFEST_DIR")
        ),
        Some(&map),
    )
    .unwrap();
    let keras = load("mlp__int8_from_float32.keras");
    let kernels = |m: &Model| -> Vec<dtype_policy::format::DenseKernel> {
        m.layers
            .iter()
            .filter_map(|l| match &l.kind {
                LayerKind::Dense(d) => Some(d.kernel.clone()),
                _ => None,
            })
            .collect()
    };
    assert_eq!(kernels(&ours).len(), 4);
    assert_eq!(kernels(&ours), kernels(&keras));
}

/// A kernel's values as compared here: float8's float kernel and bias
/// (Keras's file holds scales calibrated after quantizing), else all of it.
fn comparable(kernel: &dtype_policy::format::DenseKernel) -> String {
    match kernel.values() {
        KernelValues::Float8 { w, .. } => format!("{w:?} {:?}", kernel.bias()),
        _ => format!("{kernel:?}"),
    }
}

/// The classes of the layers at `paths`.
fn classes_of<'a>(model: &'a Model, paths: &[String]) -> Vec<&'a str> {
    paths
        .iter()
        .map(|p| {
            let layer = model.layers.iter().find(|l| &l.path == p).unwrap();
            layer.class_name.as_str()
        })
        .collect()
}

#[test]
fn quantize_of_the_encoder_quantizes_the_attention_s_projections_as_keras() {
    for source in ["float32", "mixed_bfloat16"] {
        for mode in ["int8", "int4", "float8"] {
            let mut ours = load(&format!("encoder__{source}.keras"));
            let skipped = ours.quantize(mode, None).unwrap();
            let keras = load(&format!("encoder__{mode}_from_{source}.keras"));
            let label = format!("{mode} from {source}");
            let mut projections = 0;
            for (a, b) in ours.layers.iter().zip(&keras.layers) {
                match (&a.kind, &b.kind) {
                    (LayerKind::Dense(x), LayerKind::Dense(y)) => {
                        assert_eq!(a.policy.name(), b.policy.name(), "{label}");
                        assert!(
                            comparable(&x.kernel) == comparable(&y.kernel),
                            "{label}: {}",
                            b.path
                        );
                    }
                    (LayerKind::MultiHeadAttention(x), LayerKind::MultiHeadAttention(y)) => {
                        for (p, q) in x.projections.iter().zip(&y.projections) {
                            projections += 1;
                            assert_eq!(p.policy.name(), q.policy.name(), "{label}: {}", q.path);
                            assert!(
                                comparable(&p.kernel) == comparable(&q.kernel),
                                "{label}: {}",
                                q.path
                            );
                        }
                    }
                    _ => assert_eq!(a.class_name, b.class_name),
                }
            }
            assert_eq!(projections, 4, "{label}");
            let classes = classes_of(&ours, &skipped);
            assert_eq!(
                classes,
                [
                    "Add",
                    "LayerNormalization",
                    "Dropout",
                    "Add",
                    "LayerNormalization"
                ],
                "{label}"
            );
        }
    }
}

#[test]
fn quantize_of_an_embedding_gives_keras_s_table_and_policy() {
    for source in ["float32", "mixed_bfloat16"] {
        for mode in ["int8", "int4"] {
            let mut ours = load(&format!("embedder__{source}.keras"));
            let skipped = ours.quantize(mode, None).unwrap();
            let keras = load(&format!("embedder__{mode}_from_{source}.keras"));
            let label = format!("{mode} from {source}");
            let mut tables = 0;
            for (a, b) in ours.layers.iter().zip(&keras.layers) {
                assert_eq!(a.policy.name(), b.policy.name(), "{label}: {}", b.path);
                match (&a.kind, &b.kind) {
                    (LayerKind::Embedding(x), LayerKind::Embedding(y)) => {
                        tables += 1;
                        assert_eq!(x.table, y.table, "{label}");
                    }
                    (LayerKind::Dense(x), LayerKind::Dense(y)) => {
                        assert_eq!(x.kernel, y.kernel, "{label}");
                    }
                    _ => assert_eq!(a.class_name, b.class_name),
                }
            }
            assert_eq!(tables, 1, "{label}");
            let classes = classes_of(&ours, &skipped);
            assert_eq!(classes, ["Reshape", "Softmax"], "{label}");
        }
    }
    // Keras has no float8 Embedding: it warns and skips it.
    let mut ours = load("embedder__float32.keras");
    let skipped = ours.quantize("float8", None).unwrap();
    let embedding = ours
        .layers
        .iter()
        .find(|l| l.class_name == "Embedding")
        .unwrap();
    assert!(skipped.contains(&embedding.path), "{skipped:?}");
}

#[test]
fn quantize_of_stand_alone_einsum_dense_gives_keras_s_variables_and_policies() {
    for source in ["float32", "mixed_bfloat16"] {
        for mode in ["int8", "int4", "float8"] {
            let mut ours = load(&format!("einsum__{source}.keras"));
            ours.quantize(mode, None).unwrap();
            let keras = load(&format!("einsum__{mode}_from_{source}.keras"));
            let label = format!("{mode} from {source}");
            let mut einsums = 0;
            for (a, b) in ours.layers.iter().zip(&keras.layers) {
                assert_eq!(a.policy.name(), b.policy.name(), "{label}: {}", b.path);
                match (&a.kind, &b.kind) {
                    (LayerKind::EinsumDense(x), LayerKind::EinsumDense(y)) => {
                        einsums += 1;
                        assert_eq!(x.axes, y.axes, "{label}");
                        assert!(
                            comparable(&x.kernel) == comparable(&y.kernel),
                            "{label}: {}",
                            b.path
                        );
                    }
                    (LayerKind::Dense(x), LayerKind::Dense(y)) => {
                        assert!(
                            comparable(&x.kernel) == comparable(&y.kernel),
                            "{label}: {}",
                            b.path
                        );
                    }
                    _ => assert_eq!(a.class_name, b.class_name),
                }
            }
            assert_eq!(einsums, 3, "{label}");
        }
    }
}

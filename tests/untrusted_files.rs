// SPDX-License-Identifier: MIT OR Apache-2.0
//! Files come from users: truncated, corrupt or hostile `.keras` archives
//! (zip), weights files (HDF5) and configs give a clear `Err` that names
//! what is wrong, never a panic and never an allocation on a file's word.

use std::io::{Cursor, Read, Write};

use dtype_policy::Error;
use dtype_policy::io::archive::{ArchiveLimits, KerasArchive};
use dtype_policy::io::h5::WeightsFile;
use dtype_policy::models::Model;
use proptest::prelude::*;
use serde_json::Value;

fn fixture_bytes(file: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/data/models/{file}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

const MLP: &str = "mlp__int4_from_float32.keras";

/// The members of an archive, in order.
fn members(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).unwrap();
    (0..zip.len())
        .map(|i| {
            let mut f = zip.by_index(i).unwrap();
            let mut data = Vec::new();
            f.read_to_end(&mut data).unwrap();
            (f.name().unwrap().to_string(), data)
        })
        .collect()
}

/// An archive of `members`, stored or deflated.
fn archive(members: &[(String, Vec<u8>)], method: zip::CompressionMethod) -> Vec<u8> {
    let mut out = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, data) in members {
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(method)
            .large_file(data.len() > u32::MAX as usize);
        out.start_file(name.as_str(), options).unwrap();
        out.write_all(data).unwrap();
    }
    out.finish().unwrap().into_inner()
}

/// The fixture with its config changed by `edit`.
fn with_config(edit: impl Fn(&mut Value)) -> Vec<u8> {
    with_config_of(MLP, edit)
}

/// A fixture's archive with its config changed by `edit`.
fn with_config_of(file: &str, edit: impl Fn(&mut Value)) -> Vec<u8> {
    let mut m = members(&fixture_bytes(file));
    for (name, data) in &mut m {
        if name == "config.json" {
            let mut config: Value = serde_json::from_slice(data).unwrap();
            edit(&mut config);
            *data = serde_json::to_vec(&config).unwrap();
        }
    }
    archive(&m, zip::CompressionMethod::Stored)
}

fn load(bytes: &[u8]) -> Result<Model, Error> {
    Model::from_bytes(bytes, "model.keras", None)
}

fn message(bytes: &[u8]) -> String {
    load(bytes).unwrap_err().to_string()
}

#[test]
fn the_fixture_loads_and_a_rebuilt_archive_too() {
    let bytes = fixture_bytes(MLP);
    assert!(load(&bytes).is_ok());
    let m = members(&bytes);
    assert!(load(&archive(&m, zip::CompressionMethod::Stored)).is_ok());
    // Deflated by another tool: read too.
    assert!(load(&archive(&m, zip::CompressionMethod::Deflated)).is_ok());
}

#[test]
fn truncated_archives_are_refused_at_every_length() {
    let bytes = fixture_bytes(MLP);
    for len in (0..bytes.len()).step_by(97).chain([bytes.len() - 1]) {
        let err = load(&bytes[..len]).unwrap_err().to_string();
        assert!(err.starts_with("model.keras"), "{len}: {err}");
    }
}

#[test]
fn a_decompression_bomb_is_refused_before_it_is_inflated() {
    // 64 MiB of zeros deflate to about 64 KiB: more than 100 times.
    let mut m = members(&fixture_bytes(MLP));
    m.push(("model.weights.h5".into(), vec![0u8; 64 << 20]));
    m.retain(|(n, d)| n != "model.weights.h5" || d.len() == 64 << 20);
    let bytes = archive(&m, zip::CompressionMethod::Deflated);
    let limits = ArchiveLimits {
        bomb_floor_bytes: 1 << 20,
        ..ArchiveLimits::default()
    };
    let err = KerasArchive::from_bytes(&bytes, "bomb.keras", &limits).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("model.weights.h5") && text.contains("decompression bomb"),
        "{text}"
    );
    // The default floor (256 MiB) lets a genuine 64 MiB member through.
    assert!(KerasArchive::from_bytes(&bytes, "ok.keras", &ArchiveLimits::default()).is_ok());
}

#[test]
fn a_member_larger_than_its_header_says_is_refused() {
    // The central directory's size of config.json made smaller than the
    // member: the reader stops at the declared size and says so.
    let mut m = members(&fixture_bytes(MLP));
    m.retain(|(n, _)| n == "config.json");
    let mut bytes = archive(&m, zip::CompressionMethod::Deflated);
    let size = m[0].1.len() as u32;
    let le = size.to_le_bytes();
    // The uncompressed size sits 24 bytes into each header (local: 22).
    let mut patched = 0;
    for at in 0..bytes.len().saturating_sub(30) {
        let sig = u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
        let offset = match sig {
            0x0403_4b50 => 22,
            0x0201_4b50 => 24,
            _ => continue,
        };
        if bytes[at + offset..at + offset + 4] == le {
            bytes[at + offset..at + offset + 4].copy_from_slice(&(size / 2).to_le_bytes());
            patched += 1;
        }
    }
    assert_eq!(patched, 2);
    let err = KerasArchive::from_bytes(&bytes, "lies.keras", &ArchiveLimits::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("config.json"), "{err}");
}

#[test]
fn missing_members_are_named() {
    let m = members(&fixture_bytes(MLP));
    for gone in ["config.json", "model.weights.h5"] {
        let kept: Vec<_> = m.iter().filter(|(n, _)| n != gone).cloned().collect();
        let err = message(&archive(&kept, zip::CompressionMethod::Stored));
        assert!(err.contains(gone), "{gone}: {err}");
    }
}

#[test]
fn an_unknown_layer_class_is_named_with_its_path() {
    let bytes = with_config(|c| c["config"]["layers"][2]["class_name"] = "Conv2D".into());
    let err = message(&bytes);
    assert!(
        err.contains("Conv2D") && err.contains("Layer 'layer_normalization"),
        "{err}"
    );
}

#[test]
fn shapes_that_disagree_with_the_config_are_refused() {
    // units 33 where the file holds a kernel for 32.
    let err = message(&with_config(|c| {
        c["config"]["layers"][1]["config"]["units"] = 33.into()
    }));
    assert!(err.contains("Layer '") && err.contains("kernel"), "{err}");
    // use_bias false where the file holds a bias: a variable too many.
    let err = message(&with_config(|c| {
        c["config"]["layers"][1]["config"]["use_bias"] = false.into()
    }));
    assert!(err.contains("variables"), "{err}");
    // An input of 15 features into a kernel of 16.
    let err = message(&with_config(|c| {
        c["config"]["layers"][0]["config"]["batch_shape"] = serde_json::json!([null, 15])
    }));
    assert!(err.contains("15"), "{err}");
}

#[test]
fn embedding_reshape_softmax_and_einsum_configs_that_disagree_are_refused() {
    const EMBEDDER: &str = "embedder__int4_from_float32.keras";
    const EINSUM: &str = "einsum__int8_from_float32.keras";
    // A vocabulary of 38 where the file holds 37 rows.
    let err = message(&with_config_of(EMBEDDER, |c| {
        c["config"]["layers"][1]["config"]["input_dim"] = 38.into()
    }));
    assert!(err.contains("Embedding") && err.contains("[38"), "{err}");
    let err = message(&with_config_of(EMBEDDER, |c| {
        c["config"]["layers"][1]["config"]["mask_zero"] = true.into()
    }));
    assert!(err.contains("mask_zero"), "{err}");
    // A Reshape whose sizes do not match, and one of absurd sizes.
    for target in [
        serde_json::json!([5, 8]),
        serde_json::json!([u64::MAX, 2]),
        serde_json::json!([-1, -1]),
    ] {
        let err = message(&with_config_of(EMBEDDER, |c| {
            c["config"]["layers"][2]["config"]["target_shape"] = target.clone()
        }));
        assert!(err.contains("Reshape"), "{err}");
    }
    let err = message(&with_config_of(EMBEDDER, |c| {
        c["config"]["layers"][5]["config"]["axis"] = 1.into()
    }));
    assert!(err.contains("Softmax") && err.contains("axis"), "{err}");
    // EinsumDense: an equation not read, a bias over part of the outputs,
    // output axes that overflow.
    let err = message(&with_config_of(EINSUM, |c| {
        c["config"]["layers"][1]["config"]["equation"] = "abc,dce->abde".into()
    }));
    assert!(
        err.contains("EinsumDense") && err.contains("abc,dce->abde"),
        "{err}"
    );
    let err = message(&with_config_of(EINSUM, |c| {
        c["config"]["layers"][1]["config"]["bias_axes"] = "e".into()
    }));
    assert!(err.contains("bias_axes"), "{err}");
    let err = message(&with_config_of(EINSUM, |c| {
        c["config"]["layers"][1]["config"]["output_shape"] =
            serde_json::json!([null, u64::MAX, u64::MAX])
    }));
    assert!(err.contains("EinsumDense"), "{err}");
}

#[test]
fn a_policy_a_layer_cannot_take_is_refused() {
    // gptq: no kernel here (its calibrated weights are not in the file).
    let bytes = with_config(|c| {
        c["config"]["layers"][1]["config"]["dtype"] = "gptq/4/128_from_float32".into()
    });
    let err = message(&bytes);
    assert!(err.contains("gptq") && err.contains("Layer '"), "{err}");
    // A map naming a policy whose variables the file does not hold.
    let mut map = dtype_policy::DTypePolicyMap::with_default_name("float32").unwrap();
    map.insert(".*dense.*", "int8_from_float32").unwrap();
    let err = Model::from_bytes(&fixture_bytes(MLP), "model.keras", Some(&map))
        .unwrap_err()
        .to_string();
    assert!(err.contains("int8") && err.contains("kernel"), "{err}");
}

#[test]
fn weights_that_lie_about_their_size_are_refused() {
    let m = members(&fixture_bytes(MLP));
    let h5 = m
        .iter()
        .find(|(n, _)| n == "model.weights.h5")
        .unwrap()
        .1
        .clone();
    assert!(WeightsFile::from_bytes(h5.clone(), "w.h5").is_ok());
    // Truncated: every dataset must lie within the file.
    for len in (0..h5.len()).step_by(211) {
        let _ = WeightsFile::from_bytes(h5[..len].to_vec(), "w.h5");
    }
    assert!(WeightsFile::from_bytes(Vec::new(), "w.h5").is_err());
    assert!(WeightsFile::from_bytes(b"not hdf5".to_vec(), "w.h5").is_err());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// Random bytes overwritten anywhere in an archive: `Ok` (a byte the
    /// zip's checksums do not cover) or `Err`, never a panic.
    #[test]
    fn corrupt_archives_never_panic(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let mut bytes = fixture_bytes(MLP);
        for (at, v) in edits {
            let i = at.index(bytes.len());
            bytes[i] = v;
        }
        let _ = load(&bytes);
    }

    /// Random bytes written anywhere in a `.npy` file (header, shape text,
    /// data), or a random header text: `Ok` with no more values than the
    /// file holds, or `Err`; never a panic.
    #[test]
    fn corrupt_npy_files_never_panic(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        header in "[{}()'a-z0-9:, <>]{0,80}",
    ) {
        use dtype_policy::io::npy::NpyArray;
        let a = NpyArray { shape: vec![3, 5], values: (0..15).map(|i| i as f32).collect() };
        let mut bytes = a.to_bytes();
        for (at, v) in edits {
            let i = at.index(bytes.len());
            bytes[i] = v;
        }
        if let Ok(b) = NpyArray::from_bytes(&bytes, "x.npy") {
            prop_assert!(b.values.len() * 4 <= bytes.len());
        }
        let mut b = b"\x93NUMPY\x01\x00".to_vec();
        b.extend_from_slice(&(header.len() as u16).to_le_bytes());
        b.extend_from_slice(header.as_bytes());
        b.extend_from_slice(&[0u8; 64]);
        let _ = NpyArray::from_bytes(&b, "y.npy");
    }

    /// Random bytes, 8-byte fields of all ones or huge values written
    /// anywhere in a weights file: `Ok` or `Err`, never a panic, never an
    /// allocation beyond what the file holds.
    #[test]
    fn corrupt_weights_never_panic(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u64>(), any::<bool>()), 1..6),
    ) {
        let m = members(&fixture_bytes(MLP));
        let mut h5 = m.iter().find(|(n, _)| n == "model.weights.h5").unwrap().1.clone();
        for (at, v, wide) in edits {
            let i = at.index(h5.len() - 8);
            if wide {
                h5[i..i + 8].copy_from_slice(&v.to_le_bytes());
            } else {
                h5[i] = v as u8;
            }
        }
        if let Ok(w) = WeightsFile::from_bytes(h5.clone(), "w.h5") {
            let held: usize = w.layers.values().flat_map(|l| &l.vars).map(|a| a.shape.iter().product::<usize>()).sum();
            prop_assert!(held <= h5.len());
        }
    }
}

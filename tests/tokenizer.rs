// SPDX-License-Identifier: MIT OR Apache-2.0
//! KerasHub 0.32.0's tokenizers, replayed: for each preset folder that
//! `tools/tokenizer_reference.py` saved under `tests/data/tokenizers/`,
//! `cases.json` holds KerasHub's vocabulary size, special ids, ids for a set
//! of strings (its default path's, `ids`, and its TensorFlow path's,
//! `ids_tf`) and detokenized text. Every case is checked here against
//! `ids`; then the errors: missing, truncated and corrupt files, refused
//! models, unknown ids.

use std::path::{Path, PathBuf};

use dtype_policy::Error;
use dtype_policy::tokenizer::Tokenizer;
use serde_json::Value;

const FOLDERS: [&str; 6] = [
    "gpt2",
    "gpt2_prefix_space",
    "llama3",
    "llama",
    "llama_no_byte_fallback",
    "gemma",
];

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/tokenizers")
}

fn cases() -> Value {
    let text = std::fs::read_to_string(data_dir().join("cases.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn load(name: &str) -> Tokenizer {
    Tokenizer::from_preset(&data_dir().join(name)).unwrap_or_else(|e| panic!("loading {name}: {e}"))
}

fn ids(value: &Value) -> Vec<u32> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|i| u32::try_from(i.as_u64().unwrap()).unwrap())
        .collect()
}

fn optional_id(value: &Value) -> Option<u32> {
    value.as_u64().map(|i| u32::try_from(i).unwrap())
}

/// Decodes `ids` one at a time with a [`dtype_policy::tokenizer::DecodeStream`].
fn streamed(tokenizer: &Tokenizer, ids: &[u32]) -> String {
    let mut stream = tokenizer.decode_stream();
    let mut text = String::new();
    for &id in ids {
        if let Some(fragment) = stream.step(id).unwrap() {
            assert!(!fragment.is_empty());
            text.push_str(&fragment);
        }
    }
    text.push_str(&stream.finish().unwrap());
    text
}

/// Every recorded answer of folder `name`.
fn check_folder(name: &str) {
    let all = cases();
    let expected = &all[name];
    let t = load(name);
    assert_eq!(
        t.class_name(),
        expected["class"].as_str().unwrap(),
        "{name}"
    );
    assert_eq!(
        t.vocabulary_size() as u64,
        expected["vocabulary_size"].as_u64().unwrap(),
        "{name}: vocabulary size"
    );
    assert_eq!(
        t.start_token_id(),
        optional_id(&expected["start_token_id"]),
        "{name}: start"
    );
    assert_eq!(
        t.end_token_id(),
        optional_id(&expected["end_token_id"]),
        "{name}: end"
    );
    assert_eq!(
        t.pad_token_id(),
        optional_id(&expected["pad_token_id"]),
        "{name}: pad"
    );
    for (token, id) in expected["token_ids"].as_object().unwrap() {
        let id = optional_id(id);
        assert_eq!(t.token_to_id(token), id, "{name}: token_to_id({token:?})");
        assert_eq!(
            t.id_to_token(id.unwrap()),
            Some(token.as_str()),
            "{name}: id_to_token"
        );
    }

    let cases = expected["cases"].as_array().unwrap();
    assert!(cases.len() > 40, "{name}: {} cases", cases.len());
    for case in cases {
        let text = case["text"].as_str().unwrap();
        let want = ids(&case["ids"]);
        let got = t.encode(text).unwrap();
        assert_eq!(
            got.len(),
            want.len(),
            "{name}: encode({text:?}) has {} ids, KerasHub {}:\n expected {want:?}\n      got {got:?}",
            got.len(),
            want.len()
        );
        assert_eq!(
            got, want,
            "{name}: encode({text:?}):\n expected {want:?}\n      got {got:?}"
        );
        let detokenized = case["detokenized"].as_str().unwrap();
        assert_eq!(
            t.decode(&want).unwrap(),
            detokenized,
            "{name}: decode({want:?}) of {text:?}"
        );
        assert_eq!(
            streamed(&t, &want),
            detokenized,
            "{name}: streamed decode of {text:?}"
        );
    }
    for case in expected["decode_cases"].as_array().unwrap() {
        let want = ids(&case["ids"]);
        let detokenized = case["detokenized"].as_str().unwrap();
        assert_eq!(
            t.decode(&want).unwrap(),
            detokenized,
            "{name}: decode({want:?})"
        );
        assert_eq!(
            streamed(&t, &want),
            detokenized,
            "{name}: streamed decode({want:?})"
        );
    }
}

#[test]
fn gpt2_matches_kerashub() {
    check_folder("gpt2");
}

#[test]
fn gpt2_with_prefix_space_matches_kerashub() {
    check_folder("gpt2_prefix_space");
}

#[test]
fn llama3_matches_kerashub() {
    check_folder("llama3");
}

#[test]
fn llama_matches_kerashub() {
    check_folder("llama");
}

#[test]
fn llama_without_byte_fallback_matches_kerashub() {
    check_folder("llama_no_byte_fallback");
}

#[test]
fn gemma_matches_kerashub() {
    check_folder("gemma");
}

#[test]
fn every_folder_of_cases_json_is_checked() {
    let all = cases();
    let mut names: Vec<&str> = all
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    names.sort();
    let mut folders = FOLDERS.to_vec();
    folders.sort();
    assert_eq!(names, folders);
}

/// The module doc says KerasHub's TensorFlow path differs from its default
/// path only for byte-level BPE; we give the default path's ids there.
#[test]
fn where_kerashubs_tf_path_differs_the_default_path_is_matched() {
    let all = cases();
    for name in FOLDERS {
        let t = load(name);
        let differing: Vec<&Value> = all[name]["cases"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["ids"] != c["ids_tf"])
            .collect();
        let byte_pair = ["gpt2", "gpt2_prefix_space", "llama3"].contains(&name);
        assert_eq!(
            !differing.is_empty(),
            byte_pair,
            "{name}: {} differ",
            differing.len()
        );
        for case in differing {
            let got = t.encode(case["text"].as_str().unwrap()).unwrap();
            assert_eq!(got, ids(&case["ids"]), "{name}: {}", case["text"]);
            assert_ne!(got, ids(&case["ids_tf"]), "{name}: {}", case["text"]);
        }
    }
    // Runs of whitespace are among them (GPT-2's regex splits them apart).
    let gpt2 = &all["gpt2"]["cases"];
    let a_b = gpt2
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["text"] == "a  b")
        .unwrap();
    assert_ne!(a_b["ids"], a_b["ids_tf"]);
}

#[test]
fn encode_prompt_puts_the_start_token_first() {
    let start = [
        ("gpt2", "<|endoftext|>"),
        ("gpt2_prefix_space", "<|endoftext|>"),
        ("llama3", "<|begin_of_text|>"),
        ("llama", "<s>"),
        ("llama_no_byte_fallback", "<s>"),
        ("gemma", "<bos>"),
    ];
    for (name, token) in start {
        let t = load(name);
        let id = t.token_to_id(token).unwrap();
        assert_eq!(t.start_token_id(), Some(id), "{name}");
        for text in ["Hello world", "", "a<|endoftext|>b"] {
            let prompt = t.encode_prompt(text).unwrap();
            let mut want = vec![id];
            want.extend(t.encode(text).unwrap());
            assert_eq!(prompt, want, "{name}: {text:?}");
        }
    }
}

#[test]
fn a_missing_folder_is_an_error_naming_it() {
    let dir = data_dir().join("no_such_tokenizer");
    let err = Tokenizer::from_preset(&dir).unwrap_err();
    assert!(matches!(err, Error::File { .. }), "{err:?}");
    assert!(err.to_string().contains("no_such_tokenizer"), "{err}");
}

/// A scratch copy of a preset folder (tokenizer.json and its assets) under
/// the system's temp folder, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn copy(name: &str, tag: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!(
            "dtype_policy_tokenizer_{name}_{tag}_{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        let src = data_dir().join(name);
        std::fs::create_dir_all(dir.join("assets/tokenizer")).unwrap();
        std::fs::copy(src.join("tokenizer.json"), dir.join("tokenizer.json")).unwrap();
        for entry in std::fs::read_dir(src.join("assets/tokenizer")).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(
                entry.path(),
                dir.join("assets/tokenizer").join(entry.file_name()),
            )
            .unwrap();
        }
        Scratch(dir)
    }

    fn asset(&self, file: &str) -> PathBuf {
        self.0.join("assets/tokenizer").join(file)
    }

    fn write_asset(&self, file: &str, bytes: &[u8]) {
        std::fs::write(self.asset(file), bytes).unwrap();
    }

    fn load(&self) -> Result<Tokenizer, Error> {
        Tokenizer::from_preset(&self.0)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn a_missing_asset_is_an_error_naming_it() {
    let scratch = Scratch::copy("gpt2", "missing");
    std::fs::remove_file(scratch.asset("merges.txt")).unwrap();
    let err = scratch.load().unwrap_err().to_string();
    assert!(
        err.contains("merges.txt") && err.contains("missing"),
        "{err}"
    );
}

#[test]
fn a_truncated_spm_is_an_error_naming_the_file_never_a_panic() {
    let spm = std::fs::read(data_dir().join("llama/assets/tokenizer/vocabulary.spm")).unwrap();
    let scratch = Scratch::copy("llama", "truncated");
    let mut errors = 0;
    for len in 0..spm.len() {
        scratch.write_asset("vocabulary.spm", &spm[..len]);
        // A cut between two fields is a valid protobuf of fewer fields; it
        // still lacks what a model needs (its trainer or normalizer spec).
        match scratch.load() {
            Ok(t) => panic!("cut at {len} of {} loaded: {t:?}", spm.len()),
            Err(e) => {
                let e = e.to_string();
                assert!(e.contains("vocabulary.spm"), "cut at {len}: {e}");
                errors += 1;
            }
        }
    }
    assert_eq!(errors, spm.len());
    scratch.write_asset("vocabulary.spm", &spm[..spm.len() / 2]);
    let err = scratch.load().unwrap_err().to_string();
    assert!(err.contains("truncated") || err.contains("remain"), "{err}");
}

#[test]
fn corrupt_spm_bytes_are_errors_or_loads_never_panics() {
    let spm = std::fs::read(data_dir().join("gemma/assets/tokenizer/vocabulary.spm")).unwrap();
    let scratch = Scratch::copy("gemma", "corrupt");
    for at in (0..spm.len()).step_by(7) {
        for byte in [0xff, 0x00, 0x80] {
            let mut bad = spm.clone();
            bad[at] = byte;
            scratch.write_asset("vocabulary.spm", &bad);
            if let Ok(t) = scratch.load() {
                // Whatever loads must encode and decode without panicking.
                let ids = t.encode("Hello, world! caf\u{e9} \u{4e2d}").unwrap();
                let _ = t.decode(&ids);
            }
        }
    }
}

/// Appends a `ModelProto` field to `spm`: protobuf merges a repeated
/// message field into the first, so this overrides one field of it.
fn with_field(spm: &[u8], field: u8, message: &[u8]) -> Vec<u8> {
    let mut out = spm.to_vec();
    out.push((field << 3) | 2);
    out.push(u8::try_from(message.len()).unwrap());
    out.extend_from_slice(message);
    out
}

#[test]
fn a_unigram_model_is_refused() {
    let spm = std::fs::read(data_dir().join("llama/assets/tokenizer/vocabulary.spm")).unwrap();
    let scratch = Scratch::copy("llama", "unigram");
    // trainer_spec (2) { model_type (3): UNIGRAM (1) }
    scratch.write_asset("vocabulary.spm", &with_field(&spm, 2, &[3 << 3, 1]));
    let err = scratch.load().unwrap_err();
    assert!(matches!(err, Error::Unsupported(_)), "{err:?}");
    let err = err.to_string();
    assert!(
        err.contains("UNIGRAM") && err.contains("vocabulary.spm"),
        "{err}"
    );
}

#[test]
fn a_normalizer_other_than_identity_is_refused() {
    let spm = std::fs::read(data_dir().join("llama/assets/tokenizer/vocabulary.spm")).unwrap();
    let scratch = Scratch::copy("llama", "nfkc");
    // normalizer_spec (3) { name (1): "nmt_nfkc" }
    let mut name = vec![(1 << 3) | 2, 8];
    name.extend_from_slice(b"nmt_nfkc");
    scratch.write_asset("vocabulary.spm", &with_field(&spm, 3, &name));
    let err = scratch.load().unwrap_err();
    assert!(matches!(err, Error::Unsupported(_)), "{err:?}");
    assert!(err.to_string().contains("nmt_nfkc"), "{err}");
}

/// Llama's model with `remove_extra_whitespaces` set; the answers are
/// sentencepiece 0.2.3's for the same bytes (`SentencePieceProcessor(
/// model_proto=...)`, `Encode`, `Decode`).
#[test]
fn remove_extra_whitespaces_matches_sentencepiece() {
    let spm = std::fs::read(data_dir().join("llama/assets/tokenizer/vocabulary.spm")).unwrap();
    let scratch = Scratch::copy("llama", "extra_ws");
    // normalizer_spec (3) { remove_extra_whitespaces (4): true }
    scratch.write_asset("vocabulary.spm", &with_field(&spm, 3, &[4 << 3, 1]));
    let t = scratch.load().unwrap();
    let cases: [(&str, &[u32], &str); 5] = [
        (
            "  two  spaces  ",
            &[259, 358, 341, 265, 336, 299],
            "two spaces",
        ),
        ("   ", &[], ""),
        ("a    b\tc ", &[262, 289, 385, 355], "a b\tc"),
        (" Hello world ", &[326, 327], "Hello world"),
        ("x", &[298], "x"),
    ];
    for (text, want, detokenized) in cases {
        assert_eq!(t.encode(text).unwrap(), want, "{text:?}");
        assert_eq!(t.decode(want).unwrap(), detokenized, "{text:?}");
    }
    for (ids, text) in [
        (&[35u32, 264][..], "  the"),
        (&[264, 264], "the the"),
        (&[1, 264], "the"),
    ] {
        assert_eq!(t.decode(ids).unwrap(), text, "{ids:?}");
    }
}

#[test]
fn an_unknown_id_is_an_error_naming_it() {
    for name in FOLDERS {
        let t = load(name);
        let id = t.vocabulary_size() as u32;
        assert_eq!(t.id_to_token(id), None, "{name}");
        let err = t.decode(&[t.start_token_id().unwrap(), id]).unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(_)), "{name}: {err:?}");
        assert!(err.to_string().contains(&id.to_string()), "{name}: {err}");
        assert!(t.decode(&[u32::MAX]).is_err(), "{name}");
        // A stream refuses it too, and goes on as if it never came.
        let mut stream = t.decode_stream();
        assert!(stream.step(id).is_err(), "{name}");
        let the = t.encode("the").unwrap();
        let mut text = String::new();
        for &i in &the {
            text.push_str(&stream.step(i).unwrap().unwrap_or_default());
        }
        text.push_str(&stream.finish().unwrap());
        assert_eq!(text, t.decode(&the).unwrap(), "{name}");
    }
}

#[test]
fn token_to_id_is_none_outside_the_vocabulary() {
    for name in FOLDERS {
        let t = load(name);
        assert_eq!(t.token_to_id("no such token, surely"), None, "{name}");
    }
}

#[test]
fn a_stream_holds_back_a_split_character() {
    // GPT-2's symbols for the bytes 0xC3 and 0xA9 ("é").
    let t = load("gpt2");
    let (c3, a9) = (
        t.token_to_id("\u{c3}").unwrap(),
        t.token_to_id("\u{a9}").unwrap(),
    );
    let mut stream = t.decode_stream();
    assert_eq!(stream.step(c3).unwrap(), None);
    assert_eq!(stream.step(a9).unwrap().as_deref(), Some("\u{e9}"));
    let mut stream = t.decode_stream();
    assert_eq!(stream.step(c3).unwrap(), None);
    assert_eq!(stream.finish().unwrap(), "\u{fffd}");

    // Llama's byte pieces; a control piece ends the byte run.
    let t = load("llama");
    let (c3, a9) = (
        t.token_to_id("<0xC3>").unwrap(),
        t.token_to_id("<0xA9>").unwrap(),
    );
    let mut stream = t.decode_stream();
    assert_eq!(stream.step(c3).unwrap(), None);
    assert_eq!(stream.step(a9).unwrap().as_deref(), Some("\u{e9}"));
    let mut stream = t.decode_stream();
    assert_eq!(stream.step(c3).unwrap(), None);
    assert_eq!(stream.step(2).unwrap().as_deref(), Some("\u{fffd}"));
}

#[test]
fn corrupt_byte_pair_files_are_errors_naming_them() {
    let scratch = Scratch::copy("gpt2", "corrupt");
    let vocab = std::fs::read_to_string(scratch.asset("vocabulary.json")).unwrap();
    let merges = std::fs::read_to_string(scratch.asset("merges.txt")).unwrap();
    let check = |file: &str, bytes: &[u8], words: &[&str]| {
        scratch.write_asset(file, bytes);
        let err = scratch.load().unwrap_err().to_string();
        assert!(err.contains(file), "{err}");
        for w in words {
            assert!(err.contains(w), "{w:?} not in: {err}");
        }
    };
    check("vocabulary.json", b"[1, 2", &["not a JSON object"]);
    check("vocabulary.json", b"{\"a\": -1}", &["\"a\"", "-1"]);
    check("vocabulary.json", b"{\"a\": 0, \"b\": 0}", &["same id 0"]);
    let without_eot = vocab.replace("\"<|endoftext|>\"", "\"<|notendoftext|>\"");
    check(
        "vocabulary.json",
        without_eot.as_bytes(),
        &["<|endoftext|>", "not in the vocabulary"],
    );
    scratch.write_asset("vocabulary.json", vocab.as_bytes());

    check(
        "merges.txt",
        format!("{merges}a b c\n").as_bytes(),
        &["line", "a b c"],
    );
    check(
        "merges.txt",
        format!("\u{2603} a\n{merges}").as_bytes(),
        &["line 1", "\u{2603}"],
    );
    check("merges.txt", &[0xff, b' ', b'a'], &["UTF-8"]);
    // KerasHub skips `#version:` lines.
    scratch.write_asset("merges.txt", format!("#version: 0.2\n{merges}").as_bytes());
    let t = scratch.load().unwrap();
    assert_eq!(
        t.encode("Hello world").unwrap(),
        load("gpt2").encode("Hello world").unwrap()
    );
}

#[test]
fn an_unsupported_class_is_refused() {
    let scratch = Scratch::copy("gpt2", "class");
    let config = std::fs::read_to_string(scratch.0.join("tokenizer.json")).unwrap();
    let config = config.replace("\"GPT2Tokenizer\"", "\"BertTokenizer\"");
    std::fs::write(scratch.0.join("tokenizer.json"), config).unwrap();
    let err = scratch.load().unwrap_err();
    assert!(matches!(err, Error::Unsupported(_)), "{err:?}");
    assert!(err.to_string().contains("BertTokenizer"), "{err}");
    std::fs::write(scratch.0.join("tokenizer.json"), "{not json").unwrap();
    let err = scratch.load().unwrap_err().to_string();
    assert!(
        err.contains("tokenizer.json") && err.contains("not JSON"),
        "{err}"
    );
}

// SPDX-License-Identifier: MIT OR Apache-2.0
//! KerasHub's tokenizers: text to token ids and back, read from a preset
//! folder as `tokenizer.save_to_preset(dir)` writes it.
//!
//! ## Overview
//! | KerasHub 0.32.0 | here |
//! |---|---|
//! | `Tokenizer.from_preset(dir)` | [`Tokenizer::from_preset`] |
//! | `tokenizer(text)` | [`Tokenizer::encode`] |
//! | `tokenizer.detokenize(ids)` | [`Tokenizer::decode`], [`Tokenizer::decode_stream`] |
//! | `token_to_id`, `id_to_token`, `vocabulary_size()` | the same names |
//! | `start_token_id`, `end_token_id`, `pad_token_id` | the same names |
//! | `CausalLMPreprocessor.generate_preprocess(text)` | [`Tokenizer::encode_prompt`] (unpadded) |
//!
//! Two kinds of tokenizer, four classes:
//! - byte-level BPE (`vocabulary.json` and `merges.txt`): `GPT2Tokenizer`,
//!   `Llama3Tokenizer`;
//! - SentencePiece BPE (`vocabulary.spm`, a serialized sentencepiece
//!   `ModelProto`, read by a small protobuf reader): `LlamaTokenizer`,
//!   `GemmaTokenizer`.
//!
//! ## Usage
//! ```
//! use dtype_policy::tokenizer::Tokenizer;
//!
//! let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/tokenizers/gpt2");
//! let tokenizer = Tokenizer::from_preset(dir.as_ref())?;
//! assert_eq!(tokenizer.class_name(), "GPT2Tokenizer");
//!
//! let ids = tokenizer.encode("Hello world")?;
//! assert_eq!(tokenizer.decode(&ids)?, "Hello world");
//!
//! // What a causal LM is given to continue: the start token, then the text.
//! let prompt = tokenizer.encode_prompt("Hello world")?;
//! assert_eq!(prompt[0], tokenizer.token_to_id("<|endoftext|>").unwrap());
//! assert_eq!(&prompt[1..], &ids[..]);
//!
//! // Generated ids, one at a time: text comes out only in whole characters
//! // ("é" is two byte tokens here).
//! let mut stream = tokenizer.decode_stream();
//! let mut text = String::new();
//! for id in tokenizer.encode("café!")? {
//!     if let Some(fragment) = stream.step(id)? {
//!         text.push_str(&fragment);
//!     }
//! }
//! text.push_str(&stream.finish()?);
//! assert_eq!(text, "café!");
//! # Ok::<(), dtype_policy::Error>(())
//! ```
//!
//! ## What is matched
//! `tests/tokenizer.rs` replays, for tokenizers KerasHub 0.32.0 saved
//! (`tools/tokenizer_reference.py`), the ids of KerasHub's default path
//! (eager Python: Hugging Face `tokenizers` for byte-level BPE, the
//! `sentencepiece` library for SentencePiece) and its detokenized text.
//!
//! Byte-level BPE:
//! - the `unsplittable_tokens` of `tokenizer.json` (by default the class's
//!   special tokens) are found first, leftmost then longest, and give their
//!   own ids;
//! - KerasHub hands its `SPLIT_PATTERN_TOKENIZERS` regex to `tokenizers`'
//!   `Split` as a Python `str`, which `tokenizers` matches as a literal
//!   string, not a regular expression. So the text between special tokens
//!   is split only around occurrences of that pattern's own text, and
//!   otherwise reaches BPE as one word: merges may join across spaces and
//!   punctuation. This crate does the same;
//! - with `add_prefix_space`, every such piece not starting with a space
//!   gets one (also after a special token);
//! - bytes map to GPT-2's byte symbols; merges apply lowest rank first,
//!   ties to the leftmost; a symbol missing from the vocabulary is dropped;
//! - decoding maps symbols back to bytes (a token with other characters,
//!   such as `<|endoftext|>`, is its own text) and replaces invalid UTF-8
//!   as `String::from_utf8_lossy` does.
//!
//! SentencePiece BPE: the identity normalizer (U+0020 becomes U+2581, the
//! dummy prefix where `add_dummy_prefix`, extra whitespace removed where
//! `remove_extra_whitespaces`), user-defined pieces kept whole, merges by
//! the score of the merged piece with ties to the leftmost, unused pieces
//! split back, unknown characters as `<0xNN>` byte pieces with byte
//! fallback (else a run of them is one `<unk>`), and `add_bos`/`add_eos`
//! from `tokenizer.json`. Decoding: U+2581 becomes a space, the first
//! piece's leading one is dropped where the model adds a dummy prefix,
//! control pieces (`<s>`, `</s>`, `<bos>`, `<pad>`, ...) are empty,
//! `<unk>` is the model's `unk_surface` (` ⁇ `), user-defined pieces are
//! their text, and byte pieces are assembled into UTF-8 with U+FFFD for
//! each byte that does not start a valid character.
//!
//! ## Prompts
//! [`Tokenizer::encode_prompt`] follows KerasHub's `CausalLMPreprocessor`
//! (`GPT2`, `Llama`, `Llama3` and `Gemma` inherit it unchanged), which packs
//! `generate_preprocess`'s ids with `StartEndPacker(start_value =
//! tokenizer.start_token_id)` called with `add_end_value=False` and the
//! default `add_start_value=True`: the start token always comes first
//! (`<|endoftext|>`, `<|begin_of_text|>`, `<s>`, `<bos>`), whatever the
//! preprocessor's `add_start_token` (only its training `call` reads it),
//! and the end token never comes.
//!
//! ## Where this differs from KerasHub, on purpose
//! - KerasHub's TensorFlow path (`_allow_python_workflow=False`, the one a
//!   `tf.data` pipeline takes) splits byte-level BPE text with GPT-2's
//!   regular expression first, and gives other ids than its default path
//!   for runs of whitespace (`"a  b"`, `"  \n  "`, indented code), control
//!   characters, the literal pattern text, and with `add_prefix_space`
//!   for empty, space-led and special-token-led text. Here the default
//!   path's ids are given (`cases.json`'s `ids`, not `ids_tf`).
//! - An id outside the vocabulary is an error naming it, where KerasHub's
//!   byte-level BPE drops it silently (its SentencePiece raises too).
//! - [`Tokenizer::token_to_id`] is `None` for a token outside the
//!   vocabulary, where KerasHub's SentencePiece gives `<unk>`'s id and its
//!   byte-level BPE raises.
//! - A `sequence_length` in `tokenizer.json` is not applied: `encode` never
//!   pads or truncates (KerasHub's call would, to that length).
//! - Refused with [`Error::Unsupported`]: SentencePiece models other than
//!   BPE (unigram, word, char), normalizers other than identity (NFKC is
//!   not implemented), a denormalizer, `treat_whitespace_as_suffix`, and
//!   tokenizer classes other than the four above. A piece with a NaN score
//!   or a type outside the enum is an error here; sentencepiece loads both.
//!
//! ## Untrusted input
//! A missing, truncated or corrupt file is an `Err` naming the file and
//! what is wrong, never a panic. Files are read up to a size limit
//! ([`MAX_ASSET_BYTES`]); a protobuf length is checked against the bytes
//! that remain before anything is taken, and nothing is allocated by a
//! size a file declares. Encoding is `O(n log n)` in the text's length.

mod byte_pair;
mod protobuf;
mod sentencepiece;

use std::io::Read;
use std::path::Path;

use serde_json::Value;

use crate::error::{Error, Result};
use byte_pair::BytePairModel;
use sentencepiece::{DecodeState, SentencePieceModel};

/// The largest `tokenizer.json` read (KerasHub's are under 1 KiB).
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// The largest vocabulary file read: Llama 3's `vocabulary.json` is about
/// 9 MB and Gemma 3's `vocabulary.spm` about 5 MB.
pub const MAX_ASSET_BYTES: u64 = 256 << 20;

/// The KerasHub tokenizer classes read here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Gpt2,
    Llama3,
    Llama,
    Gemma,
}

impl Class {
    const ALL: [Class; 4] = [Class::Gpt2, Class::Llama3, Class::Llama, Class::Gemma];

    fn name(self) -> &'static str {
        match self {
            Class::Gpt2 => "GPT2Tokenizer",
            Class::Llama3 => "Llama3Tokenizer",
            Class::Llama => "LlamaTokenizer",
            Class::Gemma => "GemmaTokenizer",
        }
    }

    fn is_byte_pair(self) -> bool {
        matches!(self, Class::Gpt2 | Class::Llama3)
    }

    /// `(start, end)` tokens, as each class's `__init__` names them.
    fn start_end(self) -> (&'static str, &'static str) {
        match self {
            Class::Gpt2 => ("<|endoftext|>", "<|endoftext|>"),
            Class::Llama3 => ("<|begin_of_text|>", "<|end_of_text|>"),
            Class::Llama => ("<s>", "</s>"),
            Class::Gemma => ("<bos>", "<eos>"),
        }
    }

    /// Every special token the class registers; KerasHub refuses a
    /// vocabulary without one of them.
    fn special_tokens(self) -> &'static [&'static str] {
        match self {
            Class::Gpt2 => &["<|endoftext|>"],
            Class::Llama3 => &[
                "<|begin_of_text|>",
                "<|end_of_text|>",
                "<|start_header_id|>",
                "<|end_header_id|>",
                "<|eot_id|>",
            ],
            Class::Llama => &["<s>", "</s>"],
            Class::Gemma => &["<bos>", "<eos>", "<pad>"],
        }
    }
}

#[derive(Clone)]
enum Model {
    BytePair(Box<BytePairModel>),
    SentencePiece {
        model: Box<SentencePieceModel>,
        add_bos: bool,
        add_eos: bool,
    },
}

/// A KerasHub tokenizer (`GPT2Tokenizer`, `Llama3Tokenizer`,
/// `LlamaTokenizer` or `GemmaTokenizer`), loaded from a preset folder.
#[derive(Clone)]
pub struct Tokenizer {
    class: Class,
    model: Model,
    start_token_id: u32,
    end_token_id: u32,
    pad_token_id: u32,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("class", &self.class.name())
            .field("vocabulary_size", &self.vocabulary_size())
            .field("start_token_id", &self.start_token_id)
            .field("end_token_id", &self.end_token_id)
            .field("pad_token_id", &self.pad_token_id)
            .finish()
    }
}

impl Tokenizer {
    /// Reads a preset folder's tokenizer: `tokenizer.json` (its class and
    /// config) and `assets/tokenizer/` (`vocabulary.json` and `merges.txt`,
    /// or `vocabulary.spm`).
    pub fn from_preset(dir: &Path) -> Result<Tokenizer> {
        let shown = dir.display().to_string();
        if !dir.is_dir() {
            return Err(Error::file(
                shown,
                "not a folder: Tokenizer::from_preset takes a KerasHub preset folder, where \
                 tokenizer.save_to_preset writes tokenizer.json and assets/tokenizer/",
            ));
        }
        let config_path = dir.join("tokenizer.json");
        let config_file = config_path.display().to_string();
        let bytes = read_limited(&config_path, MAX_CONFIG_BYTES)?;
        let json: Value = serde_json::from_slice(&bytes)
            .map_err(|e| Error::file(&config_file, format!("not JSON: {e}")))?;
        let class_name = json
            .get("class_name")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                Error::file(
                    &config_file,
                    "no \"class_name\" string: not a KerasHub tokenizer config",
                )
            })?;
        let class = Class::ALL
            .into_iter()
            .find(|c| c.name() == class_name)
            .ok_or_else(|| {
                Error::Unsupported(format!(
                    "{config_file}: tokenizer class {class_name:?} is not supported; the \
                     supported classes are GPT2Tokenizer, Llama3Tokenizer, LlamaTokenizer and \
                     GemmaTokenizer"
                ))
            })?;
        let empty = serde_json::Map::new();
        let config = match json.get("config") {
            None | Some(Value::Null) => &empty,
            Some(Value::Object(c)) => c,
            Some(other) => {
                return Err(Error::file(
                    &config_file,
                    format!("\"config\" is {other}, not an object"),
                ));
            }
        };
        let flag = |key: &str| -> Result<bool> {
            match config.get(key) {
                None | Some(Value::Null) => Ok(false),
                Some(Value::Bool(b)) => Ok(*b),
                Some(other) => Err(Error::file(
                    &config_file,
                    format!("config.{key} is {other}, not true or false"),
                )),
            }
        };

        let assets = dir.join("assets").join("tokenizer");
        let (model, vocabulary_file) = if class.is_byte_pair() {
            let unsplittable: Vec<String> = match config.get("unsplittable_tokens") {
                None | Some(Value::Null) => class
                    .special_tokens()
                    .iter()
                    .map(|t| t.to_string())
                    .collect(),
                Some(Value::Array(list)) => list
                    .iter()
                    .map(|t| t.as_str().map(str::to_owned))
                    .collect::<Option<_>>()
                    .ok_or_else(|| {
                        Error::file(
                            &config_file,
                            "config.unsplittable_tokens is not a list of strings",
                        )
                    })?,
                Some(other) => {
                    return Err(Error::file(
                        &config_file,
                        format!("config.unsplittable_tokens is {other}, not a list of strings"),
                    ));
                }
            };
            let vocab_path = assets.join("vocabulary.json");
            let merges_path = assets.join("merges.txt");
            let vocab_file = vocab_path.display().to_string();
            let model = BytePairModel::new(
                &read_limited(&vocab_path, MAX_ASSET_BYTES)?,
                &vocab_file,
                &read_limited(&merges_path, MAX_ASSET_BYTES)?,
                &merges_path.display().to_string(),
                &unsplittable,
                flag("add_prefix_space")?,
            )?;
            (Model::BytePair(Box::new(model)), vocab_file)
        } else {
            let path = assets.join("vocabulary.spm");
            let file = path.display().to_string();
            let model =
                SentencePieceModel::from_proto(&read_limited(&path, MAX_ASSET_BYTES)?, &file)?;
            let model = Model::SentencePiece {
                model: Box::new(model),
                add_bos: flag("add_bos")?,
                add_eos: flag("add_eos")?,
            };
            (model, file)
        };

        let mut tokenizer = Tokenizer {
            class,
            model,
            start_token_id: 0,
            end_token_id: 0,
            pad_token_id: 0,
        };
        let id = |token: &str| {
            tokenizer.token_to_id(token).ok_or_else(|| {
                Error::file(
                    &vocabulary_file,
                    format!(
                        "the special token {token:?} of {} is not in the vocabulary",
                        class.name()
                    ),
                )
            })
        };
        for token in class.special_tokens() {
            id(token)?;
        }
        let (start, end) = class.start_end();
        let (start, end) = (id(start)?, id(end)?);
        // Only Gemma has a pad token; the others set `pad_token_id = 0`.
        let pad = if class == Class::Gemma {
            id("<pad>")?
        } else {
            0
        };
        tokenizer.start_token_id = start;
        tokenizer.end_token_id = end;
        tokenizer.pad_token_id = pad;
        Ok(tokenizer)
    }

    /// The KerasHub class: `"GPT2Tokenizer"`, `"Llama3Tokenizer"`,
    /// `"LlamaTokenizer"` or `"GemmaTokenizer"`.
    pub fn class_name(&self) -> &str {
        self.class.name()
    }

    /// KerasHub's `tokenizer(text)`: the ids of `text`, with no start or
    /// end token added (but with SentencePiece's `add_bos`/`add_eos` where
    /// `tokenizer.json` sets them); see [`Tokenizer::encode_prompt`].
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        Ok(match &self.model {
            Model::BytePair(m) => m.encode(text),
            Model::SentencePiece {
                model,
                add_bos,
                add_eos,
            } => model.encode(text, *add_bos, *add_eos),
        })
    }

    /// What KerasHub's `CausalLMPreprocessor.generate_preprocess` gives a
    /// model to continue, before padding: the start token, then
    /// [`Tokenizer::encode`]'s ids (see the module doc for why always the
    /// start token, and never the end token).
    pub fn encode_prompt(&self, text: &str) -> Result<Vec<u32>> {
        let mut ids = vec![self.start_token_id];
        ids.extend(self.encode(text)?);
        Ok(ids)
    }

    /// KerasHub's `detokenize(ids)`; an id outside the vocabulary is an
    /// error that names it.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        let (text, _) = self.decode_window(ids, &mut DecodeState::default())?;
        Ok(text)
    }

    /// A decoder of ids that arrive one at a time (generated tokens), whose
    /// fragments join to [`Tokenizer::decode`] of all the ids.
    pub fn decode_stream(&self) -> DecodeStream<'_> {
        DecodeStream {
            tokenizer: self,
            pending: Vec::new(),
            state: DecodeState::default(),
        }
    }

    /// Decodes `ids` after `state`: the text, and whether it ends inside a
    /// UTF-8 character that later ids may complete.
    fn decode_window(&self, ids: &[u32], state: &mut DecodeState) -> Result<(String, bool)> {
        match &self.model {
            Model::BytePair(m) => {
                let mut bytes = Vec::new();
                m.decode_bytes(ids, &mut bytes)?;
                let incomplete = ends_incomplete(&bytes);
                Ok((String::from_utf8_lossy(&bytes).into_owned(), incomplete))
            }
            Model::SentencePiece { model, .. } => {
                let mut text = String::new();
                let incomplete = model.decode(ids, state, &mut text)?;
                Ok((text, incomplete))
            }
        }
    }

    /// The id of a token (a SentencePiece piece, or a byte-level BPE token
    /// in GPT-2's byte symbols, such as `"Ġthe"`); `None` if it is not in
    /// the vocabulary.
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        match &self.model {
            Model::BytePair(m) => m.token_to_id(token),
            Model::SentencePiece { model, .. } => model.token_to_id(token),
        }
    }

    /// The token of an id, as the vocabulary spells it; `None` if the id is
    /// not in the vocabulary.
    pub fn id_to_token(&self, id: u32) -> Option<&str> {
        match &self.model {
            Model::BytePair(m) => m.id_to_token(id),
            Model::SentencePiece { model, .. } => model.id_to_token(id),
        }
    }

    /// The number of tokens in the vocabulary (KerasHub's
    /// `vocabulary_size()`).
    pub fn vocabulary_size(&self) -> usize {
        match &self.model {
            Model::BytePair(m) => m.vocabulary_size(),
            Model::SentencePiece { model, .. } => model.vocabulary_size(),
        }
    }

    /// The id of the start token: `<|endoftext|>` (GPT-2),
    /// `<|begin_of_text|>` (Llama 3), `<s>` (Llama), `<bos>` (Gemma).
    pub fn start_token_id(&self) -> Option<u32> {
        Some(self.start_token_id)
    }

    /// The id of the end token: `<|endoftext|>` (GPT-2), `<|end_of_text|>`
    /// (Llama 3), `</s>` (Llama), `<eos>` (Gemma).
    pub fn end_token_id(&self) -> Option<u32> {
        Some(self.end_token_id)
    }

    /// The id KerasHub pads with: `<pad>`'s for Gemma, 0 for the others
    /// (their classes set `pad_token_id = 0`).
    pub fn pad_token_id(&self) -> Option<u32> {
        Some(self.pad_token_id)
    }
}

/// Decodes generated ids one at a time ([`Tokenizer::decode_stream`]):
/// each step gives the text the new id completes, held back while it ends
/// inside a UTF-8 character (byte-level BPE tokens and SentencePiece byte
/// pieces can split one). The fragments, then [`DecodeStream::finish`],
/// join to [`Tokenizer::decode`] of all the ids.
#[derive(Debug)]
pub struct DecodeStream<'a> {
    tokenizer: &'a Tokenizer,
    /// Ids whose text is not out yet (they end inside a character).
    pending: Vec<u32>,
    /// Where decoding stood before `pending`.
    state: DecodeState,
}

impl DecodeStream<'_> {
    /// Adds the next id: `Some(text)` when the ids so far end on a whole
    /// character and give new text, `None` otherwise. An id outside the
    /// vocabulary is an error, and is not kept.
    pub fn step(&mut self, id: u32) -> Result<Option<String>> {
        self.pending.push(id);
        let mut state = self.state;
        let (text, incomplete) = match self.tokenizer.decode_window(&self.pending, &mut state) {
            Ok(r) => r,
            Err(e) => {
                self.pending.pop();
                return Err(e);
            }
        };
        if incomplete {
            return Ok(None);
        }
        self.state = state;
        self.pending.clear();
        Ok((!text.is_empty()).then_some(text))
    }

    /// The text of the ids still held back, as [`Tokenizer::decode`] gives
    /// an unfinished character (U+FFFD); empty if none are.
    pub fn finish(self) -> Result<String> {
        let mut state = self.state;
        let (text, _) = self.tokenizer.decode_window(&self.pending, &mut state)?;
        Ok(text)
    }
}

/// Whether `bytes` end inside a UTF-8 character: a proper prefix of one
/// that more bytes could complete.
pub(crate) fn ends_incomplete(mut bytes: &[u8]) -> bool {
    loop {
        match std::str::from_utf8(bytes) {
            Ok(_) => return false,
            Err(e) => match e.error_len() {
                None => return true,
                Some(n) => bytes = &bytes[e.valid_up_to() + n..],
            },
        }
    }
}

/// The error for an id that is not in a vocabulary of `size` tokens.
pub(crate) fn unknown_id(id: u32, size: usize) -> Error {
    Error::InvalidArgument(format!(
        "token id {id} is not in the tokenizer's vocabulary of {size} tokens; decode ids from \
         this tokenizer, or from a model of the same vocabulary"
    ))
}

/// Reads a file of at most `limit` bytes.
fn read_limited(path: &Path, limit: u64) -> Result<Vec<u8>> {
    let shown = path.display().to_string();
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::file(
                shown,
                "missing: a KerasHub preset folder's tokenizer has tokenizer.json and \
                 assets/tokenizer/ (vocabulary.json and merges.txt, or vocabulary.spm), as \
                 tokenizer.save_to_preset writes them",
            ));
        }
        Err(source) => {
            return Err(Error::Io {
                path: shown,
                source,
            });
        }
    };
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| Error::Io {
            path: shown.clone(),
            source,
        })?;
    if bytes.len() as u64 > limit {
        return Err(Error::file(
            shown,
            format!("over the limit of {limit} bytes for a tokenizer file"),
        ));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incomplete_tails() {
        assert!(!ends_incomplete(b""));
        assert!(!ends_incomplete("caf\u{e9}".as_bytes()));
        assert!(ends_incomplete(&[b'a', 0xc3]));
        assert!(ends_incomplete(&[0xf0, 0x9f, 0x98]));
        // Invalid, not incomplete: no byte can make these valid.
        assert!(!ends_incomplete(&[0xff]));
        assert!(!ends_incomplete(&[0xe0, 0x80]));
        assert!(!ends_incomplete(&[0xc3, 0x41]));
        // An invalid byte, then an unfinished character.
        assert!(ends_incomplete(&[0xff, 0xe2, 0x82]));
    }
}

// SPDX-License-Identifier: MIT OR Apache-2.0
//! SentencePiece BPE as the `sentencepiece` library (0.2) runs it for
//! KerasHub's `SentencePieceTokenizer` on its default path
//! (`SentencePieceProcessor.Encode` and `Decode`): the `ModelProto` is read
//! from `vocabulary.spm`, the text normalized (identity normalizer only:
//! spaces to U+2581, the dummy prefix, extra whitespace removed where the
//! model asks), split into characters and user-defined pieces, merged by
//! the score of the merged piece (ties to the leftmost), and unknown pieces
//! decomposed into `<0xNN>` byte pieces where the model has byte fallback
//! (else runs of unknown pieces are one `<unk>`).
//!
//! Each step mirrors a function of sentencepiece's C++ source:
//! `ModelInterface::InitializePieces` (the checks on load),
//! `Normalizer::Normalize`, `bpe::Model::SampleEncode` without dropout,
//! `SentencePieceProcessor::PopulateSentencePieceText` and
//! `SentencePieceProcessor::Decode`.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};

use super::protobuf::{Reader, Value};
use super::{ends_incomplete, unknown_id};
use crate::error::{Error, Result};

/// U+2581, sentencepiece's `kSpaceSymbol`.
const SPACE: &str = "\u{2581}";

/// What `<unk>` decodes to when the trainer spec sets no `unk_surface`
/// (sentencepiece's `kDefaultUnknownSymbol`).
const DEFAULT_UNK_SURFACE: &str = " \u{2047} ";

/// `ModelProto.SentencePiece.Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PieceType {
    Normal,
    Unknown,
    Control,
    UserDefined,
    Unused,
    /// A `<0xNN>` piece and its byte.
    Byte(u8),
}

#[derive(Debug, Clone)]
struct Piece {
    text: String,
    score: f32,
    kind: PieceType,
}

/// The `TrainerSpec` fields that change encoding or decoding.
struct TrainerSpec {
    model_type: i32,
    byte_fallback: bool,
    treat_whitespace_as_suffix: bool,
    unk_surface: Option<String>,
    bos_piece: Option<String>,
    eos_piece: Option<String>,
}

impl Default for TrainerSpec {
    fn default() -> Self {
        TrainerSpec {
            // proto2 default: UNIGRAM.
            model_type: 1,
            byte_fallback: false,
            treat_whitespace_as_suffix: false,
            unk_surface: None,
            bos_piece: None,
            eos_piece: None,
        }
    }
}

/// The `NormalizerSpec` fields, with their proto2 defaults.
struct NormalizerSpec {
    name: String,
    precompiled_charsmap_len: usize,
    add_dummy_prefix: bool,
    remove_extra_whitespaces: bool,
    escape_whitespaces: bool,
}

impl Default for NormalizerSpec {
    fn default() -> Self {
        NormalizerSpec {
            name: String::new(),
            precompiled_charsmap_len: 0,
            add_dummy_prefix: true,
            remove_extra_whitespaces: true,
            escape_whitespaces: true,
        }
    }
}

/// A SentencePiece BPE model.
#[derive(Clone)]
pub(crate) struct SentencePieceModel {
    pieces: Vec<Piece>,
    /// Normal, user-defined and unused pieces (sentencepiece's `pieces_`),
    /// the ones BPE may produce.
    normal: HashMap<String, u32>,
    /// Control, unknown and byte pieces (`reserved_id_map_`).
    reserved: HashMap<String, u32>,
    user_defined: PrefixMatcher,
    unk_id: u32,
    /// The id of `<0xNN>` for each byte (the unknown id where missing).
    byte_piece_ids: [u32; 256],
    byte_fallback: bool,
    add_dummy_prefix: bool,
    remove_extra_whitespaces: bool,
    escape_whitespaces: bool,
    unk_surface: String,
    bos_piece: String,
    eos_piece: String,
}

/// Where decoding stands between calls (sentencepiece's `is_bos_ws`,
/// `bos_ws_seen` and whether any text came out yet), so that a stream of
/// ids decodes as the whole list would.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DecodeState {
    is_bos_ws: bool,
    bos_ws_seen: bool,
    text_nonempty: bool,
}

impl Default for DecodeState {
    fn default() -> Self {
        DecodeState {
            is_bos_ws: true,
            bos_ws_seen: false,
            text_nonempty: false,
        }
    }
}

impl SentencePieceModel {
    /// Parses a serialized `ModelProto` (`file` names it in errors) and
    /// checks it as sentencepiece does on load; a model this code cannot
    /// run exactly (unigram, word or char models, a normalizer other than
    /// identity) is refused.
    pub(crate) fn from_proto(bytes: &[u8], file: &str) -> Result<SentencePieceModel> {
        let bad = |reason: String| Error::file(file, reason);
        let mut pieces = Vec::new();
        let mut trainer = TrainerSpec::default();
        let mut normalizer = NormalizerSpec::default();
        let mut denormalizer = NormalizerSpec::default();
        let mut reader = Reader::new(bytes, 0);
        // A message field given twice is merged, as protobuf parsers do.
        while let Some((field, value)) = reader.next_field().map_err(&bad)? {
            let start = reader.offset() - bytes_len(&value);
            match (field, value) {
                (1, Value::Bytes(b)) => {
                    let piece = parse_piece(b, start)
                        .map_err(|e| bad(format!("ModelProto.pieces[{}]: {e}", pieces.len())))?;
                    pieces.push(piece);
                }
                (2, Value::Bytes(b)) => parse_trainer_spec(b, start, &mut trainer)
                    .map_err(|e| bad(format!("ModelProto.trainer_spec: {e}")))?,
                (3, Value::Bytes(b)) => parse_normalizer_spec(b, start, &mut normalizer)
                    .map_err(|e| bad(format!("ModelProto.normalizer_spec: {e}")))?,
                (5, Value::Bytes(b)) => parse_normalizer_spec(b, start, &mut denormalizer)
                    .map_err(|e| bad(format!("ModelProto.denormalizer_spec: {e}")))?,
                (1 | 2 | 3 | 5, v) => {
                    return Err(bad(format!(
                        "ModelProto field {field} is a {} value; a SentencePiece model has a \
                         message there",
                        v.wire_name()
                    )));
                }
                // self_test_data and fields unknown here.
                _ => {}
            }
        }

        let unsupported = |what: String| {
            Error::Unsupported(format!(
                "{file}: {what}; only SentencePiece BPE models with the identity normalizer \
                 (as Llama's and Gemma's are) are supported"
            ))
        };
        match trainer.model_type {
            2 => {}
            t => {
                let name = match t {
                    1 => "UNIGRAM",
                    3 => "WORD",
                    4 => "CHAR",
                    _ => "unknown",
                };
                return Err(unsupported(format!(
                    "trainer_spec.model_type is {t} ({name}), not 2 (BPE)"
                )));
            }
        }
        if normalizer.name != "identity" || normalizer.precompiled_charsmap_len != 0 {
            return Err(unsupported(format!(
                "normalizer_spec.name is {:?} with a {}-byte precompiled_charsmap, not \
                 \"identity\" with none (NFKC and other normalizations are not implemented)",
                normalizer.name, normalizer.precompiled_charsmap_len
            )));
        }
        if denormalizer.precompiled_charsmap_len != 0 {
            return Err(unsupported(format!(
                "denormalizer_spec has a {}-byte precompiled_charsmap",
                denormalizer.precompiled_charsmap_len
            )));
        }
        if trainer.treat_whitespace_as_suffix {
            return Err(unsupported(
                "trainer_spec.treat_whitespace_as_suffix is true".to_owned(),
            ));
        }

        let mut normal = HashMap::new();
        let mut reserved: HashMap<String, u32> = HashMap::new();
        let mut byte_pieces = 0;
        let mut user_defined = PrefixMatcher::default();
        let mut unk_id = None;
        if u32::try_from(pieces.len()).is_err() {
            return Err(bad(format!(
                "{} pieces, more than ids can number",
                pieces.len()
            )));
        }
        for (i, p) in pieces.iter().enumerate() {
            let id = i as u32;
            if p.text.is_empty() {
                return Err(bad(format!("piece {id} is empty")));
            }
            if let Some(other) = normal.get(&p.text).or_else(|| reserved.get(&p.text)) {
                return Err(bad(format!(
                    "piece {:?} is defined twice (ids {other} and {id})",
                    p.text
                )));
            }
            match p.kind {
                PieceType::Normal | PieceType::UserDefined | PieceType::Unused => {
                    normal.insert(p.text.clone(), id)
                }
                _ => reserved.insert(p.text.clone(), id),
            };
            match p.kind {
                PieceType::UserDefined => user_defined.insert(&p.text),
                PieceType::Unknown => {
                    if let Some(other) = unk_id {
                        return Err(bad(format!(
                            "two unknown pieces (ids {other} and {id}); a model has one"
                        )));
                    }
                    unk_id = Some(id);
                }
                PieceType::Byte(_) if !trainer.byte_fallback => {
                    return Err(bad(format!(
                        "byte piece {:?} (id {id}) in a model whose trainer_spec.byte_fallback \
                         is false",
                        p.text
                    )));
                }
                PieceType::Byte(_) => byte_pieces += 1,
                _ => {}
            }
        }
        if trainer.byte_fallback && byte_pieces != 256 {
            return Err(bad(format!(
                "trainer_spec.byte_fallback is true but the model has {byte_pieces} of the 256 \
                 byte pieces <0x00> to <0xFF>"
            )));
        }
        let unk_id = unk_id.ok_or_else(|| {
            bad("no piece of type UNKNOWN (<unk>); sentencepiece refuses such a model".to_owned())
        })?;

        let mut model = SentencePieceModel {
            pieces,
            normal,
            reserved,
            user_defined,
            unk_id,
            byte_piece_ids: [unk_id; 256],
            byte_fallback: trainer.byte_fallback,
            add_dummy_prefix: normalizer.add_dummy_prefix,
            remove_extra_whitespaces: normalizer.remove_extra_whitespaces,
            escape_whitespaces: normalizer.escape_whitespaces,
            unk_surface: trainer
                .unk_surface
                .unwrap_or_else(|| DEFAULT_UNK_SURFACE.to_owned()),
            bos_piece: trainer.bos_piece.unwrap_or_else(|| "<s>".to_owned()),
            eos_piece: trainer.eos_piece.unwrap_or_else(|| "</s>".to_owned()),
        };
        for b in 0..=255u8 {
            model.byte_piece_ids[usize::from(b)] = model.piece_to_id(&byte_piece(b));
        }
        Ok(model)
    }

    /// The number of pieces.
    pub(crate) fn vocabulary_size(&self) -> usize {
        self.pieces.len()
    }

    /// KerasHub's `token_to_id` without its fallback to `<unk>`.
    pub(crate) fn token_to_id(&self, token: &str) -> Option<u32> {
        self.reserved
            .get(token)
            .or_else(|| self.normal.get(token))
            .copied()
    }

    pub(crate) fn id_to_token(&self, id: u32) -> Option<&str> {
        self.pieces.get(id as usize).map(|p| p.text.as_str())
    }

    /// sentencepiece's `PieceToId`: the piece's id, else the unknown id.
    fn piece_to_id(&self, piece: &str) -> u32 {
        self.reserved
            .get(piece)
            .or_else(|| self.normal.get(piece))
            .copied()
            .unwrap_or(self.unk_id)
    }

    fn kind(&self, id: u32) -> PieceType {
        self.pieces[id as usize].kind
    }

    /// `Encode(text, add_bos, add_eos)`.
    pub(crate) fn encode(&self, text: &str, add_bos: bool, add_eos: bool) -> Vec<u32> {
        let normalized = self.normalize(text);
        let mut ids = Vec::new();
        if add_bos {
            ids.push(self.piece_to_id(&self.bos_piece));
        }
        let mut is_prev_unk = false;
        for (piece, id) in self.bpe(&normalized) {
            let kind = self.kind(id);
            let is_unk = kind == PieceType::Unknown;
            if kind == PieceType::Control {
                ids.push(id);
            } else if is_unk && self.byte_fallback {
                ids.extend(piece.bytes().map(|b| self.byte_piece_ids[usize::from(b)]));
            } else if !(is_prev_unk && is_unk) {
                // A run of unknown pieces is one unknown piece.
                ids.push(id);
            }
            is_prev_unk = is_unk;
        }
        if add_eos {
            ids.push(self.piece_to_id(&self.eos_piece));
        }
        ids
    }

    /// `Normalizer::Normalize` without a character map.
    fn normalize(&self, input: &str) -> String {
        let mut out = String::new();
        let mut rest = input;
        if self.remove_extra_whitespaces {
            while !rest.is_empty() {
                let (len, _) = self.user_defined.prefix_match(rest);
                if &rest[..len] != " " {
                    break;
                }
                rest = &rest[len..];
            }
        }
        if rest.is_empty() {
            return out;
        }
        let ws = if self.escape_whitespaces { SPACE } else { " " };
        if self.add_dummy_prefix {
            out.push_str(ws);
        }
        let mut is_prev_space = self.remove_extra_whitespaces;
        while !rest.is_empty() {
            let (len, _) = self.user_defined.prefix_match(rest);
            let mut sp = &rest[..len];
            rest = &rest[len..];
            while is_prev_space && sp.starts_with(' ') {
                sp = &sp[1..];
            }
            if !sp.is_empty() {
                for c in sp.chars() {
                    if self.escape_whitespaces && c == ' ' {
                        out.push_str(SPACE);
                    } else {
                        out.push(c);
                    }
                }
                is_prev_space = sp.ends_with(' ');
            }
            if !self.remove_extra_whitespaces {
                is_prev_space = false;
            }
        }
        if self.remove_extra_whitespaces {
            while out.ends_with(ws) {
                out.truncate(out.len() - ws.len());
            }
        }
        out
    }

    /// `bpe::Model::SampleEncode` without dropout: (piece, id) in order.
    fn bpe<'s>(&self, normalized: &'s str) -> Vec<(&'s str, u32)> {
        let mut symbols: Vec<Symbol> = Vec::new();
        let mut pos = 0;
        while pos < normalized.len() {
            let (len, freeze) = self.user_defined.prefix_match(&normalized[pos..]);
            let index = symbols.len() as isize;
            symbols.push(Symbol {
                prev: index - 1,
                next: if pos + len == normalized.len() {
                    -1
                } else {
                    index + 1
                },
                freeze,
                start: pos,
                len,
            });
            pos += len;
        }
        if symbols.is_empty() {
            return Vec::new();
        }

        let mut agenda = BinaryHeap::new();
        // Merged unused pieces -> their two halves, to split them again.
        let mut rev_merge: HashMap<&'s str, (&'s str, &'s str)> = HashMap::new();
        let piece_of = |s: &Symbol| &normalized[s.start..s.start + s.len];
        let mut maybe_add =
            |symbols: &[Symbol], agenda: &mut BinaryHeap<Candidate>, left: isize, right: isize| {
                if left < 0 || right < 0 {
                    return;
                }
                let (l, r) = (&symbols[left as usize], &symbols[right as usize]);
                if l.freeze || r.freeze {
                    return;
                }
                let piece = &normalized[l.start..l.start + l.len + r.len];
                let Some(&id) = self.normal.get(piece) else {
                    return;
                };
                agenda.push(Candidate {
                    score: self.pieces[id as usize].score,
                    left: left as usize,
                    right: right as usize,
                    size: piece.len(),
                });
                if self.kind(id) == PieceType::Unused {
                    rev_merge.insert(piece, (piece_of(l), piece_of(r)));
                }
            };
        for i in 1..symbols.len() as isize {
            maybe_add(&symbols, &mut agenda, i - 1, i);
        }
        while let Some(top) = agenda.pop() {
            let (l, r) = (symbols[top.left], symbols[top.right]);
            // A stale entry: one side was merged away or grew.
            if l.len == 0 || r.len == 0 || l.len + r.len != top.size {
                continue;
            }
            symbols[top.left].len += r.len;
            symbols[top.left].next = r.next;
            if r.next >= 0 {
                symbols[r.next as usize].prev = top.left as isize;
            }
            symbols[top.right].len = 0;
            let (prev, next) = (symbols[top.left].prev, symbols[top.left].next);
            maybe_add(&symbols, &mut agenda, prev, top.left as isize);
            maybe_add(&symbols, &mut agenda, top.left as isize, next);
        }

        let mut out = Vec::new();
        let mut index = 0isize;
        while index >= 0 {
            let s = symbols[index as usize];
            // Resegment unused pieces into the pieces they were merged from.
            let mut stack = vec![piece_of(&s)];
            while let Some(w) = stack.pop() {
                let id = self.piece_to_id(w);
                match rev_merge.get(w) {
                    Some(&(left, right)) if self.kind(id) == PieceType::Unused => {
                        stack.push(right);
                        stack.push(left);
                    }
                    _ => out.push((w, id)),
                }
            }
            index = s.next;
        }
        out
    }

    /// Decodes `ids` after `state` onto `out`, and says whether the text
    /// ends inside a UTF-8 character that later byte pieces may complete
    /// (`out` then ends with U+FFFD for its bytes, as `Decode` gives them).
    pub(crate) fn decode(
        &self,
        ids: &[u32],
        state: &mut DecodeState,
        out: &mut String,
    ) -> Result<bool> {
        let mut bytes = Vec::new();
        for &id in ids {
            let piece = self
                .pieces
                .get(id as usize)
                .ok_or_else(|| unknown_id(id, self.pieces.len()))?;
            if let PieceType::Byte(b) = piece.kind {
                bytes.push(b);
                continue;
            }
            if !bytes.is_empty() {
                push_bytes(&bytes, out);
                bytes.clear();
                state.text_nonempty = true;
            }
            if state.bos_ws_seen || state.text_nonempty {
                state.is_bos_ws = false;
            }
            let (text, bos_ws_seen) = self.decode_piece(id, state.is_bos_ws);
            state.bos_ws_seen = bos_ws_seen;
            if !text.is_empty() {
                out.push_str(&text);
                state.text_nonempty = true;
            }
        }
        let incomplete = ends_incomplete(&bytes);
        if !bytes.is_empty() {
            push_bytes(&bytes, out);
            state.text_nonempty = true;
        }
        Ok(incomplete)
    }

    /// `DecodeSentencePiece`: the piece's text, and whether it consumed the
    /// leading U+2581 of the text.
    fn decode_piece(&self, id: u32, is_bos_ws: bool) -> (String, bool) {
        let piece = &self.pieces[id as usize];
        match piece.kind {
            PieceType::Control => return (String::new(), false),
            PieceType::Unknown => return (self.unk_surface.clone(), false),
            _ => {}
        }
        let mut text = piece.text.as_str();
        let mut has_bos_ws = false;
        if is_bos_ws && (self.add_dummy_prefix || self.remove_extra_whitespaces) {
            if let Some(rest) = text.strip_prefix(SPACE) {
                text = rest;
                has_bos_ws = true;
            }
            // With extra whitespace removed, every leading space goes.
            if self.remove_extra_whitespaces {
                has_bos_ws = false;
            }
        }
        (text.replace(SPACE, " "), has_bos_ws)
    }
}

/// `ProcessBytePieces`: each UTF-8 character of a run of byte pieces, and
/// U+FFFD for each byte that does not start one.
fn push_bytes(bytes: &[u8], out: &mut String) {
    let mut i = 0;
    while i < bytes.len() {
        let len = match bytes[i] {
            0x00..=0x7f => 1,
            0xc0..=0xdf => 2,
            0xe0..=0xef => 3,
            0xf0..=0xf7 => 4,
            _ => 0,
        };
        let valid = (len > 0)
            .then(|| bytes.get(i..i + len))
            .flatten()
            .and_then(|c| std::str::from_utf8(c).ok());
        match valid {
            Some(c) => {
                out.push_str(c);
                i += c.len();
            }
            None => {
                out.push('\u{fffd}');
                i += 1;
            }
        }
    }
}

/// sentencepiece's `ByteToPiece`.
fn byte_piece(b: u8) -> String {
    format!("<0x{b:02X}>")
}

fn bytes_len(value: &Value<'_>) -> usize {
    match value {
        Value::Bytes(b) => b.len(),
        _ => 0,
    }
}

fn wrong_type(message: &str, field: u32, value: &Value<'_>, expected: &str) -> String {
    format!(
        "{message} field {field} is a {} value, expected {expected}",
        value.wire_name()
    )
}

fn string(bytes: &[u8], what: &str) -> Result<String, String> {
    String::from_utf8(bytes.to_vec()).map_err(|e| format!("{what} is not UTF-8: {e}"))
}

fn parse_piece(bytes: &[u8], base: usize) -> Result<Piece, String> {
    let mut text = String::new();
    let mut score = 0.0f32;
    let mut kind = 1u64;
    let mut reader = Reader::new(bytes, base);
    while let Some((field, value)) = reader.next_field()? {
        match (field, value) {
            (1, Value::Bytes(b)) => text = string(b, "the piece")?,
            (2, Value::Fixed32(bits)) => score = f32::from_bits(bits),
            (3, Value::Varint(t)) => kind = t,
            (1..=3, v) => {
                let expected = ["a string", "a float", "an enum"][field as usize - 1];
                return Err(wrong_type("SentencePiece", field, &v, expected));
            }
            _ => {}
        }
    }
    if score.is_nan() {
        return Err(format!("piece {text:?} has a NaN score"));
    }
    let kind = match kind {
        1 => PieceType::Normal,
        2 => PieceType::Unknown,
        3 => PieceType::Control,
        4 => PieceType::UserDefined,
        5 => PieceType::Unused,
        6 => PieceType::Byte(parse_byte_piece(&text).ok_or_else(|| {
            format!("byte piece {text:?} is not of the form <0xNN> (two upper-case hex digits)")
        })?),
        t => {
            return Err(format!(
                "piece {text:?} has type {t}, which SentencePiece does not define"
            ));
        }
    };
    Ok(Piece { text, score, kind })
}

/// sentencepiece's `PieceToByte`: exactly `<0xNN>`, upper-case hex.
fn parse_byte_piece(text: &str) -> Option<u8> {
    let hex = text.strip_prefix("<0x")?.strip_suffix('>')?;
    let ok = hex.len() == 2
        && hex
            .bytes()
            .all(|c| c.is_ascii_digit() || (b'A'..=b'F').contains(&c));
    ok.then(|| u8::from_str_radix(hex, 16).ok()).flatten()
}

fn parse_trainer_spec(bytes: &[u8], base: usize, spec: &mut TrainerSpec) -> Result<(), String> {
    let mut reader = Reader::new(bytes, base);
    while let Some((field, value)) = reader.next_field()? {
        let expected = match (field, value) {
            (3, Value::Varint(v)) => {
                spec.model_type = v as i32;
                continue;
            }
            (24, Value::Varint(v)) => {
                spec.treat_whitespace_as_suffix = v != 0;
                continue;
            }
            (35, Value::Varint(v)) => {
                spec.byte_fallback = v != 0;
                continue;
            }
            (44, Value::Bytes(b)) => {
                spec.unk_surface = Some(string(b, "unk_surface")?);
                continue;
            }
            (46, Value::Bytes(b)) => {
                spec.bos_piece = Some(string(b, "bos_piece")?);
                continue;
            }
            (47, Value::Bytes(b)) => {
                spec.eos_piece = Some(string(b, "eos_piece")?);
                continue;
            }
            (3 | 24 | 35, _) => "a varint",
            (44 | 46 | 47, _) => "a string",
            _ => continue,
        };
        return Err(wrong_type("TrainerSpec", field, &value, expected));
    }
    Ok(())
}

fn parse_normalizer_spec(
    bytes: &[u8],
    base: usize,
    spec: &mut NormalizerSpec,
) -> Result<(), String> {
    let mut reader = Reader::new(bytes, base);
    while let Some((field, value)) = reader.next_field()? {
        match (field, value) {
            (1, Value::Bytes(b)) => spec.name = string(b, "the normalizer's name")?,
            (2, Value::Bytes(b)) => spec.precompiled_charsmap_len = b.len(),
            (3, Value::Varint(v)) => spec.add_dummy_prefix = v != 0,
            (4, Value::Varint(v)) => spec.remove_extra_whitespaces = v != 0,
            (5, Value::Varint(v)) => spec.escape_whitespaces = v != 0,
            (1 | 2, v) => return Err(wrong_type("NormalizerSpec", field, &v, "a string")),
            (3..=5, v) => return Err(wrong_type("NormalizerSpec", field, &v, "a varint")),
            _ => {}
        }
    }
    Ok(())
}

#[derive(Debug, Clone, Copy)]
struct Symbol {
    prev: isize,
    next: isize,
    /// A user-defined piece, never merged.
    freeze: bool,
    start: usize,
    /// Bytes of the normalized text; 0 once merged into its left neighbour.
    len: usize,
}

/// A pair that may be merged: `BinaryHeap` pops the highest score, then
/// the leftmost (sentencepiece's `SymbolPairComparator`).
struct Candidate {
    score: f32,
    left: usize,
    right: usize,
    size: usize,
}

impl Ord for Candidate {
    fn cmp(&self, other: &Self) -> Ordering {
        // Scores are never NaN (checked on load).
        self.score
            .partial_cmp(&other.score)
            .unwrap_or(Ordering::Equal)
            .then_with(|| other.left.cmp(&self.left))
    }
}

impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Candidate {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Candidate {}

/// User-defined pieces, matched longest first at the start of a text
/// (sentencepiece's `PrefixMatcher`).
#[derive(Debug, Clone, Default)]
struct PrefixMatcher {
    by_first_byte: HashMap<u8, Vec<String>>,
}

impl PrefixMatcher {
    fn insert(&mut self, piece: &str) {
        let list = self.by_first_byte.entry(piece.as_bytes()[0]).or_default();
        list.push(piece.to_owned());
        list.sort_by_key(|p| std::cmp::Reverse(p.len()));
    }

    /// The length of the longest user-defined piece that `text` starts
    /// with, and `true`; else the length of its first character, and
    /// `false`. `text` is not empty.
    fn prefix_match(&self, text: &str) -> (usize, bool) {
        let found = self
            .by_first_byte
            .get(&text.as_bytes()[0])
            .and_then(|list| list.iter().find(|p| text.starts_with(p.as_str())));
        match found {
            Some(p) => (p.len(), true),
            None => (text.chars().next().map_or(0, char::len_utf8), false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_pieces_parse_as_sentencepiece_writes_them() {
        assert_eq!(parse_byte_piece("<0x41>"), Some(0x41));
        assert_eq!(parse_byte_piece("<0xFF>"), Some(0xff));
        assert_eq!(parse_byte_piece("<0xff>"), None);
        assert_eq!(parse_byte_piece("<0x4>"), None);
        assert_eq!(parse_byte_piece("<0x+4>"), None);
        assert_eq!(byte_piece(0x0a), "<0x0A>");
    }

    fn varint(mut v: u64, out: &mut Vec<u8>) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(b);
                return;
            }
            out.push(b | 0x80);
        }
    }

    fn bytes_field(field: u64, bytes: &[u8], out: &mut Vec<u8>) {
        varint((field << 3) | 2, out);
        varint(bytes.len() as u64, out);
        out.extend_from_slice(bytes);
    }

    fn varint_field(field: u64, v: u64, out: &mut Vec<u8>) {
        varint(field << 3, out);
        varint(v, out);
    }

    /// A hand-made `ModelProto`: pieces as (text, score, type), a BPE
    /// trainer spec and the identity normalizer without a dummy prefix.
    fn proto(pieces: &[(&str, f32, u64)], model_type: u64, byte_fallback: bool) -> Vec<u8> {
        let mut out = Vec::new();
        for &(text, score, kind) in pieces {
            let mut piece = Vec::new();
            bytes_field(1, text.as_bytes(), &mut piece);
            varint((2 << 3) | 5, &mut piece);
            piece.extend_from_slice(&score.to_le_bytes());
            varint_field(3, kind, &mut piece);
            bytes_field(1, &piece, &mut out);
        }
        let mut trainer = Vec::new();
        varint_field(3, model_type, &mut trainer);
        varint_field(35, u64::from(byte_fallback), &mut trainer);
        bytes_field(2, &trainer, &mut out);
        let mut normalizer = Vec::new();
        bytes_field(1, b"identity", &mut normalizer);
        varint_field(3, 0, &mut normalizer);
        varint_field(4, 0, &mut normalizer);
        bytes_field(3, &normalizer, &mut out);
        out
    }

    const UNK: (&str, f32, u64) = ("<unk>", 0.0, 2);

    fn model(pieces: &[(&str, f32, u64)]) -> SentencePieceModel {
        SentencePieceModel::from_proto(&proto(pieces, 2, false), "test.spm").unwrap()
    }

    #[test]
    fn merges_by_score_then_leftmost() {
        let m = model(&[
            UNK,
            ("a", 0.0, 1),
            ("aa", -1.0, 1),
            ("b", 0.0, 1),
            ("ab", -0.5, 1),
        ]);
        // Both pairs of "aaa" score the same: the leftmost merges.
        assert_eq!(m.encode("aaa", false, false), vec![2, 1]);
        // "ab" (-0.5) beats "aa" (-1).
        assert_eq!(m.encode("aab", false, false), vec![1, 4]);
        // An unknown character, and a run of them, is one <unk>.
        assert_eq!(m.encode("axyb", false, false), vec![1, 0, 3]);
    }

    #[test]
    fn user_defined_pieces_are_never_merged() {
        let plain = model(&[UNK, ("a", 0.0, 1), ("b", 0.0, 1), ("ab", -1.0, 1)]);
        assert_eq!(plain.encode("ab", false, false), vec![3]);
        let frozen = model(&[UNK, ("a", 0.0, 4), ("b", 0.0, 1), ("ab", -1.0, 1)]);
        assert_eq!(frozen.encode("ab", false, false), vec![1, 2]);
    }

    #[test]
    fn unused_pieces_are_split_back() {
        let m = model(&[
            UNK,
            ("a", 0.0, 1),
            ("b", 0.0, 1),
            ("c", 0.0, 1),
            ("ab", 0.0, 5),
            ("abc", -1.0, 1),
        ]);
        assert_eq!(m.encode("ab", false, false), vec![1, 2]);
        assert_eq!(m.encode("abab", false, false), vec![1, 2, 1, 2]);
        assert_eq!(m.encode("abc", false, false), vec![5]);
    }

    #[test]
    fn models_sentencepiece_refuses_are_refused() {
        let load = |bytes: Vec<u8>| SentencePieceModel::from_proto(&bytes, "test.spm");
        let a = ("a", 0.0, 1);
        for (bytes, words) in [
            (proto(&[UNK, a], 1, false), "UNIGRAM"),
            (proto(&[a], 2, false), "UNKNOWN"),
            (proto(&[UNK, a, a], 2, false), "twice"),
            (proto(&[UNK, ("", 0.0, 1)], 2, false), "empty"),
            (proto(&[UNK, ("a", f32::NAN, 1)], 2, false), "NaN"),
            (proto(&[UNK, ("a", 0.0, 7)], 2, false), "type 7"),
            (proto(&[UNK, ("<0x41>", 0.0, 6)], 2, false), "byte_fallback"),
            (proto(&[UNK, ("<0x4g>", 0.0, 6)], 2, true), "<0xNN>"),
            (proto(&[UNK, ("<0x41>", 0.0, 6)], 2, true), "1 of the 256"),
            (proto(&[UNK, UNK], 2, false), "twice"),
            (
                proto(&[UNK, ("<s>", 0.0, 3), ("<s>", 0.0, 1)], 2, false),
                "twice",
            ),
        ] {
            let Err(err) = load(bytes) else {
                panic!("{words}: loaded");
            };
            let err = err.to_string();
            assert!(
                err.contains("test.spm") && err.contains(words),
                "{words}: {err}"
            );
        }
        // With all 256 byte pieces, an unknown character is its bytes.
        let names: Vec<String> = (0..=255u8).map(byte_piece).collect();
        let mut pieces = vec![UNK];
        pieces.extend(names.iter().map(|n| (n.as_str(), 0.0, 6)));
        pieces.push(("a", 0.0, 1));
        let Ok(m) = load(proto(&pieces, 2, true)) else {
            panic!("256 byte pieces: not loaded");
        };
        assert_eq!(
            m.encode("a\u{e9}", false, false),
            vec![257, 0xc3 + 1, 0xa9 + 1]
        );
    }

    #[test]
    fn invalid_bytes_are_one_replacement_each() {
        let mut s = String::new();
        push_bytes(
            &[0xc3, 0xa9, 0xe2, 0x82, 0x41, 0xff, 0xef, 0xbf, 0xbd],
            &mut s,
        );
        assert_eq!(s, "\u{e9}\u{fffd}\u{fffd}A\u{fffd}\u{fffd}");
    }
}

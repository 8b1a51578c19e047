// SPDX-License-Identifier: MIT OR Apache-2.0
//! Byte-level BPE as KerasHub 0.32.0's `BytePairTokenizer` runs it on its
//! default path: a Hugging Face `tokenizers.Tokenizer` built from
//! `vocabulary.json` and `merges.txt`, with the unsplittable tokens added as
//! special tokens, the pre-tokenizer
//! `Sequence([Split(SPLIT_PATTERN_TOKENIZERS, "isolated"), ByteLevel(add_prefix_space, use_regex=False)])`
//! and the `ByteLevel` decoder.
//!
//! `Split` receives its pattern as a Python `str`, which `tokenizers` reads
//! as a literal string (only a `tokenizers.Regex` is a regular expression),
//! so the text is split only where it contains the pattern's own 113
//! characters; each segment between special tokens is otherwise one word for
//! BPE. The merge loop is `tokenizers`' `Word::merge_all`: the pair of
//! lowest rank first, ties to the leftmost.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};

use super::unknown_id;
use crate::error::{Error, Result};

/// KerasHub's `SPLIT_PATTERN_TOKENIZERS`, which its default path splits on
/// as a literal string (see the module doc).
pub(crate) const SPLIT_PATTERN_TOKENIZERS: &str = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/// GPT-2's byte -> symbol table (`bytes_to_unicode`): printable bytes stand
/// for themselves, the other 68 map to U+0100 and up, in byte order.
fn bytes_to_unicode() -> [char; 256] {
    let printable = |b: u8| (b'!'..=b'~').contains(&b) || (0xa1..=0xac).contains(&b) || b >= 0xae;
    let mut table = ['\0'; 256];
    let mut next = 256u32;
    for b in 0..=255u8 {
        table[usize::from(b)] = if printable(b) {
            char::from(b)
        } else {
            let c = char::from_u32(next).unwrap_or('\u{fffd}');
            next += 1;
            c
        };
    }
    table
}

/// A byte-level BPE vocabulary and its merges.
#[derive(Clone)]
pub(crate) struct BytePairModel {
    vocabulary: HashMap<String, u32>,
    tokens: HashMap<u32, String>,
    /// `(left id, right id)` -> `(rank, merged id)`.
    merges: HashMap<(u32, u32), (u32, u32)>,
    /// The symbol of each byte, as a vocabulary id (`None`: not in it, and
    /// dropped as `tokenizers`' BPE drops it without an unknown token).
    byte_ids: [Option<u32>; 256],
    /// Symbol -> byte, for decoding.
    symbol_bytes: HashMap<char, u8>,
    special: SpecialTokens,
    add_prefix_space: bool,
}

impl BytePairModel {
    /// Reads `vocabulary.json` (token -> id) and `merges.txt` (one `a b` per
    /// line) as KerasHub does; `unsplittable` tokens are matched whole in
    /// the text before anything else.
    pub(crate) fn new(
        vocabulary_json: &[u8],
        vocabulary_file: &str,
        merges_txt: &[u8],
        merges_file: &str,
        unsplittable: &[String],
        add_prefix_space: bool,
    ) -> Result<BytePairModel> {
        let bad_vocab = |reason: String| Error::file(vocabulary_file, reason);
        let map: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(vocabulary_json).map_err(|e| {
                bad_vocab(format!(
                    "not a JSON object of token -> id as KerasHub writes it: {e}"
                ))
            })?;
        let mut vocabulary = HashMap::with_capacity(map.len());
        let mut tokens = HashMap::with_capacity(map.len());
        for (token, id) in map {
            let id = id
                .as_u64()
                .and_then(|i| u32::try_from(i).ok())
                .ok_or_else(|| {
                    bad_vocab(format!(
                        "the id of token {token:?} is {id}; ids are integers from 0 to {}",
                        u32::MAX
                    ))
                })?;
            if let Some(other) = tokens.insert(id, token.clone()) {
                return Err(bad_vocab(format!(
                    "tokens {other:?} and {token:?} have the same id {id}"
                )));
            }
            vocabulary.insert(token, id);
        }

        let text = std::str::from_utf8(merges_txt)
            .map_err(|e| Error::file(merges_file, format!("not UTF-8 text: {e}")))?;
        let mut merges = HashMap::new();
        let mut rank = 0u32;
        // KerasHub strips each line's trailing whitespace and skips
        // `#version:` lines.
        for (n, line) in python_lines(text).enumerate() {
            let line = line.trim_end_matches(char::is_whitespace);
            if line.trim_start().contains("#version:") {
                continue;
            }
            let bad =
                |reason: String| Error::file(merges_file, format!("line {}: {reason}", n + 1));
            let mut parts = line.split(' ');
            let (Some(a), Some(b), None) = (parts.next(), parts.next(), parts.next()) else {
                return Err(bad(format!(
                    "{line:?} is not a merge rule: two tokens separated by one space"
                )));
            };
            let id = |t: &str| {
                vocabulary.get(t).copied().ok_or_else(|| {
                    bad(format!(
                        "merge rule {line:?} has token {t:?}, which is not in the vocabulary"
                    ))
                })
            };
            let (a_id, b_id, merged) = (id(a)?, id(b)?, id(&format!("{a}{b}"))?);
            // A repeated pair keeps its last rank, as `tokenizers` builds its map.
            merges.insert((a_id, b_id), (rank, merged));
            rank = rank
                .checked_add(1)
                .ok_or_else(|| bad("too many merge rules".to_owned()))?;
        }

        let table = bytes_to_unicode();
        let mut byte_ids = [None; 256];
        let mut symbol_bytes = HashMap::with_capacity(256);
        for (b, &c) in table.iter().enumerate() {
            byte_ids[b] = vocabulary.get(c.encode_utf8(&mut [0; 4]) as &str).copied();
            symbol_bytes.insert(c, b as u8);
        }

        let mut special = SpecialTokens::default();
        for token in unsplittable {
            // `tokenizers` ignores an empty added token.
            if token.is_empty() {
                continue;
            }
            let id = vocabulary.get(token).copied().ok_or_else(|| {
                bad_vocab(format!(
                    "the unsplittable token {token:?} of tokenizer.json is not in the vocabulary"
                ))
            })?;
            special.insert(token, id);
        }

        Ok(BytePairModel {
            vocabulary,
            tokens,
            merges,
            byte_ids,
            symbol_bytes,
            special,
            add_prefix_space,
        })
    }

    /// The number of tokens (KerasHub's `len(vocabulary)`).
    pub(crate) fn vocabulary_size(&self) -> usize {
        self.vocabulary.len()
    }

    pub(crate) fn token_to_id(&self, token: &str) -> Option<u32> {
        self.vocabulary.get(token).copied()
    }

    pub(crate) fn id_to_token(&self, id: u32) -> Option<&str> {
        self.tokens.get(&id).map(String::as_str)
    }

    /// `tokenizer(text)`: special tokens matched first (leftmost, then
    /// longest), each segment between them split on the literal pattern,
    /// each piece given its prefix space and merged.
    pub(crate) fn encode(&self, text: &str) -> Vec<u32> {
        let mut ids = Vec::new();
        let mut pos = 0;
        while pos < text.len() {
            let (end, special) = match self.special.find(text, pos) {
                Some((start, end, id)) => (start, Some((end, id))),
                None => (text.len(), None),
            };
            self.encode_segment(&text[pos..end], &mut ids);
            match special {
                Some((special_end, id)) => {
                    ids.push(id);
                    pos = special_end;
                }
                None => pos = end,
            }
        }
        ids
    }

    fn encode_segment(&self, segment: &str, ids: &mut Vec<u32>) {
        let mut pos = 0;
        for (start, pattern) in segment.match_indices(SPLIT_PATTERN_TOKENIZERS) {
            self.encode_word(&segment[pos..start], ids);
            self.encode_word(pattern, ids);
            pos = start + pattern.len();
        }
        self.encode_word(&segment[pos..], ids);
    }

    fn encode_word(&self, word: &str, ids: &mut Vec<u32>) {
        // `tokenizers` drops empty splits before the ByteLevel step.
        if word.is_empty() {
            return;
        }
        let prefix = (self.add_prefix_space && !word.starts_with(' ')).then_some(b' ');
        let mut symbols: Vec<Symbol> = Vec::with_capacity(word.len() + 1);
        for &b in prefix.iter().chain(word.as_bytes()) {
            if let Some(id) = self.byte_ids[usize::from(b)] {
                let at = symbols.len() as isize;
                if let Some(last) = symbols.last_mut() {
                    last.next = at;
                }
                symbols.push(Symbol {
                    id,
                    prev: at - 1,
                    next: -1,
                    len: 1,
                });
            }
        }
        self.merge_all(&mut symbols);
        ids.extend(symbols.iter().filter(|s| s.len != 0).map(|s| s.id));
    }

    /// `tokenizers`' `Word::merge_all` without dropout.
    fn merge_all(&self, symbols: &mut [Symbol]) {
        let mut queue: BinaryHeap<Merge> = symbols
            .windows(2)
            .enumerate()
            .filter_map(|(pos, w)| {
                let &(rank, new_id) = self.merges.get(&(w[0].id, w[1].id))?;
                Some(Merge { pos, rank, new_id })
            })
            .collect();
        while let Some(top) = queue.pop() {
            if symbols[top.pos].len == 0 || symbols[top.pos].next == -1 {
                continue;
            }
            let next_pos = symbols[top.pos].next as usize;
            let right = symbols[next_pos];
            // Skip an entry made stale by an earlier merge.
            match self.merges.get(&(symbols[top.pos].id, right.id)) {
                Some(&(_, new_id)) if new_id == top.new_id => {}
                _ => continue,
            }
            let current = &mut symbols[top.pos];
            current.id = top.new_id;
            current.len += right.len;
            current.next = right.next;
            symbols[next_pos].len = 0;
            if right.next >= 0 && (right.next as usize) < symbols.len() {
                symbols[right.next as usize].prev = top.pos as isize;
            }
            let current = symbols[top.pos];
            if current.prev >= 0 {
                let prev = current.prev as usize;
                if let Some(&(rank, new_id)) = self.merges.get(&(symbols[prev].id, current.id)) {
                    queue.push(Merge {
                        pos: prev,
                        rank,
                        new_id,
                    });
                }
            }
            let next = current.next;
            if next >= 0 && (next as usize) < symbols.len() {
                let next = symbols[next as usize];
                if let Some(&(rank, new_id)) = self.merges.get(&(current.id, next.id)) {
                    queue.push(Merge {
                        pos: top.pos,
                        rank,
                        new_id,
                    });
                }
            }
        }
    }

    /// The bytes `ids` stand for (the `ByteLevel` decoder before its lossy
    /// UTF-8 step): a token whose characters are all byte symbols gives
    /// those bytes, any other token its own UTF-8.
    pub(crate) fn decode_bytes(&self, ids: &[u32], out: &mut Vec<u8>) -> Result<()> {
        for &id in ids {
            let token = self
                .tokens
                .get(&id)
                .ok_or_else(|| unknown_id(id, self.vocabulary.len()))?;
            let start = out.len();
            for c in token.chars() {
                match self.symbol_bytes.get(&c) {
                    Some(&b) => out.push(b),
                    None => {
                        out.truncate(start);
                        out.extend_from_slice(token.as_bytes());
                        break;
                    }
                }
            }
        }
        Ok(())
    }
}

/// The lines of `text` as Python's text mode reads them: ended by `\n`,
/// `\r\n` or `\r`, with no empty line after the last ending.
fn python_lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let end = rest.find(['\n', '\r']).unwrap_or(rest.len());
        let line = &rest[..end];
        let ending = if rest[end..].starts_with("\r\n") {
            2
        } else {
            usize::from(end < rest.len())
        };
        rest = &rest[end + ending..];
        Some(line)
    })
}

#[derive(Clone, Copy)]
struct Symbol {
    id: u32,
    prev: isize,
    next: isize,
    /// Bytes covered; 0 once merged into the symbol on its left.
    len: usize,
}

/// A queued merge: `BinaryHeap` pops the lowest rank, then the leftmost.
struct Merge {
    pos: usize,
    rank: u32,
    new_id: u32,
}

impl Ord for Merge {
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .rank
            .cmp(&self.rank)
            .then_with(|| other.pos.cmp(&self.pos))
    }
}

impl PartialEq for Merge {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Merge {}

impl PartialOrd for Merge {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Special tokens found in text as `tokenizers`' added vocabulary finds
/// them (Aho-Corasick, leftmost-longest), indexed by first byte.
#[derive(Clone, Default)]
struct SpecialTokens {
    by_first_byte: HashMap<u8, Vec<(String, u32)>>,
}

impl SpecialTokens {
    fn insert(&mut self, token: &str, id: u32) {
        let list = self.by_first_byte.entry(token.as_bytes()[0]).or_default();
        if !list.iter().any(|(t, _)| t == token) {
            list.push((token.to_owned(), id));
        }
    }

    /// The first special token in `text[from..]`: (start, end, id).
    fn find(&self, text: &str, from: usize) -> Option<(usize, usize, u32)> {
        if self.by_first_byte.is_empty() {
            return None;
        }
        let bytes = text.as_bytes();
        (from..bytes.len()).find_map(|start| {
            let candidates = self.by_first_byte.get(&bytes[start])?;
            candidates
                .iter()
                .filter(|(t, _)| bytes[start..].starts_with(t.as_bytes()))
                .max_by_key(|(t, _)| t.len())
                .map(|(t, id)| (start, start + t.len(), *id))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_table_is_gpt2s() {
        let t = bytes_to_unicode();
        assert_eq!(t[usize::from(b' ')], '\u{120}'); // Ġ
        assert_eq!(t[usize::from(b'\n')], '\u{10a}'); // Ċ
        assert_eq!(t[usize::from(b'A')], 'A');
        assert_eq!(t[0xad], '\u{143}');
        let mut all: Vec<char> = t.to_vec();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 256);
    }

    #[test]
    fn merges_by_rank_then_leftmost() {
        let vocab = r#"{"a": 0, "b": 1, "aa": 2, "ab": 3, "aab": 4}"#;
        let merges = "a a\na b\naa b\n";
        let m =
            BytePairModel::new(vocab.as_bytes(), "v", merges.as_bytes(), "m", &[], false).unwrap();
        // "aaa": a a merged leftmost first, then the lone a stays.
        assert_eq!(m.encode("aaa"), vec![2, 0]);
        // "aab": a a (rank 0) before a b (rank 1), then aa b.
        assert_eq!(m.encode("aab"), vec![4]);
        // Characters outside the vocabulary are dropped.
        assert_eq!(m.encode("xab"), vec![3]);
    }

    #[test]
    fn special_tokens_match_leftmost_then_longest() {
        let vocab = r#"{"x": 0, "y": 1, "<s>": 2, "<s>y": 3, "s>": 4}"#;
        let specials = ["<s>".to_owned(), "<s>y".to_owned(), "s>".to_owned()];
        let m = BytePairModel::new(vocab.as_bytes(), "v", b"", "m", &specials, false).unwrap();
        assert_eq!(m.encode("x<s>yx"), vec![0, 3, 0]);
        assert_eq!(m.encode("<s>x"), vec![2, 0]);
        assert_eq!(m.encode("xs>"), vec![0, 4]);
    }

    #[test]
    fn a_token_of_other_characters_decodes_to_its_text() {
        // U+20AC is no byte's symbol; U+0120 is the space's.
        let vocab = r#"{"\u20ac": 0, "\u0120a": 1}"#;
        let m = BytePairModel::new(vocab.as_bytes(), "v", b"", "m", &[], false).unwrap();
        let mut bytes = Vec::new();
        m.decode_bytes(&[0, 1], &mut bytes).unwrap();
        assert_eq!(bytes, "\u{20ac} a".as_bytes());
    }

    #[test]
    fn lines_as_python_reads_them() {
        let lines: Vec<&str> = python_lines("a b\r\nc d\re f\n\ng h").collect();
        assert_eq!(lines, ["a b", "c d", "e f", "", "g h"]);
        assert_eq!(python_lines("a b\n").count(), 1);
    }
}

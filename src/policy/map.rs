// SPDX-License-Identifier: MIT OR Apache-2.0
//! [`DTypePolicyMap`]: layer paths (exact or regular expressions) to policies.

use std::fmt;
use std::sync::OnceLock;

use indexmap::IndexMap;
use regex::{Regex, RegexSet};

use crate::error::{Error, Result};
use crate::policy::any::{IntoPolicy, Policy};
use crate::policy::dtype::DType;
use crate::policy::global::dtype_policy;
use crate::policy::python::py_repr_str;
use crate::policy::quantized::QuantizationMode;

/// A dict-like map from layer paths to policies, with a default (Keras's
/// `keras.dtype_policies.DTypePolicyMap`).
///
/// [`get`](DTypePolicyMap::get) looks a layer path up as Keras does:
/// 1. a key equal to the path;
/// 2. else every key that, read as a regular expression, matches the *whole*
///    path; more than one is an error that lists them all;
/// 3. else the default policy.
///
/// ```
/// use dtype_policy::{DTypePolicyMap, Policy};
/// let mut map = DTypePolicyMap::with_default("float32".parse()?);
/// map.insert("encoder/layer_0/dense", "bfloat16")?;
/// map.insert("encoder/.*", "int8_from_float32")?;
/// assert_eq!(map.get("encoder/layer_0/dense")?.name(), "bfloat16");
/// assert_eq!(map.get("encoder/attention/query")?.name(), "int8_from_float32");
/// assert_eq!(map.get("decoder")?.name(), "float32"); // no prefix matching
/// # Ok::<(), dtype_policy::Error>(())
/// ```
///
/// # Regular expressions
/// Every key is also a pattern, as in Keras (`"a.b"` matches `"axb"`). Keys
/// are compiled when inserted, so an invalid pattern is rejected then (Keras
/// fails only when a lookup reaches it). The syntax is Rust's `regex`
/// crate's, which agrees with Python's `re` on everything layer paths use;
/// look-around and backreferences are not supported.
///
/// # Performance
/// A lookup is one hash probe, then (only if the map has keys that are not
/// plain text) one pass of a compiled [`RegexSet`] over the path, whatever
/// the number of keys. Keys without regex metacharacters can only match
/// themselves, so they stay out of the set. The set is built on the first
/// lookup after a change, once, and shared by every lookup after it.
#[derive(Debug, Clone)]
pub struct DTypePolicyMap {
    default_arg: DefaultArg,
    default_policy: Policy,
    entries: IndexMap<String, Policy>,
    patterns: OnceLock<PatternIndex>,
}

/// The result of [`DTypePolicyMap::lookup`]: the policy and why.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Lookup<'m> {
    /// The policy the path gets.
    pub policy: &'m Policy,
    /// Which key decided.
    pub matched: Matched<'m>,
}

/// Which key of a map decided a lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Matched<'m> {
    /// A key equal to the path.
    Exact(&'m str),
    /// The one regex key that matched the whole path.
    Pattern(&'m str),
    /// No key: the map's default policy.
    Default,
}

impl std::fmt::Display for Matched<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Matched::Exact(key) => write!(f, "exact key '{key}'"),
            Matched::Pattern(key) => write!(f, "regex '{key}'"),
            Matched::Default => write!(f, "default"),
        }
    }
}

/// How the default policy was given, which Keras JSON records.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum DefaultArg {
    /// Not given: the global policy when the map was built. Keras then writes
    /// the entries without names, to be resolved against the global policy
    /// when loaded.
    Global,
    /// Given by name.
    Name(String),
    /// Given as a policy object.
    Object,
}

/// The regex keys of a map, compiled together.
#[derive(Debug, Clone)]
struct PatternIndex {
    set: RegexSet,
    /// For each pattern of `set`, the index of its entry.
    entry_of_pattern: Vec<usize>,
}

impl Default for DTypePolicyMap {
    fn default() -> Self {
        Self::new()
    }
}

impl DTypePolicyMap {
    /// An empty map whose default is the global policy, read now.
    pub fn new() -> Self {
        Self::build(DefaultArg::Global, dtype_policy())
    }

    /// An empty map with the given default policy.
    pub fn with_default(default_policy: Policy) -> Self {
        Self::build(DefaultArg::Object, default_policy)
    }

    /// An empty map with the default policy given by name (Keras records the
    /// name, not the object, in the map's JSON).
    pub fn with_default_name(name: &str) -> Result<Self> {
        let policy = name.parse()?;
        Ok(Self::build(DefaultArg::Name(name.to_owned()), policy))
    }

    pub(crate) fn build(default_arg: DefaultArg, default_policy: Policy) -> Self {
        DTypePolicyMap {
            default_arg,
            default_policy,
            entries: IndexMap::new(),
            patterns: OnceLock::new(),
        }
    }

    pub(crate) fn default_arg(&self) -> &DefaultArg {
        &self.default_arg
    }

    /// The policy of paths that no key matches.
    pub fn default_policy(&self) -> &Policy {
        &self.default_policy
    }

    /// Keras's name for a map: `map_{default policy name}`.
    pub fn name(&self) -> String {
        format!("map_{}", self.default_policy.name())
    }

    /// The default policy's compute dtype (as Keras reports for a map).
    pub fn compute_dtype(&self) -> DType {
        self.default_policy.compute_dtype()
    }

    /// The default policy's variable dtype.
    pub fn variable_dtype(&self) -> DType {
        self.default_policy.variable_dtype()
    }

    /// The default policy's quantization mode.
    pub fn quantization_mode(&self) -> Option<QuantizationMode> {
        self.default_policy.quantization_mode()
    }

    /// Adds `key → policy`. The policy may be a name (`"int8_from_float32"`).
    ///
    /// Errors: the key is already there; the value is not a valid policy; the
    /// key is not a valid regular expression.
    pub fn insert(&mut self, key: impl Into<String>, policy: impl IntoPolicy) -> Result<()> {
        let key = key.into();
        self.check_new_key(&key)?;
        let (received, received_type) = policy.describe();
        let policy = policy
            .into_policy()
            .map_err(|source| Error::UninterpretableValue {
                received,
                received_type,
                source: Box::new(source),
            })?;
        self.insert_policy(key, policy)
    }

    fn check_new_key(&self, key: &str) -> Result<()> {
        match self.entries.get(key) {
            Some(existing) => Err(Error::DuplicateKey {
                key: key.to_owned(),
                existing: existing.to_string(),
            }),
            None => Ok(()),
        }
    }

    /// Adds a parsed policy under a new key, compiling the key as a pattern.
    pub(crate) fn insert_policy(&mut self, key: String, policy: Policy) -> Result<()> {
        self.check_new_key(&key)?;
        if !is_plain_text(&key) {
            Regex::new(&full_match_pattern(&key)).map_err(|source| Error::InvalidRegexKey {
                key: key.clone(),
                source,
            })?;
        }
        self.entries.insert(key, policy);
        self.patterns = OnceLock::new();
        Ok(())
    }

    /// The policy of a layer path: exact key, else the one regex key that
    /// fully matches, else the default. Several matching keys are an error.
    pub fn get(&self, path: &str) -> Result<&Policy> {
        self.lookup(path).map(|found| found.policy)
    }

    /// Like [`get`](Self::get), and also says which key decided.
    pub fn lookup(&self, path: &str) -> Result<Lookup<'_>> {
        if let Some((key, policy)) = self.entries.get_key_value(path) {
            return Ok(Lookup {
                policy,
                matched: Matched::Exact(key),
            });
        }
        let default = Lookup {
            policy: &self.default_policy,
            matched: Matched::Default,
        };
        let Some(index) = self.pattern_index()? else {
            return Ok(default);
        };
        if !index.set.is_match(path) {
            return Ok(default);
        }
        let matches = index.set.matches(path);
        let mut entries = matches.iter().map(|p| index.entry_of_pattern[p]);
        match (entries.next(), entries.next()) {
            (Some(entry), None) => {
                let (key, policy) = self.entries.get_index(entry).ok_or_else(|| {
                    Error::KeyNotFound(format!("<entry {entry} of the compiled pattern set>"))
                })?;
                Ok(Lookup {
                    policy,
                    matched: Matched::Pattern(key),
                })
            }
            (None, _) => Ok(default),
            (Some(_), Some(_)) => {
                let keys = matches
                    .iter()
                    .filter_map(|p| self.entries.get_index(index.entry_of_pattern[p]))
                    .map(|(k, _)| k.clone())
                    .collect();
                Err(Error::MultipleMatches {
                    path: path.to_owned(),
                    keys,
                })
            }
        }
    }

    /// Looks up many paths, sharing one compiled pattern set among them.
    pub fn get_many<'p, I>(&self, paths: I) -> Vec<Result<&Policy>>
    where
        I: IntoIterator<Item = &'p str>,
    {
        paths.into_iter().map(|p| self.get(p)).collect()
    }

    /// The policy stored under exactly this key, without pattern matching.
    pub fn get_exact(&self, key: &str) -> Option<&Policy> {
        self.entries.get(key)
    }

    /// Removes a key and returns its policy; a missing key is an error.
    pub fn remove(&mut self, key: &str) -> Result<Policy> {
        let policy = self
            .entries
            .shift_remove(key)
            .ok_or_else(|| Error::KeyNotFound(key.to_owned()))?;
        self.patterns = OnceLock::new();
        Ok(policy)
    }

    /// Whether this exact key is in the map (no pattern matching, as in Keras).
    pub fn contains(&self, key: &str) -> bool {
        self.entries.contains_key(key)
    }

    /// The number of keys.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the map has no keys.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The keys and their policies, in insertion order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &Policy)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// The keys, in insertion order.
    pub fn keys(&self) -> impl ExactSizeIterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    /// The compiled regex keys, built on first use after a change; `None`
    /// when every key is plain text.
    fn pattern_index(&self) -> Result<Option<&PatternIndex>> {
        if let Some(index) = self.patterns.get() {
            return Ok(Some(index).filter(|i| !i.entry_of_pattern.is_empty()));
        }
        let (entry_of_pattern, patterns): (Vec<usize>, Vec<String>) = self
            .entries
            .keys()
            .enumerate()
            .filter(|(_, key)| !is_plain_text(key))
            .map(|(i, key)| (i, full_match_pattern(key)))
            .unzip();
        // Each key compiled alone when inserted; together they can still
        // exceed the set's size limit, which is an error, not a panic.
        let set = RegexSet::new(&patterns).map_err(|source| Error::InvalidRegexKey {
            key: format!("<all {} regex keys together>", patterns.len()),
            source,
        })?;
        let index = self.patterns.get_or_init(|| PatternIndex {
            set,
            entry_of_pattern,
        });
        Ok(Some(index).filter(|i| !i.entry_of_pattern.is_empty()))
    }
}

/// Whether a key has no regex metacharacter, so it can only match itself.
fn is_plain_text(key: &str) -> bool {
    regex::escape(key) == key
}

/// Python's `re.fullmatch(key, path)` as an anchored Rust pattern.
fn full_match_pattern(key: &str) -> String {
    format!(r"\A(?:{key})\z")
}

impl<'a> IntoIterator for &'a DTypePolicyMap {
    type Item = (&'a str, &'a Policy);
    type IntoIter = Box<dyn ExactSizeIterator<Item = (&'a str, &'a Policy)> + 'a>;

    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}

impl fmt::Display for DTypePolicyMap {
    /// Keras's `repr()` without the object address:
    /// `<DTypePolicyMap default_policy=float32, mapping=[('dense', 'bfloat16')]>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "<DTypePolicyMap default_policy={}, mapping=[",
            self.default_policy.name()
        )?;
        for (i, (key, policy)) in self.entries.iter().enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            write!(
                f,
                "{sep}({}, {})",
                py_repr_str(key),
                py_repr_str(policy.name())
            )?;
        }
        write!(f, "]>")
    }
}

// SPDX-License-Identifier: MIT OR Apache-2.0
//! `.keras` archives: a zip of `config.json`, `metadata.json` and
//! `model.weights.h5` (Keras stores its members uncompressed; other tools
//! may deflate them).
//!
//! A member is read only up to the size its header declares, into memory
//! that grows as data arrives, so a lying header costs no more than the
//! data really there. Keras's own guard against decompression bombs
//! (`saving_lib._reject_zip_bomb`: a member declaring more than 4 GiB and
//! more than 100 times its stored size is refused) applies as Keras has it,
//! with the limits in [`ArchiveLimits`], but from 256 MiB (Keras's own
//! floor when it extracts an archive to disk) instead of 4 GiB: Keras
//! stores its members, so a genuine file is never near the ratio.

use std::io::{Cursor, Read};

use crate::error::{Error, Result};

/// `config.json`: the serialized model.
pub const CONFIG: &str = "config.json";
/// `metadata.json`: Keras's version and the date saved.
pub const METADATA: &str = "metadata.json";
/// `model.weights.h5`: the variables.
pub const WEIGHTS: &str = "model.weights.h5";

/// How much an archive may make this crate read and allocate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArchiveLimits {
    /// A member declaring more than this many bytes and more than
    /// `max_expansion` times its stored size is a decompression bomb
    /// (default 256 MiB; Keras's in-memory reads use 4 GiB).
    pub bomb_floor_bytes: u64,
    /// See `bomb_floor_bytes` (Keras: 100).
    pub max_expansion: u64,
    /// The largest member read, whatever its ratio (default 256 GiB).
    pub max_member_bytes: u64,
    /// The largest JSON member (default 64 MiB: a config is kilobytes).
    pub max_json_bytes: u64,
}

impl Default for ArchiveLimits {
    fn default() -> Self {
        ArchiveLimits {
            bomb_floor_bytes: 1 << 28,
            max_expansion: 100,
            max_member_bytes: 1 << 38,
            max_json_bytes: 64 << 20,
        }
    }
}

/// The members of a `.keras` archive, read into memory.
#[derive(Debug, Clone)]
pub struct KerasArchive {
    /// `config.json`, parsed.
    pub config: serde_json::Value,
    /// `metadata.json`, parsed, where the archive has one.
    pub metadata: Option<serde_json::Value>,
    /// `model.weights.h5`, as bytes.
    pub weights: Vec<u8>,
}

impl KerasArchive {
    /// Reads the archive at `path` with the default limits.
    pub fn open(path: impl AsRef<std::path::Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| Error::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_bytes(
            &bytes,
            &path.display().to_string(),
            &ArchiveLimits::default(),
        )
    }

    /// Reads an archive from its bytes; `name` is the file's name for the
    /// messages.
    pub fn from_bytes(bytes: &[u8], name: &str, limits: &ArchiveLimits) -> Result<Self> {
        let mut zip = zip::ZipArchive::new(Cursor::new(bytes))
            .map_err(|e| Error::file(name, format!("not a .keras file (a zip archive): {e}")))?;
        let json = |zip: &mut zip::ZipArchive<Cursor<&[u8]>>, member: &str| -> Result<Option<_>> {
            let Some(text) = read_member(zip, name, member, limits.max_json_bytes, limits)? else {
                return Ok(None);
            };
            serde_json::from_slice(&text)
                .map(Some)
                .map_err(|e| Error::file(format!("{name}: {member}"), format!("not JSON: {e}")))
        };
        let config = json(&mut zip, CONFIG)?
            .ok_or_else(|| Error::file(name, format!("no {CONFIG}: not a Keras 3 .keras file")))?;
        let metadata = json(&mut zip, METADATA)?;
        let weights = read_member(&mut zip, name, WEIGHTS, limits.max_member_bytes, limits)?
            .ok_or_else(|| {
                Error::file(
                    name,
                    format!("no {WEIGHTS}: only .keras files with HDF5 weights are read"),
                )
            })?;
        Ok(KerasArchive {
            config,
            metadata,
            weights,
        })
    }
}

/// A member's bytes (`None` where the archive has no such member), read
/// no further than its declared size and `max` bytes.
fn read_member(
    zip: &mut zip::ZipArchive<Cursor<&[u8]>>,
    name: &str,
    member: &str,
    max: u64,
    limits: &ArchiveLimits,
) -> Result<Option<Vec<u8>>> {
    let at = || format!("{name}: {member}");
    let mut file = match zip.by_name(member) {
        Ok(f) => f,
        Err(zip::result::ZipError::FileNotFound) => return Ok(None),
        Err(e) => return Err(Error::file(at(), format!("cannot be read: {e}"))),
    };
    let (declared, stored) = (file.size(), file.compressed_size());
    if declared > limits.bomb_floor_bytes && declared > limits.max_expansion.saturating_mul(stored)
    {
        return Err(Error::file(
            at(),
            format!(
                "declares {declared} bytes but only {stored} are stored; refusing to load a \
                 potential decompression bomb (more than {} bytes and {}x its stored size)",
                limits.bomb_floor_bytes, limits.max_expansion
            ),
        ));
    }
    if declared > max {
        return Err(Error::file(
            at(),
            format!("declares {declared} bytes, more than the {max} this loader reads"),
        ));
    }
    // Grow as data arrives: the declared size is a claim, not a fact.
    let mut out = Vec::with_capacity(declared.min(1 << 24) as usize);
    let read = (&mut file)
        .take(declared.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| Error::file(at(), format!("truncated or corrupt: {e}")))?;
    if read as u64 != declared {
        return Err(Error::file(
            at(),
            format!("holds {read} bytes where its header declares {declared}"),
        ));
    }
    Ok(Some(out))
}

/// Writes a `.keras` archive as Keras does: `metadata.json`, `config.json`
/// and `model.weights.h5`, stored (not deflated), with a fixed timestamp so
/// that the same model gives the same bytes.
pub fn write(
    config: &serde_json::Value,
    metadata: &serde_json::Value,
    weights: &[u8],
) -> Result<Vec<u8>> {
    use std::io::Write;
    let bad = |e: String| Error::file("a .keras archive", format!("cannot be written: {e}"));
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .large_file(weights.len() as u64 >= u64::from(u32::MAX));
    let json = |v: &serde_json::Value| serde_json::to_vec(v).map_err(|e| bad(e.to_string()));
    for (name, bytes) in [
        (METADATA, json(metadata)?),
        (CONFIG, json(config)?),
        (WEIGHTS, weights.to_vec()),
    ] {
        zip.start_file(name, options)
            .map_err(|e| bad(format!("{name}: {e}")))?;
        zip.write_all(&bytes)
            .map_err(|e| bad(format!("{name}: {e}")))?;
    }
    let out = zip.finish().map_err(|e| bad(e.to_string()))?;
    Ok(out.into_inner())
}

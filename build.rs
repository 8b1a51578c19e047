// SPDX-License-Identifier: MIT OR Apache-2.0
//! Writes the table of WGSL sources (`$OUT_DIR/shader_sources.rs`): every
//! `.wgsl` file in `shaders/` and `shaders/shared/`, named by its file stem,
//! so that adding a shader needs no edit of a Rust list. Two files with the
//! same stem (the name `#import` uses) fail the build.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::{env, fs};

fn main() {
    let root =
        PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let mut sources: BTreeMap<String, PathBuf> = BTreeMap::new();
    for dir in ["shaders", "shaders/shared"] {
        let dir = root.join(dir);
        println!("cargo:rerun-if-changed={}", dir.display());
        for path in wgsl_files(&dir) {
            println!("cargo:rerun-if-changed={}", path.display());
            let stem = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_else(|| panic!("{}: the file name is not UTF-8", path.display()))
                .to_owned();
            if let Some(first) = sources.insert(stem.clone(), path.clone()) {
                panic!(
                    "two shaders are named '{stem}' ({} and {}): #import finds files by stem, \
                     so rename one",
                    first.display(),
                    path.display()
                );
            }
        }
    }
    let mut table = String::from(
        "/// Every WGSL file of `shaders/` and `shaders/shared/`, by file stem (written by build.rs).\n\
         pub(crate) const SOURCES: &[(&str, &str)] = &[\n",
    );
    for (stem, path) in &sources {
        table.push_str(&format!(
            "    ({stem:?}, include_str!({:?})),\n",
            path.display().to_string()
        ));
    }
    table.push_str("];\n");
    let out =
        PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("shader_sources.rs");
    fs::write(&out, table).unwrap_or_else(|e| panic!("cannot write {}: {e}", out.display()));
}

/// The `.wgsl` files directly in `dir`, sorted.
fn wgsl_files(dir: &Path) -> Vec<PathBuf> {
    let entries =
        fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()));
    let mut files: Vec<PathBuf> = entries
        .map(|e| {
            e.unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
                .path()
        })
        .filter(|p| p.extension().is_some_and(|e| e == "wgsl"))
        .collect();
    files.sort();
    files
}

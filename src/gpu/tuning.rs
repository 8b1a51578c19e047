// SPDX-License-Identifier: MIT OR Apache-2.0
//! The tiled Dense kernel chosen by measurement: for each (storage variant,
//! shape class) the candidate kernels are timed on this adapter
//! ([`crate::gpu::context::GpuContext::tune_tiled`], `dtype-policy tune`)
//! and the fastest recorded with its reason ("tex-tile-32x4: fastest of 4
//! on this adapter, 80.1 ms against 113.5, 191.9, 539.0"). The table is
//! cached on disk keyed by adapter, backend, driver and [`KERNEL_VERSION`],
//! so later runs pay nothing; a cache that is corrupt, of another schema or
//! made for another adapter, driver or kernel version is ignored with a
//! warning, never trusted. Without a result, routing stays the fixed rule
//! (the workgroup-memory tiles).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

use crate::gpu::context::Capabilities;
use crate::gpu::kernels::Kernel;
use crate::gpu::shaders::StorageVariant;

/// The version of the candidate kernels: raise it when one changes, so
/// that cached timings of the old code are not trusted.
pub const KERNEL_VERSION: u32 = 1;

/// The version of the cache file's layout.
pub const SCHEMA: u32 = 1;

/// The environment variable naming the cache file (instead of
/// `$XDG_CACHE_HOME/dtype-policy/tuning.json` or `~/.cache/...`).
pub const CACHE_ENV: &str = "DTYPE_POLICY_TUNING_CACHE";

/// The environment variable that, set to `off`, keeps the tool from
/// tuning on first use (routing then uses whatever the cache holds, else
/// the fixed rule).
pub const TUNING_ENV: &str = "DTYPE_POLICY_TUNING";

/// Products of about the same size, which the same kernel wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ShapeClass {
    /// Under 2^27 multiply-adds (64 x 512 x 512: an encoder's batch).
    Small,
    /// 2^27 multiply-adds or more (a prompt through a 7B layer).
    Large,
}

impl ShapeClass {
    /// Every class.
    pub const ALL: [ShapeClass; 2] = [ShapeClass::Small, ShapeClass::Large];

    /// The class of an `m x k x n` product.
    pub fn of(m: usize, k: usize, n: usize) -> ShapeClass {
        let macs = (m as u128) * (k as u128) * (n as u128);
        if macs < 1 << 27 {
            ShapeClass::Small
        } else {
            ShapeClass::Large
        }
    }

    /// The `(m, k, n)` its candidates are timed on.
    pub const fn tuning_shape(self) -> (usize, usize, usize) {
        match self {
            ShapeClass::Small => (64, 512, 512),
            ShapeClass::Large => (256, 1024, 1024),
        }
    }

    /// Its name in the cache and in tables.
    pub const fn name(self) -> &'static str {
        match self {
            ShapeClass::Small => "small",
            ShapeClass::Large => "large",
        }
    }

    fn parse(name: &str) -> Option<ShapeClass> {
        ShapeClass::ALL.into_iter().find(|c| c.name() == name)
    }
}

/// The storage variants whose Dense kernels are tuned (native f16: the
/// float family only, on adapters with SHADER_F16).
pub const TUNED_STORAGE: [StorageVariant; 4] = [
    StorageVariant::F32,
    StorageVariant::F16Packed,
    StorageVariant::BF16Packed,
    StorageVariant::F16Native,
];

/// The tuned families, by the tiled kernel of their fixed rule.
pub const TUNED_FAMILIES: [Kernel; 5] = [
    Kernel::DenseTiled,
    Kernel::DenseInt8Tiled,
    Kernel::DenseInt4Tiled,
    Kernel::DenseInt8WeightOnlyTiled,
    Kernel::DenseFloat8Tiled,
];

/// The family's name in the cache.
fn family_name(fixed: Kernel) -> &'static str {
    match fixed {
        Kernel::DenseInt8Tiled => "int8",
        Kernel::DenseInt4Tiled => "int4",
        Kernel::DenseInt8WeightOnlyTiled => "int8-weight-only",
        Kernel::DenseFloat8Tiled => "float8",
        _ => "float",
    }
}

/// The tiled kernels that may run the family whose fixed rule is `fixed`
/// (a [`TUNED_FAMILIES`] kernel) in `storage`: that kernel first, then the
/// register tiles over texture mirrors that compete with it; none for any
/// other kernel.
pub fn candidates(fixed: Kernel, storage: StorageVariant) -> Vec<Kernel> {
    if !TUNED_FAMILIES.contains(&fixed) {
        return Vec::new();
    }
    let tiles = Kernel::ALL.into_iter().filter(|k| {
        k.spec()
            .register_tile
            .is_some_and(|t| t.values.fixed() == fixed)
    });
    std::iter::once(fixed)
        .chain(tiles)
        .filter(|k| k.supports(storage))
        .collect()
}

/// The [`candidates`] worth timing on the adapter of `caps`: all of them,
/// except the float8 register tiles where x rows cannot be shared through
/// subgroups (each lane would then quantize-dequantize every x row of its
/// tile: eight times the work, in a body LLVM takes seconds to compile).
pub fn candidates_on(fixed: Kernel, storage: StorageVariant, caps: &Capabilities) -> Vec<Kernel> {
    let shares_x = crate::gpu::shaders::XShare::for_adapter(caps).uses_subgroups();
    candidates(fixed, storage)
        .into_iter()
        .filter(|k| {
            shares_x
                || k.spec()
                    .register_tile
                    .is_none_or(|t| t.values != crate::gpu::kernels::TileValues::Float8)
        })
        .collect()
}

/// What identifies the adapter and code a table was measured on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TuningKey {
    /// The adapter's name.
    pub adapter: String,
    /// Its backend.
    pub backend: String,
    /// Its driver and version.
    pub driver: String,
    /// [`KERNEL_VERSION`] when measured.
    pub kernel_version: u32,
}

impl TuningKey {
    /// The key of an adapter with the kernels of this build.
    pub fn of(caps: &Capabilities) -> TuningKey {
        TuningKey {
            adapter: caps.adapter_name.clone(),
            backend: caps.backend.clone(),
            driver: caps.driver.clone(),
            kernel_version: KERNEL_VERSION,
        }
    }

    fn describe(&self) -> String {
        format!(
            "{} ({}, driver '{}', kernel version {})",
            self.adapter, self.backend, self.driver, self.kernel_version
        )
    }
}

/// The measured winner of one (storage, class).
#[derive(Debug, Clone, PartialEq)]
pub struct TunedChoice {
    /// The fastest candidate.
    pub kernel: Kernel,
    /// Why, with the times: for plans.
    pub reason: String,
    /// Every candidate's time, in milliseconds.
    pub times_ms: Vec<(Kernel, f64)>,
}

/// The fastest of `times` with its reason, or `None` when there are none.
/// Ties go to the earlier candidate (the fixed rule's kernel comes first).
pub fn pick(times: &[(Kernel, Duration)]) -> Option<TunedChoice> {
    let (best, best_time) = times
        .iter()
        .copied()
        .reduce(|a, b| if b.1 < a.1 { b } else { a })?;
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let others: Vec<String> = times
        .iter()
        .filter(|(k, _)| *k != best)
        .map(|(_, t)| format!("{:.1}", ms(*t)))
        .collect();
    let against = if others.is_empty() {
        String::new()
    } else {
        format!(" against {}", others.join(", "))
    };
    Some(TunedChoice {
        kernel: best,
        reason: format!(
            "{}: fastest of {} on this adapter, {:.1} ms{against}",
            best.short_name(),
            times.len(),
            ms(best_time)
        ),
        times_ms: times.iter().map(|&(k, t)| (k, ms(t))).collect(),
    })
}

/// Tuned choices of one adapter.
#[derive(Debug, Clone, PartialEq)]
pub struct TuningTable {
    key: TuningKey,
    entries: BTreeMap<(Kernel, StorageVariant, ShapeClass), TunedChoice>,
}

impl TuningTable {
    /// An empty table for `key`.
    pub fn new(key: TuningKey) -> TuningTable {
        TuningTable {
            key,
            entries: BTreeMap::new(),
        }
    }

    /// Whether nothing is tuned.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The adapter and code it was measured on.
    pub fn key(&self) -> &TuningKey {
        &self.key
    }

    /// Records the winner of the family whose fixed rule is `fixed`, in
    /// `storage`, for `class`.
    pub fn insert(
        &mut self,
        (fixed, storage, class): (Kernel, StorageVariant, ShapeClass),
        choice: TunedChoice,
    ) {
        self.entries.insert((fixed, storage, class), choice);
    }

    /// The tuned kernel of (family by its fixed kernel, `storage`, `class`),
    /// if measured.
    pub fn choice(
        &self,
        fixed: Kernel,
        storage: StorageVariant,
        class: ShapeClass,
    ) -> Option<&TunedChoice> {
        self.entries.get(&(fixed, storage, class))
    }

    /// Every entry: (the family's fixed kernel, storage, class, choice).
    pub fn entries(
        &self,
    ) -> impl Iterator<Item = (Kernel, StorageVariant, ShapeClass, &TunedChoice)> {
        self.entries.iter().map(|(&(f, s, c), t)| (f, s, c, t))
    }

    /// The cache file's JSON.
    pub fn to_json(&self) -> Value {
        let entries: Vec<Value> = self
            .entries()
            .map(|(fixed, storage, class, t)| {
                let times: serde_json::Map<String, Value> = t
                    .times_ms
                    .iter()
                    .map(|(k, ms)| (k.short_name().to_owned(), json!(ms)))
                    .collect();
                json!({
                    "family": family_name(fixed),
                    "storage": storage.name(),
                    "class": class.name(),
                    "kernel": t.kernel.short_name(),
                    "reason": t.reason,
                    "times_ms": times,
                })
            })
            .collect();
        json!({
            "schema": SCHEMA,
            "kernel_version": self.key.kernel_version,
            "adapter": self.key.adapter,
            "backend": self.key.backend,
            "driver": self.key.driver,
            "entries": entries,
        })
    }

    /// The table in `text` if it is a cache of this schema made for `key`;
    /// otherwise an empty table and the warning that says why. Entries
    /// naming an unknown storage, class or kernel, or a kernel that is not
    /// a candidate for its storage, are dropped with a warning.
    pub fn from_cache_text(
        text: &str,
        key: &TuningKey,
        source: &str,
    ) -> (TuningTable, Vec<String>) {
        let empty = TuningTable::new(key.clone());
        let ignore = |why: String| -> (TuningTable, Vec<String>) {
            (
                TuningTable::new(key.clone()),
                vec![format!("ignoring the tuning cache {source}: {why}")],
            )
        };
        let value: Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(e) => return ignore(format!("not JSON ({e})")),
        };
        if value.get("schema").and_then(Value::as_u64) != Some(u64::from(SCHEMA)) {
            return ignore(format!("not a schema {SCHEMA} tuning cache"));
        }
        let text_of = |field: &str| value.get(field).and_then(Value::as_str).map(str::to_owned);
        let found = TuningKey {
            adapter: text_of("adapter").unwrap_or_default(),
            backend: text_of("backend").unwrap_or_default(),
            driver: text_of("driver").unwrap_or_default(),
            kernel_version: value
                .get("kernel_version")
                .and_then(Value::as_u64)
                .and_then(|v| u32::try_from(v).ok())
                .unwrap_or(0),
        };
        if found != *key {
            return ignore(format!(
                "made for {}, this is {}; run `dtype-policy tune` again",
                found.describe(),
                key.describe()
            ));
        }
        let Some(entries) = value.get("entries").and_then(Value::as_array) else {
            return ignore("no entries list".to_owned());
        };
        let mut table = empty;
        let mut warnings = Vec::new();
        for (i, entry) in entries.iter().enumerate() {
            match parse_entry(entry) {
                Ok((key, choice)) => table.insert(key, choice),
                Err(why) => warnings.push(format!(
                    "ignoring entry {i} of the tuning cache {source}: {why}"
                )),
            }
        }
        (table, warnings)
    }

    /// Reads the cache at `path` for `key` (see [`TuningTable::from_cache_text`]);
    /// a missing file is an empty table without a warning.
    pub fn load(path: &Path, key: &TuningKey) -> (TuningTable, Vec<String>) {
        match std::fs::read(path) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(text) => Self::from_cache_text(&text, key, &path.display().to_string()),
                Err(_) => (
                    TuningTable::new(key.clone()),
                    vec![format!(
                        "ignoring the tuning cache {}: not UTF-8",
                        path.display()
                    )],
                ),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                (TuningTable::new(key.clone()), Vec::new())
            }
            Err(e) => (
                TuningTable::new(key.clone()),
                vec![format!(
                    "ignoring the tuning cache {}: cannot read it ({e})",
                    path.display()
                )],
            ),
        }
    }

    /// Writes the table to `path` (through a temporary file, so that a
    /// reader never sees half of it).
    pub fn save(&self, path: &Path) -> crate::Result<()> {
        let io = |e: std::io::Error| {
            crate::Error::InvalidArgument(format!(
                "cannot write the tuning cache {}: {e}",
                path.display()
            ))
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let tmp = path.with_extension("json.tmp");
        let text = serde_json::to_string_pretty(&self.to_json())
            .map_err(|e| crate::Error::InvalidArgument(e.to_string()))?;
        std::fs::write(&tmp, text).map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }
}

fn parse_entry(
    entry: &Value,
) -> Result<((Kernel, StorageVariant, ShapeClass), TunedChoice), String> {
    let field = |name: &str| {
        entry
            .get(name)
            .and_then(Value::as_str)
            .ok_or_else(|| format!("no '{name}'"))
    };
    let family = field("family")?;
    let fixed = TUNED_FAMILIES
        .into_iter()
        .find(|k| family_name(*k) == family)
        .ok_or_else(|| format!("unknown family '{family}'"))?;
    let storage_name = field("storage")?;
    let storage = TUNED_STORAGE
        .into_iter()
        .find(|s| s.name() == storage_name)
        .ok_or_else(|| format!("unknown storage '{storage_name}'"))?;
    let class_name = field("class")?;
    let class =
        ShapeClass::parse(class_name).ok_or_else(|| format!("unknown class '{class_name}'"))?;
    let kernel_name = field("kernel")?;
    let kernel = candidates(fixed, storage)
        .into_iter()
        .find(|k| k.short_name() == kernel_name)
        .ok_or_else(|| format!("'{kernel_name}' is not a {family} candidate for {storage_name}"))?;
    let times_ms = entry
        .get("times_ms")
        .and_then(Value::as_object)
        .map(|m| {
            candidates(fixed, storage)
                .into_iter()
                .filter_map(|k| Some((k, m.get(k.short_name())?.as_f64()?)))
                .collect()
        })
        .unwrap_or_default();
    Ok((
        (fixed, storage, class),
        TunedChoice {
            kernel,
            reason: field("reason")?.to_owned(),
            times_ms,
        },
    ))
}

/// Where the cache lives: `$DTYPE_POLICY_TUNING_CACHE`, else
/// `$XDG_CACHE_HOME/dtype-policy/tuning.json`, else
/// `$HOME/.cache/dtype-policy/tuning.json`; `None` without any of them.
pub fn default_cache_path() -> Option<PathBuf> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(path) = var(CACHE_ENV) {
        return Some(PathBuf::from(path));
    }
    let base = var("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| var("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("dtype-policy").join("tuning.json"))
}

/// Whether a candidate's outputs are the first candidate's: the same sums
/// in the same order, so equal but for the rounding of 16-bit outputs.
fn agree(want: &[f32], got: &[f32]) -> Result<(), String> {
    if want.len() != got.len() {
        return Err(format!("{} outputs, not {}", got.len(), want.len()));
    }
    let scale = want.iter().fold(1f32, |a, v| a.max(v.abs()));
    match want
        .iter()
        .zip(got)
        .position(|(a, b)| (a - b).abs() > 1e-2 * scale)
    {
        Some(i) => Err(format!("output {i} is {}, not {}", got[i], want[i])),
        None => Ok(()),
    }
}

/// Weights of the family whose fixed rule is `fixed`, made from `w` and
/// `bias` by Keras's quantizers (per channel for int4: its grouped form
/// shares the result; e4m3 with unit scales for float8).
fn tuning_weights(
    fixed: Kernel,
    w: &[f32],
    bias: &[f32],
    dims: (usize, usize),
) -> crate::Result<crate::format::DenseKernel> {
    use crate::format::{DenseKernel, WeightFormat};
    let format = match fixed {
        Kernel::DenseInt8Tiled => WeightFormat::Int8 {
            quantized_inputs: true,
        },
        Kernel::DenseInt8WeightOnlyTiled => WeightFormat::Int8 {
            quantized_inputs: false,
        },
        Kernel::DenseInt4Tiled => WeightFormat::Int4 {
            block: None,
            quantized_inputs: false,
        },
        Kernel::DenseFloat8Tiled => {
            return DenseKernel::float8(
                w,
                Some(bias),
                dims,
                crate::quant::float8::Float8Scales::default(),
                crate::quant::float8::Float8::E4M3Fn,
            );
        }
        _ => return DenseKernel::float(w, Some(bias), dims),
    };
    DenseKernel::quantize(format, w, Some(bias), dims)
}

/// Every entry a table can hold on the adapter of `caps` for the families
/// whose fixed rules are `families` (each with its storage variant): both
/// shape classes of each that has more than one candidate there.
pub fn entries_of(
    families: &[(Kernel, StorageVariant)],
    caps: &Capabilities,
) -> Vec<(Kernel, StorageVariant, ShapeClass)> {
    let mut out = Vec::new();
    for &(fixed, storage) in families {
        let runs = (!storage.needs_shader_f16() || caps.shader_f16)
            && (!storage.needs_shader_f64() || caps.shader_f64);
        if !runs || candidates_on(fixed, storage, caps).len() < 2 {
            continue;
        }
        for class in ShapeClass::ALL {
            if !out.contains(&(fixed, storage, class)) {
                out.push((fixed, storage, class));
            }
        }
    }
    out
}

/// Every tuned family in every tuned storage variant.
pub fn every_family() -> Vec<(Kernel, StorageVariant)> {
    TUNED_FAMILIES
        .into_iter()
        .flat_map(|f| TUNED_STORAGE.into_iter().map(move |s| (f, s)))
        .collect()
}

impl crate::gpu::context::GpuContext {
    /// Times every tiled candidate of every tuned family and storage
    /// variant this adapter runs, for each shape class, and makes the
    /// winners this context's table (later uploads use them); returns it.
    /// See [`Self::tune_missing`] for how each is measured.
    pub fn tune_tiled(&mut self, reps: usize) -> crate::Result<TuningTable> {
        self.set_tuning(TuningTable::new(TuningKey::of(self.capabilities())));
        let wanted = entries_of(&every_family(), self.capabilities());
        self.tune_missing(&wanted, reps)?;
        Ok(self.tuning().clone())
    }

    /// Measures the entries of `wanted` this context's table lacks and adds
    /// their winners to it (later uploads use them); returns how many were
    /// measured. Each entry's candidates run on its class's
    /// [`ShapeClass::tuning_shape`] with random weights: one warm-up run,
    /// then the median of `reps` by the wall clock, which counts the copy
    /// of x into its texture. Each candidate is checked against the first
    /// one's outputs, so a kernel that is fast because it is wrong cannot
    /// win.
    pub fn tune_missing(
        &mut self,
        wanted: &[(Kernel, StorageVariant, ShapeClass)],
        reps: usize,
    ) -> crate::Result<usize> {
        let mut measured = 0;
        for &(fixed, storage, class) in wanted {
            if self.tuning().choice(fixed, storage, class).is_some() {
                continue;
            }
            if let Some(choice) = self.time_candidates(fixed, storage, class, reps)? {
                let mut table = self.tuning().clone();
                table.insert((fixed, storage, class), choice);
                self.set_tuning(table);
            }
            measured += 1;
        }
        Ok(measured)
    }

    /// Times the candidates of one entry; `None` where there are none.
    fn time_candidates(
        &mut self,
        fixed: Kernel,
        storage: StorageVariant,
        class: ShapeClass,
        reps: usize,
    ) -> crate::Result<Option<TunedChoice>> {
        use crate::ops::{Activation, DenseShape};
        let reps = reps.max(1);
        let (m, k, n) = class.tuning_shape();
        let values = |count: usize, seed: u64| crate::bench::values(count, seed, 1.0);
        let (w, bias) = (values(k * n, 7), values(n, 11));
        let kernel = tuning_weights(fixed, &w, &bias, (k, n))?;
        let x = values(m * k, 13);
        let weights = self.upload_dense(storage, &kernel)?;
        let mut times = Vec::new();
        let mut first: Option<Vec<f32>> = None;
        for candidate in candidates_on(fixed, storage, self.capabilities()) {
            let forced = weights.clone().with_tiled_kernel(candidate)?;
            let forward = self.dense_forward(&forced, DenseShape::Tiled, Activation::Linear, m)?;
            let out = forward.run(self, &[&x])?.remove(0);
            match &first {
                Some(want) => agree(want, &out).map_err(|why| {
                    crate::Error::InvalidArgument(format!(
                        "tuning: {} disagrees with {} on {m}x{k}x{n} in {}: {why}",
                        candidate.short_name(),
                        fixed.short_name(),
                        storage.name()
                    ))
                })?,
                None => first = Some(out),
            }
            let mut spans = Vec::with_capacity(reps);
            for _ in 0..reps {
                // Wall clock: the register tiles' copy of x into its
                // texture is part of their cost.
                spans.push(forward.time(self)?.wall);
            }
            spans.sort();
            times.push((candidate, spans[spans.len() / 2]));
        }
        Ok(pick(&times))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> TuningKey {
        TuningKey {
            adapter: "llvmpipe (LLVM 15.0.6, 256 bits)".to_owned(),
            backend: "Vulkan".to_owned(),
            driver: "llvmpipe Mesa 22.3.6".to_owned(),
            kernel_version: KERNEL_VERSION,
        }
    }

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn a_fake_timing_table_picks_the_fastest_with_its_reason() {
        let times = [
            (Kernel::DenseTiled, ms(539)),
            (Kernel::DenseTexTile16x4, ms(113)),
            (Kernel::DenseTexTile32x4, ms(80)),
            (Kernel::DenseTexTile32x2, ms(192)),
        ];
        let choice = pick(&times).unwrap();
        assert_eq!(choice.kernel, Kernel::DenseTexTile32x4);
        assert_eq!(
            choice.reason,
            "tex-tile-32x4: fastest of 4 on this adapter, 80.0 ms against 539.0, 113.0, 192.0"
        );
        // A tie keeps the fixed rule's kernel.
        let tie = [
            (Kernel::DenseTiled, ms(5)),
            (Kernel::DenseTexTile16x4, ms(5)),
        ];
        assert_eq!(pick(&tie).unwrap().kernel, Kernel::DenseTiled);
        assert!(pick(&[]).is_none());
    }

    #[test]
    fn native_f16_tunes_the_float_family_only_and_only_with_shader_f16() {
        assert_eq!(
            candidates(Kernel::DenseTiled, StorageVariant::F16Native).len(),
            4
        );
        assert_eq!(
            candidates(Kernel::DenseInt8Tiled, StorageVariant::F16Native),
            vec![Kernel::DenseInt8Tiled]
        );
        let native = (Kernel::DenseTiled, StorageVariant::F16Native);
        let mut caps = Capabilities::baseline("test adapter");
        assert!(entries_of(&[native], &caps).is_empty());
        caps.shader_f16 = true;
        assert_eq!(entries_of(&[native], &caps).len(), ShapeClass::ALL.len());
    }

    #[test]
    fn shape_classes_split_at_2_to_the_27_multiply_adds() {
        assert_eq!(ShapeClass::of(64, 512, 512), ShapeClass::Small);
        assert_eq!(ShapeClass::of(1024, 1024, 1024), ShapeClass::Large);
        assert_eq!(ShapeClass::of(512, 4096, 4096), ShapeClass::Large);
        for class in ShapeClass::ALL {
            let (m, k, n) = class.tuning_shape();
            assert_eq!(ShapeClass::of(m, k, n), class);
        }
    }

    fn tuned_table() -> TuningTable {
        let mut table = TuningTable::new(key());
        let times = [
            (Kernel::DenseTiled, ms(539)),
            (Kernel::DenseTexTile32x4, ms(80)),
        ];
        table.insert(
            (Kernel::DenseTiled, StorageVariant::F32, ShapeClass::Large),
            pick(&times).unwrap(),
        );
        table
    }

    #[test]
    fn the_cache_round_trips() {
        let table = tuned_table();
        let text = table.to_json().to_string();
        let (back, warnings) = TuningTable::from_cache_text(&text, &key(), "test");
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(back, table);
        let choice = back
            .choice(Kernel::DenseTiled, StorageVariant::F32, ShapeClass::Large)
            .unwrap();
        assert_eq!(choice.kernel, Kernel::DenseTexTile32x4);
        assert!(
            back.choice(Kernel::DenseTiled, StorageVariant::F32, ShapeClass::Small)
                .is_none()
        );
    }

    #[test]
    fn a_corrupt_cache_is_ignored_with_a_warning() {
        let good = tuned_table().to_json().to_string();
        for (text, says) in [
            (&good[..good.len() / 2], "not JSON"),
            ("{\"schema\": 99}", "not a schema 1 tuning cache"),
            ("[]", "not a schema 1 tuning cache"),
        ] {
            let (table, warnings) = TuningTable::from_cache_text(text, &key(), "cache.json");
            assert!(table.is_empty());
            assert_eq!(warnings.len(), 1, "{warnings:?}");
            assert!(
                warnings[0].starts_with("ignoring the tuning cache cache.json")
                    && warnings[0].contains(says),
                "{warnings:?}"
            );
        }
        // A kernel that is not a candidate is dropped, never run.
        let mut value = tuned_table().to_json();
        value["entries"][0]["kernel"] = json!("int8-tiled");
        let (table, warnings) = TuningTable::from_cache_text(&value.to_string(), &key(), "c");
        assert!(table.is_empty());
        assert!(
            warnings[0].contains("'int8-tiled' is not a float candidate for f32"),
            "{warnings:?}"
        );
    }

    #[test]
    fn a_stale_cache_is_ignored_with_a_warning() {
        let text = tuned_table().to_json().to_string();
        let stale = [
            TuningKey {
                driver: "llvmpipe Mesa 24.0.0".to_owned(),
                ..key()
            },
            TuningKey {
                kernel_version: KERNEL_VERSION + 1,
                ..key()
            },
            TuningKey {
                adapter: "NVIDIA H200".to_owned(),
                ..key()
            },
        ];
        for now in stale {
            let (table, warnings) = TuningTable::from_cache_text(&text, &now, "c");
            assert!(table.is_empty());
            assert_eq!(warnings.len(), 1);
            assert!(
                warnings[0].contains("run `dtype-policy tune` again"),
                "{warnings:?}"
            );
        }
    }

    #[test]
    fn the_cache_file_is_written_and_read_back_and_a_missing_one_is_quiet() {
        let dir = std::env::temp_dir().join(format!("dtype-policy-tuning-{}", std::process::id()));
        let path = dir.join("tuning.json");
        let (empty, warnings) = TuningTable::load(&path, &key());
        assert!(empty.is_empty() && warnings.is_empty());
        tuned_table().save(&path).unwrap();
        let (back, warnings) = TuningTable::load(&path, &key());
        assert!(warnings.is_empty());
        assert_eq!(back, tuned_table());
        std::fs::write(&path, [0xff, 0xfe]).unwrap();
        let (_, warnings) = TuningTable::load(&path, &key());
        assert!(warnings[0].contains("not UTF-8"), "{warnings:?}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}

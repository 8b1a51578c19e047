// SPDX-License-Identifier: MIT OR Apache-2.0
//! WGSL sources and the include step that composes them.
//!
//! Each kernel is one file in `shaders/`; helpers live in `shaders/shared/`
//! and are pulled in with `#import name`. A kernel imports `storage`, which
//! each variant binds to one storage helper, and the quantized
//! matrix-vector kernels `x_share`, which the adapter binds (subgroups or
//! not): those are the only things that differ between the variants of a
//! kernel. An unknown import is an error. The sources are every `.wgsl`
//! file of `shaders/` and `shaders/shared/`, tabled by `build.rs` (two
//! files of the same stem fail the build).

use std::collections::BTreeSet;

use crate::error::Result;
use crate::format::StorageFormat;
use crate::gpu::GpuError;
use crate::gpu::context::Capabilities;
use crate::gpu::kernels::{Kernel, RegisterTile, TileValues};

include!(concat!(env!("OUT_DIR"), "/shader_sources.rs"));

/// How a kernel reads and writes its values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StorageVariant {
    /// f32 buffers.
    F32,
    /// f16 pairs read as `vec2<f16>` (needs SHADER_F16).
    F16Native,
    /// f16 pairs unpacked with `unpack2x16float` (any adapter).
    F16Packed,
    /// bf16 pairs, unpacked by bit shifts.
    BF16Packed,
    /// f64 (needs SHADER_F64; linear and relu activations only).
    F64,
}

impl StorageVariant {
    /// Every storage variant.
    pub const ALL: [StorageVariant; 5] = [
        StorageVariant::F32,
        StorageVariant::F16Native,
        StorageVariant::F16Packed,
        StorageVariant::BF16Packed,
        StorageVariant::F64,
    ];

    /// The helper `#import storage` resolves to.
    const fn helper(self) -> &'static str {
        match self {
            StorageVariant::F32 => "storage_f32",
            StorageVariant::F16Native => "storage_f16",
            StorageVariant::F16Packed => "storage_f16_packed",
            StorageVariant::BF16Packed => "storage_bf16_packed",
            StorageVariant::F64 => "storage_f64",
        }
    }

    /// The buffer format it reads and writes.
    pub const fn format(self) -> StorageFormat {
        match self {
            StorageVariant::F32 => StorageFormat::F32,
            StorageVariant::F16Native | StorageVariant::F16Packed => StorageFormat::F16,
            StorageVariant::BF16Packed => StorageFormat::BF16,
            StorageVariant::F64 => StorageFormat::F64,
        }
    }

    /// Whether the shader needs `wgpu::Features::SHADER_F16`.
    pub const fn needs_shader_f16(self) -> bool {
        matches!(self, StorageVariant::F16Native)
    }

    /// Whether the shader needs `wgpu::Features::SHADER_F64`.
    pub const fn needs_shader_f64(self) -> bool {
        matches!(self, StorageVariant::F64)
    }

    /// A short name for tables and labels.
    pub const fn name(self) -> &'static str {
        match self {
            StorageVariant::F32 => "f32",
            StorageVariant::F16Native => "f16",
            StorageVariant::F16Packed => "f16-packed",
            StorageVariant::BF16Packed => "bf16-packed",
            StorageVariant::F64 => "f64",
        }
    }
}

/// How kernels share activations between the invocations of a subgroup:
/// each 32-k step of the quantized matrix-vector kernels (`#import
/// x_share`), and each depth of the tiled kernels' x tile (`#import
/// tile_x`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum XShare {
    /// Subgroups of exactly 8 invocations: both the matrix-vector steps and
    /// the tile depths go through `subgroupBroadcast`
    /// (shaders/shared/x_share_subgroup.wgsl, tile_x_subgroup.wgsl; f64
    /// tiles load their own).
    SubgroupOf8,
    /// Subgroups of at least 8 invocations: each invocation loads a
    /// quarter of a matrix-vector step and `subgroupBroadcast` hands it to
    /// the others (shaders/shared/x_share_subgroup.wgsl); tiles load their
    /// own (tile_x_plain.wgsl).
    Subgroup,
    /// Each invocation loads what it needs (shaders/shared/x_share_plain.wgsl,
    /// tile_x_plain.wgsl).
    Plain,
}

impl XShare {
    /// Every way.
    pub const ALL: [XShare; 3] = [XShare::SubgroupOf8, XShare::Subgroup, XShare::Plain];

    /// [`XShare::SubgroupOf8`] where the adapter's subgroups are exactly 8
    /// invocations (lavapipe), [`XShare::Subgroup`] where they are at least
    /// 8, else [`XShare::Plain`].
    pub fn for_adapter(caps: &Capabilities) -> XShare {
        match caps.subgroup_size {
            Some((8, 8)) if caps.subgroups => XShare::SubgroupOf8,
            Some((min, _)) if caps.subgroups && min >= 8 => XShare::Subgroup,
            _ => XShare::Plain,
        }
    }

    /// Whether the shaders use subgroup operations.
    pub const fn uses_subgroups(self) -> bool {
        !matches!(self, XShare::Plain)
    }

    /// The helper `#import x_share` resolves to.
    const fn helper(self) -> &'static str {
        match self {
            XShare::SubgroupOf8 | XShare::Subgroup => "x_share_subgroup",
            XShare::Plain => "x_share_plain",
        }
    }

    /// The helper `#import tile_x` resolves to for `storage`.
    const fn tile_helper(self, storage: StorageVariant) -> &'static str {
        match (self, storage) {
            (_, StorageVariant::F64) => "tile_x_plain",
            (XShare::SubgroupOf8, _) => "tile_x_subgroup",
            _ => "tile_x_plain",
        }
    }
}

/// The complete WGSL of one (kernel, storage) variant, with the
/// activations shared as `x_share` says.
pub fn compose(kernel: Kernel, storage: StorageVariant, x_share: XShare) -> Result<String> {
    // The register tiles and the fused add and norm split chunks into
    // words: native f16 tensors hold the same bytes as packed ones, so the
    // packed kernel reads them.
    let splits_chunks = kernel.reads_textures()
        || matches!(kernel, Kernel::AddLayerNorm | Kernel::AddLayerNormQuantize);
    let storage = if splits_chunks && storage == StorageVariant::F16Native {
        StorageVariant::F16Packed
    } else {
        storage
    };
    let variant = Variant {
        storage,
        x_share,
        register_tile: kernel.spec().register_tile,
    };
    compose_from(SOURCES, kernel.file(), variant)
}

/// What a kernel's imports resolve to.
#[derive(Debug, Clone, Copy)]
struct Variant {
    storage: StorageVariant,
    x_share: XShare,
    /// The tile of a register-tile kernel.
    register_tile: Option<RegisterTile>,
}

fn compose_from(sources: &[(&str, &str)], name: &str, variant: Variant) -> Result<String> {
    let mut out = String::new();
    let mut enables = BTreeSet::new();
    let mut seen = BTreeSet::new();
    append(sources, name, variant, &mut out, &mut enables, &mut seen)?;
    // WGSL wants `enable` directives before every declaration.
    let head: String = enables.into_iter().map(|e| e + "\n").collect();
    Ok(head + &out)
}

fn append(
    sources: &[(&str, &str)],
    name: &str,
    variant: Variant,
    out: &mut String,
    enables: &mut BTreeSet<String>,
    seen: &mut BTreeSet<String>,
) -> Result<()> {
    let name = match name {
        "storage" => variant.storage.helper(),
        "x_share" => variant.x_share.helper(),
        "tile_x" => variant.x_share.tile_helper(variant.storage),
        other => other,
    };
    if !seen.insert(name.to_owned()) {
        return Ok(()); // each helper once
    }
    if name == "register_tile" {
        let tile = variant.register_tile.ok_or_else(|| {
            crate::Error::from(GpuError::Shader {
                label: name.to_owned(),
                message: "#import register_tile outside a register-tile kernel".to_owned(),
            })
        })?;
        out.push_str(&register_tile(tile, variant.storage, variant.x_share));
        return Ok(());
    }
    let source = sources
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, s)| *s)
        .ok_or_else(|| GpuError::Shader {
            label: name.to_owned(),
            message: format!(
                "unknown #import '{name}': no such file in shaders/ or shaders/shared/"
            ),
        })
        .map_err(crate::Error::from)?;
    for line in source.lines() {
        let trimmed = line.trim();
        if let Some(import) = trimmed.strip_prefix("#import ") {
            append(sources, import.trim(), variant, out, enables, seen)?;
        } else if trimmed.starts_with("enable ") {
            enables.insert(trimmed.to_owned());
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    Ok(())
}

/// Chunks of k an int8 register tile sums in f32 before folding into i32:
/// 1024 products of at most 127 * 127 stay below 2^24, so every partial sum
/// is exact.
const INT8_EXACT_CHUNKS: u32 = 64;

/// The `main` of the register-tile kernels (shaders/dense_tex_tile.wgsl,
/// dense_int8_tex_tile.wgsl, dense_int4_tex_tile.wgsl,
/// dense_float8_tex_tile.wgsl) for `tile.rows` x `tile.outputs` per
/// invocation (pairs of neighbouring outputs, 16 apart with the other
/// lanes' pairs in between), x rows shared through subgroups where
/// `x_share` has them (rows a multiple of 8). Each W^T chunk is decoded
/// into vec4<f32> parts by `tile.values` (its kernel file provides the
/// decoders) and multiplied by the x chunks it spans.
fn register_tile(tile: RegisterTile, storage: StorageVariant, x_share: XShare) -> String {
    use std::fmt::Write;
    let RegisterTile {
        rows,
        outputs,
        values,
    } = tile;
    let int8 = values == TileValues::Int8;
    // Values of k per chunk of x and of W^T; a W chunk spans `ratio` x chunks.
    let storage_values = storage.format().values_per_chunk();
    let x_values = if int8 { 16 } else { storage_values };
    let w_values = values.weights_per_chunk(storage_values);
    let ratio = w_values / x_values;
    let x_parts = x_values / 4;
    // Part p (four values of k) of x chunk `chunk`, as vec4<f32>.
    let x_part = |chunk: &str, p: usize| match values {
        TileValues::Int8 => format!("vec4<f32>(unpack4xI8({chunk}[{p}]))"),
        TileValues::Float8 => format!("qdq4(chunk_part({chunk}, {p}u))"),
        _ => format!("chunk_part({chunk}, {p}u)"),
    };
    // Part p of W chunk c, as vec4<f32> (k = chunk start + 4p ..); `p` is
    // an expression (the inner loop's index where a W chunk spans several
    // x chunks).
    let w_part = |c: u32, p: &str| match values {
        TileValues::Float => format!("chunk_part(wc{c}, {p})"),
        TileValues::Int8 | TileValues::Int8WeightOnly => {
            format!("vec4<f32>(unpack4xI8(wc{c}[{p}]))")
        }
        TileValues::Int4 => format!(
            "tile_weights(nibbles(wc{c}[({p}) / 2u], ({p}) % 2u), kv * 32u + 4u * ({p}), j{c}, g{c})"
        ),
        TileValues::Float8 => format!("weights4(wc{c}[{p}], w_scale, exact)"),
    };
    let lanes = crate::gpu::mirror::TILE_LANES;
    let shared = x_share.uses_subgroups() && rows.is_multiple_of(lanes);
    let mut s = String::new();
    let sid = if shared {
        ", @builtin(subgroup_invocation_id) sid: u32"
    } else {
        ""
    };
    let _ = writeln!(s, "@compute @workgroup_size({lanes})");
    let _ = writeln!(
        s,
        "fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lane: u32{sid}) {{"
    );
    let _ = writeln!(s, "    let row0 = wg.y * {rows}u;");
    let _ = writeln!(s, "    let n0 = wg.x * {}u + 2u * lane;", outputs * lanes);
    let _ = writeln!(s, "    let last_w = w_rows() - 1u;");
    let _ = writeln!(s, "    let last_x = dims.m - 1u;");
    if values == TileValues::Float8 {
        let _ = writeln!(s, "    let exact = exact_decoding();");
        let _ = writeln!(s, "    let w_scale = decode_scale(exact);");
    }
    // The x rows this lane fetches: one of each 8 when shared, else all.
    let fetches = if shared { rows / lanes } else { rows };
    for f in 0..fetches {
        let row = if shared {
            format!("row0 + {}u + sid", f * lanes)
        } else {
            format!("row0 + {f}u")
        };
        let _ = writeln!(
            s,
            "    let xi{f} = min({row}, last_x) * dims.k_vecs * {ratio}u;"
        );
    }
    // Output c: pair c / 2 (2 * lanes apart), member c % 2.
    for c in 0..outputs {
        let _ = writeln!(
            s,
            "    let j{c} = min(n0 + {}u, last_w);",
            c / 2 * 2 * lanes + c % 2
        );
        let _ = writeln!(s, "    let wi{c} = j{c} * dims.k_vecs;");
    }
    for r in 0..rows {
        for c in 0..outputs {
            let _ = writeln!(s, "    var a{r}_{c} = 0.0;");
            if int8 {
                let _ = writeln!(s, "    var i{r}_{c} = 0i;");
            }
        }
    }
    let indent = "        ";
    if int8 {
        let _ = writeln!(
            s,
            "    for (var kb = 0u; kb < dims.k_vecs; kb += {INT8_EXACT_CHUNKS}u) {{"
        );
        let _ = writeln!(
            s,
            "    for (var kv = kb; kv < min(kb + {INT8_EXACT_CHUNKS}u, dims.k_vecs); kv++) {{"
        );
    } else {
        let _ = writeln!(s, "    for (var kv = 0u; kv < dims.k_vecs; kv++) {{");
    }
    for c in 0..outputs {
        let _ = writeln!(s, "{indent}let wc{c} = w_chunk(wi{c} + kv);");
        if values == TileValues::Int4 {
            // The chunk's group tables (one group per chunk where groups
            // are whole 32-k steps).
            let _ = writeln!(s, "{indent}let g{c} = chunk_group(kv, j{c});");
        }
    }
    // A W chunk spanning several x chunks takes them in a loop (unrolled,
    // the body would be `ratio` times longer for LLVM to compile).
    let (indent, sub) = if ratio > 1 {
        let _ = writeln!(s, "{indent}for (var sub = 0u; sub < {ratio}u; sub++) {{");
        ("            ", "sub")
    } else {
        (indent, "0u")
    };
    for f in 0..fetches {
        let _ = writeln!(
            s,
            "{indent}let xc{f} = x_chunk(xi{f} + kv * {ratio}u + {sub});"
        );
    }
    for xp in 0..x_parts {
        let p = if ratio > 1 {
            format!("sub * {x_parts}u + {xp}u")
        } else {
            format!("{xp}u")
        };
        for c in 0..outputs {
            let _ = writeln!(s, "{indent}let w{c}_{xp} = {};", w_part(c, &p));
        }
        for f in 0..fetches {
            let value = x_part(&format!("xc{f}"), xp);
            if shared {
                let _ = writeln!(s, "{indent}let xp{f}_{xp} = {value};");
                for j in 0..lanes {
                    let r = f * lanes + j;
                    let _ = writeln!(
                        s,
                        "{indent}let x{r}_{xp} = subgroupBroadcast(xp{f}_{xp}, {j}u);"
                    );
                }
            } else {
                let _ = writeln!(s, "{indent}let x{f}_{xp} = {value};");
            }
        }
        for comp in ["x", "y", "z", "w"] {
            for r in 0..rows {
                for c in 0..outputs {
                    let _ = writeln!(
                        s,
                        "{indent}a{r}_{c} = a{r}_{c} + x{r}_{xp}.{comp} * w{c}_{xp}.{comp};"
                    );
                }
            }
        }
    }
    if ratio > 1 {
        let _ = writeln!(s, "        }}");
    }
    let _ = writeln!(s, "    }}");
    if int8 {
        for r in 0..rows {
            for c in 0..outputs {
                let _ = writeln!(s, "    i{r}_{c} += i32(a{r}_{c});");
                let _ = writeln!(s, "    a{r}_{c} = 0.0;");
            }
        }
        let _ = writeln!(s, "    }}");
    }
    // The value stored for a sum of output n.
    let output = |sum: &str, n: &str| match values {
        TileValues::Int4 | TileValues::Int8WeightOnly => format!("weight_only_output({sum}, {n})"),
        _ => format!("finish({sum}, {n})"),
    };
    for r in 0..rows {
        for p in 0..outputs / 2 {
            let (a, b) = (2 * p, 2 * p + 1);
            let at = p * 2 * lanes;
            let (row, n) = (format!("row0 + {r}u"), format!("n0 + {at}u"));
            let store = if int8 {
                format!("store_sums({row}, {n}, i{r}_{a}, i{r}_{b})")
            } else {
                format!(
                    "store_out_pair({row}, {n}, {}, {})",
                    output(&format!("a{r}_{a}"), &n),
                    output(&format!("a{r}_{b}"), &format!("{n} + 1u"))
                )
            };
            let _ = writeln!(s, "    if ({row} < dims.m && {n} < dims.n) {{ {store}; }}");
        }
    }
    let _ = writeln!(s, "}}");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(storage: StorageVariant) -> Variant {
        Variant {
            storage,
            x_share: XShare::Plain,
            register_tile: None,
        }
    }

    #[test]
    fn an_unknown_import_is_an_error_that_names_it() {
        let sources = [
            ("k", "#import storage\n#import nowhere\n"),
            ("storage_f32", "// f32\n"),
        ];
        let err = compose_from(&sources, "k", plain(StorageVariant::F32)).unwrap_err();
        assert!(
            err.to_string().contains("unknown #import 'nowhere'"),
            "{err}"
        );
    }

    #[test]
    fn imports_are_included_once_and_enables_go_first() {
        let sources = [
            (
                "k",
                "// kernel\n#import storage\n#import common\nfn main() {}\n",
            ),
            ("storage_f16", "enable f16;\n#import common\nfn s() {}\n"),
            ("common", "fn c() {}\n"),
        ];
        let wgsl = compose_from(&sources, "k", plain(StorageVariant::F16Native)).unwrap();
        assert!(wgsl.starts_with("enable f16;\n"), "{wgsl}");
        assert_eq!(wgsl.matches("fn c()").count(), 1, "{wgsl}");
    }

    #[test]
    fn every_shipped_variant_composes() {
        for kernel in Kernel::ALL {
            for storage in StorageVariant::ALL {
                for x_share in XShare::ALL {
                    let wgsl = compose(kernel, storage, x_share).unwrap();
                    assert!(!wgsl.contains("#import"), "{kernel:?}/{storage:?}");
                }
            }
        }
    }
}

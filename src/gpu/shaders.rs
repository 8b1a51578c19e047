// SPDX-License-Identifier: MIT OR Apache-2.0
//! WGSL sources and the include step that composes them.
//!
//! Each kernel is one file in `shaders/`; helpers live in `shaders/shared/`
//! and are pulled in with `#import name`. A kernel imports `storage`, which
//! each variant binds to one storage helper, and the quantized
//! matrix-vector kernels `x_share`, which the adapter binds (subgroups or
//! not): those are the only things that differ between the variants of a
//! kernel. An unknown import is an error.

use std::collections::BTreeSet;

use crate::gpu::GpuError;
use crate::gpu::context::Capabilities;
use crate::gpu::formats::StorageFormat;

/// Every WGSL file, by the name `#import` uses (kernels by file stem).
const SOURCES: &[(&str, &str)] = &[
    (
        "int8_bindings",
        include_str!("../../shaders/shared/int8_bindings.wgsl"),
    ),
    (
        "dense_int8_tiled",
        include_str!("../../shaders/dense_int8_tiled.wgsl"),
    ),
    (
        "dense_float8",
        include_str!("../../shaders/dense_float8.wgsl"),
    ),
    ("float8", include_str!("../../shaders/shared/float8.wgsl")),
    (
        "probe_dims",
        include_str!("../../shaders/shared/probe_dims.wgsl"),
    ),
    ("dense_int4", include_str!("../../shaders/dense_int4.wgsl")),
    (
        "dense_int4_tiled",
        include_str!("../../shaders/dense_int4_tiled.wgsl"),
    ),
    (
        "dense_float8_tiled",
        include_str!("../../shaders/dense_float8_tiled.wgsl"),
    ),
    (
        "x_share_subgroup",
        include_str!("../../shaders/shared/x_share_subgroup.wgsl"),
    ),
    (
        "tile_x_subgroup",
        include_str!("../../shaders/shared/tile_x_subgroup.wgsl"),
    ),
    (
        "tile_x_plain",
        include_str!("../../shaders/shared/tile_x_plain.wgsl"),
    ),
    (
        "x_share_plain",
        include_str!("../../shaders/shared/x_share_plain.wgsl"),
    ),
    (
        "x_quarter",
        include_str!("../../shaders/shared/x_quarter.wgsl"),
    ),
    (
        "probe_read_body",
        include_str!("../../shaders/shared/probe_read_body.wgsl"),
    ),
    (
        "probe_read_wide",
        include_str!("../../shaders/probe_read_wide.wgsl"),
    ),
    (
        "int4_weights",
        include_str!("../../shaders/shared/int4_weights.wgsl"),
    ),
    (
        "float8_weights",
        include_str!("../../shaders/shared/float8_weights.wgsl"),
    ),
    (
        "dense_tile",
        include_str!("../../shaders/shared/dense_tile.wgsl"),
    ),
    (
        "dense_tile_x8",
        include_str!("../../shaders/shared/dense_tile_x8.wgsl"),
    ),
    ("probe_copy", include_str!("../../shaders/probe_copy.wgsl")),
    ("probe_dot4", include_str!("../../shaders/probe_dot4.wgsl")),
    (
        "quantize_rows",
        include_str!("../../shaders/quantize_rows.wgsl"),
    ),
    ("dense_int8", include_str!("../../shaders/dense_int8.wgsl")),
    (
        "dense_output",
        include_str!("../../shaders/shared/dense_output.wgsl"),
    ),
    (
        "storage_f64",
        include_str!("../../shaders/shared/storage_f64.wgsl"),
    ),
    (
        "activation_f64",
        include_str!("../../shaders/shared/activation_f64.wgsl"),
    ),
    ("probe_read", include_str!("../../shaders/probe_read.wgsl")),
    ("probe_fma", include_str!("../../shaders/probe_fma.wgsl")),
    ("cast", include_str!("../../shaders/cast.wgsl")),
    (
        "dense_matvec",
        include_str!("../../shaders/dense_matvec.wgsl"),
    ),
    (
        "dense_tiled",
        include_str!("../../shaders/dense_tiled.wgsl"),
    ),
    (
        "activation",
        include_str!("../../shaders/shared/activation.wgsl"),
    ),
    (
        "dense_bindings",
        include_str!("../../shaders/shared/dense_bindings.wgsl"),
    ),
    ("round16", include_str!("../../shaders/shared/round16.wgsl")),
    (
        "storage_16_words",
        include_str!("../../shaders/shared/storage_16_words.wgsl"),
    ),
    (
        "storage_16_common",
        include_str!("../../shaders/shared/storage_16_common.wgsl"),
    ),
    (
        "storage_f32",
        include_str!("../../shaders/shared/storage_f32.wgsl"),
    ),
    (
        "storage_f16",
        include_str!("../../shaders/shared/storage_f16.wgsl"),
    ),
    (
        "storage_f16_packed",
        include_str!("../../shaders/shared/storage_f16_packed.wgsl"),
    ),
    (
        "storage_bf16_packed",
        include_str!("../../shaders/shared/storage_bf16_packed.wgsl"),
    ),
];

/// Outputs one invocation of every matrix-vector Dense kernel computes
/// (they share each load of the activations).
pub const MATVEC_OUTPUTS: usize = 8;

/// A kernel family: one WGSL file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kernel {
    /// Dense forward, one invocation per (row, output pair).
    DenseMatVec,
    /// Dense forward, workgroup-memory tiles.
    DenseTiled,
    /// Casts between f32, f16 and bf16 buffers.
    Cast,
    /// Quantizes activations per row to int8 (Keras's abs-max), packed for `dot4I8Packed`.
    QuantizeRows,
    /// Keras's int8 Dense: int8 activations and weights, `dot4I8Packed`, i32 accumulation.
    DenseInt8,
    /// Keras's int8 Dense, tiled for many rows.
    DenseInt8Tiled,
    /// Keras's int4 Dense (per-channel or grouped with zero points):
    /// activations in the compute dtype, weights dequantized in the kernel.
    DenseInt4,
    /// Keras's int8 Dense without an activation quantizer: int8 weights,
    /// activations in the compute dtype (the int4 kernel with 8-bit weights).
    DenseInt8WeightOnly,
    /// Keras's float8 Dense: e4m3 weights decoded in the kernel, activations
    /// quantize-dequantized with a per-tensor scale.
    DenseFloat8,
    /// Keras's int4 Dense, tiled for many rows.
    DenseInt4Tiled,
    /// Keras's int8 Dense without an activation quantizer, tiled for many rows.
    DenseInt8WeightOnlyTiled,
    /// Keras's float8 Dense, tiled for many rows.
    DenseFloat8Tiled,
    /// Roofline probe: streaming read of a buffer, 16-byte loads.
    ProbeRead,
    /// Roofline probe: streaming read of a buffer, 32-byte loads (`vec4<u64>`,
    /// needs SHADER_INT64); faster than 16-byte loads on CPU drivers.
    ProbeReadWide,
    /// Roofline probe: fused multiply-adds on registers.
    ProbeFma,
    /// Roofline probe: streaming copy of a buffer.
    ProbeCopy,
    /// Roofline probe: `dot4I8Packed` on registers.
    ProbeDot4,
}

impl Kernel {
    /// Every kernel.
    pub const ALL: [Kernel; 17] = [
        Kernel::DenseMatVec,
        Kernel::DenseTiled,
        Kernel::Cast,
        Kernel::QuantizeRows,
        Kernel::DenseInt8,
        Kernel::DenseInt8Tiled,
        Kernel::DenseInt4,
        Kernel::DenseInt8WeightOnly,
        Kernel::DenseFloat8,
        Kernel::DenseInt4Tiled,
        Kernel::DenseInt8WeightOnlyTiled,
        Kernel::DenseFloat8Tiled,
        Kernel::ProbeRead,
        Kernel::ProbeReadWide,
        Kernel::ProbeFma,
        Kernel::ProbeCopy,
        Kernel::ProbeDot4,
    ];

    /// The Dense kernels.
    pub const DENSE: [Kernel; 2] = [Kernel::DenseMatVec, Kernel::DenseTiled];

    /// The tiled (many rows) kernel of a Dense family; any other kernel
    /// is its own.
    pub const fn tiled(self) -> Kernel {
        match self {
            Kernel::DenseMatVec => Kernel::DenseTiled,
            Kernel::DenseInt8 => Kernel::DenseInt8Tiled,
            Kernel::DenseInt4 => Kernel::DenseInt4Tiled,
            Kernel::DenseInt8WeightOnly => Kernel::DenseInt8WeightOnlyTiled,
            Kernel::DenseFloat8 => Kernel::DenseFloat8Tiled,
            other => other,
        }
    }

    /// Whether the kernel shares each step of the activations between the
    /// invocations of a subgroup where it can (`#import x_share`).
    pub const fn shares_x(self) -> bool {
        matches!(
            self,
            Kernel::DenseInt4 | Kernel::DenseInt8WeightOnly | Kernel::DenseFloat8
        )
    }

    /// Whether the shader needs `wgpu::Features::SHADER_INT64` (u64 loads).
    pub const fn needs_shader_int64(self) -> bool {
        matches!(self, Kernel::ProbeReadWide)
    }

    /// Bytes per vector a streaming probe reads: 32 for
    /// [`Kernel::ProbeReadWide`] (`vec4<u64>`), else 16.
    pub const fn probe_vector_bytes(self) -> u64 {
        match self {
            Kernel::ProbeReadWide => 32,
            _ => 16,
        }
    }

    /// Whether this is a tiled Dense kernel (64 rows x 32 outputs per workgroup).
    pub const fn is_tiled(self) -> bool {
        matches!(
            self,
            Kernel::DenseTiled
                | Kernel::DenseInt8Tiled
                | Kernel::DenseInt4Tiled
                | Kernel::DenseInt8WeightOnlyTiled
                | Kernel::DenseFloat8Tiled
        )
    }

    /// The file stem in `shaders/`.
    pub const fn file(self) -> &'static str {
        match self {
            Kernel::DenseMatVec => "dense_matvec",
            Kernel::DenseTiled => "dense_tiled",
            Kernel::Cast => "cast",
            Kernel::QuantizeRows => "quantize_rows",
            Kernel::DenseInt8 => "dense_int8",
            Kernel::DenseInt8Tiled => "dense_int8_tiled",
            Kernel::DenseInt4 | Kernel::DenseInt8WeightOnly => "dense_int4",
            Kernel::DenseFloat8 => "dense_float8",
            Kernel::DenseInt4Tiled | Kernel::DenseInt8WeightOnlyTiled => "dense_int4_tiled",
            Kernel::DenseFloat8Tiled => "dense_float8_tiled",
            Kernel::ProbeRead => "probe_read",
            Kernel::ProbeReadWide => "probe_read_wide",
            Kernel::ProbeFma => "probe_fma",
            Kernel::ProbeCopy => "probe_copy",
            Kernel::ProbeDot4 => "probe_dot4",
        }
    }

    /// A short name for tables.
    pub const fn short_name(self) -> &'static str {
        match self {
            Kernel::DenseMatVec => "matvec",
            Kernel::DenseTiled => "tiled",
            Kernel::Cast => "cast",
            Kernel::QuantizeRows => "quantize-rows",
            Kernel::DenseInt8 => "int8",
            Kernel::DenseInt8Tiled => "int8-tiled",
            Kernel::DenseInt4 => "int4",
            Kernel::DenseInt8WeightOnly => "int8-w",
            Kernel::DenseFloat8 => "float8",
            Kernel::DenseInt4Tiled => "int4-tiled",
            Kernel::DenseInt8WeightOnlyTiled => "int8-w-tiled",
            Kernel::DenseFloat8Tiled => "float8-tiled",
            Kernel::ProbeRead => "probe-read",
            Kernel::ProbeReadWide => "probe-read-wide",
            Kernel::ProbeFma => "probe-fma",
            Kernel::ProbeCopy => "probe-copy",
            Kernel::ProbeDot4 => "probe-dot4",
        }
    }

    /// Whether the kernel has a variant for this storage (the cast kernel
    /// converts between the 32- and 16-bit formats only).
    pub const fn supports(self, storage: StorageVariant) -> bool {
        !matches!(
            (self, storage),
            (
                Kernel::Cast
                    | Kernel::QuantizeRows
                    | Kernel::DenseInt8
                    | Kernel::DenseInt8Tiled
                    | Kernel::DenseInt4
                    | Kernel::DenseInt8WeightOnly
                    | Kernel::DenseFloat8
                    | Kernel::DenseInt4Tiled
                    | Kernel::DenseInt8WeightOnlyTiled
                    | Kernel::DenseFloat8Tiled,
                StorageVariant::F64
            )
        )
    }

    /// The name of the kernel's mode override constant
    /// ([`crate::gpu::pipelines::PipelineKey::mode`]), if any.
    pub const fn mode_name(self) -> Option<&'static str> {
        match self {
            Kernel::DenseInt8 | Kernel::DenseInt8Tiled => Some("WRITE_ACCUMULATOR"),
            Kernel::DenseInt4
            | Kernel::DenseInt8WeightOnly
            | Kernel::DenseInt4Tiled
            | Kernel::DenseInt8WeightOnlyTiled => Some("GROUPING"),
            Kernel::DenseFloat8 | Kernel::DenseFloat8Tiled => Some("WEIGHTS_E5M2"),
            _ => None,
        }
    }

    /// Override constants fixed for this kernel (a file shared by kernels).
    pub const fn fixed_constants(self) -> &'static [(&'static str, f64)] {
        match self {
            Kernel::DenseInt8WeightOnly | Kernel::DenseInt8WeightOnlyTiled => {
                &[("WEIGHT_BITS", 8.0)]
            }
            _ => &[],
        }
    }

    /// The name of the kernel's one specializing override constant.
    pub const fn override_name(self) -> &'static str {
        match self {
            Kernel::DenseMatVec
            | Kernel::DenseTiled
            | Kernel::DenseInt8
            | Kernel::DenseInt8Tiled
            | Kernel::DenseInt4
            | Kernel::DenseInt8WeightOnly
            | Kernel::DenseFloat8
            | Kernel::DenseInt4Tiled
            | Kernel::DenseInt8WeightOnlyTiled
            | Kernel::DenseFloat8Tiled => "ACTIVATION",
            Kernel::Cast => "IN_FORMAT",
            // The probes take none; this one exists in neither and is never set.
            Kernel::ProbeRead
            | Kernel::ProbeReadWide
            | Kernel::ProbeFma
            | Kernel::ProbeCopy
            | Kernel::ProbeDot4
            | Kernel::QuantizeRows => "",
        }
    }

    /// The kernel's bindings, in order (group 0): uniform or storage, and
    /// the smallest size each may be bound with.
    pub(crate) const fn bindings(self) -> &'static [Binding] {
        match self {
            Kernel::DenseMatVec | Kernel::DenseTiled => DENSE_BINDINGS,
            Kernel::ProbeRead | Kernel::ProbeFma | Kernel::ProbeDot4 => PROBE_BINDINGS,
            Kernel::ProbeReadWide => PROBE_WIDE_BINDINGS,
            Kernel::ProbeCopy => PROBE_COPY_BINDINGS,
            Kernel::QuantizeRows => QUANTIZE_ROWS_BINDINGS,
            Kernel::DenseInt8 | Kernel::DenseInt8Tiled => INT8_BINDINGS,
            Kernel::DenseFloat8 | Kernel::DenseFloat8Tiled => FLOAT8_BINDINGS,
            Kernel::DenseInt4
            | Kernel::DenseInt8WeightOnly
            | Kernel::DenseInt4Tiled
            | Kernel::DenseInt8WeightOnlyTiled => INT4_BINDINGS,
            Kernel::Cast => CAST_BINDINGS,
        }
    }
}

// shaders/shared/dense_bindings.wgsl: x and W^T are read as 16-byte chunks,
// bias and y by the value (f64 at most: 8 bytes).
const DENSE_BINDINGS: &[Binding] = &[Binding::Uniform(16), ro(16), ro(16), ro(8), rw(8)];
// The probes read 16-byte vectors.
const PROBE_BINDINGS: &[Binding] = &[Binding::Uniform(16), ro(16), rw(4)];
// The wide read probe reads 32-byte vectors.
const PROBE_WIDE_BINDINGS: &[Binding] = &[Binding::Uniform(16), ro(32), rw(4)];
// The copy probe writes 16-byte vectors too.
const PROBE_COPY_BINDINGS: &[Binding] = &[Binding::Uniform(16), ro(16), rw(16)];
// shaders/quantize_rows.wgsl: x chunks in, packed q and scales out.
const QUANTIZE_ROWS_BINDINGS: &[Binding] = &[Binding::Uniform(16), ro(16), rw(4), rw(4)];
// shaders/shared/int8_bindings.wgsl.
const INT8_BINDINGS: &[Binding] = &[
    Binding::Uniform(16),
    ro(16),
    ro(16),
    ro(4),
    rw(4),
    ro(4),
    ro(4),
];
// shaders/shared/float8_weights.wgsl.
const FLOAT8_BINDINGS: &[Binding] = &[Binding::Uniform(32), ro(16), ro(16), ro(4), rw(4)];
// shaders/shared/int4_weights.wgsl.
const INT4_BINDINGS: &[Binding] = &[
    Binding::Uniform(32),
    ro(16),
    ro(16),
    ro(4),
    rw(4),
    ro(16),
    ro(8),
];
// shaders/cast.wgsl.
const CAST_BINDINGS: &[Binding] = &[Binding::Uniform(16), ro(4), rw(4)];

/// A read-only storage binding of at least `min_bytes`.
const fn ro(min_bytes: u64) -> Binding {
    Binding::Storage {
        read_only: true,
        min_bytes,
    }
}

/// A read-write storage binding of at least `min_bytes`.
const fn rw(min_bytes: u64) -> Binding {
    Binding::Storage {
        read_only: false,
        min_bytes,
    }
}

/// One binding of a kernel.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Binding {
    /// A uniform buffer of at least this many bytes.
    Uniform(u64),
    /// A storage buffer.
    Storage {
        /// Read-only or read-write.
        read_only: bool,
        /// The smallest size it may be bound with.
        min_bytes: u64,
    },
}

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
pub fn compose(
    kernel: Kernel,
    storage: StorageVariant,
    x_share: XShare,
) -> Result<String, GpuError> {
    compose_from(SOURCES, kernel.file(), (storage, x_share))
}

fn compose_from(
    sources: &[(&str, &str)],
    name: &str,
    variant: (StorageVariant, XShare),
) -> Result<String, GpuError> {
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
    variant: (StorageVariant, XShare),
    out: &mut String,
    enables: &mut BTreeSet<String>,
    seen: &mut BTreeSet<String>,
) -> Result<(), GpuError> {
    let name = match name {
        "storage" => variant.0.helper(),
        "x_share" => variant.1.helper(),
        "tile_x" => variant.1.tile_helper(variant.0),
        other => other,
    };
    if !seen.insert(name.to_owned()) {
        return Ok(()); // each helper once
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
        })?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_import_is_an_error_that_names_it() {
        let sources = [
            ("k", "#import storage\n#import nowhere\n"),
            ("storage_f32", "// f32\n"),
        ];
        let err = compose_from(&sources, "k", (StorageVariant::F32, XShare::Plain)).unwrap_err();
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
        let wgsl = compose_from(&sources, "k", (StorageVariant::F16Native, XShare::Plain)).unwrap();
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

// SPDX-License-Identifier: MIT OR Apache-2.0
//! The kernels, named by a typed identifier, and every fact about each in
//! one table ([`KernelSpec`]): its WGSL file, its bindings, its override
//! constants, its shape. `tests/shaders_validate.rs` checks each kernel's
//! bindings against what naga reflects from its WGSL.

/// Outputs one invocation of every matrix-vector Dense kernel computes
/// (they share each load of the activations).
pub const MATVEC_OUTPUTS: usize = 8;

/// A compiled kernel: one WGSL file in `shaders/` (two kernels may share a
/// file and differ in fixed override constants).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kernel {
    /// Dense forward, one invocation per (row, eight outputs).
    DenseMatVec,
    /// Dense forward, workgroup-memory tiles.
    DenseTiled,
    /// [`Kernel::DenseMatVec`] reading W^T with 32-byte loads
    /// (SHADER_INT64; f32 and the packed 16-bit formats) laid out for a
    /// SIMD group's lanes, for CPU drivers.
    DenseMatVecWide,
    /// Casts between f32, f16 and bf16 buffers, reshaping rows (Keras's `Reshape`).
    Cast,
    /// Element-wise sum of two tensors of the same shape (a residual add).
    Add,
    /// Keras's LayerNormalization over the last axis, one workgroup per row.
    LayerNorm,
    /// A residual add and the [`Kernel::LayerNorm`] of its sum in one
    /// dispatch, writing both.
    AddLayerNorm,
    /// [`Kernel::AddLayerNorm`] that also quantizes its output for int8
    /// Dense layers, as [`Kernel::QuantizeRows`] does.
    AddLayerNormQuantize,
    /// A Keras activation applied element by element (the `Activation` layer).
    Activate,
    /// MultiHeadAttention's core: masked softmax of q . k, times v.
    Attention,
    /// Keras's Embedding: table rows gathered by id, dequantized.
    Embedding,
    /// Keras's Softmax layer over the last axis, with an optional mask.
    Softmax,
    /// KerasHub's RotaryEmbedding: each head's halves rotated by its
    /// position's cosines and sines.
    Rope,
    /// The index of each row's largest value (greedy decoding's next token).
    Argmax,
    /// Quantizes activations per row to int8 (Keras's abs-max), packed for `dot4I8Packed`.
    QuantizeRows,
    /// [`Kernel::QuantizeRows`] with one invocation per row and no
    /// workgroup barrier, for the register-tile products (CPU drivers).
    QuantizeRowsLanes,
    /// Keras's int8 Dense: int8 activations and weights, `dot4I8Packed`, i32 accumulation.
    DenseInt8,
    /// Keras's int8 Dense, tiled for many rows.
    DenseInt8Tiled,
    /// [`Kernel::DenseInt8`] reading W^T with 32-byte loads (SHADER_INT64)
    /// laid out for a SIMD group's lanes, for CPU drivers.
    DenseInt8Wide,
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
    /// Float Dense for many rows: 16 rows x 4 outputs per invocation in
    /// registers, x and W^T fetched from texture mirrors (CPU drivers).
    DenseTexTile16x4,
    /// [`Kernel::DenseTexTile16x4`] with 32 rows x 4 outputs.
    DenseTexTile32x4,
    /// [`Kernel::DenseTexTile16x4`] with 32 rows x 2 outputs.
    DenseTexTile32x2,
    /// Keras's int8 Dense for many rows in register tiles over chunk
    /// textures, 16 rows x 4 outputs per invocation.
    DenseInt8TexTile16x4,
    /// [`Kernel::DenseInt8TexTile16x4`] with 32 rows x 4 outputs.
    DenseInt8TexTile32x4,
    /// [`Kernel::DenseInt8TexTile16x4`] with 32 rows x 2 outputs.
    DenseInt8TexTile32x2,
    /// Keras's int4 Dense (activations in the compute dtype) for many rows
    /// in register tiles over chunk textures, 16 rows x 4 outputs.
    DenseInt4TexTile16x4,
    /// [`Kernel::DenseInt4TexTile16x4`] with 32 rows x 4 outputs.
    DenseInt4TexTile32x4,
    /// [`Kernel::DenseInt4TexTile16x4`] with 32 rows x 2 outputs.
    DenseInt4TexTile32x2,
    /// Keras's int8 Dense without an activation quantizer for many rows in
    /// register tiles over chunk textures, 16 rows x 4 outputs.
    DenseInt8WeightOnlyTexTile16x4,
    /// [`Kernel::DenseInt8WeightOnlyTexTile16x4`] with 32 rows x 4 outputs.
    DenseInt8WeightOnlyTexTile32x4,
    /// [`Kernel::DenseInt8WeightOnlyTexTile16x4`] with 32 rows x 2 outputs.
    DenseInt8WeightOnlyTexTile32x2,
    /// Keras's float8 Dense for many rows in register tiles over chunk
    /// textures, 16 rows x 4 outputs.
    DenseFloat8TexTile16x4,
    /// [`Kernel::DenseFloat8TexTile16x4`] with 32 rows x 4 outputs.
    DenseFloat8TexTile32x4,
    /// [`Kernel::DenseFloat8TexTile16x4`] with 32 rows x 2 outputs.
    DenseFloat8TexTile32x2,
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

/// Everything the runtime needs to know about a kernel.
#[derive(Debug)]
pub struct KernelSpec {
    /// The kernel this row describes (the table is indexed by `Kernel as usize`).
    pub kernel: Kernel,
    /// The file stem in `shaders/`.
    pub file: &'static str,
    /// A short name for tables and labels.
    pub short_name: &'static str,
    /// Its bindings in order (group 0) and the smallest size each may be bound with.
    pub bindings: &'static [Binding],
    /// The override constant a pipeline's specialization sets (the
    /// activation of a Dense kernel, the input format of a cast, whether an
    /// embedding gathers by position).
    pub specialization: Option<&'static str>,
    /// The override constant a pipeline's mode sets
    /// ([`crate::gpu::pipelines::PipelineKey::mode`]).
    pub mode: Option<&'static str>,
    /// Override constants fixed for this kernel (a file shared by kernels).
    pub fixed: &'static [(&'static str, f64)],
    /// The tiled (many rows) form of a matrix-vector Dense kernel; the
    /// kernel itself for every other.
    pub tiled: Kernel,
    /// A tiled Dense kernel (64 rows x 32 outputs per workgroup).
    pub is_tiled: bool,
    /// Shares each 32-k step of the activations between the invocations of
    /// a subgroup where it can (`#import x_share`).
    pub shares_x: bool,
    /// Has an f64 storage variant.
    pub f64: bool,
    /// Needs `wgpu::Features::SHADER_INT64`.
    pub needs_int64: bool,
    /// Bytes per vector a streaming probe reads (0 for other kernels).
    pub probe_vector_bytes: u64,
    /// A register-tile kernel's tile (its body is generated, `#import
    /// register_tile`).
    pub register_tile: Option<RegisterTile>,
    /// Reads W^T in the layout of a SIMD group's lanes
    /// (shaders/shared/dense_weights_wide.wgsl; `lanes_layout` in
    /// src/gpu/dense.rs), which weights hold only where their adapter's
    /// matrix-vector kernel is such a kernel.
    pub lanes_layout: bool,
}

/// The tile of a register-tile Dense kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegisterTile {
    /// Rows of y per invocation (and per workgroup).
    pub rows: u32,
    /// Outputs per invocation (pairs of neighbours).
    pub outputs: u32,
    /// What a chunk holds and how it is summed.
    pub values: TileValues,
}

/// The values a register tile multiplies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TileValues {
    /// The storage format's floats, summed in f32.
    Float,
    /// Keras's int8 activations and weights, 16 per chunk: products and
    /// sums of up to 1024 of them are exact in f32, which the kernel folds
    /// into i32 every 1024 k (the same sums as dot4I8Packed).
    Int8,
    /// Activations in the storage format, int4 weights (32 per chunk), per
    /// channel or grouped.
    Int4,
    /// Activations in the storage format, int8 weights (16 per chunk).
    Int8WeightOnly,
    /// Activations in the storage format quantize-dequantized through
    /// e4m3, float8 weight codes (16 per chunk) decoded and scaled.
    Float8,
}

impl TileValues {
    /// The tiled kernel of the fixed rule for these values: the kernel the
    /// register tiles compete with.
    pub const fn fixed(self) -> Kernel {
        match self {
            TileValues::Float => Kernel::DenseTiled,
            TileValues::Int8 => Kernel::DenseInt8Tiled,
            TileValues::Int4 => Kernel::DenseInt4Tiled,
            TileValues::Int8WeightOnly => Kernel::DenseInt8WeightOnlyTiled,
            TileValues::Float8 => Kernel::DenseFloat8Tiled,
        }
    }

    /// Values of k per 16-byte chunk of W^T, given the storage format's
    /// values per chunk (float weights are stored in it).
    pub const fn weights_per_chunk(self, storage_values: usize) -> usize {
        match self {
            TileValues::Float => storage_values,
            TileValues::Int8 | TileValues::Int8WeightOnly | TileValues::Float8 => 16,
            TileValues::Int4 => 32,
        }
    }
}

/// One binding of a kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binding {
    /// A uniform buffer of at least this many bytes.
    Uniform(u64),
    /// A 2D `texture_2d<u32>` of rgba32uint texels: a buffer's 16-byte
    /// chunks in rows of [`crate::gpu::mirror::MIRROR_WIDTH`].
    ChunkTexture,
    /// A storage buffer.
    Storage {
        /// Read-only or read-write.
        read_only: bool,
        /// The smallest size it may be bound with.
        min_bytes: u64,
    },
}

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

// shaders/shared/dense_bindings.wgsl: x and W^T are read as 16-byte chunks,
// bias and y by the value (f64 at most: 8 bytes).
const DENSE_BINDINGS: &[Binding] = &[Binding::Uniform(16), ro(16), ro(16), ro(8), rw(8)];
// dense_matvec_wide.wgsl reads W^T in 32-byte vectors (and has no f64 variant).
const DENSE_WIDE_BINDINGS: &[Binding] = &[Binding::Uniform(16), ro(16), ro(32), ro(4), rw(4)];
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
// dense_int8_wide.wgsl: W^T in 32-byte vectors.
const INT8_WIDE_BINDINGS: &[Binding] = &[
    Binding::Uniform(16),
    ro(16),
    ro(32),
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
const CAST_BINDINGS: &[Binding] = &[Binding::Uniform(32), ro(4), rw(4)];
// shaders/add.wgsl: two inputs read as 16-byte chunks, the sum by the value.
const ADD_BINDINGS: &[Binding] = &[Binding::Uniform(16), ro(16), ro(16), rw(8)];
// shaders/layer_norm.wgsl: x chunks, gamma and beta in f32, y by the word.
const LAYER_NORM_BINDINGS: &[Binding] = &[Binding::Uniform(16), ro(16), ro(4), rw(4)];
// shaders/add_layer_norm.wgsl: a and b chunks, gamma and beta, y by the word, the sum's chunks.
const ADD_LAYER_NORM_BINDINGS: &[Binding] =
    &[Binding::Uniform(16), ro(16), ro(16), ro(4), rw(4), rw(16)];
// shaders/add_layer_norm_quantize.wgsl: add_layer_norm's, then q words and the rows' scales.
const ADD_LAYER_NORM_QUANTIZE_BINDINGS: &[Binding] = &[
    Binding::Uniform(16),
    ro(16),
    ro(16),
    ro(4),
    rw(4),
    rw(16),
    rw(4),
    rw(4),
];
// shaders/attention.wgsl: q, k, v chunks, the mask's f32 values, y by the word.
const ATTENTION_BINDINGS: &[Binding] =
    &[Binding::Uniform(32), ro(16), ro(16), ro(16), ro(4), rw(4)];
// shaders/activate.wgsl: x chunks in, y by the word (no f64).
const ACTIVATE_BINDINGS: &[Binding] = &[Binding::Uniform(16), ro(16), rw(4)];
// shaders/embedding.wgsl: ids, table words, scales, zero points, y by the word.
const EMBEDDING_BINDINGS: &[Binding] = &[Binding::Uniform(32), ro(4), ro(4), ro(4), ro(4), rw(4)];
// shaders/softmax.wgsl: x chunks, the mask's f32 values, y by the word.
const SOFTMAX_BINDINGS: &[Binding] = &[Binding::Uniform(32), ro(16), ro(4), rw(4)];
// shaders/rope.wgsl: x chunks, the f32 cos and sin table, y by the word.
const ROPE_BINDINGS: &[Binding] = &[Binding::Uniform(32), ro(16), ro(4), rw(4)];
// shaders/argmax.wgsl: x chunks in, one f32 index per row out.
const ARGMAX_BINDINGS: &[Binding] = &[Binding::Uniform(32), ro(16), rw(4)];

/// A row of the table with the defaults of a kernel that is not Dense.
const fn other(
    kernel: Kernel,
    file: &'static str,
    short_name: &'static str,
    bindings: &'static [Binding],
) -> KernelSpec {
    KernelSpec {
        kernel,
        file,
        short_name,
        bindings,
        specialization: None,
        mode: None,
        fixed: &[],
        tiled: kernel,
        is_tiled: false,
        shares_x: false,
        f64: false,
        needs_int64: false,
        probe_vector_bytes: 0,
        register_tile: None,
        lanes_layout: false,
    }
}

/// A Dense kernel: specialized by its activation, with a tiled form.
const fn dense(
    kernel: Kernel,
    file: &'static str,
    short_name: &'static str,
    bindings: &'static [Binding],
    tiled: Kernel,
    mode: Option<&'static str>,
) -> KernelSpec {
    KernelSpec {
        specialization: Some("ACTIVATION"),
        mode,
        tiled,
        is_tiled: tiled as usize == kernel as usize,
        ..other(kernel, file, short_name, bindings)
    }
}

const GROUPING: Option<&str> = Some("GROUPING");

// shaders/dense_tex_tile.wgsl: x and W^T as chunk textures, bias and y as buffers.
const TEX_TILE_BINDINGS: &[Binding] = &[
    Binding::Uniform(16),
    Binding::ChunkTexture,
    Binding::ChunkTexture,
    ro(4),
    rw(4),
];

// shaders/dense_int8_tex_tile.wgsl: int8_bindings' with x and W^T as chunk textures.
const INT8_TEX_TILE_BINDINGS: &[Binding] = &[
    Binding::Uniform(16),
    Binding::ChunkTexture,
    Binding::ChunkTexture,
    ro(4),
    rw(4),
    ro(4),
    ro(4),
];

// shaders/dense_int4_tex_tile.wgsl: int4_weights' with x and W^T as chunk textures.
const INT4_TEX_TILE_BINDINGS: &[Binding] = &[
    Binding::Uniform(32),
    Binding::ChunkTexture,
    Binding::ChunkTexture,
    ro(4),
    rw(4),
    ro(16),
    ro(8),
];

// shaders/dense_float8_tex_tile.wgsl: float8_weights' with x and W^T as chunk textures.
const FLOAT8_TEX_TILE_BINDINGS: &[Binding] = &[
    Binding::Uniform(32),
    Binding::ChunkTexture,
    Binding::ChunkTexture,
    ro(4),
    rw(4),
];

/// A register-tile Dense kernel of `rows` x `outputs` per invocation.
const fn tex_tile(
    kernel: Kernel,
    short_name: &'static str,
    values: TileValues,
    (rows, outputs): (u32, u32),
) -> KernelSpec {
    let (file, bindings, mode, fixed): (_, _, _, &'static [(&'static str, f64)]) = match values {
        TileValues::Float => ("dense_tex_tile", TEX_TILE_BINDINGS, None, &[]),
        TileValues::Int8 => (
            "dense_int8_tex_tile",
            INT8_TEX_TILE_BINDINGS,
            Some("WRITE_ACCUMULATOR"),
            &[],
        ),
        TileValues::Int4 => ("dense_int4_tex_tile", INT4_TEX_TILE_BINDINGS, GROUPING, &[]),
        TileValues::Int8WeightOnly => (
            "dense_int4_tex_tile",
            INT4_TEX_TILE_BINDINGS,
            GROUPING,
            &[("WEIGHT_BITS", 8.0)],
        ),
        TileValues::Float8 => (
            "dense_float8_tex_tile",
            FLOAT8_TEX_TILE_BINDINGS,
            Some("WEIGHTS_E5M2"),
            &[],
        ),
    };
    KernelSpec {
        register_tile: Some(RegisterTile {
            rows,
            outputs,
            values,
        }),
        fixed,
        ..dense(kernel, file, short_name, bindings, kernel, mode)
    }
}

/// The table, in the order of [`Kernel`]'s variants.
const KERNELS: [KernelSpec; 45] = {
    use Kernel::*;
    [
        KernelSpec {
            f64: true,
            ..dense(
                DenseMatVec,
                "dense_matvec",
                "matvec",
                DENSE_BINDINGS,
                DenseTiled,
                None,
            )
        },
        KernelSpec {
            f64: true,
            ..dense(
                DenseTiled,
                "dense_tiled",
                "tiled",
                DENSE_BINDINGS,
                DenseTiled,
                None,
            )
        },
        KernelSpec {
            needs_int64: true,
            lanes_layout: true,
            ..dense(
                DenseMatVecWide,
                "dense_matvec_wide",
                "matvec-wide",
                DENSE_WIDE_BINDINGS,
                DenseTiled,
                None,
            )
        },
        KernelSpec {
            specialization: Some("IN_FORMAT"),
            mode: Some("RESHAPE"),
            ..other(Cast, "cast", "cast", CAST_BINDINGS)
        },
        KernelSpec {
            f64: true,
            specialization: Some("OP"),
            ..other(Add, "add", "add", ADD_BINDINGS)
        },
        KernelSpec {
            mode: Some("RMS"),
            ..other(LayerNorm, "layer_norm", "layer-norm", LAYER_NORM_BINDINGS)
        },
        KernelSpec {
            mode: Some("RMS"),
            ..other(
                AddLayerNorm,
                "add_layer_norm",
                "add-layer-norm",
                ADD_LAYER_NORM_BINDINGS,
            )
        },
        KernelSpec {
            mode: Some("RMS"),
            ..other(
                AddLayerNormQuantize,
                "add_layer_norm_quantize",
                "add-layer-norm-quantize",
                ADD_LAYER_NORM_QUANTIZE_BINDINGS,
            )
        },
        KernelSpec {
            specialization: Some("ACTIVATION"),
            ..other(Activate, "activate", "activate", ACTIVATE_BINDINGS)
        },
        other(Attention, "attention", "attention", ATTENTION_BINDINGS),
        KernelSpec {
            specialization: Some("POSITIONS"),
            mode: Some("MODE"),
            ..other(Embedding, "embedding", "embedding", EMBEDDING_BINDINGS)
        },
        KernelSpec {
            mode: Some("MASKED"),
            ..other(Softmax, "softmax", "softmax", SOFTMAX_BINDINGS)
        },
        other(Rope, "rope", "rope", ROPE_BINDINGS),
        other(Argmax, "argmax", "argmax", ARGMAX_BINDINGS),
        other(
            QuantizeRows,
            "quantize_rows",
            "quantize-rows",
            QUANTIZE_ROWS_BINDINGS,
        ),
        other(
            QuantizeRowsLanes,
            "quantize_rows_lanes",
            "quantize-rows-lanes",
            QUANTIZE_ROWS_BINDINGS,
        ),
        dense(
            DenseInt8,
            "dense_int8",
            "int8",
            INT8_BINDINGS,
            DenseInt8Tiled,
            Some("WRITE_ACCUMULATOR"),
        ),
        dense(
            DenseInt8Tiled,
            "dense_int8_tiled",
            "int8-tiled",
            INT8_BINDINGS,
            DenseInt8Tiled,
            Some("WRITE_ACCUMULATOR"),
        ),
        KernelSpec {
            needs_int64: true,
            lanes_layout: true,
            ..dense(
                DenseInt8Wide,
                "dense_int8_wide",
                "int8-wide",
                INT8_WIDE_BINDINGS,
                DenseInt8Tiled,
                Some("WRITE_ACCUMULATOR"),
            )
        },
        KernelSpec {
            shares_x: true,
            ..dense(
                DenseInt4,
                "dense_int4",
                "int4",
                INT4_BINDINGS,
                DenseInt4Tiled,
                GROUPING,
            )
        },
        KernelSpec {
            shares_x: true,
            fixed: &[("WEIGHT_BITS", 8.0)],
            ..dense(
                DenseInt8WeightOnly,
                "dense_int4",
                "int8-w",
                INT4_BINDINGS,
                DenseInt8WeightOnlyTiled,
                GROUPING,
            )
        },
        KernelSpec {
            shares_x: true,
            ..dense(
                DenseFloat8,
                "dense_float8",
                "float8",
                FLOAT8_BINDINGS,
                DenseFloat8Tiled,
                Some("WEIGHTS_E5M2"),
            )
        },
        dense(
            DenseInt4Tiled,
            "dense_int4_tiled",
            "int4-tiled",
            INT4_BINDINGS,
            DenseInt4Tiled,
            GROUPING,
        ),
        KernelSpec {
            fixed: &[("WEIGHT_BITS", 8.0)],
            ..dense(
                DenseInt8WeightOnlyTiled,
                "dense_int4_tiled",
                "int8-w-tiled",
                INT4_BINDINGS,
                DenseInt8WeightOnlyTiled,
                GROUPING,
            )
        },
        dense(
            DenseFloat8Tiled,
            "dense_float8_tiled",
            "float8-tiled",
            FLOAT8_BINDINGS,
            DenseFloat8Tiled,
            Some("WEIGHTS_E5M2"),
        ),
        tex_tile(
            DenseTexTile16x4,
            "tex-tile-16x4",
            TileValues::Float,
            (16, 4),
        ),
        tex_tile(
            DenseTexTile32x4,
            "tex-tile-32x4",
            TileValues::Float,
            (32, 4),
        ),
        tex_tile(
            DenseTexTile32x2,
            "tex-tile-32x2",
            TileValues::Float,
            (32, 2),
        ),
        tex_tile(
            DenseInt8TexTile16x4,
            "int8-tex-tile-16x4",
            TileValues::Int8,
            (16, 4),
        ),
        tex_tile(
            DenseInt8TexTile32x4,
            "int8-tex-tile-32x4",
            TileValues::Int8,
            (32, 4),
        ),
        tex_tile(
            DenseInt8TexTile32x2,
            "int8-tex-tile-32x2",
            TileValues::Int8,
            (32, 2),
        ),
        tex_tile(
            DenseInt4TexTile16x4,
            "int4-tex-tile-16x4",
            TileValues::Int4,
            (16, 4),
        ),
        tex_tile(
            DenseInt4TexTile32x4,
            "int4-tex-tile-32x4",
            TileValues::Int4,
            (32, 4),
        ),
        tex_tile(
            DenseInt4TexTile32x2,
            "int4-tex-tile-32x2",
            TileValues::Int4,
            (32, 2),
        ),
        tex_tile(
            DenseInt8WeightOnlyTexTile16x4,
            "int8-w-tex-tile-16x4",
            TileValues::Int8WeightOnly,
            (16, 4),
        ),
        tex_tile(
            DenseInt8WeightOnlyTexTile32x4,
            "int8-w-tex-tile-32x4",
            TileValues::Int8WeightOnly,
            (32, 4),
        ),
        tex_tile(
            DenseInt8WeightOnlyTexTile32x2,
            "int8-w-tex-tile-32x2",
            TileValues::Int8WeightOnly,
            (32, 2),
        ),
        tex_tile(
            DenseFloat8TexTile16x4,
            "float8-tex-tile-16x4",
            TileValues::Float8,
            (16, 4),
        ),
        tex_tile(
            DenseFloat8TexTile32x4,
            "float8-tex-tile-32x4",
            TileValues::Float8,
            (32, 4),
        ),
        tex_tile(
            DenseFloat8TexTile32x2,
            "float8-tex-tile-32x2",
            TileValues::Float8,
            (32, 2),
        ),
        KernelSpec {
            probe_vector_bytes: 16,
            ..other(ProbeRead, "probe_read", "probe-read", PROBE_BINDINGS)
        },
        KernelSpec {
            probe_vector_bytes: 32,
            needs_int64: true,
            ..other(
                ProbeReadWide,
                "probe_read_wide",
                "probe-read-wide",
                PROBE_WIDE_BINDINGS,
            )
        },
        other(ProbeFma, "probe_fma", "probe-fma", PROBE_BINDINGS),
        KernelSpec {
            probe_vector_bytes: 16,
            ..other(ProbeCopy, "probe_copy", "probe-copy", PROBE_COPY_BINDINGS)
        },
        other(ProbeDot4, "probe_dot4", "probe-dot4", PROBE_BINDINGS),
    ]
};

impl Kernel {
    /// Every kernel, in the table's order.
    pub const ALL: [Kernel; KERNELS.len()] = {
        let mut all = [Kernel::DenseMatVec; KERNELS.len()];
        let mut i = 0;
        while i < KERNELS.len() {
            all[i] = KERNELS[i].kernel;
            i += 1;
        }
        all
    };

    /// The Dense kernels of the float family.
    pub const DENSE: [Kernel; 2] = [Kernel::DenseMatVec, Kernel::DenseTiled];

    /// Its row of the table.
    pub const fn spec(self) -> &'static KernelSpec {
        &KERNELS[self as usize]
    }

    /// The tiled (many rows) kernel of a Dense family; any other kernel is its own.
    pub const fn tiled(self) -> Kernel {
        self.spec().tiled
    }

    /// Whether this is a tiled Dense kernel (many rows per workgroup).
    pub const fn is_tiled(self) -> bool {
        self.spec().is_tiled
    }

    /// Rows and outputs of y one workgroup of a tiled Dense kernel computes:
    /// 64 x 32 for the workgroup-memory tiles, rows x 8 lanes' outputs for
    /// the register tiles.
    pub const fn workgroup_tile(self) -> (u32, u32) {
        match self.spec().register_tile {
            Some(t) => (t.rows, t.outputs * crate::gpu::mirror::TILE_LANES),
            None => (64, 32),
        }
    }

    /// Whether the kernel reads x and W^T from chunk textures.
    pub const fn reads_textures(self) -> bool {
        self.spec().register_tile.is_some()
    }

    /// The file stem in `shaders/`.
    pub const fn file(self) -> &'static str {
        self.spec().file
    }

    /// A short name for tables.
    pub const fn short_name(self) -> &'static str {
        self.spec().short_name
    }
}

// Each row sits at its variant's index.
const _: () = {
    let mut i = 0;
    while i < KERNELS.len() {
        assert!(KERNELS[i].kernel as usize == i);
        i += 1;
    }
};

impl Kernel {
    /// Whether the kernel has a variant for this storage: f64 only where
    /// the table says so (the quantized kernels compute in f32, f16 or
    /// bf16; the cast converts between the 32- and 16-bit formats).
    /// The register tiles read chunks as u32 words with f32 arithmetic, so
    /// not native f16.
    pub const fn supports(self, storage: crate::gpu::shaders::StorageVariant) -> bool {
        use crate::gpu::shaders::StorageVariant::{F16Native, F64};
        match storage {
            F64 => self.spec().f64,
            // Native f16 chunks are f16 vectors, not the words the 32-byte
            // loads split; the float register tiles read the same bytes as
            // packed words (shaders::compose), the others take no f16.
            F16Native => match self.spec().register_tile {
                Some(tile) => matches!(tile.values, TileValues::Float),
                None => !matches!(self, Kernel::DenseMatVecWide),
            },
            _ => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::shaders::SOURCES;

    #[test]
    fn every_kernel_file_exists_and_every_top_level_shader_is_a_kernel() {
        for kernel in Kernel::ALL {
            assert!(
                SOURCES.iter().any(|(name, _)| *name == kernel.file()),
                "{kernel:?}: no shaders/{}.wgsl",
                kernel.file()
            );
        }
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/shaders");
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "wgsl") {
                let stem = path.file_stem().unwrap().to_str().unwrap();
                assert!(
                    Kernel::ALL.iter().any(|k| k.file() == stem),
                    "shaders/{stem}.wgsl is no kernel's file: add a Kernel for it or move it to shaders/shared/"
                );
            }
        }
    }
}

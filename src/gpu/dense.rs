// SPDX-License-Identifier: MIT OR Apache-2.0
//! Dense on the GPU, for every weight format: `y = activation(x · W + b)`
//! with W uploaded once from a [`DenseKernel`] ([`GpuContext::upload_dense`],
//! one weights type, [`DenseWeights`]) and run by one launch path
//! ([`Graph::dense`]). What differs between the weight formats sits in one
//! place each:
//! - the packing of W^T and its tables: [`GpuContext::upload_dense`]
//!   (layouts in [`crate::format::packing`]);
//! - the kernel, its mode constant, its dims struct and its extra
//!   bindings: [`Family`];
//! - int8 activations: the activation quantizer's pass before the product
//!   ([`Graph::dense`]).
//!
//! Weights larger than the adapter's limit for one storage binding are
//! split by outputs across bindings, a dispatch each writing its columns of
//! y through a binding offset (parts of multiples of [`SPLIT_OUTPUTS`]).

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};
use crate::format::packing::{
    K_ALIGN, pack_i4_words, pack_i8_words, pack_transposed, table_columns, table_part,
};
use crate::format::{DenseKernel, HostFloat, KernelValues, StorageFormat, WeightFormat};
use crate::gpu::GpuError;
use crate::gpu::context::{Capabilities, GpuContext};
use crate::gpu::kernels::{Kernel, MATVEC_OUTPUTS};
use crate::gpu::mirror::ChunkTexture;
use crate::gpu::norm::add_norm_output;
use crate::gpu::pipelines::PipelineKey;
use crate::gpu::recorder::{Bind, Forward, Graph, Step, TensorId};
use crate::gpu::shaders::StorageVariant;
use crate::gpu::tensor::TensorShape;
use crate::gpu::tuning::{ShapeClass, TunedChoice};
use crate::ops::{Activation, DenseShape};
use crate::quant::float8::{Float8, dense_bias as float8_bias};
use crate::size;

/// The largest float8 kernel scale: 2^100, so that 256 times it is a finite f32.
pub const MAX_KERNEL_SCALE: f32 = 1.267_650_6e30;

/// Outputs per part of a layer whose weights are split across storage
/// bindings: parts start at multiples of it, which keeps each part's offset
/// into y a multiple of 256 bytes (the most wgpu asks of a binding's offset)
/// in every format.
pub const SPLIT_OUTPUTS: usize = 128;

/// The kernel family a weight format runs on, and the facts that go with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// Float weights in the compute format (shaders/dense_matvec.wgsl, dense_tiled.wgsl).
    Float,
    /// int8 weights and int8 activations, `dot4I8Packed` (dense_int8*.wgsl),
    /// after the activation quantizer's pass (quantize_rows.wgsl). Per-channel
    /// int4 weights with int8 activations run here too, stored as int8.
    Int8,
    /// Weights in int4 (per channel or grouped) or int8, activations in the
    /// compute format (dense_int4*.wgsl, `WEIGHT_BITS` 4 or 8).
    WeightOnly {
        /// 4 or 8.
        bits: u32,
    },
    /// float8 codes, activations quantize-dequantized (dense_float8*.wgsl).
    Float8,
}

impl Family {
    /// The family of a weight format.
    pub const fn of(format: WeightFormat) -> Family {
        match format {
            WeightFormat::Float => Family::Float,
            WeightFormat::Int8 {
                quantized_inputs: true,
            }
            | WeightFormat::Int4 {
                quantized_inputs: true,
                ..
            } => Family::Int8,
            WeightFormat::Int8 { .. } => Family::WeightOnly { bits: 8 },
            WeightFormat::Int4 { .. } => Family::WeightOnly { bits: 4 },
            WeightFormat::Float8(_) => Family::Float8,
        }
    }

    /// Its matrix-vector kernel.
    pub const fn matvec(self) -> Kernel {
        match self {
            Family::Float => Kernel::DenseMatVec,
            Family::Int8 => Kernel::DenseInt8,
            Family::WeightOnly { bits: 8 } => Kernel::DenseInt8WeightOnly,
            Family::WeightOnly { .. } => Kernel::DenseInt4,
            Family::Float8 => Kernel::DenseFloat8,
        }
    }

    /// Its matrix-vector kernel for `storage` on the adapter of `caps`: on
    /// a CPU driver, [`Family::matvec_alternative`] where there is one (for
    /// the 32-byte loads, where the driver has SHADER_INT64); else
    /// [`Family::matvec`].
    pub fn matvec_on(self, storage: StorageVariant, caps: &Capabilities) -> Kernel {
        match self.matvec_alternative(storage) {
            Some(kernel)
                if caps.device_type == "Cpu"
                    && (caps.shader_int64 || !kernel.spec().needs_int64) =>
            {
                kernel
            }
            _ => self.matvec(),
        }
    }

    /// The matrix-vector kernel that gives the same numbers as
    /// [`Family::matvec`] faster on CPU drivers, which pay per load
    /// instruction and lane whatever its width: 32-byte weight loads
    /// (lavapipe, 1 x 384 x 50257, GPT-2's head, alternating: f32 15.1 ->
    /// 12.1 ms, int8 4.5 -> 3.9), laid out so that a SIMD group's lanes
    /// load adjacent bytes (GPT-2's 4-layer decode step, alternating: f32
    /// 22.2-22.8 -> 18.8-19.7 ms, int8 12.1-12.7 -> 10.5-11.0;
    /// docs/performance.md).
    pub fn matvec_alternative(self, storage: StorageVariant) -> Option<Kernel> {
        match self {
            Family::Float if WIDE_LOAD_STORAGE.contains(&storage) => Some(Kernel::DenseMatVecWide),
            Family::Int8 => Some(Kernel::DenseInt8Wide),
            _ => None,
        }
    }

    /// Its kernel of `shape`.
    pub const fn kernel(self, shape: DenseShape) -> Kernel {
        match shape {
            DenseShape::MatVec => self.matvec(),
            DenseShape::Tiled => self.matvec().tiled(),
        }
    }

    /// Bytes of one W^T row of `k_padded` weights (`value_bytes` per value
    /// for float weights); `None` when that overflows.
    pub const fn row_bytes(self, k_padded: usize, value_bytes: usize) -> Option<usize> {
        match self {
            Family::Float => k_padded.checked_mul(value_bytes),
            Family::Int8 | Family::WeightOnly { bits: 8 } | Family::Float8 => Some(k_padded),
            Family::WeightOnly { .. } => Some(k_padded / 2),
        }
    }
}

/// The storage formats whose float matrix-vector kernel reads 32-byte
/// weight loads on CPU drivers ([`Family::matvec_on`]).
const WIDE_LOAD_STORAGE: [StorageVariant; 3] = [
    StorageVariant::F32,
    StorageVariant::F16Packed,
    StorageVariant::BF16Packed,
];

/// The `GROUPING` override of the weight-only kernels for `kernel` and a
/// group size along k (`None`: per channel): 0 per channel; 2 grouped with
/// blocks that are whole steps of the matrix-vector kernel (32 k), scaled
/// once per group; 1 any other grouping, each weight dequantized with its
/// group (the tiled kernel always). Separate pipelines, because a CPU driver
/// runs the code of a branch it does not take (lavapipe masks both sides).
pub fn grouping(kernel: Kernel, block: Option<NonZeroU32>) -> u32 {
    match block {
        None => 0,
        // The register tiles take a chunk of 32 k at a time, like the
        // matrix-vector kernel's steps.
        Some(b)
            if b.get().is_multiple_of(32) && (!kernel.is_tiled() || kernel.reads_textures()) =>
        {
            2
        }
        Some(_) => 1,
    }
}

/// The pipeline `kernel` (one of `format`'s) runs with `activation`.
pub fn pipeline_of(
    kernel: Kernel,
    format: WeightFormat,
    storage: StorageVariant,
    activation: Activation,
) -> PipelineKey {
    let mode = match format {
        WeightFormat::Int4 {
            block,
            quantized_inputs: false,
        } => grouping(kernel, block),
        WeightFormat::Float8(f) => u32::from(f == Float8::E5M2),
        _ => 0,
    };
    PipelineKey {
        kernel,
        storage,
        specialization: activation as u32,
        mode,
    }
}

/// The activation quantizer an int8 Dense runs before `product`: one
/// invocation per row before the register tiles (CPU drivers, where a
/// workgroup's barriers cost more than its loads), else a workgroup per row.
pub fn quantizer_for(product: Kernel) -> Kernel {
    if product.reads_textures() {
        Kernel::QuantizeRowsLanes
    } else {
        Kernel::QuantizeRows
    }
}

/// `Err` for an activation the variant cannot apply: the f64 variant has
/// linear and relu only (WGSL has no f64 exp or tanh).
pub fn check_activation(storage: StorageVariant, activation: Activation) -> Result<()> {
    if storage == StorageVariant::F64
        && !matches!(activation, Activation::Linear | Activation::Relu)
    {
        return Err(Error::Unsupported(format!(
            "the f64 Dense kernel applies linear and relu only (WGSL has no f64 exp or tanh), not \
             {activation:?}; apply it on the host, or compute in float32"
        )));
    }
    Ok(())
}

/// Where a Dense layer's values sit in GPU buffers, and how many bytes they
/// take: a plan's description of a layer, known before any upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DenseLayout {
    /// The storage format of x and y (and of W, for float weights).
    pub format: StorageFormat,
    /// How W is stored.
    pub weights: WeightFormat,
    /// K padded with zeros to a multiple of [`K_ALIGN`].
    pub k_padded: usize,
    /// N rounded up to even (one more zero row of W^T when odd).
    pub n_padded: usize,
    /// Groups along k of grouped int4 weights (else 1).
    pub groups: usize,
    /// Bytes of one W^T row.
    row_bytes: usize,
}

impl DenseLayout {
    /// The layout of a `[k, n]` kernel of `weights` with activations in
    /// `format`; `Err` for a zero or unaddressably large shape.
    pub fn new(format: StorageFormat, weights: WeightFormat, k: usize, n: usize) -> Result<Self> {
        size::nonzero(&[("k", k), ("n", n)], "a Dense layer")?;
        let what = || format!("a Dense layer of {k} x {n}");
        let k_padded = size::round_up(k, K_ALIGN, &what)?;
        let row_bytes = Family::of(weights)
            .row_bytes(k_padded, format.bytes_per_value())
            .ok_or_else(|| Error::Shape(format!("{} is too large to address", what())))?;
        let layout = DenseLayout {
            format,
            weights,
            k_padded,
            n_padded: size::round_up(n, 2, &what)?,
            groups: match weights {
                WeightFormat::Int4 { block: Some(b), .. } => k.div_ceil(b.get() as usize),
                _ => 1,
            },
            row_bytes,
        };
        // Every byte count below must fit.
        layout.checked_bytes()?;
        Ok(layout)
    }

    /// Bytes of one W^T row.
    pub fn row_bytes(&self) -> usize {
        self.row_bytes
    }

    fn checked_bytes(&self) -> Result<u64> {
        let what = || {
            format!(
                "the weights of a layer of {} x {}",
                self.k_padded, self.n_padded
            )
        };
        let columns = table_columns(self.n_padded);
        let weights = size::mul(self.n_padded, self.row_bytes(), &what)?;
        let tables = match Family::of(self.weights) {
            Family::Float | Family::Float8 => 0,
            // An f32 scale per output, and for grouped int4 an f32 scale and
            // an int8 zero point per group and output.
            _ if self.groups > 1
                || matches!(self.weights, WeightFormat::Int4 { block: Some(_), .. }) =>
            {
                size::mul(size::mul(self.groups, columns, &what)?, 5, &what)?
            }
            _ => size::mul(columns, 4, &what)?,
        };
        let bias = size::mul(self.n_padded, self.format.bytes_per_value().max(4), &what)?;
        let total = size::add(size::add(weights, tables, &what)?, bias, &what)?;
        u64::try_from(total).map_err(|_| Error::Shape(what()))
    }

    /// Bytes of the weights, their tables and the bias on the GPU (the
    /// buffers' sizes when the layer is in one binding).
    pub fn weight_bytes(&self) -> u64 {
        self.checked_bytes().unwrap_or(u64::MAX)
    }

    /// Bytes of W^T in the lanes layout beside the row-major one (a CPU
    /// driver's matrix-vector kernels read it: [`KernelSpec::lanes_layout`]),
    /// each binding's rows padded to a multiple of 64; `None` where a
    /// padded binding exceeds `limit` (the weights then go without).
    ///
    /// [`KernelSpec::lanes_layout`]: crate::gpu::kernels::KernelSpec::lanes_layout
    pub fn lanes_bytes(&self, limit: u64) -> Option<u64> {
        let parts = output_parts(self.n_padded, self.row_bytes as u64, limit).ok()?;
        let padded = |len: usize| (len.div_ceil(LANE_ROWS) * LANE_ROWS * self.row_bytes) as u64;
        parts
            .iter()
            .all(|&(_, len)| padded(len) <= limit)
            .then(|| parts.iter().map(|&(_, len)| padded(len)).sum())
    }

    /// How many storage bindings of at most `limit` bytes the weights take:
    /// split by outputs, in runs of a multiple of [`SPLIT_OUTPUTS`], when
    /// they exceed it; `Err(BufferTooLarge)` when not even that many fit.
    pub fn bindings(&self, limit: u64) -> Result<usize> {
        Ok(output_parts(self.n_padded, self.row_bytes() as u64, limit)?.len())
    }
}

impl std::fmt::Display for DenseLayout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let values = match self.format {
            StorageFormat::F32 => "f32",
            StorageFormat::F16 => "f16 x2 per u32",
            StorageFormat::BF16 => "bf16 x2 per u32",
            StorageFormat::F64 => "f64",
        };
        let (np, kp) = (self.n_padded, self.k_padded);
        match self.weights {
            WeightFormat::Float => write!(f, "W^T[{np}x{kp}] {values}"),
            WeightFormat::Int8 { .. }
            | WeightFormat::Int4 {
                quantized_inputs: true,
                ..
            } => write!(f, "W^T[{np}x{kp}] int8 x4/u32 + scales, x/y {values}"),
            WeightFormat::Float8(_) => {
                write!(f, "W^T[{np}x{kp}] e4m3 x4/u32 + 1 scale, x/y {values}")
            }
            WeightFormat::Int4 { block: None, .. } => {
                write!(f, "W^T[{np}x{kp}] int4 x8/u32 + scales, x/y {values}")
            }
            WeightFormat::Int4 { block: Some(_), .. } => write!(
                f,
                "W^T[{np}x{kp}] int4 x8/u32 + {} groups of scales/zeros, x/y {values}",
                self.groups
            ),
        }
    }
}

/// The runs of W^T rows (outputs) that each fit one storage binding of
/// `limit` bytes, rows of `row_bytes`: `(first output, outputs)`, one run
/// when the whole of `n_padded` fits, else runs of a multiple of
/// [`SPLIT_OUTPUTS`]. `Err` when not even that many rows fit.
pub(crate) fn output_parts(
    n_padded: usize,
    row_bytes: u64,
    limit: u64,
) -> Result<Vec<(usize, usize)>> {
    if (n_padded as u64).saturating_mul(row_bytes) <= limit {
        return Ok(vec![(0, n_padded)]);
    }
    let rows = (limit / row_bytes.max(1)) as usize / SPLIT_OUTPUTS * SPLIT_OUTPUTS;
    if rows == 0 {
        return Err(GpuError::BufferTooLarge {
            label: format!("dense weights ({SPLIT_OUTPUTS} outputs, the smallest part)"),
            bytes: (SPLIT_OUTPUTS as u64).saturating_mul(row_bytes),
            limit,
        }
        .into());
    }
    // A bound before the list is made: the parts of a layer from a file's
    // word could outnumber memory (no adapter binds a million buffers).
    let parts = n_padded.div_ceil(rows);
    if parts > MAX_PARTS {
        return Err(GpuError::BufferTooLarge {
            label: format!("dense weights in {parts} bindings (at most {MAX_PARTS})"),
            bytes: (n_padded as u64).saturating_mul(row_bytes),
            limit,
        }
        .into());
    }
    Ok((0..n_padded)
        .step_by(rows)
        .map(|start| (start, rows.min(n_padded - start)))
        .collect())
}

/// The most bindings one layer's weights are split into.
const MAX_PARTS: usize = 1 << 16;

/// A run of a layer's outputs whose W^T rows, bias and scale tables sit in
/// bindings of their own: the whole layer, or one part of it.
#[derive(Debug, Clone)]
struct WeightPart {
    /// Its first output.
    start: usize,
    /// Its outputs (even; the last part's may include the padding output).
    len: usize,
    w: wgpu::Buffer,
    bias: wgpu::Buffer,
    /// Per-output (or per-group) scales of quantized weights.
    scale: Option<wgpu::Buffer>,
    /// Per-group zero points of grouped int4 weights.
    zero: Option<wgpu::Buffer>,
    /// `w` as a chunk texture, made by the first forward that needs it.
    mirror: Arc<Mutex<Option<ChunkTexture>>>,
    /// `w` in the lanes layout ([`lanes_layout`]), where the adapter's
    /// matrix-vector kernel reads that.
    lanes: Option<wgpu::Buffer>,
}

impl WeightPart {
    fn bytes(&self) -> u64 {
        let table = |b: &Option<wgpu::Buffer>| b.as_ref().map_or(0, wgpu::Buffer::size);
        self.w.size()
            + self.bias.size()
            + table(&self.scale)
            + table(&self.zero)
            + table(&self.lanes)
    }

    /// Its outputs that exist in a layer of `n` (the last part's padding
    /// output excluded).
    fn outputs(&self, n: usize) -> usize {
        self.len.min(n - self.start)
    }
}

/// The float8 facts the kernels read with the codes.
#[derive(Debug, Clone, Copy)]
struct Float8Facts {
    /// The scales rounded to the compute dtype (Keras casts them).
    x_scale: f32,
    w_scale: f32,
    /// Some code is NaN (the kernel then decodes e4m3 exactly, slower).
    nan_codes: bool,
    /// The matrix-vector kernel may scale the sums instead of the weights.
    fold_scale: bool,
}

/// A Dense layer's weights on the GPU, in any weight format, in the layout
/// its kernels read: in one storage binding, or split by outputs across
/// several when they exceed the adapter's limit for one (each part its own
/// dispatch).
#[derive(Debug, Clone)]
pub struct DenseWeights {
    format: WeightFormat,
    storage: StorageVariant,
    k: usize,
    n: usize,
    groups: usize,
    float8: Option<Float8Facts>,
    parts: Vec<WeightPart>,
    /// The tiled kernel by shape class, where measured (gpu::tuning) or set.
    tuned: BTreeMap<ShapeClass, TunedChoice>,
    /// The matrix-vector kernel on this adapter ([`Family::matvec_on`]).
    matvec: Kernel,
}

impl DenseWeights {
    /// Bytes the weights, their tables and the bias take on the GPU.
    pub fn gpu_bytes(&self) -> u64 {
        self.parts.iter().map(WeightPart::bytes).sum()
    }

    /// How many storage bindings (and dispatches) the weights take: 1
    /// unless they exceed the adapter's limit for one binding.
    pub fn parts(&self) -> usize {
        self.parts.len()
    }

    /// The storage variant of the activations and outputs (and of float weights).
    pub fn storage(&self) -> StorageVariant {
        self.storage
    }

    /// How the weights are stored.
    pub fn format(&self) -> WeightFormat {
        self.format
    }

    /// Inputs and outputs: `(k, n)`.
    pub fn dims(&self) -> (usize, usize) {
        (self.k, self.n)
    }

    /// The kernel of `shape` for `rows` rows: [`DenseWeights::tiled_kernel`]
    /// or the adapter's matrix-vector kernel.
    pub fn kernel(&self, shape: DenseShape, rows: usize) -> Kernel {
        match shape {
            DenseShape::Tiled => self.tiled_kernel(rows).0,
            DenseShape::MatVec => self.matvec,
        }
    }

    /// The tiled kernel for `rows` rows and why: the tuned choice of their
    /// shape class where there is one, else the family's fixed rule.
    pub fn tiled_kernel(&self, rows: usize) -> (Kernel, Option<&str>) {
        let fixed = Family::of(self.format).kernel(DenseShape::Tiled);
        match self.tuned.get(&ShapeClass::of(rows, self.k, self.n)) {
            Some(t) => (t.kernel, Some(&t.reason)),
            None => (fixed, None),
        }
    }

    /// These weights with `kernel` as their tiled kernel for every shape
    /// class (a candidate of gpu::tuning for their family and storage): for timing candidates and testing each against its twin.
    pub fn with_tiled_kernel(mut self, kernel: Kernel) -> Result<Self> {
        let fixed = Family::of(self.format).kernel(DenseShape::Tiled);
        if !crate::gpu::tuning::candidates(fixed, self.storage).contains(&kernel) {
            return Err(Error::Unsupported(format!(
                "{kernel:?} is not a tiled kernel of {} weights in {}",
                self.format.name(),
                self.storage.name()
            )));
        }
        let choice = TunedChoice {
            kernel,
            reason: format!("{}: set by the caller", kernel.short_name()),
            times_ms: Vec::new(),
        };
        self.tuned = ShapeClass::ALL
            .into_iter()
            .map(|c| (c, choice.clone()))
            .collect();
        Ok(self)
    }

    /// These weights with `kernel` as their matrix-vector kernel: the
    /// family's plain one or its [`Family::matvec_alternative`]: for
    /// testing each against the twin on one adapter.
    pub fn with_matvec_kernel(mut self, kernel: Kernel) -> Result<Self> {
        let family = Family::of(self.format);
        if kernel != family.matvec() && family.matvec_alternative(self.storage) != Some(kernel) {
            return Err(Error::Unsupported(format!(
                "{kernel:?} is not a matrix-vector kernel of {} weights in {}",
                self.format.name(),
                self.storage.name()
            )));
        }
        if kernel.spec().lanes_layout && self.parts.iter().any(|p| p.lanes.is_none()) {
            return Err(lanes_missing(kernel));
        }
        self.matvec = kernel;
        Ok(self)
    }

    /// Bytes one call of `rows` rows reads plus writes, for GB/s: x (once
    /// per part; int8: x read and its int8 form written, then read per
    /// part), the weights, their tables, the bias and y.
    /// (Saturating: a count of bytes, not a size to allocate.)
    pub fn traffic_bytes(&self, rows: usize) -> u64 {
        let format = self.storage.format();
        let (rows, kp) = (rows as u64, (self.k.div_ceil(K_ALIGN) * K_ALIGN) as u64);
        let x = rows
            .saturating_mul(kp)
            .saturating_mul(format.bytes_per_value() as u64);
        let y = rows.saturating_mul(format.words_for(self.n) as u64 * 4);
        let parts = self.parts.len() as u64;
        let x_reads = match Family::of(self.format) {
            Family::Int8 => x.saturating_add((1 + parts).saturating_mul(rows.saturating_mul(kp))),
            _ => x.saturating_mul(parts),
        };
        x_reads.saturating_add(self.gpu_bytes()).saturating_add(y)
    }
}

impl GpuContext {
    /// Uploads `kernel` for activations and outputs in `storage` (the
    /// policy's compute dtype; float weights are stored in it too),
    /// packed once in its kernels' layout.
    pub fn upload_dense(
        &self,
        storage: StorageVariant,
        kernel: &DenseKernel,
    ) -> Result<DenseWeights> {
        let format = kernel.format();
        let family = Family::of(format);
        self.require(storage)?;
        if family != Family::Float && storage == StorageVariant::F64 {
            return Err(Error::Unsupported(format!(
                "{} Dense computes in f32, f16 or bf16, not f64",
                format.name()
            )));
        }
        let (k, n) = (kernel.k(), kernel.n());
        let compute = storage.format();
        let layout = DenseLayout::new(compute, format, k, n)?;
        let (kp, np) = (layout.k_padded, layout.n_padded);
        // A layer too large to split errs before any host copy is made.
        self.weight_parts(np, layout.row_bytes())?;
        // Every bias is stored in the arithmetic type (f32, or f64), rounded
        // to the compute dtype (float8 as Keras rounds it).
        let mut bias = vec![0f64; np];
        if let Some(b) = kernel.bias() {
            for (j, dst) in bias.iter_mut().enumerate().take(n) {
                *dst = match family {
                    Family::Float8 => f64::from(float8_bias(compute, b.get(j))),
                    _ => compute.round(b.get(j)),
                };
            }
        }
        let bias_format = if compute == StorageFormat::F64 {
            StorageFormat::F64
        } else {
            StorageFormat::F32
        };
        let bias_words = bias_format.encode(&bias);
        let bias_words = (bias_words.as_slice(), bias_words.len() / np);
        let mut float8 = None;
        let f32_words = |v: &[f32]| StorageFormat::F32.encode(v);
        let matvec = family.matvec_on(storage, self.capabilities());
        let lanes = matvec.spec().lanes_layout.then_some(LANE_ELEMENT_WORDS);
        let parts = match kernel.values() {
            KernelValues::Float(w) => {
                let mut wt = vec![0f64; np * kp];
                for i in 0..k {
                    for j in 0..n {
                        wt[j * kp + i] = w.get(i * n + j);
                    }
                }
                let words = compute.encode(&wt);
                let row = words.len() / np;
                self.upload_parts("dense", (&words, row), bias_words, lanes, |_| (None, None))?
            }
            KernelValues::Int8 { q, scale, .. } | KernelValues::Int4 { q, scale, .. } => {
                let zero = match kernel.values() {
                    KernelValues::Int4 { zero, .. } => zero.as_ref(),
                    _ => None,
                };
                if family == (Family::WeightOnly { bits: 4 }) {
                    let words =
                        pack_transposed((k, n), (kp, np), |i, j| q[i * n + j], pack_i4_words);
                    // Each part's columns of every group's scales and zero
                    // points, padded to table_columns of its outputs.
                    self.upload_parts("int4", (&words, kp / 8), bias_words, lanes, |part| {
                        let scales = table_part(scale, n, part, 1.0);
                        let zeros = zero.map(|z| pack_i8_words(&table_part(z, n, part, 0)));
                        (Some(f32_words(&scales)), zeros)
                    })?
                } else {
                    // int8 weights (or int4 values run as int8), per-output scales.
                    let words =
                        pack_transposed((k, n), (kp, np), |i, j| q[i * n + j], pack_i8_words);
                    self.upload_parts("int8", (&words, kp / 4), bias_words, lanes, |part| {
                        (Some(f32_words(&table_part(scale, n, part, 1.0))), None)
                    })?
                }
            }
            KernelValues::Float8 {
                w,
                scales,
                format: format8,
            } => {
                // The kernel multiplies by 256 · kernel scale (see dense_float8.wgsl).
                if scales.kernel > MAX_KERNEL_SCALE {
                    return Err(Error::Unsupported(format!(
                        "float8 kernel scale {} is above {MAX_KERNEL_SCALE:e}; no float8 weights \
                         need one that large",
                        scales.kernel
                    )));
                }
                // Keras reads the kernel autocast to the compute dtype and
                // divides it there by the scale cast to it.
                let c = |v: f32| compute.round(f64::from(v)) as f32;
                let kernel_scale = c(scales.kernel);
                let max = format8.max();
                let code = |i: usize, j: usize| {
                    let v = c(c(w[i * n + j]) / kernel_scale).clamp(-max, max);
                    format8.encode(v) as i8
                };
                let words = pack_transposed((k, n), (kp, np), code, pack_i8_words);
                let (x_scale, w_scale) = (c(scales.inputs), kernel_scale);
                float8 = Some(Float8Facts {
                    x_scale,
                    w_scale,
                    nan_codes: *format8 == Float8::E4M3Fn
                        && words
                            .iter()
                            .any(|w| w.to_le_bytes().iter().any(|b| b & 0x7f == 0x7f)),
                    fold_scale: fold_scale(*format8, w_scale, x_scale),
                });
                self.upload_parts("float8", (&words, kp / 4), bias_words, lanes, |_| {
                    (None, None)
                })?
            }
        };
        Ok(DenseWeights {
            format,
            storage,
            k,
            n,
            groups: kernel.groups(),
            float8,
            tuned: ShapeClass::ALL
                .into_iter()
                .filter_map(|c| {
                    let fixed = family.kernel(DenseShape::Tiled);
                    Some((c, self.tuning().choice(fixed, storage, c)?.clone()))
                })
                .collect(),
            // Weights too large for the lanes layout in a binding keep
            // row-major W^T and its kernel.
            matvec: match parts.iter().all(|p| p.lanes.is_some()) {
                true => matvec,
                false => family.matvec(),
            },
            parts,
        })
    }

    fn require(&self, storage: StorageVariant) -> Result<()> {
        let caps = self.capabilities();
        let missing = if storage.needs_shader_f16() && !caps.shader_f16 {
            Some("SHADER_F16")
        } else if storage.needs_shader_f64() && !caps.shader_f64 {
            Some("SHADER_F64")
        } else {
            None
        };
        match missing {
            Some(feature) => Err(GpuError::MissingFeature {
                variant: storage.name().to_owned(),
                feature,
                adapter: caps.adapter_name.clone(),
            }
            .into()),
            None => Ok(()),
        }
    }

    /// The runs of outputs (`(first, count)`) of a layer's `n_padded` W^T
    /// rows of `row_bytes` that each fit one of this adapter's storage
    /// bindings ([`output_parts`]).
    fn weight_parts(&self, n_padded: usize, row_bytes: usize) -> Result<Vec<(usize, usize)>> {
        let limit = self.capabilities().max_storage_buffer_binding_size;
        output_parts(n_padded, row_bytes as u64, limit)
    }

    /// A layer's weights in the parts that fit this adapter's storage
    /// bindings: W^T `words` (`row_words` per output), `bias` words
    /// (`bias_words` per output), and for each part `(first output,
    /// outputs)` its scale and zero-point words from `tables`.
    /// With `lanes` (words of an element), each part's W^T also in the
    /// lanes layout, where that fits a binding.
    fn upload_parts(
        &self,
        label: &str,
        (words, row_words): (&[u32], usize),
        (bias, bias_words): (&[u32], usize),
        lanes: Option<usize>,
        tables: impl Fn((usize, usize)) -> (Option<Vec<u32>>, Option<Vec<u32>>),
    ) -> Result<Vec<WeightPart>> {
        let buffer =
            |what: &str, words: &[u32]| self.storage_buffer(&format!("{label} {what}"), words);
        let limit = self.capabilities().max_storage_buffer_binding_size;
        let parts = self.weight_parts(words.len() / row_words, row_words * 4)?;
        // Rows padded to a whole SIMD group's may not fit a binding: then
        // no part gets the lanes layout (DenseLayout::lanes_bytes).
        let padded = |len: usize| (len.div_ceil(LANE_ROWS) * LANE_ROWS * row_words * 4) as u64;
        let lanes = lanes.filter(|_| parts.iter().all(|&(_, len)| padded(len) <= limit));
        parts
            .into_iter()
            .map(|(start, len)| {
                let (scale, zero) = tables((start, len));
                let w = &words[start * row_words..(start + len) * row_words];
                let lanes = match lanes {
                    Some(element) => Some(buffer(
                        "weights for lanes",
                        &lanes_layout(w, row_words, element)?,
                    )?),
                    None => None,
                };
                Ok(WeightPart {
                    start,
                    len,
                    lanes,
                    w: buffer("weights", w)?,
                    bias: buffer(
                        "bias",
                        &bias[start * bias_words..(start + len) * bias_words],
                    )?,
                    scale: scale.map(|t| buffer("scales", &t)).transpose()?,
                    zero: zero.map(|t| buffer("zero points", &t)).transpose()?,
                    mirror: Arc::default(),
                })
            })
            .collect()
    }
}

/// Lanes of a SIMD group times the outputs of one invocation of the
/// lanes-layout matrix-vector kernels: the rows of W^T one SIMD group reads.
const LANE_ROWS: usize = 64;

/// Words of an element of the lanes layout: one 32-byte load of
/// shaders/shared/dense_weights_wide.wgsl.
const LANE_ELEMENT_WORDS: usize = 8;

/// Row-major W^T rows of `row_words` words laid out for the lanes of a
/// SIMD group in elements of `element` words (one load): an
/// invocation takes 8 outputs and a SIMD group 8 invocations, so element e
/// of row j = (g * 8 + lane) * 8 + o goes to ((g * elements + e) * 8 + o) *
/// 8 + lane, and the 8 lanes' loads of one step for one of their outputs
/// are adjacent. Rows past the last are zero, to a multiple of 64.
fn lanes_layout(rows: &[u32], row_words: usize, element: usize) -> Result<Vec<u32>> {
    if element == 0 || row_words == 0 || !row_words.is_multiple_of(element) {
        return Err(Error::Shape(format!(
            "W^T rows of {row_words} words are not whole elements of {element} words"
        )));
    }
    let n = rows.len() / row_words;
    let elements = row_words / element;
    let mut out = vec![0u32; n.div_ceil(LANE_ROWS) * LANE_ROWS * row_words];
    for j in 0..n {
        let (g, lane, o) = (j / LANE_ROWS, (j / 8) % 8, j % 8);
        for e in 0..elements {
            let to = (((g * elements + e) * 8 + o) * 8 + lane) * element;
            let from = j * row_words + e * element;
            out[to..to + element].copy_from_slice(&rows[from..from + element]);
        }
    }
    Ok(out)
}

/// The error for `kernel` over weights uploaded without the lanes layout.
fn lanes_missing(kernel: Kernel) -> Error {
    Error::Unsupported(format!(
        "{kernel:?} reads W^T laid out for a CPU driver's SIMD lanes, which weights get only \
         where it is the adapter's matrix-vector kernel (a CPU driver with SHADER_INT64)"
    ))
}

/// Whether the matrix-vector kernel may multiply its sums by the kernel
/// scale `s_w` instead of every weight, with the same result: every
/// weight times `s_w` is exact ([`exact_in_any_format`]) and `s_x` keeps
/// every product and partial sum normal and finite both ways (|x| is at
/// most 448 · s_x, and no smaller than 2^-9 · s_x when not zero; decoded
/// weights lie between 2^-17 and 57344).
fn fold_scale(format8: Float8, s_w: f32, s_x: f32) -> bool {
    exact_in_any_format(format8, s_w) && (2f32.powi(-60)..=2f32.powi(60)).contains(&s_x)
}

/// Whether every `format8` value times `s` is exact in f32, f16 and bf16,
/// so that the kernel may scale sums instead of weights: `s` is a power of
/// two within f16's range for the format (e4m3: 448 · 2^7 < 65504 and
/// 2^-9 · 2^-15 = 2^-24; e5m2: 57344 · 2^0, 2^-16 · 2^-8).
fn exact_in_any_format(format8: Float8, s: f32) -> bool {
    let exponent = ((s.to_bits() >> 23) & 0xff) as i32 - 127;
    let range = match format8 {
        Float8::E4M3Fn => -15..=7,
        Float8::E5M2 => -8..=0,
    };
    s > 0.0 && s.to_bits() & 0x7f_ffff == 0 && range.contains(&exponent)
}

/// The workgroups of a Dense dispatch of `m` rows and `n` outputs: tiled,
/// the kernel's workgroup tile; matrix-vector, 64 invocations of
/// [`MATVEC_OUTPUTS`] outputs per workgroup and a row of workgroups per row.
fn dense_groups(kernel: Kernel, m: usize, n: usize) -> Result<(u32, u32)> {
    let groups = if kernel.is_tiled() {
        let (rows, outputs) = kernel.workgroup_tile();
        (n.div_ceil(outputs as usize), m.div_ceil(rows as usize))
    } else {
        (n.div_ceil(MATVEC_OUTPUTS).div_ceil(64), m)
    };
    let max_groups = 65_535;
    if groups.0 > max_groups || groups.1 > max_groups {
        return Err(Error::Shape(format!(
            "m={m}, n={n} needs {groups:?} workgroups with {kernel:?}, more than {max_groups} \
             in one dimension; split the batch"
        )));
    }
    Ok((groups.0 as u32, groups.1 as u32))
}

impl Graph {
    /// `y = activation(x · W + b)` for the rows of `x` (a tensor of `k`
    /// columns in the weights' compute format), in `shape`: the one launch
    /// of every weight format. Returns y (`n` columns).
    pub fn dense(
        &mut self,
        weights: &DenseWeights,
        shape: DenseShape,
        activation: Activation,
        x: TensorId,
    ) -> Result<TensorId> {
        self.op(|g| {
            let rows = g.shape(x)?.rows();
            let y = g.tensor(TensorShape::new(rows, weights.n, weights.storage.format())?);
            g.record_dense(weights, shape, activation, false, x, y)?;
            Ok(y)
        })
    }

    /// [`Graph::dense`] into a given tensor `y` (`[rows, n]`).
    pub fn dense_into(
        &mut self,
        weights: &DenseWeights,
        shape: DenseShape,
        activation: Activation,
        x: TensorId,
        y: TensorId,
    ) -> Result<()> {
        self.op(|g| g.record_dense(weights, shape, activation, false, x, y))
    }

    /// The raw i32 accumulators of an int8 product (weights that quantize
    /// their activations, f32 compute), for checking against the CPU twin
    /// bit for bit: an f32 tensor `[rows, n]` whose bits are the sums.
    pub fn int8_accumulators(
        &mut self,
        weights: &DenseWeights,
        shape: DenseShape,
        x: TensorId,
    ) -> Result<TensorId> {
        if Family::of(weights.format) != Family::Int8 || weights.storage != StorageVariant::F32 {
            return Err(Error::Unsupported(format!(
                "accumulators are read from int8 products with f32 outputs, not {} in {}",
                weights.format.name(),
                weights.storage.name()
            )));
        }
        self.op(|g| {
            let rows = g.shape(x)?.rows();
            let y = g.tensor(TensorShape::new(rows, weights.n, StorageFormat::F32)?);
            g.record_dense(weights, shape, Activation::Linear, true, x, y)?;
            Ok(y)
        })
    }

    fn record_dense(
        &mut self,
        weights: &DenseWeights,
        shape: DenseShape,
        activation: Activation,
        write_accumulators: bool,
        x: TensorId,
        y: TensorId,
    ) -> Result<()> {
        let (k, n) = (weights.k, weights.n);
        let format = weights.storage.format();
        let (xs, ys) = (self.shape(x)?, self.shape(y)?);
        if x == y {
            return Err(Error::InvalidArgument(
                "a Dense layer cannot write its output over its input".to_owned(),
            ));
        }
        if xs.cols() != k || xs.format() != format {
            return Err(Error::Shape(format!(
                "x is {} columns of {:?}, but the weights take {k} inputs in {format:?}",
                xs.cols(),
                xs.format()
            )));
        }
        if ys.cols() != n
            || ys.rows() != xs.rows()
            || (ys.format() != format && !write_accumulators)
        {
            let writes = if write_accumulators {
                StorageFormat::F32
            } else {
                format
            };
            return Err(Error::Shape(format!(
                "y is {} x {} in {:?}, but the layer writes {} x {n} in {writes:?}",
                ys.rows(),
                ys.cols(),
                ys.format(),
                xs.rows()
            )));
        }
        check_activation(weights.storage, activation)?;
        let m = xs.rows();
        let family = Family::of(weights.format);
        let kernel = weights.kernel(shape, m);
        let mut key = pipeline_of(kernel, weights.format, weights.storage, activation);
        if write_accumulators {
            key.mode = 1;
        }
        let textures = key.kernel.reads_textures();
        let label = format!(
            "dense {} {}",
            weights.format.name(),
            key.kernel.short_name()
        );
        let kp = xs.stride();
        let u32_of = |v: usize| size::to_u32(v, &|| format!("a Dense layer of {m} x {k} x {n}"));
        // y's row in the words the kernel writes (f64 values for f64).
        let y_row_words = if format == StorageFormat::F64 {
            ys.stride()
        } else {
            ys.row_words()
        };
        // int8 activations: quantized per row into scratch first.
        let mut x_bind = Bind::Tensor(x);
        let mut extra: Vec<Bind> = Vec::new();
        // A tensor another int8 Dense quantized already is not quantized again.
        let known = self
            .quantized_rows
            .iter()
            .find(|(of, storage, _, _)| *of == x && *storage == weights.storage)
            .map(|&(_, _, q, scale)| (q, scale));
        if let (Family::Int8, Some((q, x_scale))) = (family, known) {
            x_bind = Bind::Tensor(q);
            extra.push(Bind::Tensor(x_scale));
        } else if family == Family::Int8 {
            let quantizer = quantizer_for(key.kernel);
            // A workgroup per row, or per eight rows.
            let groups = if quantizer == Kernel::QuantizeRowsLanes {
                m.div_ceil(8)
            } else {
                m
            };
            if groups > 65_535 {
                return Err(Error::Shape(format!(
                    "{m} rows of int8 activations need {groups} workgroups, more than 65535; \
                     split the batch"
                )));
            }
            let q = self.scratch(size::bytes(m, kp, &|| format!("int8 x of {m} x {kp}"))?);
            let x_scale = self.scratch((m * 4) as u64);
            // The add and norm that wrote x, just before, quantize it too.
            let norm = self.last_step().and_then(add_norm_output) == Some(x);
            let fused = match norm {
                true => self.pop_step(),
                false => None,
            };
            if let Some(mut step) = fused {
                step.key.kernel = Kernel::AddLayerNormQuantize;
                step.label.push_str(" + quantize x to int8");
                step.bindings
                    .extend([Bind::Tensor(q), Bind::Tensor(x_scale)]);
                self.push(step);
            } else {
                self.push(Step {
                    key: PipelineKey {
                        kernel: quantizer,
                        storage: weights.storage,
                        specialization: 0,
                        mode: 0,
                    },
                    label: "quantize x to int8".to_owned(),
                    uniform: [
                        u32_of(m)?,
                        u32_of(kp / format.values_per_chunk())?,
                        u32_of(kp / 4)?,
                        0,
                        0,
                        0,
                        0,
                        0,
                    ],
                    bindings: vec![Bind::Tensor(x), Bind::Tensor(q), Bind::Tensor(x_scale)],
                    groups: (u32_of(groups)?, 1),
                });
            }
            x_bind = Bind::Tensor(q);
            extra.push(Bind::Tensor(x_scale));
            if self.written_once(x) {
                self.quantized_rows.push((x, weights.storage, q, x_scale));
            }
        }
        for part in &weights.parts {
            let outputs = part.outputs(n);
            let uniform = match family {
                Family::Float => [
                    u32_of(m)?,
                    u32_of(outputs)?,
                    u32_of(kp / format.values_per_chunk())?,
                    u32_of(y_row_words)?,
                    0,
                    0,
                    0,
                    0,
                ],
                Family::Int8 => [
                    u32_of(m)?,
                    u32_of(outputs)?,
                    u32_of(kp / 16)?,
                    u32_of(y_row_words)?,
                    0,
                    0,
                    0,
                    0,
                ],
                Family::WeightOnly { bits } => {
                    let block = match weights.format {
                        WeightFormat::Int4 { block: Some(b), .. } => b.get(),
                        _ => 1,
                    };
                    [
                        u32_of(m)?,
                        u32_of(outputs)?,
                        // 32 int4 or 16 int8 values per vec4<u32> of weights.
                        u32_of(kp * bits as usize / 128)?,
                        u32_of(y_row_words)?,
                        block,
                        u32_of(table_columns(part.len))?,
                        u32_of(weights.groups)?,
                        0,
                    ]
                }
                Family::Float8 => {
                    let f = weights
                        .float8
                        .unwrap_or_else(|| unreachable!("float8 weights carry their facts"));
                    [
                        u32_of(m)?,
                        u32_of(outputs)?,
                        u32_of(kp / 16)?,
                        u32_of(y_row_words)?,
                        f.x_scale.to_bits(),
                        f.w_scale.to_bits(),
                        u32::from(f.nan_codes),
                        u32::from(f.fold_scale),
                    ]
                }
            };
            let y_offset = (part.start * format.bytes_per_value()) as u64;
            let mut bindings = if textures {
                let x_tensor = match &x_bind {
                    Bind::Tensor(id) => *id,
                    _ => unreachable!("x is bound as a tensor"),
                };
                vec![
                    Bind::TensorTexture(x_tensor),
                    Bind::BufferTexture {
                        buffer: part.w.clone(),
                        mirror: Arc::clone(&part.mirror),
                    },
                ]
            } else if key.kernel.spec().lanes_layout {
                let lanes = part
                    .lanes
                    .clone()
                    .ok_or_else(|| lanes_missing(key.kernel))?;
                vec![x_bind.clone(), Bind::Buffer(lanes)]
            } else {
                vec![x_bind.clone(), Bind::Buffer(part.w.clone())]
            };
            bindings.extend([
                Bind::Buffer(part.bias.clone()),
                Bind::TensorFrom(y, y_offset),
            ]);
            bindings.extend(extra.iter().cloned());
            match family {
                Family::Int8 => bindings.push(Bind::Buffer(
                    part.scale.clone().unwrap_or_else(|| part.w.clone()),
                )),
                Family::WeightOnly { .. } => {
                    let scale = part.scale.clone().unwrap_or_else(|| part.w.clone());
                    // Per channel the zero-point binding gets the scales, never read.
                    bindings.push(Bind::Buffer(scale.clone()));
                    bindings.push(Bind::Buffer(part.zero.clone().unwrap_or(scale)));
                }
                Family::Float | Family::Float8 => {}
            }
            self.push(Step {
                key,
                label: label.clone(),
                uniform,
                bindings,
                groups: dense_groups(key.kernel, m, outputs)?,
            });
        }
        Ok(())
    }
}

impl GpuContext {
    /// Runs Dense on `m` rows of `x` (`[m, k]`, row-major) in `shape` and
    /// returns `y` (`[m, n]`), decoded from the storage format (exact,
    /// except an f64 result read as f32, which is rounded): a one-op
    /// forward over host slices.
    pub fn dense<T: HostFloat>(
        &mut self,
        weights: &DenseWeights,
        shape: DenseShape,
        activation: Activation,
        x: &[T],
        m: usize,
    ) -> Result<Vec<T>> {
        let mut out = self
            .dense_forward(weights, shape, activation, m)?
            .run(self, &[x])?;
        Ok(out.remove(0))
    }

    /// The forward of Dense alone on `m` rows in `shape`, built once to run
    /// or time many times: x (`[m, k]` in the weights' storage format) in,
    /// y out.
    pub fn dense_forward(
        &mut self,
        weights: &DenseWeights,
        shape: DenseShape,
        activation: Activation,
        m: usize,
    ) -> Result<Forward> {
        let mut graph = Graph::new();
        let input = graph.input(TensorShape::new(m, weights.k, weights.storage.format())?);
        let y = graph.dense(weights, shape, activation, input)?;
        graph.output(y)?;
        graph.build(self)
    }

    /// The raw i32 accumulators `[m, n]` of an int8 product
    /// ([`Graph::int8_accumulators`]) for `m` rows of `x`.
    pub fn dense_int8_accumulators<T: HostFloat>(
        &mut self,
        weights: &DenseWeights,
        shape: DenseShape,
        x: &[T],
        m: usize,
    ) -> Result<Vec<i32>> {
        let mut graph = Graph::new();
        let input = graph.input(TensorShape::new(m, weights.k, weights.storage.format())?);
        let y = graph.int8_accumulators(weights, shape, input)?;
        graph.output(y)?;
        let forward = graph.build(self)?;
        let x_words = TensorShape::new(m, weights.k, weights.storage.format())?.encode(x)?;
        let out = forward.run_words(self, &[x_words])?;
        let words = TensorShape::new(m, weights.n, StorageFormat::F32)?.unpadded_words(&out[0]);
        Ok(words.into_iter().map(|w| w as i32).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// shaders/shared/dense_weights_wide.wgsl's `w_starts` and `w_pair`
    /// (32-byte elements, `chunks` 16-byte chunks a row: `dims.k_vecs`),
    /// and the same for 16-byte elements (`elements` = `chunks`): the
    /// element `e` of row `j`.
    fn shader_element(j: usize, e: usize, chunks: usize, element_words: usize) -> usize {
        let elements = match element_words {
            8 => chunks / 2,
            _ => chunks,
        };
        let start = (j / 64) * elements * 64 + (j % 8) * 8 + (j / 8) % 8;
        start + e * 64
    }

    #[test]
    fn the_lanes_layout_puts_each_element_where_the_shader_reads_it() {
        for element in [8, 4] {
            for (n, row_words) in [(1, 8), (13, 16), (64, 8), (130, 24)] {
                let rows: Vec<u32> = (1..=(n * row_words) as u32).collect();
                let lanes = lanes_layout(&rows, row_words, element).unwrap();
                assert_eq!(lanes.len(), n.div_ceil(64) * 64 * row_words, "n={n}");
                let mut read = 0;
                for j in 0..n {
                    for e in 0..row_words / element {
                        let at = shader_element(j, e, row_words / 4, element) * element;
                        let from = j * row_words + e * element;
                        let what = format!("element {element} n={n} j={j} e={e}");
                        assert_eq!(
                            lanes[at..at + element],
                            rows[from..from + element],
                            "{what}"
                        );
                        read += element;
                    }
                }
                // Every other word is padding: zero.
                let nonzero = lanes.iter().filter(|&&w| w != 0).count();
                assert_eq!(nonzero, read, "element {element} n={n}");
            }
        }
        let err = lanes_layout(&[0; 12], 12, 8).unwrap_err();
        assert!(
            err.to_string().contains("not whole elements of 8 words"),
            "{err}"
        );
    }

    #[test]
    fn only_powers_of_two_in_f16_range_fold() {
        assert!(exact_in_any_format(Float8::E4M3Fn, 1.0));
        assert!(exact_in_any_format(Float8::E4M3Fn, 128.0));
        assert!(exact_in_any_format(Float8::E4M3Fn, 2f32.powi(-15)));
        assert!(!exact_in_any_format(Float8::E4M3Fn, 256.0));
        assert!(!exact_in_any_format(Float8::E4M3Fn, 2f32.powi(-16)));
        assert!(!exact_in_any_format(Float8::E4M3Fn, 0.3));
        assert!(!exact_in_any_format(Float8::E5M2, 2.0));
        assert!(exact_in_any_format(Float8::E5M2, 0.25));
        assert!(fold_scale(Float8::E4M3Fn, 1.0, 0.3));
        assert!(!fold_scale(Float8::E4M3Fn, 1.0, 1e30));
        assert!(!fold_scale(Float8::E4M3Fn, 1.0, 1e-30));
    }

    #[test]
    fn layouts_of_huge_or_empty_layers_are_errors() {
        let f = StorageFormat::F32;
        assert!(DenseLayout::new(f, WeightFormat::Float, 99_999_999_999, 99_999_999_999).is_err());
        assert!(DenseLayout::new(f, WeightFormat::Float, 0, 4).is_err());
        let l = DenseLayout::new(f, WeightFormat::Float, 37, 13).unwrap();
        assert_eq!((l.k_padded, l.n_padded), (64, 14));
        assert_eq!(l.weight_bytes(), 14 * 64 * 4 + 14 * 4);
    }
}

// SPDX-License-Identifier: MIT OR Apache-2.0
//! Dense forward on the GPU: `y = activation(x · W + b)`, with W uploaded
//! once in a kernel-friendly layout.
//!
//! Buffer layout (all variants): K is padded with zeros to a multiple of
//! [`K_ALIGN`]; W is stored transposed, one row of K values per output, with
//! N rounded up to even; x is `[M, K padded]`; values in the storage format.

use bytemuck::{Pod, Zeroable};

use crate::gpu::GpuError;
use crate::gpu::context::GpuContext;
use crate::gpu::dispatch::PreparedDispatch;
use crate::gpu::formats::{HostFloat, StorageFormat};
use crate::gpu::pipelines::PipelineKey;
use crate::gpu::shaders::{Kernel, MATVEC_OUTPUTS, StorageVariant};

/// K is padded to a multiple of this: the tiled kernel's tile depth, and a
/// whole number of `vec4<u32>` for every storage format.
pub const K_ALIGN: usize = 32;

/// Keras activations a Dense layer can apply in the kernel. The values are
/// the `ACTIVATION` override in shaders/shared/activation.wgsl.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Activation {
    /// `linear` (none).
    Linear = 0,
    /// `relu`.
    Relu = 1,
    /// `gelu` (exact, with erf).
    Gelu = 2,
    /// `silu`.
    Silu = 3,
    /// `sigmoid`.
    Sigmoid = 4,
    /// `tanh`.
    Tanh = 5,
}

impl Activation {
    /// Every activation.
    pub const ALL: [Activation; 6] = [
        Activation::Linear,
        Activation::Relu,
        Activation::Gelu,
        Activation::Silu,
        Activation::Sigmoid,
        Activation::Tanh,
    ];

    /// Keras's name for it (`"gelu"`).
    pub const fn keras_name(self) -> &'static str {
        match self {
            Activation::Linear => "linear",
            Activation::Relu => "relu",
            Activation::Gelu => "gelu",
            Activation::Silu => "silu",
            Activation::Sigmoid => "sigmoid",
            Activation::Tanh => "tanh",
        }
    }
}

impl std::str::FromStr for Activation {
    type Err = GpuError;

    /// Keras's activation names (`"relu"`, `"gelu"`, ...).
    fn from_str(s: &str) -> Result<Self, GpuError> {
        Activation::ALL
            .into_iter()
            .find(|a| a.keras_name() == s)
            .ok_or_else(|| {
                GpuError::Unsupported(format!(
                    "activation '{s}'; the kernels apply linear, relu, gelu, silu, sigmoid and tanh"
                ))
            })
    }
}

/// `Err` unless `w` holds a `[k, n]` kernel (both at least 1) and `bias`, if
/// any, `n` values.
pub(crate) fn check_kernel_shape(
    w_len: usize,
    bias_len: Option<usize>,
    k: usize,
    n: usize,
) -> Result<(), GpuError> {
    if k == 0 || n == 0 || w_len != k * n {
        return Err(GpuError::Shape(format!(
            "the kernel has {w_len} values, but k={k} x n={n} needs {}; both must be at least 1",
            k * n
        )));
    }
    match bias_len {
        Some(b) if b != n => Err(GpuError::Shape(format!(
            "the bias has {b} values, expected n={n}"
        ))),
        _ => Ok(()),
    }
}

/// `x` (`[m, k]`) as f64 rows padded with zeros to `k_padded`; `Err` unless
/// it holds `m` (at least 1) rows of `k`.
pub(crate) fn padded_rows<T: HostFloat>(
    x: &[T],
    m: usize,
    k: usize,
    k_padded: usize,
) -> Result<Vec<f64>, GpuError> {
    if m == 0 || x.len() != m * k {
        return Err(GpuError::Shape(format!(
            "x has {} values, but m={m} rows of k={k} need {}; m must be at least 1",
            x.len(),
            m * k
        )));
    }
    let mut xp = vec![0f64; m * k_padded];
    for (dst, src) in xp.chunks_exact_mut(k_padded).zip(x.chunks_exact(k)) {
        for (d, s) in dst.iter_mut().zip(src) {
            *d = s.to_f64();
        }
    }
    Ok(xp)
}

/// The activations and outputs of one quantized matrix-vector call: x
/// uploaded in the compute format (rows padded to `k_padded`), y allocated.
pub(crate) struct RowsIo {
    pub(crate) x: wgpu::Buffer,
    pub(crate) y: wgpu::Buffer,
    pub(crate) k_padded: usize,
    pub(crate) row_words: usize,
    m: usize,
    n: usize,
    pub(crate) format: StorageFormat,
}

impl RowsIo {
    /// Bytes of y the kernels write (the buffer has 8 more).
    pub(crate) fn y_bytes(&self) -> u64 {
        (self.m * self.row_words * 4) as u64
    }
}

impl GpuContext {
    /// Checks the call (activation, x's shape, workgroup counts for four
    /// outputs per invocation), uploads x and allocates y.
    pub(crate) fn rows_io<T: HostFloat>(
        &self,
        label: &str,
        storage: StorageVariant,
        activation: Activation,
        x: &[T],
        (m, k, n): (usize, usize, usize),
    ) -> Result<RowsIo, GpuError> {
        check_activation(storage, activation)?;
        if m > 65_535 || n.div_ceil(4).div_ceil(64) > 65_535 {
            return Err(GpuError::Shape(format!(
                "m={m}, n={n} need too many workgroups; split the batch"
            )));
        }
        let format = storage.format();
        let k_padded = k.div_ceil(K_ALIGN) * K_ALIGN;
        let xp = padded_rows(x, m, k, k_padded)?;
        let x = self.storage_buffer(
            &format!("{label} x"),
            &format.encode(&xp),
            wgpu::BufferUsages::STORAGE,
        )?;
        let row_words = format.words_for(n);
        // 8 bytes past the end: see `WeightPart::y_binding`.
        let y = self.output_buffer(&format!("{label} y"), (m * row_words * 4 + 8) as u64)?;
        Ok(RowsIo {
            x,
            y,
            k_padded,
            row_words,
            m,
            n,
            format,
        })
    }

    /// The runs of outputs (`(first, count)`) of a layer's `n_padded` W^T
    /// rows of `row_bytes` that each fit one of this adapter's storage
    /// bindings ([`output_parts`]).
    pub(crate) fn weight_parts(
        &self,
        n_padded: usize,
        row_bytes: usize,
    ) -> Result<Vec<(usize, usize)>, GpuError> {
        let limit = self.capabilities().max_storage_buffer_binding_size;
        output_parts(n_padded, row_bytes as u64, limit)
    }

    /// A layer's weights in the parts that fit this adapter's storage
    /// bindings: W^T `words` (`row_words` per output), `bias` words
    /// (`bias_words` per output), and for each part `(first output,
    /// outputs)` its scale and zero-point words from `tables`. Buffer labels
    /// start with `label`.
    pub(crate) fn upload_parts(
        &self,
        label: &str,
        (words, row_words): (&[u32], usize),
        (bias, bias_words): (&[u32], usize),
        tables: impl Fn((usize, usize)) -> (Option<Vec<u32>>, Option<Vec<u32>>),
    ) -> Result<Vec<WeightPart>, GpuError> {
        let usage = wgpu::BufferUsages::STORAGE;
        let buffer = |what: &str, words: &[u32]| {
            self.storage_buffer(&format!("{label} {what}"), words, usage)
        };
        self.weight_parts(words.len() / row_words, row_words * 4)?
            .into_iter()
            .map(|(start, len)| {
                let (scale, zero) = tables((start, len));
                Ok(WeightPart {
                    start,
                    len,
                    w: buffer(
                        "weights",
                        &words[start * row_words..(start + len) * row_words],
                    )?,
                    bias: buffer(
                        "bias",
                        &bias[start * bias_words..(start + len) * bias_words],
                    )?,
                    scale: scale.map(|t| buffer("scales", &t)).transpose()?,
                    zero: zero.map(|t| buffer("zero points", &t)).transpose()?,
                })
            })
            .collect()
    }

    /// A dispatch of `key` per part of a layer of `m` rows and `n` outputs:
    /// its uniform from `dims(part, outputs)` at binding 0, then
    /// `bindings(part)`.
    pub(crate) fn prepare_parts<'b, D: bytemuck::Pod>(
        &mut self,
        key: PipelineKey,
        (m, n): (usize, usize),
        parts: &'b [WeightPart],
        dims: impl Fn(&WeightPart, usize) -> D,
        bindings: impl Fn(&'b WeightPart) -> Vec<wgpu::BufferBinding<'b>>,
    ) -> Result<Vec<PreparedDispatch>, GpuError> {
        parts
            .iter()
            .map(|part| {
                let outputs = part.outputs(n);
                let label = format!("{} dims", key.kernel.file());
                let uniform = self.uniform_buffer(&label, &dims(part, outputs))?;
                let mut all = vec![uniform.as_entire_buffer_binding()];
                all.extend(bindings(part));
                let groups = GpuContext::dense_groups(key.kernel, m, outputs)?;
                self.prepare_bindings(key, &all, groups)
            })
            .collect()
    }

    /// Reads y back, decoded.
    pub(crate) fn read_rows<T: HostFloat>(&self, io: &RowsIo) -> Result<Vec<T>, GpuError> {
        let mut words = self.read_back(&io.y)?;
        words.truncate(io.m * io.row_words);
        Ok(words
            .chunks_exact(io.row_words)
            .flat_map(|r| io.format.decode::<T>(r, io.n))
            .collect())
    }

    /// The workgroups of a Dense call of `m` rows and `n` outputs: tiled,
    /// 64 rows x 32 outputs per workgroup; matrix-vector, 64 invocations of
    /// [`MATVEC_OUTPUTS`] outputs per workgroup and a row of
    /// workgroups per row of x.
    pub(crate) fn dense_groups(kernel: Kernel, m: usize, n: usize) -> Result<(u32, u32), GpuError> {
        let groups = if kernel.is_tiled() {
            (n.div_ceil(32), m.div_ceil(64))
        } else {
            (n.div_ceil(MATVEC_OUTPUTS).div_ceil(64), m)
        };
        let max_groups = 65_535;
        if groups.0 > max_groups || groups.1 > max_groups {
            return Err(GpuError::Shape(format!(
                "m={m}, n={n} needs {groups:?} workgroups with {kernel:?}, more than {max_groups} \
                 in one dimension; split the batch"
            )));
        }
        Ok((groups.0 as u32, groups.1 as u32))
    }
}

/// `Err` unless `kernel` is `family` (a matrix-vector Dense kernel) or
/// its tiled form: the kernels that read `family`'s weights.
pub(crate) fn check_family(family: Kernel, kernel: Kernel) -> Result<(), GpuError> {
    if kernel == family || kernel == family.tiled() {
        return Ok(());
    }
    Err(GpuError::Shape(format!(
        "{kernel:?} cannot run weights uploaded for {family:?}; use {family:?} or {:?}",
        family.tiled()
    )))
}

/// `Err` for an activation the variant cannot apply: the f64 variant has
/// linear and relu only (WGSL has no f64 exp or tanh).
pub fn check_activation(storage: StorageVariant, activation: Activation) -> Result<(), GpuError> {
    if storage == StorageVariant::F64
        && !matches!(activation, Activation::Linear | Activation::Relu)
    {
        return Err(GpuError::Unsupported(format!(
            "the f64 Dense kernel applies linear and relu only (WGSL has no f64 exp or tanh), not \
             {activation:?}; apply it on the host, or compute in float32"
        )));
    }
    Ok(())
}

/// The uniform of shaders/shared/dense_bindings.wgsl (`DenseDims`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
struct DenseDims {
    m: u32,
    n: u32,
    k_vecs: u32,
    y_row_words: u32,
}

const _: () = assert!(std::mem::size_of::<DenseDims>() == 16);

/// How a Dense kernel's weights are quantized on the GPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuantizedWeights {
    /// int8, four per u32 along k, an f32 scale per output.
    Int8,
    /// float8 e4m3fn codes, four per u32 along k, one per-tensor scale.
    Float8,
    /// int4, eight per u32 along k; per channel (`groups: None`) or in
    /// groups along k with f32 scales and int8 zero points.
    Int4 {
        /// Number of groups along k, when grouped.
        groups: Option<usize>,
    },
}

/// Columns of the scale and zero-point tables of an `n`-output layer: n
/// rounded up to a multiple of 8, one kernel invocation's outputs, so that
/// its eight scales are two `vec4<f32>` and its zero points one `vec2<u32>`
/// (int4, weight-only int8 and int8 scales alike).
pub const fn table_columns(n: usize) -> usize {
    n.div_ceil(8) * 8
}

/// Where a Dense layer's values sit in GPU buffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DenseLayout {
    /// The storage format of x and y (and of W, unless `quantized`).
    pub format: StorageFormat,
    /// How W is quantized, if it is.
    pub quantized: Option<QuantizedWeights>,
    /// K padded with zeros to a multiple of [`K_ALIGN`].
    pub k_padded: usize,
    /// N rounded up to even (one more zero row of W^T when odd).
    pub n_padded: usize,
}

impl DenseLayout {
    /// The layout of a `[k, n]` kernel in `format`.
    pub fn new(format: StorageFormat, k: usize, n: usize) -> Self {
        DenseLayout {
            format,
            quantized: None,
            k_padded: k.div_ceil(K_ALIGN) * K_ALIGN,
            n_padded: n.div_ceil(2) * 2,
        }
    }

    /// The layout of a quantized `[k, n]` kernel with activations in `format`.
    pub fn quantized(format: StorageFormat, k: usize, n: usize, weights: QuantizedWeights) -> Self {
        DenseLayout {
            quantized: Some(weights),
            ..DenseLayout::new(format, k, n)
        }
    }

    /// Bytes of the transposed weights on the GPU, with their scales and
    /// zero points (the buffers' sizes).
    pub fn weight_bytes(&self) -> u64 {
        let (kp, np) = (self.k_padded, self.n_padded);
        // Scale and zero-point tables have a column per output, padded.
        let columns = table_columns(np);
        match self.quantized {
            None => (np * kp * self.format.bytes_per_value()) as u64,
            // int8 weights and an f32 scale per output.
            Some(QuantizedWeights::Int8) => (np * kp + columns * 4) as u64,
            Some(QuantizedWeights::Float8) => (np * kp) as u64,
            // int4 weights and an f32 scale per output.
            Some(QuantizedWeights::Int4 { groups: None }) => (np * kp / 2 + columns * 4) as u64,
            // int4 weights; per group, f32 scales and int8 zero points.
            Some(QuantizedWeights::Int4 { groups: Some(g) }) => {
                (np * kp / 2 + g * columns * 5) as u64
            }
        }
    }

    /// Bytes of the bias (in the arithmetic type: f32, or f64 for f64).
    pub fn bias_bytes(&self) -> u64 {
        (self.n_padded * self.format.bytes_per_value().max(4)) as u64
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
        match self.quantized {
            None => write!(f, "W^T[{np}x{kp}] {values}"),
            Some(QuantizedWeights::Int8) => {
                write!(f, "W^T[{np}x{kp}] int8 x4/u32 + scales, x/y {values}")
            }
            Some(QuantizedWeights::Float8) => {
                write!(f, "W^T[{np}x{kp}] e4m3 x4/u32 + 1 scale, x/y {values}")
            }
            Some(QuantizedWeights::Int4 { groups: None }) => {
                write!(f, "W^T[{np}x{kp}] int4 x8/u32 + scales, x/y {values}")
            }
            Some(QuantizedWeights::Int4 { groups: Some(g) }) => {
                write!(
                    f,
                    "W^T[{np}x{kp}] int4 x8/u32 + {g} groups of scales/zeros, x/y {values}"
                )
            }
        }
    }
}

/// Outputs per part of a layer whose weights are split across storage
/// bindings: parts start at multiples of it, which keeps each part's offset
/// into y a multiple of 256 bytes (the most wgpu asks of a binding's offset)
/// in every format.
pub const SPLIT_OUTPUTS: usize = 128;

/// The runs of W^T rows (outputs) that each fit one storage binding of
/// `limit` bytes, rows of `row_bytes`: `(first output, outputs)`, one run
/// when the whole of `n_padded` fits, else runs of a multiple of
/// [`SPLIT_OUTPUTS`]. `Err` when not even that many rows fit.
pub(crate) fn output_parts(
    n_padded: usize,
    row_bytes: u64,
    limit: u64,
) -> Result<Vec<(usize, usize)>, GpuError> {
    if n_padded as u64 * row_bytes <= limit {
        return Ok(vec![(0, n_padded)]);
    }
    let rows = (limit / row_bytes) as usize / SPLIT_OUTPUTS * SPLIT_OUTPUTS;
    if rows == 0 {
        return Err(GpuError::BufferTooLarge {
            label: format!("dense weights ({SPLIT_OUTPUTS} outputs, the smallest part)"),
            bytes: SPLIT_OUTPUTS as u64 * row_bytes,
            limit,
        });
    }
    Ok((0..n_padded)
        .step_by(rows)
        .map(|start| (start, rows.min(n_padded - start)))
        .collect())
}

/// How many storage bindings of at most `limit` bytes a layer's weights in
/// `layout` take: split by outputs, in runs of a multiple of
/// [`SPLIT_OUTPUTS`], when they exceed it; `Err(BufferTooLarge)` when not
/// even that many outputs fit.
pub fn weight_bindings(layout: &DenseLayout, limit: u64) -> Result<usize, GpuError> {
    let kp = layout.k_padded;
    let row_bytes = match layout.quantized {
        None => kp * layout.format.bytes_per_value(),
        Some(QuantizedWeights::Int4 { .. }) => kp / 2,
        Some(QuantizedWeights::Int8 | QuantizedWeights::Float8) => kp,
    };
    Ok(output_parts(layout.n_padded, row_bytes as u64, limit)?.len())
}

/// A run of a layer's outputs whose W^T rows, bias and scale tables sit in
/// bindings of their own: the whole layer, or one part of it when its
/// weights exceed the adapter's limit for one binding.
pub(crate) struct WeightPart {
    /// Its first output.
    pub(crate) start: usize,
    /// Its outputs (even; the last part's may include the padding output).
    pub(crate) len: usize,
    pub(crate) w: wgpu::Buffer,
    pub(crate) bias: wgpu::Buffer,
    /// Per-output (or per-group) scales of quantized weights.
    pub(crate) scale: Option<wgpu::Buffer>,
    /// Per-group zero points of grouped int4 weights.
    pub(crate) zero: Option<wgpu::Buffer>,
}

impl WeightPart {
    /// Bytes of its buffers.
    pub(crate) fn bytes(&self) -> u64 {
        let table = |b: &Option<wgpu::Buffer>| b.as_ref().map_or(0, wgpu::Buffer::size);
        self.w.size() + self.bias.size() + table(&self.scale) + table(&self.zero)
    }

    /// Its outputs that exist in a layer of `n` (the last part's padding
    /// output excluded).
    pub(crate) fn outputs(&self, n: usize) -> usize {
        self.len.min(n - self.start)
    }

    /// y from the part's first output on, in `format`: its dispatch writes
    /// its columns through this binding, rows as long as y's. y must have 8
    /// bytes past its end, so that the binding's 8-byte minimum holds.
    pub(crate) fn y_binding<'a>(
        &self,
        y: &'a wgpu::Buffer,
        format: StorageFormat,
    ) -> wgpu::BufferBinding<'a> {
        let offset = (self.start * format.bytes_per_value()) as u64;
        wgpu::BufferBinding {
            buffer: y,
            offset,
            size: std::num::NonZeroU64::new(y.size() - offset),
        }
    }
}

/// Columns `start .. start + len` of every row of `table` (rows of
/// `columns`; columns past the table's are `fill`), each row padded with
/// `fill` to [`table_columns`]`(len)`: a part's scales or zero points.
pub(crate) fn table_part<V: Copy>(
    table: &[V],
    columns: usize,
    (start, len): (usize, usize),
    fill: V,
) -> Vec<V> {
    let width = table_columns(len);
    table
        .chunks(columns)
        .flat_map(|row| {
            (start..start + width).map(move |j| {
                if j < start + len {
                    row.get(j).copied().unwrap_or(fill)
                } else {
                    fill
                }
            })
        })
        .collect()
}

/// A Dense layer's weights on the GPU, in one storage variant's layout: in
/// one storage binding, or split by outputs across several when they
/// exceed the adapter's binding limit (each part its own dispatch).
pub struct DenseWeights {
    storage: StorageVariant,
    k: usize,
    n: usize,
    parts: Vec<WeightPart>,
}

impl DenseWeights {
    /// Bytes the weights and bias take on the GPU.
    pub fn gpu_bytes(&self) -> u64 {
        self.parts.iter().map(WeightPart::bytes).sum()
    }

    /// How many storage bindings (and dispatches) the weights take: 1
    /// unless they exceed the adapter's limit for one binding.
    pub fn parts(&self) -> usize {
        self.parts.len()
    }

    /// The storage variant they were uploaded for.
    pub fn storage(&self) -> StorageVariant {
        self.storage
    }
}

impl GpuContext {
    /// Uploads a Dense kernel `w` (`[k, n]`, row-major, Keras's layout) and
    /// optional bias `[n]`, converted once to the variant's storage format.
    pub fn upload_dense<T: HostFloat>(
        &self,
        storage: StorageVariant,
        w: &[T],
        bias: Option<&[T]>,
        k: usize,
        n: usize,
    ) -> Result<DenseWeights, GpuError> {
        check_kernel_shape(w.len(), bias.map(<[T]>::len), k, n)?;
        self.require(storage)?;
        let layout = DenseLayout::new(storage.format(), k, n);
        let (kp, n_even) = (layout.k_padded, layout.n_padded);
        // A layer too large to split errs before any host copy is made.
        self.weight_parts(n_even, kp * storage.format().bytes_per_value())?;
        let mut wt = vec![0f64; n_even * kp];
        for (row, chunk) in w.chunks_exact(n).enumerate() {
            for (col, &v) in chunk.iter().enumerate() {
                wt[col * kp + row] = v.to_f64();
            }
        }
        let format = storage.format();
        // The bias is stored in the arithmetic type (f32, or f64), rounded
        // to the compute format as the weights are.
        let mut b = vec![0f64; n_even];
        if let Some(bias) = bias {
            for (dst, &src) in b.iter_mut().zip(bias) {
                *dst = format.round(src.to_f64());
            }
        }
        let bias_format = if format == StorageFormat::F64 {
            StorageFormat::F64
        } else {
            StorageFormat::F32
        };
        let words = format.encode(&wt);
        let bias_words = bias_format.encode(&b);
        let parts = self.upload_parts(
            "dense",
            (&words, words.len() / n_even),
            (&bias_words, bias_words.len() / n_even),
            |_| (None, None),
        )?;
        Ok(DenseWeights {
            storage,
            k,
            n,
            parts,
        })
    }

    fn require(&self, storage: StorageVariant) -> Result<(), GpuError> {
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
            }),
            None => Ok(()),
        }
    }

    /// Runs Dense on `m` rows of `x` (`[m, k]`, row-major) with `kernel`
    /// and returns `y` (`[m, n]`), decoded from the storage format (exact,
    /// except an f64 result read as f32, which is rounded).
    pub fn dense<T: HostFloat>(
        &mut self,
        weights: &DenseWeights,
        kernel: Kernel,
        activation: Activation,
        x: &[T],
        m: usize,
    ) -> Result<Vec<T>, GpuError> {
        let run = self.prepare_dense(weights, kernel, activation, x, m)?;
        self.submit_all(&run.passes.iter().collect::<Vec<_>>())?;
        self.read_dense_output(&run)
    }

    /// Uploads `x` and binds everything for Dense, ready to run (again and
    /// again, for benchmarks) with [`GpuContext::run_prepared`].
    pub fn prepare_dense<T: HostFloat>(
        &mut self,
        weights: &DenseWeights,
        kernel: Kernel,
        activation: Activation,
        x: &[T],
        m: usize,
    ) -> Result<PreparedDense, GpuError> {
        check_family(Kernel::DenseMatVec, kernel)?;
        let (k, n) = (weights.k, weights.n);
        let io = self.rows_io("dense", weights.storage, activation, x, (m, k, n))?;
        let format = io.format;
        let layout = DenseLayout::new(format, k, n);
        let kp = layout.k_padded;
        // y is read as 32-bit words, or as f64 for the f64 format.
        let out_word_words = if format == StorageFormat::F64 { 2 } else { 1 };
        let key = PipelineKey {
            kernel,
            storage: weights.storage,
            specialization: activation as u32,
            mode: 0,
        };
        // A dispatch per part of the weights, each writing its outputs'
        // columns of y (bound from its first output, rows as long as y's).
        let dims = |_: &WeightPart, outputs: usize| DenseDims {
            m: m as u32,
            n: outputs as u32,
            k_vecs: (kp / format.values_per_chunk()) as u32,
            y_row_words: (io.row_words / out_word_words) as u32,
        };
        let passes = self.prepare_parts(key, (m, n), &weights.parts, dims, |part| {
            vec![
                io.x.as_entire_buffer_binding(),
                part.w.as_entire_buffer_binding(),
                part.bias.as_entire_buffer_binding(),
                part.y_binding(&io.y, format),
            ]
        })?;
        // Bytes the kernel reads and writes: x (once per part), W^T, bias
        // and y.
        let bytes = (m * kp * format.bytes_per_value() * passes.len()) as u64
            + layout.weight_bytes()
            + layout.bias_bytes()
            + io.y_bytes();
        Ok(PreparedDense { passes, io, bytes })
    }

    /// Reads `y` of a prepared Dense back, decoded.
    pub fn read_dense_output<T: HostFloat>(&self, run: &PreparedDense) -> Result<Vec<T>, GpuError> {
        self.read_rows(&run.io)
    }
}

/// A Dense call with its inputs on the GPU, ready to run.
pub struct PreparedDense {
    /// The bound dispatches, one per part of the weights (one unless they
    /// were split across storage bindings), run in order.
    pub passes: Vec<PreparedDispatch>,
    io: RowsIo,
    /// Bytes one run reads plus writes (x, weights, bias, y), for GB/s.
    pub bytes: u64,
}

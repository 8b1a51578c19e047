// SPDX-License-Identifier: MIT OR Apache-2.0
//! What the kernels compute, as host ideas shared by the GPU runtime, its
//! CPU twins and the routing: the activations a Dense layer applies, and
//! the two shapes of a Dense kernel, and the shapes of an attention and of
//! a rotary position embedding.

use crate::error::{Error, Result};

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
    /// `silu` (`swish`).
    Silu = 3,
    /// `sigmoid`.
    Sigmoid = 4,
    /// `tanh`.
    Tanh = 5,
    /// `elu` (alpha 1).
    Elu = 6,
    /// `selu`.
    Selu = 7,
    /// `celu` (alpha 1).
    Celu = 8,
    /// `softplus`.
    Softplus = 9,
    /// `softsign`.
    Softsign = 10,
    /// `relu6`.
    Relu6 = 11,
    /// `leaky_relu` (negative slope 0.2, Keras's default).
    LeakyRelu = 12,
    /// `hard_sigmoid` (`relu6(x + 3) / 6`).
    HardSigmoid = 13,
    /// `hard_silu` (`hard_swish`).
    HardSilu = 14,
    /// `hard_tanh`.
    HardTanh = 15,
    /// `exponential`.
    Exponential = 16,
    /// `mish`.
    Mish = 17,
    /// `log_sigmoid`.
    LogSigmoid = 18,
    /// `tanh_shrink`.
    TanhShrink = 19,
    /// `squareplus` (b 4).
    Squareplus = 20,
    /// `sparse_plus`.
    SparsePlus = 21,
    /// `hard_shrink` (threshold 0.5).
    HardShrink = 22,
    /// `soft_shrink` (threshold 0.5).
    SoftShrink = 23,
    /// `gelu` with `approximate=True` (the tanh form; KerasHub's GPT-2
    /// `gelu_approximate`).
    GeluApproximate = 24,
}

impl Activation {
    /// Every activation.
    pub const ALL: [Activation; 25] = [
        Activation::Linear,
        Activation::Relu,
        Activation::Gelu,
        Activation::Silu,
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::Elu,
        Activation::Selu,
        Activation::Celu,
        Activation::Softplus,
        Activation::Softsign,
        Activation::Relu6,
        Activation::LeakyRelu,
        Activation::HardSigmoid,
        Activation::HardSilu,
        Activation::HardTanh,
        Activation::Exponential,
        Activation::Mish,
        Activation::LogSigmoid,
        Activation::TanhShrink,
        Activation::Squareplus,
        Activation::SparsePlus,
        Activation::HardShrink,
        Activation::SoftShrink,
        Activation::GeluApproximate,
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
            Activation::Elu => "elu",
            Activation::Selu => "selu",
            Activation::Celu => "celu",
            Activation::Softplus => "softplus",
            Activation::Softsign => "softsign",
            Activation::Relu6 => "relu6",
            Activation::LeakyRelu => "leaky_relu",
            Activation::HardSigmoid => "hard_sigmoid",
            Activation::HardSilu => "hard_silu",
            Activation::HardTanh => "hard_tanh",
            Activation::Exponential => "exponential",
            Activation::Mish => "mish",
            Activation::LogSigmoid => "log_sigmoid",
            Activation::TanhShrink => "tanh_shrink",
            Activation::Squareplus => "squareplus",
            Activation::SparsePlus => "sparse_plus",
            Activation::HardShrink => "hard_shrink",
            Activation::SoftShrink => "soft_shrink",
            Activation::GeluApproximate => "gelu_approximate",
        }
    }
}

impl std::str::FromStr for Activation {
    type Err = Error;

    /// Keras's activation names (`"relu"`, `"gelu"`, ...).
    fn from_str(s: &str) -> Result<Self> {
        // Keras's aliases.
        let s = match s {
            "swish" => "silu",
            "hard_swish" => "hard_silu",
            other => other,
        };
        Activation::ALL
            .into_iter()
            .find(|a| a.keras_name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Activation::ALL.iter().map(|a| a.keras_name()).collect();
                Error::Unsupported(format!(
                    "activation '{s}'; the kernels apply {} (softmax, log_softmax, glu, \
                     sparsemax and threshold are not element-wise, or take arguments)",
                    names.join(", ")
                ))
            })
    }
}

/// An element-wise op of two tensors of one shape (Keras's `Add` and
/// `Multiply`). The values are the `OP` override of shaders/add.wgsl.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Binary {
    /// `a + b`.
    Add = 0,
    /// `a * b`.
    Multiply = 1,
}

/// The two shapes of every Dense kernel, which also fix the order in which
/// it sums (the CPU twins follow it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DenseShape {
    /// Few rows (decoding): one invocation per row and eight outputs,
    /// memory bound; sums in four lanes, lane l taking k = l (mod 4) (two
    /// lanes in f64), then `(l0 + l1) + (l2 + l3)`.
    MatVec,
    /// Many rows (prefill): 64 rows x 32 outputs per workgroup from tiles
    /// in workgroup memory; sums k in order.
    Tiled,
}

impl DenseShape {
    /// Up to this many rows, Dense runs the matrix-vector shape (it
    /// streams each weight once per row); above, the tiled shape, which
    /// reuses each staged weight for 64 rows.
    pub const MATVEC_MAX_ROWS: usize = 8;

    /// The shape routing gives `rows` rows.
    pub const fn for_rows(rows: usize) -> DenseShape {
        if rows <= Self::MATVEC_MAX_ROWS {
            DenseShape::MatVec
        } else {
            DenseShape::Tiled
        }
    }

    /// Both shapes.
    pub const ALL: [DenseShape; 2] = [DenseShape::MatVec, DenseShape::Tiled];
}

/// The value dimensions one invocation accumulates (`PAIRS` x 2 x 64).
const MAX_VALUE_DIM: usize = 512;

/// The shape of an attention: `batch` sequences of `tq` queries and `tk`
/// keys, `heads` query heads of `key_dim` (queries and keys) and
/// `value_dim` (values) features, reading `kv_heads` heads of keys and
/// values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AttentionShape {
    /// Sequences.
    pub batch: usize,
    /// Queries per sequence.
    pub tq: usize,
    /// Keys (and values) per sequence.
    pub tk: usize,
    /// Heads of the queries (and of the output).
    pub heads: usize,
    /// Heads of the keys and values (grouped-query attention; 1 is
    /// multi-query): a divisor of `heads`, query head n reading key and
    /// value head `n / (heads / kv_heads)` (KerasHub's `ops.repeat(key,
    /// groups, axis=2)`, Gemma's `[kv_heads, groups]` reshape). `heads`
    /// is MultiHeadAttention's.
    pub kv_heads: usize,
    /// Features of a query or key per head.
    pub key_dim: usize,
    /// Features of a value per head.
    pub value_dim: usize,
    /// The logits' scale (Keras: `1 / sqrt(key_dim)`).
    pub scale: f32,
    /// A query attends to no key after its own position.
    pub causal: bool,
    /// Keras's explicit path (a MultiHeadAttention with `dropout > 0`,
    /// which skips `dot_product_attention`): the query scaled and the
    /// scores rounded in the compute dtype, then the Softmax layer's masked
    /// softmax (per-op rounding, a fully masked row zero).
    pub explicit: bool,
    /// The mask is `[batch, tk]`, one row of keys per sequence shared by
    /// all its queries (KerasHub's padding mask), instead of `[batch tq,
    /// tk]`. With `causal`, a key is kept where both keep it (KerasHub's
    /// `ops.minimum(padding, causal)`).
    pub key_mask: bool,
    /// With `explicit`: the Softmax layer runs in float32 (KerasHub's Gemma
    /// attention, `Softmax(dtype="float32")`): masked scores -1e9, the max,
    /// exp, sum and division in f32 without the per-op roundings, masked
    /// probabilities 0, and only the probability rounded to the compute
    /// dtype.
    pub softmax_f32: bool,
}

impl AttentionShape {
    /// Checks what the kernel can run.
    pub fn check(&self) -> Result<()> {
        crate::size::nonzero(
            &[
                ("batch", self.batch),
                ("queries", self.tq),
                ("keys", self.tk),
                ("heads", self.heads),
                ("kv_heads", self.kv_heads),
                ("key_dim", self.key_dim),
                ("value_dim", self.value_dim),
            ],
            "an attention",
        )?;
        if !self.value_dim.is_multiple_of(2)
            || self.value_dim > MAX_VALUE_DIM
            || self.key_dim > 65_535
        {
            return Err(Error::Unsupported(format!(
                "attention heads of key_dim {} and value_dim {}: the kernel takes an even \
                 value_dim up to {MAX_VALUE_DIM} and a key_dim up to 65535",
                self.key_dim, self.value_dim
            )));
        }
        if !self.heads.is_multiple_of(self.kv_heads) {
            return Err(Error::Shape(format!(
                "an attention of {} query heads over {} key/value heads; kv_heads must divide \
                 heads (each key/value head serves heads / kv_heads query heads)",
                self.heads, self.kv_heads
            )));
        }
        // The kernel's uniform packs both counts into one word.
        if self.heads > 65_535 {
            return Err(Error::Unsupported(format!(
                "an attention of {} heads; the kernel takes up to 65535",
                self.heads
            )));
        }
        if self.causal && self.tq != self.tk {
            return Err(Error::Unsupported(format!(
                "a causal mask over {} queries and {} keys; they must be as many",
                self.tq, self.tk
            )));
        }
        if self.softmax_f32 && !self.explicit {
            return Err(Error::InvalidArgument(
                "an attention with softmax_f32 but not explicit: the float32 Softmax is a \
                 variant of Keras's explicit path; set explicit too"
                    .to_owned(),
            ));
        }
        Ok(())
    }

    /// The explicit path's masked score: Keras's large negative number in
    /// the Softmax layer's dtype (the compute dtype `format`, or float32
    /// with [`AttentionShape::softmax_f32`]).
    pub(crate) fn masked_score(&self, format: crate::format::StorageFormat) -> f32 {
        if self.softmax_f32 {
            large_negative(crate::format::StorageFormat::F32)
        } else {
            large_negative(format)
        }
    }
}

/// The shape of a rotary position embedding (KerasHub's RotaryEmbedding)
/// over x `[batch seq, heads head_dim]`: row r is token position `start + r
/// % seq` of sequence `r / seq`, and every head is rotated over all its
/// `head_dim` features (rotary_dim = head_dim).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RopeShape {
    /// Sequences.
    pub batch: usize,
    /// Tokens per sequence.
    pub seq: usize,
    /// Heads per token.
    pub heads: usize,
    /// Features per head (even: the two halves rotate together).
    pub head_dim: usize,
    /// The position of each sequence's first token (a cache's length).
    pub start: usize,
}

impl RopeShape {
    /// Checks the sizes: none zero, `head_dim` even.
    pub fn check(&self) -> Result<()> {
        crate::size::nonzero(
            &[
                ("batch", self.batch),
                ("seq", self.seq),
                ("heads", self.heads),
                ("head_dim", self.head_dim),
            ],
            "a rotary embedding",
        )?;
        if !self.head_dim.is_multiple_of(2) {
            return Err(Error::Shape(format!(
                "a rotary embedding of head_dim {}; it rotates two halves of each head, so \
                 head_dim must be even",
                self.head_dim
            )));
        }
        Ok(())
    }

    /// Rows and values per row of x (`batch * seq`, `heads * head_dim`),
    /// `Err` where they overflow.
    pub(crate) fn x_dims(&self) -> Result<(usize, usize)> {
        let what = || format!("a rotary embedding of {self:?}");
        Ok((
            crate::size::mul(self.batch, self.seq, &what)?,
            crate::size::mul(self.heads, self.head_dim, &what)?,
        ))
    }
}

/// Keras's `_large_negative_number` for a Softmax mask, rounded to
/// `format`: -3e4 in float16, -1e9 otherwise.
pub fn large_negative(format: crate::format::StorageFormat) -> f32 {
    let v = if format == crate::format::StorageFormat::F16 {
        -3e4
    } else {
        -1e9
    };
    format.round(v) as f32
}

/// What a position embedding needs, for the GPU and its twin: a float
/// table (`mode` 0), whole sequences of `seq` rows, positions `start..start
/// + seq` in the table's `vocab` rows.
pub(crate) fn check_positions(
    mode: u32,
    vocab: usize,
    rows: usize,
    seq: usize,
    start: usize,
) -> Result<()> {
    if mode != 0 {
        return Err(Error::Unsupported(
            "a PositionEmbedding from a quantized table; its table is float (Keras never \
             quantizes PositionEmbedding)"
                .to_owned(),
        ));
    }
    if seq == 0 || !rows.is_multiple_of(seq) {
        return Err(Error::Shape(format!(
            "a position embedding of {rows} rows in sequences of {seq}; the rows must be whole \
             sequences (batch x seq)"
        )));
    }
    if start.checked_add(seq).is_none_or(|end| end > vocab) {
        return Err(Error::Shape(format!(
            "a position embedding of positions {start} to {start} + {seq} - 1; the table has \
             {vocab} positions (its sequence_length)"
        )));
    }
    Ok(())
}

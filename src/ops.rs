// SPDX-License-Identifier: MIT OR Apache-2.0
//! What the kernels compute, as host ideas shared by the GPU runtime, its
//! CPU twins and the routing: the activations a Dense layer applies, and
//! the two shapes of a Dense kernel, and the shape of an attention.

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
}

impl Activation {
    /// Every activation.
    pub const ALL: [Activation; 24] = [
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
/// keys, `heads` heads of `key_dim` (queries and keys) and `value_dim`
/// (values) features.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AttentionShape {
    /// Sequences.
    pub batch: usize,
    /// Queries per sequence.
    pub tq: usize,
    /// Keys (and values) per sequence.
    pub tk: usize,
    /// Heads.
    pub heads: usize,
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
        if self.causal && self.tq != self.tk {
            return Err(Error::Unsupported(format!(
                "a causal mask over {} queries and {} keys; they must be as many",
                self.tq, self.tk
            )));
        }
        Ok(())
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

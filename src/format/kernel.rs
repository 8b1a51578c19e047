// SPDX-License-Identifier: MIT OR Apache-2.0
//! A Dense layer's kernel as Keras stores it ([`DenseKernel`]): float, or
//! quantized to int8, int4 (per output column or grouped with zero points)
//! or float8 (a float kernel with per-tensor scales). Made from Keras's own
//! variables as they appear in a `.keras` file ([`DenseKernel::from_keras`],
//! Dense's and MultiHeadAttention's EinsumDense shapes, int4 packed along
//! the outputs as Keras >= 3.14 writes it or along the inputs as older
//! Keras did), or from float weights through the Keras-exact quantizers of
//! [`crate::quant`] ([`DenseKernel::quantize`]). The GPU upload and the CPU
//! twins take the same description, so a loaded kernel is checked against
//! its twin without its float weights.

use std::num::NonZeroU32;

use crate::error::{Error, Result};
use crate::format::HostFloat;
use crate::quant::abs_max::{IntRange, quantize_kernel_per_column};
use crate::quant::float8::{Float8, Float8Scales};
use crate::quant::int4::{quantize_grouped, unpack_int4_columns};
use crate::size;

/// How a Dense kernel's weights are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WeightFormat {
    /// Float weights, stored in the compute dtype's format.
    Float,
    /// int8 per output column with Keras's `kernel_scale` (a multiplier).
    /// With `quantized_inputs` the activations are quantized per row too
    /// (Keras's default, `dot4I8Packed` on the GPU); without, they stay in
    /// the compute dtype (`Int8QuantizationConfig(activation_quantizer=None)`).
    Int8 {
        /// Whether the activations are quantized to int8.
        quantized_inputs: bool,
    },
    /// int4 per output column (`block: None`) or in groups of `block`
    /// inputs with zero points. The activations stay in the compute dtype
    /// (Keras >= 3.14's default), or with `quantized_inputs` (per channel
    /// only) are quantized per row to int8 as int8 does, the product an
    /// integer one (Keras before 3.14, and `Int4QuantizationConfig` with an
    /// activation quantizer).
    Int4 {
        /// The group size along the inputs, or `None` for per channel.
        block: Option<NonZeroU32>,
        /// Whether the activations are quantized to int8 (per channel only).
        quantized_inputs: bool,
    },
    /// float8 codes (Keras: e4m3fn; e5m2 is a storage choice) with
    /// per-tensor scales; the activations are quantize-dequantized.
    Float8(Float8),
}

impl WeightFormat {
    /// A short name: `float`, `int8`, `int8 weight-only`, `int4`,
    /// `int4/128`, `float8`, `float8 e5m2`.
    pub fn name(self) -> String {
        match self {
            WeightFormat::Float => "float".to_owned(),
            WeightFormat::Int8 {
                quantized_inputs: true,
            } => "int8".to_owned(),
            WeightFormat::Int8 {
                quantized_inputs: false,
            } => "int8 weight-only".to_owned(),
            WeightFormat::Int4 {
                block: None,
                quantized_inputs: false,
            } => "int4".to_owned(),
            WeightFormat::Int4 {
                block: None,
                quantized_inputs: true,
            } => "int4 with int8 activations".to_owned(),
            WeightFormat::Int4 { block: Some(b), .. } => format!("int4/{b}"),
            WeightFormat::Float8(Float8::E4M3Fn) => "float8".to_owned(),
            WeightFormat::Float8(Float8::E5M2) => "float8 e5m2".to_owned(),
        }
    }
}

/// Float values kept in the type they came in.
#[derive(Debug, Clone, PartialEq)]
pub enum FloatValues {
    /// f32 values.
    F32(Vec<f32>),
    /// f64 values (a `float64` policy's variables).
    F64(Vec<f64>),
}

impl FloatValues {
    /// How many values.
    pub fn len(&self) -> usize {
        match self {
            FloatValues::F32(v) => v.len(),
            FloatValues::F64(v) => v.len(),
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Value `i` as f64 (exact).
    pub fn get(&self, i: usize) -> f64 {
        match self {
            FloatValues::F32(v) => f64::from(v[i]),
            FloatValues::F64(v) => v[i],
        }
    }

    /// Every value as f32 (f64 values rounded to nearest).
    pub fn to_f32(&self) -> Vec<f32> {
        match self {
            FloatValues::F32(v) => v.clone(),
            FloatValues::F64(v) => v.iter().map(|&x| x as f32).collect(),
        }
    }
}

/// The weights of a [`DenseKernel`], by format, in Keras's `[k, n]` order
/// (row-major: `[i * n + j]` is input i, output j).
#[derive(Debug, Clone, PartialEq)]
pub enum KernelValues {
    /// Float weights `[k, n]`.
    Float(FloatValues),
    /// int8 weights `[k, n]` and Keras's `kernel_scale` `[n]` (a
    /// multiplier: `q = round(w * scale)`).
    Int8 {
        /// The quantized weights, in [-127, 127].
        q: Vec<i8>,
        /// One scale per output.
        scale: Vec<f32>,
        /// Whether the activations are quantized too.
        quantized_inputs: bool,
    },
    /// int4 weights `[k, n]` (unpacked, in [-8, 7]) with scales: per output
    /// `[n]` (a multiplier, `y = (x . q) / scale`), or per group `[groups,
    /// n]` with zero points (dequantized `(q - zero) * scale`).
    Int4 {
        /// The quantized weights, unpacked.
        q: Vec<i8>,
        /// `[n]` per channel, `[groups, n]` grouped.
        scale: Vec<f32>,
        /// `[groups, n]` when grouped.
        zero: Option<Vec<i8>>,
        /// The group size along the inputs, when grouped.
        block: Option<NonZeroU32>,
        /// Whether the activations are quantized to int8 (per channel only).
        quantized_inputs: bool,
    },
    /// float8: Keras keeps the float kernel `[k, n]` and per-tensor scales;
    /// the codes are made at upload, in the compute dtype.
    Float8 {
        /// The float kernel.
        w: Vec<f32>,
        /// Keras's `inputs_scale` and `kernel_scale`.
        scales: Float8Scales,
        /// The weights' 8-bit format.
        format: Float8,
    },
}

/// A Dense layer's kernel `[k inputs, n outputs]` and bias, as Keras stores
/// them. Every constructor checks the shapes; the fields cannot disagree.
#[derive(Debug, Clone, PartialEq)]
pub struct DenseKernel {
    k: usize,
    n: usize,
    values: KernelValues,
    bias: Option<FloatValues>,
}

impl DenseKernel {
    /// A float kernel `w` (`[k, n]`, Keras's layout) and optional bias `[n]`.
    pub fn float<T: HostFloat>(
        w: &[T],
        bias: Option<&[T]>,
        (k, n): (usize, usize),
    ) -> Result<Self> {
        check_lengths(w.len(), bias.map(<[T]>::len), (k, n))?;
        Ok(DenseKernel {
            k,
            n,
            values: KernelValues::Float(T::float_values(w)),
            bias: bias.map(T::float_values),
        })
    }

    /// Float weights quantized to `format` as Keras's `Dense.quantize`
    /// does (int8 per output column; int4 per channel or in groups with
    /// zero points). float8 keeps the floats, with the scales of a freshly
    /// quantized layer (1.0); see [`DenseKernel::float8`] for others.
    pub fn quantize<T: HostFloat>(
        format: WeightFormat,
        w: &[T],
        bias: Option<&[T]>,
        (k, n): (usize, usize),
    ) -> Result<Self> {
        check_lengths(w.len(), bias.map(<[T]>::len), (k, n))?;
        let w32 = || -> Vec<f32> { w.iter().map(|v| v.to_f64() as f32).collect() };
        let values = match format {
            WeightFormat::Float => KernelValues::Float(T::float_values(w)),
            WeightFormat::Int8 { quantized_inputs } => {
                let (q, scale) = quantize_kernel_per_column(&w32(), k, n, IntRange::INT8)?;
                KernelValues::Int8 {
                    q,
                    scale,
                    quantized_inputs,
                }
            }
            WeightFormat::Int4 {
                block: None,
                quantized_inputs,
            } => {
                let (q, scale) = quantize_kernel_per_column(&w32(), k, n, IntRange::INT4)?;
                KernelValues::Int4 {
                    q,
                    scale,
                    zero: None,
                    block: None,
                    quantized_inputs,
                }
            }
            WeightFormat::Int4 {
                block: Some(b),
                quantized_inputs,
            } => {
                check_grouped_inputs(quantized_inputs)?;
                let g = quantize_grouped(&w32(), k, n, b.get() as usize)?;
                KernelValues::Int4 {
                    q: g.q,
                    scale: g.scale,
                    zero: Some(g.zero),
                    block: Some(b),
                    quantized_inputs: false,
                }
            }
            WeightFormat::Float8(format) => KernelValues::Float8 {
                w: w32(),
                scales: Float8Scales::default(),
                format,
            },
        };
        // Float weights keep their bias's type (f64 for a float64 layer);
        // a quantized layer's is float32, as Keras keeps it.
        let bias = match values {
            KernelValues::Float(_) => bias.map(T::float_values),
            _ => bias.map(f32_bias),
        };
        Ok(DenseKernel { k, n, values, bias })
    }

    /// This float kernel quantized to `format` by Keras's quantizers
    /// ([`DenseKernel::quantize`]); `Err` for a kernel already quantized.
    pub fn requantize(&self, format: WeightFormat) -> Result<Self> {
        let KernelValues::Float(w) = &self.values else {
            return Err(Error::InvalidArgument(format!(
                "a {} kernel, which is quantized already, cannot be quantized to {}",
                self.format().name(),
                format.name()
            )));
        };
        let bias = self.bias.as_ref().map(FloatValues::to_f32);
        DenseKernel::quantize(format, &w.to_f32(), bias.as_deref(), (self.k, self.n))
    }

    /// This float kernel, read with `axes`, quantized to `format` as Keras
    /// quantizes that layer ([`DenseKernel::quantize_keras_order`]).
    pub fn requantize_as(&self, format: WeightFormat, axes: KernelAxes) -> Result<Self> {
        let (KernelAxes::HeadsFirst { head_dim, .. }, KernelValues::Float(w)) =
            (axes, &self.values)
        else {
            return self.requantize(format);
        };
        // Back to Keras's [heads, k, head_dim] order.
        let (k, n) = (self.k, self.n);
        let rows = w.to_f32();
        let keras: Vec<f32> = (0..k * n)
            .map(|idx| {
                let (h, rest) = (idx / (k * head_dim), idx % (k * head_dim));
                let (i, d) = (rest / head_dim, rest % head_dim);
                rows[i * n + h * head_dim + d]
            })
            .collect();
        let bias = self.bias.as_ref().map(FloatValues::to_f32);
        DenseKernel::quantize_keras_order(format, &keras, bias.as_deref(), (k, n), axes)
    }

    /// This kernel with its activations quantized per row or not (an int8
    /// or per-channel int4 kernel; a Keras Embedding's table read as the
    /// Dense kernel of a ReversibleEmbedding's reverse projection, whose
    /// inputs Keras quantizes). Other formats are returned as they are.
    pub fn with_quantized_inputs(&self, quantized: bool) -> Self {
        let mut out = self.clone();
        match &mut out.values {
            KernelValues::Int8 {
                quantized_inputs, ..
            }
            | KernelValues::Int4 {
                block: None,
                quantized_inputs,
                ..
            } => *quantized_inputs = quantized,
            _ => {}
        }
        out
    }

    /// A float8 kernel: float weights `[k, n]`, Keras's `inputs_scale` and
    /// `kernel_scale` (each positive and finite), weights stored in `format`.
    pub fn float8<T: HostFloat>(
        w: &[T],
        bias: Option<&[T]>,
        (k, n): (usize, usize),
        scales: Float8Scales,
        format: Float8,
    ) -> Result<Self> {
        check_lengths(w.len(), bias.map(<[T]>::len), (k, n))?;
        check_float8_scales(scales)?;
        Ok(DenseKernel {
            k,
            n,
            values: KernelValues::Float8 {
                w: w.iter().map(|v| v.to_f64() as f32).collect(),
                scales,
                format,
            },
            bias: bias.map(f32_bias),
        })
    }

    /// A kernel from Keras's variables as a `.keras` file stores them, for
    /// a layer of `k` inputs and `n` outputs whose weights are in `format`
    /// (the layer's quantization mode, from its policy and config) and whose
    /// kernel has the `axes` of its layer class. Every variable's shape and
    /// type is checked against what Keras 3.15.1 writes (section 3 of
    /// `shared/spec/keras-models.md`): an unexpected one is an `Err` naming
    /// it, what it is and what was expected.
    pub fn from_keras(
        format: WeightFormat,
        (k, n): (usize, usize),
        axes: KernelAxes,
        vars: &KerasDenseVariables,
    ) -> Result<Self> {
        size::nonzero(&[("k", k), ("n", n)], "a Dense kernel")?;
        size::mul(k, n, &|| format!("a kernel of {k} x {n}"))?;
        let expect = Expect { format, k, n, axes };
        let kernel_shape = axes.kernel_shape(k, n)?;
        let bias = match &vars.bias {
            Some(b) => {
                expect.shape("bias", b, &axes.bias_shape(n)?)?;
                Some(expect.floats("bias", b)?)
            }
            None => None,
        };
        let values = match format {
            WeightFormat::Float => {
                expect.shape("kernel", &vars.kernel, &kernel_shape)?;
                expect.absent(&[
                    ("kernel_scale", &vars.kernel_scale),
                    ("kernel_zero", &vars.kernel_zero),
                    ("g_idx", &vars.g_idx),
                    ("inputs_scale", &vars.inputs_scale),
                ])?;
                KernelValues::Float(expect.floats("kernel", &vars.kernel)?)
            }
            WeightFormat::Int8 { quantized_inputs } => {
                expect.shape("kernel", &vars.kernel, &kernel_shape)?;
                expect.absent(&[
                    ("kernel_zero", &vars.kernel_zero),
                    ("g_idx", &vars.g_idx),
                    ("inputs_scale", &vars.inputs_scale),
                ])?;
                let scale = expect.required("kernel_scale", &vars.kernel_scale)?;
                expect.shape("kernel_scale", scale, &axes.scale_shape(n)?)?;
                KernelValues::Int8 {
                    q: expect.int8("kernel", &vars.kernel, IntRange::INT8)?,
                    scale: expect.scales("kernel_scale", scale)?,
                    quantized_inputs,
                }
            }
            WeightFormat::Int4 {
                block,
                quantized_inputs,
            } => expect.int4(vars, block, quantized_inputs)?,
            WeightFormat::Float8(format8) => {
                expect.shape("kernel", &vars.kernel, &kernel_shape)?;
                expect.absent(&[("kernel_zero", &vars.kernel_zero), ("g_idx", &vars.g_idx)])?;
                let scalar = |name: &str, v: &Option<Variable>| -> Result<f32> {
                    let v = expect.required(name, v)?;
                    expect.shape(name, v, &[])?;
                    Ok(expect.scales(name, v)?[0])
                };
                let scales = Float8Scales {
                    inputs: scalar("inputs_scale", &vars.inputs_scale)?,
                    kernel: scalar("kernel_scale", &vars.kernel_scale)?,
                };
                check_float8_scales(scales)?;
                KernelValues::Float8 {
                    w: expect.floats("kernel", &vars.kernel)?.to_f32(),
                    scales,
                    format: format8,
                }
            }
        };
        let values = match axes {
            KernelAxes::HeadsFirst {
                heads,
                head_dim,
                compute,
            } => heads_first_to_rows(values, (k, n), heads, head_dim, compute)?,
            _ => values,
        };
        Ok(DenseKernel { k, n, values, bias })
    }

    /// Float weights `w` in Keras's order for `axes` (`[heads, k,
    /// head_dim]` for [`KernelAxes::HeadsFirst`], else `[k, n]`) quantized
    /// to `format` as Keras's `EinsumDense.quantize` does: int4 on the
    /// kernel flattened by a plain reshape, then for more than one head
    /// first dequantized as [`KernelAxes::HeadsFirst`] says.
    pub fn quantize_keras_order(
        format: WeightFormat,
        w: &[f32],
        bias: Option<&[f32]>,
        (k, n): (usize, usize),
        axes: KernelAxes,
    ) -> Result<Self> {
        let KernelAxes::HeadsFirst {
            heads,
            head_dim,
            compute,
        } = axes
        else {
            return DenseKernel::quantize(format, w, bias, (k, n));
        };
        if matches!(format, WeightFormat::Int4 { .. }) {
            let flat = DenseKernel::quantize(format, w, bias, (k, n))?;
            let values = heads_first_to_rows(flat.values, (k, n), heads, head_dim, compute)?;
            return Ok(DenseKernel { values, ..flat });
        }
        let rows = permute_heads_first(w, (k, n), heads, head_dim);
        DenseKernel::quantize(format, &rows, bias, (k, n))
    }

    /// Inputs (rows of W).
    pub fn k(&self) -> usize {
        self.k
    }

    /// Outputs (units).
    pub fn n(&self) -> usize {
        self.n
    }

    /// The weights.
    pub fn values(&self) -> &KernelValues {
        &self.values
    }

    /// The bias `[n]`, if the layer has one.
    pub fn bias(&self) -> Option<&FloatValues> {
        self.bias.as_ref()
    }

    /// How the weights are stored.
    pub fn format(&self) -> WeightFormat {
        match &self.values {
            KernelValues::Float(_) => WeightFormat::Float,
            KernelValues::Int8 {
                quantized_inputs, ..
            } => WeightFormat::Int8 {
                quantized_inputs: *quantized_inputs,
            },
            KernelValues::Int4 {
                block,
                quantized_inputs,
                ..
            } => WeightFormat::Int4 {
                block: *block,
                quantized_inputs: *quantized_inputs,
            },
            KernelValues::Float8 { format, .. } => WeightFormat::Float8(*format),
        }
    }

    /// Groups along k of grouped int4 weights (1 for every other format).
    pub fn groups(&self) -> usize {
        match &self.values {
            KernelValues::Int4 { block: Some(b), .. } => self.k.div_ceil(b.get() as usize),
            _ => 1,
        }
    }
}

/// The axes of a kernel as its Keras layer class stores it; every axis
/// before the outputs' is an input axis, so the kernel is `[k, n]` in
/// row-major order whatever its rank.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelAxes {
    /// `Dense`: kernel `[k, n]`, bias `[n]`.
    Dense,
    /// `EinsumDense("abc,cde->abde")`, MultiHeadAttention's query, key and
    /// value: kernel `[k, heads, head_dim]` (n = heads x head_dim), bias
    /// `[heads, head_dim]`.
    HeadsOut {
        /// Attention heads.
        heads: usize,
        /// Values per head.
        head_dim: usize,
    },
    /// `EinsumDense("abcd,cde->abe")`, MultiHeadAttention's output:
    /// kernel `[heads, head_dim, n]` (k = heads x head_dim), bias `[n]`.
    HeadsIn {
        /// Attention heads.
        heads: usize,
        /// Values per head.
        head_dim: usize,
    },
    /// `EinsumDense("btd,ndh->btnh")`, Gemma's query, key and value: kernel
    /// `[heads, k, head_dim]` (n = heads x head_dim, read into `[k, n]`),
    /// bias `[heads, head_dim]`. Keras's int4 flattens the kernel by a plain
    /// reshape to `[k, n]`, which for more than one head mixes the heads
    /// into the rows; such a kernel is dequantized as Keras's int4 call
    /// does (`(q - zero) * scale`, the scale read in `compute`) and held as
    /// float.
    HeadsFirst {
        /// Attention heads.
        heads: usize,
        /// Values per head.
        head_dim: usize,
        /// The layer's compute format.
        compute: crate::format::StorageFormat,
    },
    /// An `EinsumDense` over the last axis (`"abc,cd->abd"`): kernel
    /// `[k, n]`, bias `[n]`, int8 scales `[1; lead] + [n]` (the output's
    /// rank, as Keras keeps it).
    Einsum {
        /// The output's axes before the last (the batch's included).
        lead: usize,
    },
}

impl KernelAxes {
    /// The kernel's shape for `k` inputs and `n` outputs.
    pub fn kernel_shape(self, k: usize, n: usize) -> Result<Vec<usize>> {
        match self {
            KernelAxes::Dense | KernelAxes::Einsum { .. } => Ok(vec![k, n]),
            KernelAxes::HeadsOut { heads, head_dim } => {
                self.check_heads(n, "outputs")?;
                Ok(vec![k, heads, head_dim])
            }
            KernelAxes::HeadsIn { heads, head_dim } => {
                self.check_heads(k, "inputs")?;
                Ok(vec![heads, head_dim, n])
            }
            KernelAxes::HeadsFirst {
                heads, head_dim, ..
            } => {
                self.check_heads(n, "outputs")?;
                Ok(vec![heads, k, head_dim])
            }
        }
    }

    /// The bias's shape for `n` outputs.
    pub fn bias_shape(self, n: usize) -> Result<Vec<usize>> {
        match self {
            KernelAxes::HeadsOut { heads, head_dim }
            | KernelAxes::HeadsFirst {
                heads, head_dim, ..
            } => {
                self.check_heads(n, "outputs")?;
                Ok(vec![heads, head_dim])
            }
            _ => Ok(vec![n]),
        }
    }

    /// The shape of int8's per-output `kernel_scale` for `n` outputs:
    /// Dense `[n]`; EinsumDense keeps the output's rank with ones on the
    /// batch and sequence axes (`[1, 1, heads, head_dim]`, `[1, 1, n]`).
    /// (int4 flattens every kernel to `[k, n]`, its scales `[n]`.)
    pub fn scale_shape(self, n: usize) -> Result<Vec<usize>> {
        match self {
            KernelAxes::Dense => Ok(vec![n]),
            KernelAxes::HeadsOut { heads, head_dim }
            | KernelAxes::HeadsFirst {
                heads, head_dim, ..
            } => {
                self.check_heads(n, "outputs")?;
                Ok(vec![1, 1, heads, head_dim])
            }
            KernelAxes::HeadsIn { .. } => Ok(vec![1, 1, n]),
            KernelAxes::Einsum { lead } => {
                let mut shape = vec![1; lead];
                shape.push(n);
                Ok(shape)
            }
        }
    }

    fn check_heads(self, features: usize, what: &str) -> Result<()> {
        let (KernelAxes::HeadsOut { heads, head_dim }
        | KernelAxes::HeadsIn { heads, head_dim }
        | KernelAxes::HeadsFirst {
            heads, head_dim, ..
        }) = self
        else {
            return Ok(());
        };
        if heads.checked_mul(head_dim) != Some(features) {
            return Err(Error::Shape(format!(
                "{heads} heads of {head_dim} values do not make the layer's {features} {what}"
            )));
        }
        Ok(())
    }
}

/// One variable as Keras stores it: its shape and values (row-major).
#[derive(Debug, Clone, Copy)]
pub struct Variable<'a> {
    /// Its shape (`[]` for a scalar).
    pub shape: &'a [usize],
    /// Its values.
    pub values: VariableValues<'a>,
}

/// A variable's values, in the type Keras stored them in.
#[derive(Debug, Clone, Copy)]
pub enum VariableValues<'a> {
    /// float32.
    F32(&'a [f32]),
    /// float64.
    F64(&'a [f64]),
    /// int8.
    I8(&'a [i8]),
}

impl VariableValues<'_> {
    fn len(&self) -> usize {
        match self {
            VariableValues::F32(v) => v.len(),
            VariableValues::F64(v) => v.len(),
            VariableValues::I8(v) => v.len(),
        }
    }

    fn type_name(&self) -> &'static str {
        match self {
            VariableValues::F32(_) => "float32",
            VariableValues::F64(_) => "float64",
            VariableValues::I8(_) => "int8",
        }
    }
}

/// A Dense or EinsumDense layer's variables, by Keras's names; absent ones
/// are `None` (Keras skips them in its variable list, see
/// `shared/spec/keras-models.md` section 2).
#[derive(Debug, Clone, Copy)]
pub struct KerasDenseVariables<'a> {
    /// `kernel` (int8 for int8; packed int8 for int4; float otherwise).
    pub kernel: Variable<'a>,
    /// `bias`.
    pub bias: Option<Variable<'a>>,
    /// `kernel_scale`.
    pub kernel_scale: Option<Variable<'a>>,
    /// `kernel_zero` (grouped int4).
    pub kernel_zero: Option<Variable<'a>>,
    /// `g_idx` (grouped int4: the group of each input row).
    pub g_idx: Option<Variable<'a>>,
    /// `inputs_scale` (float8).
    pub inputs_scale: Option<Variable<'a>>,
}

/// What a layer's variables must be, for the messages of [`DenseKernel::from_keras`].
struct Expect {
    format: WeightFormat,
    k: usize,
    n: usize,
    axes: KernelAxes,
}

impl Expect {
    fn layer(&self) -> String {
        let class = match self.axes {
            KernelAxes::Dense => "Dense",
            KernelAxes::HeadsOut { .. }
            | KernelAxes::HeadsIn { .. }
            | KernelAxes::HeadsFirst { .. }
            | KernelAxes::Einsum { .. } => "EinsumDense",
        };
        format!(
            "a {class} {} kernel of {} inputs and {} outputs",
            self.format.name(),
            self.k,
            self.n
        )
    }

    fn shape(&self, name: &str, v: &Variable, want: &[usize]) -> Result<()> {
        let count = size::product(v.shape, name)?;
        if v.shape != want || count != v.values.len() {
            return Err(Error::Shape(format!(
                "Keras variable '{name}' has shape {:?} ({} {} values), expected {want:?} for {}",
                v.shape,
                v.values.len(),
                v.values.type_name(),
                self.layer()
            )));
        }
        Ok(())
    }

    fn required<'v, 'a>(
        &self,
        name: &str,
        v: &'v Option<Variable<'a>>,
    ) -> Result<&'v Variable<'a>> {
        v.as_ref().ok_or_else(|| {
            Error::Shape(format!(
                "Keras variable '{name}' is missing: {} has one",
                self.layer()
            ))
        })
    }

    fn absent(&self, vars: &[(&str, &Option<Variable>)]) -> Result<()> {
        match vars.iter().find(|(_, v)| v.is_some()) {
            Some((name, _)) => Err(Error::Shape(format!(
                "Keras variable '{name}' was given, but {} has none",
                self.layer()
            ))),
            None => Ok(()),
        }
    }

    fn wrong_type(&self, name: &str, v: &Variable, want: &str) -> Error {
        Error::Shape(format!(
            "Keras variable '{name}' holds {}, expected {want} for {}",
            v.values.type_name(),
            self.layer()
        ))
    }

    fn floats(&self, name: &str, v: &Variable) -> Result<FloatValues> {
        match v.values {
            VariableValues::F32(x) => Ok(FloatValues::F32(x.to_vec())),
            VariableValues::F64(x) => Ok(FloatValues::F64(x.to_vec())),
            VariableValues::I8(_) => Err(self.wrong_type(name, v, "float32 or float64")),
        }
    }

    /// Scales: float32, positive and finite (the kernels divide by them or
    /// multiply by them; a zero or NaN scale is a corrupt file).
    fn scales(&self, name: &str, v: &Variable) -> Result<Vec<f32>> {
        let VariableValues::F32(x) = v.values else {
            return Err(self.wrong_type(name, v, "float32"));
        };
        if let Some((i, s)) = x
            .iter()
            .enumerate()
            .find(|(_, s)| !(s.is_finite() && **s > 0.0))
        {
            return Err(Error::Shape(format!(
                "Keras variable '{name}'[{i}] is {s}: scales of {} must be positive and finite",
                self.layer()
            )));
        }
        Ok(x.to_vec())
    }

    fn int8(&self, name: &str, v: &Variable, range: IntRange) -> Result<Vec<i8>> {
        let VariableValues::I8(x) = v.values else {
            return Err(self.wrong_type(name, v, "int8"));
        };
        check_range(name, x, range, &self.layer())?;
        Ok(x.to_vec())
    }

    /// int4: the packed kernel in either layout, scales, and for grouped
    /// weights zero points and `g_idx`. Keras >= 3.14 flattens every kernel
    /// to `[k, n]` (EinsumDense's too) and packs it along the outputs,
    /// `[k, ceil(n / 2)]`; older Keras packed Dense kernels along the
    /// inputs, `[ceil(k / 2), n]`. The shapes differ but for a 1 x 1 kernel,
    /// whose byte is the same either way.
    fn int4(
        &self,
        vars: &KerasDenseVariables,
        block: Option<NonZeroU32>,
        quantized_inputs: bool,
    ) -> Result<KernelValues> {
        let (k, n) = (self.k, self.n);
        let kernel = &vars.kernel;
        let VariableValues::I8(packed) = kernel.values else {
            return Err(self.wrong_type("kernel", kernel, "int8 (two int4 per byte)"));
        };
        let along_outputs = [k, n.div_ceil(2)];
        let along_inputs = [k.div_ceil(2), n];
        let dense = self.axes == KernelAxes::Dense;
        let q = if kernel.shape == along_outputs && packed.len() == k * n.div_ceil(2) {
            unpack_int4_columns(packed, k, n)
        } else if dense && kernel.shape == along_inputs && packed.len() == k.div_ceil(2) * n {
            unpack_int4_rows(packed, k, n)
        } else {
            let older = if dense {
                format!(" or {along_inputs:?} (packed along the inputs, Keras before 3.14)")
            } else {
                String::new()
            };
            return Err(Error::Shape(format!(
                "Keras variable 'kernel' has shape {:?}, expected {along_outputs:?} (int4 packed \
                 along the outputs, Keras >= 3.14){older} for {}",
                kernel.shape,
                self.layer()
            )));
        };
        let scale_var = self.required("kernel_scale", &vars.kernel_scale)?;
        let (scale_shape, zero) = match block {
            None => {
                self.absent(&[("kernel_zero", &vars.kernel_zero), ("g_idx", &vars.g_idx)])?;
                (vec![n], None)
            }
            Some(b) => {
                check_grouped_inputs(quantized_inputs)?;
                let groups = k.div_ceil(b.get() as usize);
                let zero = self.required("kernel_zero", &vars.kernel_zero)?;
                self.shape("kernel_zero", zero, &[groups, n])?;
                let g_idx = self.required("g_idx", &vars.g_idx)?;
                self.shape("g_idx", g_idx, &[k])?;
                self.check_g_idx(g_idx, b.get() as usize)?;
                (
                    vec![groups, n],
                    Some(self.int8("kernel_zero", zero, IntRange::INT4)?),
                )
            }
        };
        self.absent(&[("inputs_scale", &vars.inputs_scale)])?;
        self.shape("kernel_scale", scale_var, &scale_shape)?;
        Ok(KernelValues::Int4 {
            q,
            scale: self.scales("kernel_scale", scale_var)?,
            zero,
            block,
            quantized_inputs,
        })
    }

    /// `g_idx[i]` must be `i / block` (Keras's grouping of contiguous
    /// rows); a permutation (GPTQ's act order) has no kernel here.
    fn check_g_idx(&self, g_idx: &Variable, block: usize) -> Result<()> {
        let VariableValues::F32(x) = g_idx.values else {
            return Err(self.wrong_type("g_idx", g_idx, "float32"));
        };
        match x
            .iter()
            .enumerate()
            .find(|(i, g)| **g != (i / block) as f32)
        {
            Some((i, g)) => Err(Error::Unsupported(format!(
                "Keras variable 'g_idx'[{i}] is {g}, but the int4 kernels group contiguous rows \
                 (g_idx[i] = i / {block}); a permuted grouping is not supported ({})",
                self.layer()
            ))),
            None => Ok(()),
        }
    }
}

/// `[heads, k, head_dim]` row-major to `[k, heads head_dim]`.
fn permute_heads_first<T: Copy>(
    v: &[T],
    (k, n): (usize, usize),
    heads: usize,
    hd: usize,
) -> Vec<T> {
    debug_assert_eq!(heads * hd, n);
    (0..k * n)
        .map(|idx| {
            let (i, j) = (idx / n, idx % n);
            v[((j / hd) * k + i) * hd + j % hd]
        })
        .collect()
}

/// A [`KernelAxes::HeadsFirst`] kernel's values, read in Keras's order, in
/// `[k, n]`: float and int8 weights permuted; int4 (flattened by Keras with
/// a plain reshape) kept for one head, dequantized and permuted for more.
fn heads_first_to_rows(
    values: KernelValues,
    (k, n): (usize, usize),
    heads: usize,
    hd: usize,
    compute: crate::format::StorageFormat,
) -> Result<KernelValues> {
    let permute = |v: &[f32]| permute_heads_first(v, (k, n), heads, hd);
    Ok(match values {
        KernelValues::Float(FloatValues::F32(w)) => {
            KernelValues::Float(FloatValues::F32(permute(&w)))
        }
        KernelValues::Float(FloatValues::F64(w)) => {
            KernelValues::Float(FloatValues::F64(permute_heads_first(&w, (k, n), heads, hd)))
        }
        KernelValues::Int8 {
            q,
            scale,
            quantized_inputs,
        } => KernelValues::Int8 {
            q: permute_heads_first(&q, (k, n), heads, hd),
            scale,
            quantized_inputs,
        },
        KernelValues::Float8 { w, scales, format } => KernelValues::Float8 {
            w: permute(&w),
            scales,
            format,
        },
        int4 @ KernelValues::Int4 { .. } if heads == 1 => int4,
        KernelValues::Int4 {
            q,
            scale,
            zero: Some(zero),
            block: Some(block),
            ..
        } => {
            // Keras's `dequantize_with_sz_map` on the flat kernel, its
            // scale autocast to the compute dtype: (q - zero) * scale,
            // exact in f32 (a small integer times a rounded scale).
            let block = block.get() as usize;
            let flat: Vec<f32> = (0..k * n)
                .map(|idx| {
                    let (i, j) = (idx / n, idx % n);
                    let g = (i / block) * n + j;
                    let s = compute.round(f64::from(scale[g])) as f32;
                    f32::from(q[idx] - zero[g]) * s
                })
                .collect();
            KernelValues::Float(FloatValues::F32(permute(&flat)))
        }
        KernelValues::Int4 { .. } => {
            return Err(Error::Unsupported(format!(
                "a per-channel int4 EinsumDense kernel of {heads} heads first ([heads, inputs,                  head_dim]): Keras's flattened layout mixes the heads into the rows, and only                  grouped int4 is read for it"
            )));
        }
    })
}

/// Keras before 3.14 packed int4 along the inputs: two adjacent rows per
/// byte, the even row in the low nibble; `[ceil(k/2), n]` back to `[k, n]`.
fn unpack_int4_rows(packed: &[i8], k: usize, n: usize) -> Vec<i8> {
    (0..k * n)
        .map(|idx| {
            let (i, j) = (idx / n, idx % n);
            let byte = packed[(i / 2) * n + j] as u8;
            let nibble = if i % 2 == 0 { byte << 4 } else { byte & 0xf0 };
            (nibble as i8) >> 4
        })
        .collect()
}

fn check_range(name: &str, values: &[i8], range: IntRange, layer: &str) -> Result<()> {
    match values.iter().position(|v| *v < range.lo || *v > range.hi) {
        Some(i) => Err(Error::Shape(format!(
            "Keras variable '{name}'[{i}] is {}, outside [{}, {}] for {layer}",
            values[i], range.lo, range.hi
        ))),
        None => Ok(()),
    }
}

fn check_lengths(w: usize, bias: Option<usize>, (k, n): (usize, usize)) -> Result<()> {
    size::nonzero(&[("k", k), ("n", n)], "a Dense kernel")?;
    let want = size::mul(k, n, &|| format!("a kernel of {k} x {n}"))?;
    if w != want {
        return Err(Error::Shape(format!(
            "the kernel has {w} values, but k={k} x n={n} needs {want}"
        )));
    }
    match bias {
        Some(b) if b != n => Err(Error::Shape(format!(
            "the bias has {b} values, expected n={n}"
        ))),
        _ => Ok(()),
    }
}

/// Keras refuses an activation quantizer with grouped int4 weights.
fn check_grouped_inputs(quantized_inputs: bool) -> Result<()> {
    if quantized_inputs {
        return Err(Error::Unsupported(
            "grouped int4 weights with int8 activations: Keras quantizes the activations of \
             per-channel int4 kernels only"
                .to_owned(),
        ));
    }
    Ok(())
}

fn check_float8_scales(scales: Float8Scales) -> Result<()> {
    let ok = |s: f32| s.is_finite() && s > 0.0;
    if !(ok(scales.inputs) && ok(scales.kernel)) {
        return Err(Error::Shape(format!(
            "float8 scales must be positive and finite, got {scales:?}"
        )));
    }
    Ok(())
}

/// A quantized layer's bias: Keras keeps it in float32 (its variable dtype).
fn f32_bias<T: HostFloat>(bias: &[T]) -> FloatValues {
    FloatValues::F32(bias.iter().map(|v| v.to_f64() as f32).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int4_before_keras_3_14_unpacks_along_the_inputs() {
        // Rows 0 and 1 of column 0 are -3 and 7: the byte 0x7d.
        assert_eq!(
            unpack_int4_rows(&[0x7d_u8 as i8, 0x02], 2, 2),
            [-3, 2, 7, 0]
        );
        // An odd k: the last row's high nibble is padding.
        assert_eq!(unpack_int4_rows(&[0x7d_u8 as i8, 0x0e], 3, 1), [-3, 7, -2]);
    }
}

// SPDX-License-Identifier: MIT OR Apache-2.0
//! One harness for every Dense weight format: a GPU result against its CPU
//! twin (the same [`DenseKernel`], the same order of summation), lengths
//! first, then every output within the [`Tolerance`] of its format. The
//! tolerances are tight enough that a dropped bias, a dropped last term of
//! a sum, a wrong activation or a short result fails
//! (`tests/gpu_dense.rs` plants each and checks).

use dtype_policy::cpu::dense::float8_qdq;
use dtype_policy::format::{
    DenseKernel, FloatValues, HostFloat, KernelValues, StorageFormat, WeightFormat,
};
use dtype_policy::ops::{Activation, DenseShape};
use dtype_policy::quant::float8::{Float8, quantize_dequantize};

/// How far a GPU output may be from its twin's, and why. Each term is a
/// named reason; [`Tolerance::bound`] adds the ones that apply.
#[derive(Debug, Clone, Copy)]
pub struct Tolerance {
    /// The format the outputs are rounded to.
    pub output: StorageFormat,
    /// The twin sums the same rounded products in the same order, but a
    /// GPU may fuse a multiply and an add (one rounding fewer per step):
    /// each partial sum moves by at most one rounding of the arithmetic
    /// type, so the total by at most (k + 2) · ε · Σ|x·w| (ε of f32, or of
    /// f64 for the f64 variant), with 20% to spare for the final additions
    /// of the lanes. Zero for int8 products, whose integer sums are exact.
    pub fma: bool,
    /// A division (per-channel scales, the int8 dequantization): WGSL
    /// allows 2.5 ulp of the quotient, which the bias then moves by up to
    /// |b| (and the activation's slope is below 1.2): 4 ulp of 1.2 (|y| +
    /// |b|).
    pub division: bool,
    /// exp and tanh (a non-linear activation): WGSL allows 3 + 2|x| ulp for
    /// exp; the activations' slopes are below 1.2: 2e-6 · (1 + |y|).
    pub transcendental: bool,
}

/// The arithmetic type's epsilon: f64 for the f64 format, else f32.
fn epsilon(format: StorageFormat) -> f64 {
    if format == StorageFormat::F64 {
        f64::EPSILON
    } else {
        f64::from(f32::EPSILON)
    }
}

/// A 16-bit output can land one ulp of its format away when the f32 value
/// straddles a rounding boundary: at most 2^-10 |y| (f16), 2^-7 |y| (bf16),
/// plus the format's smallest step for values near zero.
fn output_ulp(format: StorageFormat, y: f64) -> f64 {
    match format {
        StorageFormat::F32 | StorageFormat::F64 => 0.0,
        StorageFormat::F16 => y.abs() * 2f64.powi(-10) + 2f64.powi(-24),
        StorageFormat::BF16 => y.abs() * 2f64.powi(-7) + f64::from(f32::MIN_POSITIVE),
    }
}

impl Tolerance {
    /// The tolerance of a kernel of `format` with outputs in `output`.
    pub fn of(format: WeightFormat, output: StorageFormat, activation: Activation) -> Tolerance {
        let int8_product = matches!(
            format,
            WeightFormat::Int8 {
                quantized_inputs: true
            } | WeightFormat::Int4 {
                quantized_inputs: true,
                ..
            }
        );
        let per_channel = matches!(
            format,
            WeightFormat::Int8 { .. } | WeightFormat::Int4 { block: None, .. }
        );
        Tolerance {
            output,
            fma: !int8_product,
            division: per_channel,
            transcendental: !matches!(activation, Activation::Linear | Activation::Relu),
        }
    }

    /// The bound for an output whose twin value is `y` and bias `b`, over
    /// `k` products of absolute sum `l1` (|b| included), plus `extra` (the
    /// float8 activations that may round either way, [`float8_slack`]).
    pub fn bound(&self, k: usize, l1: f64, y: f64, b: f64, extra: f64) -> f64 {
        let eps = epsilon(self.output);
        let mut tol = extra + output_ulp(self.output, y);
        if self.fma {
            tol += 1.2 * (k as f64 + 2.0) * eps * l1;
        }
        if self.division {
            tol += 4.0 * eps * 1.2 * (y.abs() + b.abs());
        }
        if self.transcendental {
            tol += 2e-6 * (1.0 + y.abs());
        }
        tol
    }
}

/// A Dense case for the harness: a kernel, its variant and shape, inputs
/// (f32, or f64 for the f64 variant).
pub struct Case<'a, T: HostFloat = f32> {
    /// What to print on a mismatch.
    pub label: String,
    /// The kernel (weights, bias).
    pub kernel: &'a DenseKernel,
    /// The format of x and y.
    pub format: StorageFormat,
    /// Matrix-vector or tiled.
    pub shape: DenseShape,
    /// The activation.
    pub activation: Activation,
    /// `[m, k]`.
    pub x: &'a [T],
    /// Rows.
    pub m: usize,
}

impl<T: HostFloat> Case<'_, T> {
    /// The twin's outputs.
    pub fn twin(&self) -> Vec<T> {
        dtype_policy::cpu::dense::dense(
            self.kernel,
            self.format,
            self.shape,
            self.activation,
            self.x,
            self.m,
        )
        .unwrap_or_else(|e| panic!("{}: twin: {e}", self.label))
    }

    /// `Ok` when `gpu` has the twin's length and every output is within
    /// the format's tolerance of `twin` (equal values, infinities and NaN
    /// included, always pass); else what differs, first.
    pub fn compare(&self, gpu: &[T], twin: &[T]) -> Result<(), String> {
        let (k, n) = (self.kernel.k(), self.kernel.n());
        let want = self.m * n;
        if gpu.len() != want || twin.len() != want {
            return Err(format!(
                "{}: {} GPU outputs and {} twin outputs, expected {want}",
                self.label,
                gpu.len(),
                twin.len()
            ));
        }
        let tolerance = Tolerance::of(self.kernel.format(), self.format, self.activation);
        let weights = summed_weights(self.kernel, self.format, self.shape);
        let dequantized = dequantized(self.kernel, self.format);
        let xr: Vec<f64> = self
            .x
            .iter()
            .map(|v| self.format.round(v.to_f64()))
            .collect();
        let x_used = activations_used(self.kernel, self.format, &xr);
        let slack = float8_slack(self.kernel, self.format, &xr);
        let bias = |j: usize| self.kernel.bias().map_or(0.0, |b| b.get(j).abs());
        for (idx, (g, c)) in gpu.iter().zip(twin).enumerate() {
            let (i, j) = (idx / n, idx % n);
            let (g, c) = (g.to_f64(), c.to_f64());
            if g.to_bits() == c.to_bits() || (g.is_nan() && c.is_nan()) {
                continue;
            }
            let l1: f64 = (0..k)
                .map(|t| (x_used[i * k + t] * weights[t * n + j]).abs())
                .sum::<f64>()
                + bias(j);
            let extra: f64 = slack.as_ref().map_or(0.0, |s| {
                (0..k)
                    .map(|t| s[i * k + t] * dequantized[t * n + j].abs())
                    .sum()
            });
            let tol = tolerance.bound(k, l1, c, bias(j), extra);
            let err = (g - c).abs();
            // NaN errors fail too (a NaN beside a number).
            if err.is_nan() || err > tol {
                return Err(format!(
                    "{} m={} k={k} n={n}: y[{i}][{j}] GPU {g} twin {c} (error {err:e}, \
                     tolerance {tol:e})",
                    self.label, self.m
                ));
            }
        }
        Ok(())
    }
}

/// The weights `[k, n]` each product multiplies, as f64: float weights
/// rounded to the compute format; int8 and per-channel int4 `q / scale`;
/// grouped int4 `(q - zero) · scale`; float8 the decoded codes.
pub fn dequantized(kernel: &DenseKernel, format: StorageFormat) -> Vec<f64> {
    let (k, n) = (kernel.k(), kernel.n());
    match kernel.values() {
        KernelValues::Float(w) => (0..k * n).map(|i| format.round(w.get(i))).collect(),
        KernelValues::Int8 { q, scale, .. }
        | KernelValues::Int4 {
            q,
            scale,
            zero: None,
            ..
        } => (0..k * n)
            .map(|i| f64::from(q[i]) / f64::from(scale[i % n]))
            .collect(),
        KernelValues::Int4 {
            q,
            scale,
            zero: Some(zero),
            block,
            ..
        } => {
            let b = block.map_or(k, |b| b.get() as usize);
            (0..k * n)
                .map(|i| {
                    let gj = i / n / b * n + i % n;
                    (f64::from(q[i]) - f64::from(zero[gj])) * f64::from(scale[gj])
                })
                .collect()
        }
        KernelValues::Float8 {
            w,
            scales,
            format: f8,
        } => w
            .iter()
            .map(|&v| f64::from(float8_qdq(format, *f8, scales.kernel, v)))
            .collect(),
    }
}

/// The absolute weights each of the kernel's partial sums adds up, as f64:
/// the dequantized weights ([`dequantized`]), but for grouped int4 in the
/// matrix-vector shape with blocks of whole 32-k steps, which sums `x · q`
/// and `Σx` apart and scales per group: `(|q| + |zero|) · scale`.
fn summed_weights(kernel: &DenseKernel, format: StorageFormat, shape: DenseShape) -> Vec<f64> {
    let (k, n) = (kernel.k(), kernel.n());
    match kernel.values() {
        KernelValues::Int4 {
            q,
            scale,
            zero: Some(zero),
            block: Some(b),
            ..
        } if shape == DenseShape::MatVec && b.get() % 32 == 0 => {
            let b = b.get() as usize;
            (0..k * n)
                .map(|i| {
                    let gj = i / n / b * n + i % n;
                    (f64::from(q[i].abs()) + f64::from(zero[gj].abs())) * f64::from(scale[gj])
                })
                .collect()
        }
        _ => dequantized(kernel, format)
            .iter()
            .map(|w| w.abs())
            .collect(),
    }
}

/// The activations each product multiplies: float8 quantize-dequantizes
/// them, others take x as rounded (int8's integer sums are exact and need
/// none).
fn activations_used(kernel: &DenseKernel, format: StorageFormat, xr: &[f64]) -> Vec<f64> {
    match kernel.values() {
        KernelValues::Float8 { scales, .. } => xr
            .iter()
            .map(|&v| f64::from(float8_qdq(format, Float8::E4M3Fn, scales.inputs, v as f32)))
            .collect(),
        _ => xr.to_vec(),
    }
}

/// float8 activations are `round(x / s_x)` in the compute dtype, then
/// e4m3-encoded; WGSL's division may be 2.5 ulp off, so a quotient within
/// 3 ulp of a rounding boundary may take the neighbouring value. For each
/// activation: how far its dequantized value can move that way (zero for
/// almost all; `None` for formats other than float8).
pub fn float8_slack(kernel: &DenseKernel, format: StorageFormat, xr: &[f64]) -> Option<Vec<f64>> {
    let KernelValues::Float8 { scales, .. } = kernel.values() else {
        return None;
    };
    let c = |v: f32| format.round(f64::from(v)) as f32;
    let s = c(scales.inputs);
    let qdq = |q: f32| {
        let q = c(q);
        if q.is_nan() {
            return f64::NAN;
        }
        f64::from(c(quantize_dequantize(q, 1.0, Float8::E4M3Fn) * s))
    };
    Some(
        xr.iter()
            .map(|&v| {
                let q = v as f32 / s;
                if !q.is_finite() {
                    return 0.0;
                }
                let ulp = f32::EPSILON * q.abs().max(f32::MIN_POSITIVE);
                let (lo, hi) = (qdq(q - 3.0 * ulp), qdq(q + 3.0 * ulp));
                let exact = qdq(q);
                (lo - exact).abs().max((hi - exact).abs())
            })
            .collect(),
    )
}

/// The same kernel without its bias (a planted mistake).
pub fn without_bias(kernel: &DenseKernel) -> DenseKernel {
    rebuild(kernel, |_| {}, false)
}

/// The same kernel with its last input row zeroed: the sums lose their
/// last term (a planted mistake).
pub fn without_last_term(kernel: &DenseKernel) -> DenseKernel {
    let (k, n) = (kernel.k(), kernel.n());
    rebuild(
        kernel,
        |values: &mut Values| match values {
            Values::Float(w) => w[(k - 1) * n..].fill(0.0),
            Values::Int(q) => q[(k - 1) * n..].fill(0),
        },
        true,
    )
}

/// The same kernel with its first output column zeroed (an Embedding's
/// first row, in the transposed table: a planted mistake).
pub fn without_first_column(kernel: &DenseKernel) -> DenseKernel {
    let n = kernel.n();
    rebuild(
        kernel,
        |values: &mut Values| match values {
            Values::Float(w) => w.iter_mut().step_by(n).for_each(|v| *v = 0.0),
            Values::Int(q) => q.iter_mut().step_by(n).for_each(|v| *v = 0),
        },
        true,
    )
}

/// A kernel's weights, for [`rebuild`] to change.
pub enum Values {
    /// Float weights (float, float8), exact in f64.
    Float(Vec<f64>),
    /// Quantized values, unpacked.
    Int(Vec<i8>),
}

/// `kernel` with its weights changed by `change`, through Keras's own
/// variables ([`DenseKernel::from_keras`]), with or without its bias.
fn rebuild(kernel: &DenseKernel, change: impl Fn(&mut Values), keep_bias: bool) -> DenseKernel {
    use dtype_policy::format::{KerasDenseVariables, KernelAxes, Variable, VariableValues};
    let (k, n) = (kernel.k(), kernel.n());
    let shape = [k, n];
    let bias: Option<Vec<f32>> = kernel
        .bias()
        .filter(|_| keep_bias)
        .map(|b| (0..b.len()).map(|i| b.get(i) as f32).collect());
    let bias_shape = [n];
    let bias_var = bias.as_ref().map(|b| Variable {
        shape: &bias_shape,
        values: VariableValues::F32(b),
    });
    let format = kernel.format();
    match kernel.values() {
        KernelValues::Float(FloatValues::F64(w)) => {
            let mut v = Values::Float(w.clone());
            change(&mut v);
            let Values::Float(w) = v else { unreachable!() };
            let b64: Option<Vec<f64>> = kernel
                .bias()
                .filter(|_| keep_bias)
                .map(|b| (0..b.len()).map(|i| b.get(i)).collect());
            DenseKernel::float(&w, b64.as_deref(), (k, n)).unwrap()
        }
        KernelValues::Float(FloatValues::F32(w)) => {
            let mut v = Values::Float(w.iter().map(|&x| f64::from(x)).collect());
            change(&mut v);
            let Values::Float(w) = v else { unreachable!() };
            let w: Vec<f32> = w.iter().map(|&x| x as f32).collect();
            DenseKernel::float(&w, bias.as_deref(), (k, n)).unwrap()
        }
        KernelValues::Float8 {
            w,
            scales,
            format: f8,
        } => {
            let mut v = Values::Float(w.iter().map(|&x| f64::from(x)).collect());
            change(&mut v);
            let Values::Float(w) = v else { unreachable!() };
            let w: Vec<f32> = w.iter().map(|&x| x as f32).collect();
            DenseKernel::float8(&w, bias.as_deref(), (k, n), *scales, *f8).unwrap()
        }
        KernelValues::Int8 { q, scale, .. } => {
            let mut v = Values::Int(q.clone());
            change(&mut v);
            let Values::Int(q) = v else { unreachable!() };
            let vars = KerasDenseVariables {
                kernel: Variable {
                    shape: &shape,
                    values: VariableValues::I8(&q),
                },
                bias: bias_var,
                kernel_scale: Some(Variable {
                    shape: &bias_shape,
                    values: VariableValues::F32(scale),
                }),
                kernel_zero: None,
                g_idx: None,
                inputs_scale: None,
            };
            DenseKernel::from_keras(format, (k, n), KernelAxes::Dense, &vars).unwrap()
        }
        KernelValues::Int4 {
            q,
            scale,
            zero,
            block,
            ..
        } => {
            let mut v = Values::Int(q.clone());
            change(&mut v);
            let Values::Int(q) = v else { unreachable!() };
            let packed = dtype_policy::quant::int4::pack_int4_columns(&q, k, n);
            let packed_shape = [k, n.div_ceil(2)];
            let groups = kernel.groups();
            let table_shape = [groups, n];
            let g_idx: Vec<f32> = (0..k)
                .map(|i| (i / block.map_or(k, |b| b.get() as usize)) as f32)
                .collect();
            let k_shape = [k];
            let vars = KerasDenseVariables {
                kernel: Variable {
                    shape: &packed_shape,
                    values: VariableValues::I8(&packed),
                },
                bias: bias_var,
                kernel_scale: Some(Variable {
                    shape: if block.is_some() {
                        &table_shape
                    } else {
                        &bias_shape
                    },
                    values: VariableValues::F32(scale),
                }),
                kernel_zero: zero.as_ref().map(|z| Variable {
                    shape: &table_shape,
                    values: VariableValues::I8(z),
                }),
                g_idx: block.map(|_| Variable {
                    shape: &k_shape,
                    values: VariableValues::F32(&g_idx),
                }),
                inputs_scale: None,
            };
            DenseKernel::from_keras(format, (k, n), KernelAxes::Dense, &vars).unwrap()
        }
    }
}

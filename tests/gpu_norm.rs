// SPDX-License-Identifier: MIT OR Apache-2.0
//! LayerNormalization, the stand-alone activation and a scaling on both
//! adapters against their CPU twins, on awkward shapes (one value, odd, not
//! a multiple of 4, rows longer than a workgroup's 64 chunks).

mod common;

use dtype_policy::cpu::norm;
use dtype_policy::format::{HostFloat, StorageFormat};
use dtype_policy::gpu::context::GpuContext;
use dtype_policy::gpu::recorder::Graph;
use dtype_policy::gpu::tensor::TensorShape;
use dtype_policy::ops::Activation;

const SHAPES: [(usize, usize); 5] = [(1, 1), (3, 37), (2, 1000), (65, 129), (1, 4099)];
const FORMATS: [StorageFormat; 3] = [StorageFormat::F32, StorageFormat::F16, StorageFormat::BF16];

use common::gpu::ulps;

fn run(ctx: &mut GpuContext, graph: Graph, x: &[f32]) -> Vec<f32> {
    graph.build(ctx).unwrap().run(ctx, &[x]).unwrap().remove(0)
}

/// The GPU's sqrt and division may differ from the twin's correctly
/// rounded ones, and a driver may fuse a multiply-add (lavapipe does):
/// at most one unit in the last place of the storage format, and at
/// most 2^-20 of the output's scale in f32 (a few f32 ulps of the
/// normalized values, which are of order 1).
const NORM_ULPS: f64 = 1.0;

#[test]
fn layer_norm_matches_its_twin_on_both_adapters() {
    for mut ctx in [common::gpu::vulkan(), common::gpu::gl()] {
        for format in FORMATS {
            for (rows, cols) in SHAPES {
                let x: Vec<f32> = common::gpu::values(rows * cols, 7, 3.0)
                    .iter()
                    .map(|v| v + 0.5)
                    .collect();
                let gamma = common::gpu::values(cols, 8, 1.0);
                let beta = common::gpu::values(cols, 9, 0.5);
                let weights = ctx.upload_layer_norm(&gamma, &beta, 1e-3).unwrap();
                let mut graph = Graph::new();
                let input = graph.input(TensorShape::new(rows, cols, format).unwrap());
                let y = graph.layer_norm(input, &weights).unwrap();
                graph.output(y).unwrap();
                let gpu = run(&mut ctx, graph, &x);
                let twin = norm::layer_norm(format, &x, &gamma, &beta, 1e-3).unwrap();
                assert_eq!(gpu.len(), twin.len());
                let label = format!(
                    "{} {format:?} {rows} x {cols}",
                    ctx.capabilities().adapter_name
                );
                for (i, (g, t)) in gpu.iter().zip(&twin).enumerate() {
                    let tolerance = if format == StorageFormat::F32 {
                        (g - t).abs() as f64 <= 2f64.powi(-20) * (t.abs() as f64).max(1.0)
                    } else {
                        ulps(format, *g, *t) <= NORM_ULPS
                    };
                    assert!(tolerance, "{label}: value {i}: gpu {g}, twin {t}");
                }
                // A planted mistake: beta dropped moves the outputs by far more.
                let no_beta = norm::layer_norm(format, &x, &gamma, &vec![0.0; cols], 1e-3).unwrap();
                assert!(
                    gpu.iter()
                        .zip(&no_beta)
                        .any(|(g, t)| ulps(format, *g, *t) > 4.0),
                    "{label}: a dropped beta must fail"
                );
            }
        }
    }
}

#[test]
fn rms_norm_matches_its_twin_on_both_adapters() {
    for mut ctx in [common::gpu::vulkan(), common::gpu::gl()] {
        for format in FORMATS {
            for (rows, cols) in SHAPES {
                let x = common::gpu::values(rows * cols, 7, 3.0);
                let scale = common::gpu::values(cols, 8, 1.0);
                let weights = ctx.upload_rms_norm(&scale, 1e-5).unwrap();
                let mut graph = Graph::new();
                let input = graph.input(TensorShape::new(rows, cols, format).unwrap());
                let y = graph.layer_norm(input, &weights).unwrap();
                graph.output(y).unwrap();
                let gpu = run(&mut ctx, graph, &x);
                let twin = norm::rms_norm(format, &x, &scale, 1e-5).unwrap();
                assert_eq!(gpu.len(), twin.len());
                let label = format!(
                    "{} {format:?} {rows} x {cols}",
                    ctx.capabilities().adapter_name
                );
                for (i, (g, t)) in gpu.iter().zip(&twin).enumerate() {
                    let ok = if format == StorageFormat::F32 {
                        (g - t).abs() as f64 <= 2f64.powi(-20) * (t.abs() as f64).max(1.0)
                    } else {
                        ulps(format, *g, *t) <= NORM_ULPS
                    };
                    assert!(ok, "{label}: value {i}: gpu {g}, twin {t}");
                }
                // Planted: a layer norm's centring instead.
                let centred = norm::layer_norm(format, &x, &scale, &vec![0.0; cols], 1e-5).unwrap();
                assert!(
                    cols == 1
                        || gpu
                            .iter()
                            .zip(&centred)
                            .any(|(g, t)| ulps(format, *g, *t) > 4.0),
                    "{label}: a centred norm must fail"
                );
            }
        }
    }
}

/// tanh and exp are the driver's: WGSL bounds tanh by an absolute error
/// near zero (lavapipe's loses 7 f32 ulps at 0.029, 2.6e-8), so either one
/// unit in the format's last place or 2^-22 absolute (a tenth of a bf16
/// ulp at 0.03; a planted mistake, such as the wrong activation, moves
/// values by far more).
const ACTIVATION_ABS: f32 = 1.0 / (1 << 22) as f32;

/// mish multiplies the driver's tanh of softplus(x), about 0.25 for x near
/// -1.2, by x: lavapipe's tanh there is off by about 1.3e-6 (WGSL bounds
/// tanh only as sinh / cosh), measured 1.6e-6 (55 f32 ulps) at the output;
/// 2^-18 absolute, a sixteenth of a bf16 ulp at 0.25.
const MISH_ABS: f32 = 1.0 / (1 << 18) as f32;

/// In f32 the driver's exp is the shader's own rounding (WGSL allows
/// 3 + 2|x| ulps; lavapipe's differs from Rust's by up to 3 on these
/// values): 4 f32 ulps. In 16-bit formats that vanishes in the rounding.
fn activation_ulps(format: StorageFormat) -> f64 {
    if format == StorageFormat::F32 {
        4.0
    } else {
        1.0
    }
}

#[test]
fn activation_matches_its_twin_on_both_adapters() {
    for mut ctx in [common::gpu::vulkan(), common::gpu::gl()] {
        for format in FORMATS {
            for (i, (rows, cols)) in SHAPES.into_iter().enumerate() {
                // Every activation on the first two shapes; three on the rest.
                let some = [Activation::Tanh, Activation::Sigmoid, Activation::Relu];
                let activations = if i < 2 {
                    &Activation::ALL[..]
                } else {
                    &some[..]
                };
                for &activation in activations {
                    let x = common::gpu::values(rows * cols, 3, 4.0);
                    let mut graph = Graph::new();
                    let input = graph.input(TensorShape::new(rows, cols, format).unwrap());
                    let y = graph.activate(input, activation).unwrap();
                    // Padding stays zero: a LayerNorm-free check through a
                    // following add of the result to itself.
                    let y2 = graph.add(y, y).unwrap();
                    graph.output(y).unwrap();
                    graph.output(y2).unwrap();
                    let mut out = graph.build(&mut ctx).unwrap().run(&ctx, &[&x]).unwrap();
                    let (gpu, doubled) = (out.remove(0), out.remove(0));
                    let twin = norm::activate(format, activation, &x);
                    assert_eq!(gpu.len(), twin.len());
                    let label = format!(
                        "{} {format:?} {rows} x {cols} {activation:?}",
                        ctx.capabilities().adapter_name
                    );
                    let abs = if activation == Activation::Mish {
                        MISH_ABS
                    } else {
                        ACTIVATION_ABS
                    };
                    for (i, (g, t)) in gpu.iter().zip(&twin).enumerate() {
                        assert!(
                            ulps(format, *g, *t) <= activation_ulps(format) || (g - t).abs() <= abs,
                            "{label}: value {i}: gpu {g}, twin {t}"
                        );
                        assert_eq!(doubled[i], f32::from_f64(format.round(2.0 * g.to_f64())));
                    }
                }
            }
        }
    }
}

#[test]
fn scale_matches_its_twin_on_both_adapters() {
    for mut ctx in [common::gpu::vulkan(), common::gpu::gl()] {
        for format in FORMATS {
            for (rows, cols) in SHAPES {
                let x = common::gpu::values(rows * cols, 5, 3.0);
                // Gemma's sqrt(hidden_dim), rounded to the format as Keras casts it.
                let factor = format.round((cols as f64).sqrt()) as f32;
                let mut graph = Graph::new();
                let input = graph.input(TensorShape::new(rows, cols, format).unwrap());
                let y = graph.scale(input, factor).unwrap();
                let y2 = graph.add(y, y).unwrap();
                graph.output(y).unwrap();
                graph.output(y2).unwrap();
                let mut out = graph.build(&mut ctx).unwrap().run(&ctx, &[&x]).unwrap();
                let (gpu, doubled) = (out.remove(0), out.remove(0));
                let twin = norm::scale(format, &x, factor);
                let label = format!(
                    "{} {format:?} {rows} x {cols} times {factor}",
                    ctx.capabilities().adapter_name
                );
                assert_eq!(gpu.len(), twin.len(), "{label}");
                // One correctly rounded f32 product, rounded once: the same bits.
                assert_eq!(gpu, twin, "{label}");
                // The padding stays zero.
                for (g, d) in gpu.iter().zip(&doubled) {
                    assert_eq!(*d, f32::from_f64(format.round(2.0 * g.to_f64())), "{label}");
                }
                // Planted: a factor 2^-6 larger.
                let off = norm::scale(format, &x, factor * (1.0 + 2f32.powi(-6)));
                assert!(
                    cols == 1 && rows == 1 || gpu != off,
                    "{label}: another factor must fail"
                );
            }
        }
    }
    let mut graph = Graph::new();
    let x = graph.input(TensorShape::new(1, 2, StorageFormat::F32).unwrap());
    let e = graph.scale(x, f32::NAN).unwrap_err().to_string();
    assert!(e.contains("finite"), "{e}");
}

/// jax's `gelu(x, approximate=True)` in f64 against the kernels' f32 form
/// `x * sigmoid(2u)` (the same function, tanh from exp): f32 exp and
/// division, a few f32 ulps of values up to 4, 1e-6 absolute. The exact
/// gelu, the planted mistake, differs by up to 1.9e-4 on these values.
const GELU_APPROXIMATE_ABS: f64 = 1e-6;

#[test]
fn gelu_approximate_is_jaxs_tanh_formula() {
    use dtype_policy::cpu::dense::activate;
    assert_eq!(
        "gelu_approximate".parse::<Activation>().unwrap(),
        Activation::GeluApproximate
    );
    assert_eq!(Activation::GeluApproximate.keras_name(), "gelu_approximate");
    let jax = |x: f64| {
        let u = (2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x * x * x);
        x * (0.5 * (1.0 + u.tanh()))
    };
    let xs: Vec<f32> = (-400..=400).map(|i| i as f32 / 100.0).collect();
    let off = |activation: Activation| {
        xs.iter()
            .map(|&x| (f64::from(activate(activation, x)) - jax(f64::from(x))).abs())
            .fold(0.0, f64::max)
    };
    let error = off(Activation::GeluApproximate);
    assert!(error <= GELU_APPROXIMATE_ABS, "{error}");
    assert!(off(Activation::Gelu) > 10.0 * GELU_APPROXIMATE_ABS);
    // Near 0 relative accuracy too (where tanh's absolute error would show).
    for x in [1e-4f32, -3e-3, 0.029] {
        let (got, want) = (
            f64::from(activate(Activation::GeluApproximate, x)),
            jax(f64::from(x)),
        );
        assert!(
            (got - want).abs() <= 4.0 * f64::from(f32::EPSILON) * want.abs(),
            "{x}"
        );
    }
}

/// Argmax (greedy decoding's next token) against its twin: the first of
/// equal largest values, NaN skipped, a row of NaN giving 0; values
/// rounded to the storage format first, so ties appear in 16-bit formats.
/// Rows longer than one workgroup's block (4096 values of f32, 8192 of the
/// 16-bit formats) go through the blocks and their merge: a vocabulary's
/// row, whose two equal largest values lie in different blocks, a row whose
/// largest value is in its last block, and a row whose last block holds one
/// value.
#[test]
fn argmax_matches_its_twin_on_both_adapters() {
    let long = [(3, 50_257), (1, 4097), (2, 8193)];
    for mut ctx in [common::gpu::vulkan(), common::gpu::gl()] {
        for format in FORMATS {
            for (rows, cols) in SHAPES.into_iter().chain(long) {
                let mut x = common::gpu::values(rows * cols, 11, 4.0);
                // A tie for the largest value late in row 0, a NaN early.
                if cols > 3 {
                    let top = x[..cols].iter().fold(f32::MIN, |m, &v| m.max(v)) + 1.0;
                    x[cols - 1] = top;
                    x[cols / 2] = top;
                    x[0] = f32::NAN;
                }
                if rows > 1 {
                    x[cols..2 * cols].fill(f32::NAN);
                }
                // Row 2's largest value alone in its last column (a long
                // row's last block).
                if rows > 2 {
                    let row = &mut x[2 * cols..3 * cols];
                    row[cols - 1] = row.iter().fold(f32::MIN, |m, &v| m.max(v)) + 1.0;
                }
                let x: Vec<f32> = x
                    .iter()
                    .map(|&v| format.round(f64::from(v)) as f32)
                    .collect();
                let mut graph = Graph::new();
                let input = graph.input(TensorShape::new(rows, cols, format).unwrap());
                let y = graph.argmax(input).unwrap();
                graph.output(y).unwrap();
                let gpu = run(&mut ctx, graph, &x);
                let twin: Vec<f32> = norm::argmax(&x, cols)
                    .unwrap()
                    .into_iter()
                    .map(|i| i as f32)
                    .collect();
                assert_eq!(gpu.len(), twin.len(), "{format:?} {rows}x{cols}: lengths");
                assert_eq!(gpu, twin, "{format:?} {rows}x{cols}");
                if cols > 3 {
                    assert_eq!(twin[0], (cols / 2) as f32, "the first of two equal largest");
                }
                if rows > 1 {
                    assert_eq!(twin[1], 0.0, "a row of NaN");
                }
                if rows > 2 {
                    assert_eq!(twin[2], (cols - 1) as f32, "the largest value last");
                }
            }
        }
    }
}

/// Rows copied out of a tensor and written into another at a recorded row
/// and at the run's position (a KV cache's write), on both adapters.
#[test]
fn rows_and_positional_writes_land_where_asked() {
    for mut ctx in [common::gpu::vulkan(), common::gpu::gl()] {
        for format in FORMATS {
            let (rows, cols, cache_rows) = (3, 37, 9);
            let x: Vec<f32> = common::gpu::values(rows * cols, 5, 2.0)
                .iter()
                .map(|&v| format.round(f64::from(v)) as f32)
                .collect();
            let cache = ctx
                .zeros(TensorShape::new(cache_rows, cols, format).unwrap())
                .unwrap();
            let mut graph = Graph::new();
            let input = graph.input(TensorShape::new(rows, cols, format).unwrap());
            let last = graph.rows(input, rows - 1, 1).unwrap();
            let into = graph.external(&cache);
            graph.write_rows(input, into, 1).unwrap();
            graph.write_rows_at_position(last, into).unwrap();
            graph.output(last).unwrap();
            let forward = graph.build(&mut ctx).unwrap();
            assert!(forward.is_positional());
            let out = forward.run_at(&ctx, &[&x[..]], 6).unwrap().remove(0);
            assert_eq!(
                out,
                x[(rows - 1) * cols..].to_vec(),
                "{format:?}: the last row"
            );
            let got: Vec<f32> = ctx.read_tensor(&cache).unwrap();
            let mut want = vec![0f32; cache_rows * cols];
            want[cols..(1 + rows) * cols].copy_from_slice(&x);
            want[6 * cols..7 * cols].copy_from_slice(&x[(rows - 1) * cols..]);
            assert_eq!(got.len(), want.len(), "{format:?}: lengths");
            assert_eq!(got, want, "{format:?}: the cache");
            // A position past the rows is the caller's to refuse; one that
            // overflows the kernel's u32 words is refused here.
            assert!(forward.run_at(&ctx, &[&x[..]], usize::MAX).is_err());
        }
    }
}

/// A residual add and the norm right after it run as one dispatch
/// (shaders/add_layer_norm.wgsl): its sum and its norm have the bits of the
/// add and the norm run apart on the same adapter, and match the twins.
#[test]
fn a_norm_after_an_add_runs_with_it_as_one_dispatch_with_the_same_bits() {
    use dtype_policy::cpu::add::binary;
    use dtype_policy::ops::Binary;
    for mut ctx in [common::gpu::vulkan(), common::gpu::gl()] {
        for format in FORMATS {
            for (rows, cols) in SHAPES {
                let a = common::gpu::values(rows * cols, 7, 3.0);
                let b = common::gpu::values(rows * cols, 11, 1.0);
                let gamma = common::gpu::values(cols, 8, 1.0);
                let beta = common::gpu::values(cols, 9, 0.5);
                let label = format!(
                    "{} {format:?} {rows} x {cols}",
                    ctx.capabilities().adapter_name
                );
                for rms in [false, true] {
                    let weights = match rms {
                        false => ctx.upload_layer_norm(&gamma, &beta, 1e-3).unwrap(),
                        true => ctx.upload_rms_norm(&gamma, 1e-3).unwrap(),
                    };
                    let shape = TensorShape::new(rows, cols, format).unwrap();
                    // Fused: the add, then the norm of its sum.
                    let mut graph = Graph::new();
                    let (ia, ib) = (graph.input(shape), graph.input(shape));
                    let sum = graph.add(ia, ib).unwrap();
                    let y = graph.layer_norm(sum, &weights).unwrap();
                    assert_eq!(graph.dispatches(), 1, "{label}: one dispatch");
                    graph.output(sum).unwrap();
                    graph.output(y).unwrap();
                    let mut fused = graph.build(&mut ctx).unwrap().run(&ctx, &[&a, &b]).unwrap();
                    let (fused_y, fused_sum) = (fused.remove(1), fused.remove(0));
                    // Apart: the add's graph, then the norm's of its sum.
                    let mut add = Graph::new();
                    let (ia, ib) = (add.input(shape), add.input(shape));
                    let s = add.add(ia, ib).unwrap();
                    add.output(s).unwrap();
                    let sum = add
                        .build(&mut ctx)
                        .unwrap()
                        .run(&ctx, &[&a, &b])
                        .unwrap()
                        .remove(0);
                    let mut norm_graph = Graph::new();
                    let input = norm_graph.input(shape);
                    let y = norm_graph.layer_norm(input, &weights).unwrap();
                    norm_graph.output(y).unwrap();
                    let apart = run(&mut ctx, norm_graph, &sum);
                    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(&fused_sum), bits(&sum), "{label} rms={rms}: sums");
                    assert_eq!(bits(&fused_y), bits(&apart), "{label} rms={rms}: norms");
                    // And the twins (within the norms' tolerance).
                    let twin_sum = binary(format, Binary::Add, &a, &b).unwrap();
                    assert_eq!(bits(&fused_sum), bits(&twin_sum), "{label}: the add's twin");
                    let twin = match rms {
                        false => norm::layer_norm(format, &twin_sum, &gamma, &beta, 1e-3),
                        true => norm::rms_norm(format, &twin_sum, &gamma, 1e-3),
                    }
                    .unwrap();
                    assert_eq!(fused_y.len(), twin.len());
                    for (i, (g, t)) in fused_y.iter().zip(&twin).enumerate() {
                        let ok = if format == StorageFormat::F32 {
                            (g - t).abs() as f64 <= 2f64.powi(-20) * (t.abs() as f64).max(1.0)
                        } else {
                            ulps(format, *g, *t) <= NORM_ULPS
                        };
                        assert!(ok, "{label} rms={rms}: value {i}: gpu {g}, twin {t}");
                    }
                }
            }
        }
    }
}

/// An int8 Dense right after a fused add and norm has that dispatch
/// quantize its input too (shaders/add_layer_norm_quantize.wgsl): the
/// products have the bits of the same Dense run on the norm's output apart
/// (with its own quantizer), in both Dense shapes, and two Dense layers
/// reading the norm share its quantized rows.
#[test]
fn an_int8_dense_after_an_add_and_norm_has_it_quantize_with_the_same_bits() {
    use dtype_policy::format::{DenseKernel, WeightFormat};
    use dtype_policy::gpu::shaders::StorageVariant;
    use dtype_policy::ops::DenseShape;
    let int8 = WeightFormat::Int8 {
        quantized_inputs: true,
    };
    for mut ctx in [common::gpu::vulkan(), common::gpu::gl()] {
        for (format, storage) in [
            (StorageFormat::F32, StorageVariant::F32),
            (StorageFormat::F16, StorageVariant::F16Packed),
            (StorageFormat::BF16, StorageVariant::BF16Packed),
        ] {
            for (rows, cols) in SHAPES {
                let a = common::gpu::values(rows * cols, 7, 3.0);
                let b = common::gpu::values(rows * cols, 11, 1.0);
                let gamma = common::gpu::values(cols, 8, 1.0);
                let beta = common::gpu::values(cols, 9, 0.5);
                let norm = ctx.upload_layer_norm(&gamma, &beta, 1e-3).unwrap();
                let n = 13;
                let weights: Vec<_> = (0..2)
                    .map(|seed| {
                        let w = common::gpu::values(cols * n, 40 + seed, 1.0);
                        let bias = common::gpu::values(n, 50 + seed, 1.0);
                        let kernel =
                            DenseKernel::quantize(int8, &w, Some(&bias), (cols, n)).unwrap();
                        ctx.upload_dense(storage, &kernel).unwrap()
                    })
                    .collect();
                let shape = TensorShape::new(rows, cols, format).unwrap();
                let label = format!(
                    "{} {format:?} {rows} x {cols}",
                    ctx.capabilities().adapter_name
                );
                for dense_shape in DenseShape::ALL {
                    let mut graph = Graph::new();
                    let (ia, ib) = (graph.input(shape), graph.input(shape));
                    let sum = graph.add(ia, ib).unwrap();
                    let y = graph.layer_norm(sum, &norm).unwrap();
                    graph.output(y).unwrap();
                    for w in &weights {
                        let out = graph.dense(w, dense_shape, Activation::Linear, y).unwrap();
                        graph.output(out).unwrap();
                    }
                    assert_eq!(
                        graph.dispatches(),
                        3,
                        "{label}: add, norm and quantizer, two products"
                    );
                    let mut fused = graph.build(&mut ctx).unwrap().run(&ctx, &[&a, &b]).unwrap();
                    let normed = fused.remove(0);
                    for (w, got) in weights.iter().zip(&fused) {
                        let apart = ctx
                            .dense(w, dense_shape, Activation::Linear, &normed, rows)
                            .unwrap();
                        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                        assert_eq!(bits(got), bits(&apart), "{label} {dense_shape:?}");
                    }
                }
            }
        }
    }
}

// SPDX-License-Identifier: MIT OR Apache-2.0
//! KerasHub's RotaryEmbedding on both adapters against its CPU twin, on
//! awkward shapes (one token, odd lengths, two sequences, a start past 0,
//! three heads, heads of 2, 8 and 64 features), and the twin against the
//! formula in f64.

mod common;

use dtype_policy::cpu::rope::{rope, table};
use dtype_policy::format::StorageFormat;
use dtype_policy::gpu::context::GpuContext;
use dtype_policy::gpu::recorder::Graph;
use dtype_policy::gpu::tensor::TensorShape;
use dtype_policy::ops::RopeShape;

const FORMATS: [StorageFormat; 3] = [StorageFormat::F32, StorageFormat::F16, StorageFormat::BF16];

/// KerasHub's `inverse_freq`: `1 / wavelength^(2i / head_dim)`, in f32.
fn inv_freq(head_dim: usize, wavelength: f64) -> Vec<f32> {
    (0..head_dim / 2)
        .map(|i| (1.0 / wavelength.powf(2.0 * i as f64 / head_dim as f64)) as f32)
        .collect()
}

fn shape(batch: usize, seq: usize, heads: usize, head_dim: usize, start: usize) -> RopeShape {
    RopeShape {
        batch,
        seq,
        heads,
        head_dim,
        start,
    }
}

/// The twin rounds x to the format first, the GPU reads it rounded.
fn x_for(s: RopeShape, format: StorageFormat) -> Vec<f32> {
    common::gpu::values(s.batch * s.seq * s.heads * s.head_dim, 11, 2.0)
        .into_iter()
        .map(|v| format.round(f64::from(v)) as f32)
        .collect()
}

/// The cosines and sines are the host's table, each product and the sum
/// rounded as the twin rounds them: in f16 and bf16 the products of two
/// 16-bit values are exact in f32 and the f32 sum is correctly rounded in
/// WGSL, so the bits are the same. In f32 a driver may fuse `x cos + rot
/// sin` into one fused multiply-add (one rounding fewer): at most one f32
/// rounding of a product, half an ulp of values below 4 (|x| < 2, |cos| <=
/// 1): 2^-22 absolute.
fn tolerance(format: StorageFormat) -> f32 {
    if format == StorageFormat::F32 {
        1.0 / (1 << 22) as f32
    } else {
        0.0
    }
}

fn gpu_rope(
    ctx: &mut GpuContext,
    format: StorageFormat,
    s: RopeShape,
    freq: &[f32],
    x: &[f32],
) -> Vec<f32> {
    let uploaded = ctx.upload_rope(freq, s.start + s.seq + 3).unwrap();
    let mut graph = Graph::new();
    let input =
        graph.input(TensorShape::new(s.batch * s.seq, s.heads * s.head_dim, format).unwrap());
    let y = graph.rope(input, &uploaded, s).unwrap();
    // The padding stays zero: the output doubled through an add.
    let doubled = graph.add(y, y).unwrap();
    graph.output(y).unwrap();
    graph.output(doubled).unwrap();
    let mut out = graph.build(ctx).unwrap().run(ctx, &[x]).unwrap();
    let (y, doubled) = (out.remove(0), out.remove(0));
    assert_eq!(y.len(), doubled.len());
    for (a, b) in y.iter().zip(&doubled) {
        assert_eq!(*b, format.round(2.0 * f64::from(*a)) as f32);
    }
    y
}

#[test]
fn rope_matches_its_twin_on_both_adapters() {
    let shapes = [
        shape(1, 1, 1, 2, 0),
        shape(1, 7, 3, 8, 0),
        shape(2, 5, 3, 8, 4),
        shape(2, 1, 2, 64, 9),
        shape(1, 9, 3, 64, 100),
        shape(2, 3, 1, 2, 1),
    ];
    for mut ctx in [common::gpu::vulkan(), common::gpu::gl()] {
        for format in FORMATS {
            for s in shapes {
                let freq = inv_freq(s.head_dim, 10_000.0);
                let x = x_for(s, format);
                let gpu = gpu_rope(&mut ctx, format, s, &freq, &x);
                let twin = rope(format, s, &freq, &x).unwrap();
                let label = format!("{} {format:?} {s:?}", ctx.capabilities().adapter_name);
                assert_eq!(gpu.len(), twin.len(), "{label}");
                for (i, (g, t)) in gpu.iter().zip(&twin).enumerate() {
                    assert!(
                        (g - t).abs() <= tolerance(format),
                        "{label}: value {i}: gpu {g}, twin {t}"
                    );
                }
                // Planted: the positions from 0 rather than from start.
                if s.start > 0 {
                    let from_zero = rope(format, RopeShape { start: 0, ..s }, &freq, &x).unwrap();
                    assert!(
                        gpu.iter()
                            .zip(&from_zero)
                            .any(|(g, t)| (g - t).abs() > 4.0 * tolerance(format)),
                        "{label}: positions from 0 must fail"
                    );
                }
            }
        }
    }
}

/// The twin against `x cos(p f) + rot sin(p f)` in f64, in f32: its angle
/// `f32(p) * inv_freq` is rounded (half an f32 ulp of an angle below 128,
/// 4e-6), and so are cos, sin, the products and the sum (a few f32 ulps of
/// values below 4): 1e-5 absolute. A dropped sin term or a swapped sign
/// moves values by |x sin|, up to 2.
const F64_FORMULA: f64 = 1e-5;

#[test]
fn rope_twin_is_the_rotary_formula() {
    let s = shape(2, 9, 3, 8, 5);
    let freq = inv_freq(s.head_dim, 10_000.0);
    let x = x_for(s, StorageFormat::F32);
    let twin = rope(StorageFormat::F32, s, &freq, &x).unwrap();
    let half = s.head_dim / 2;
    let cols = s.heads * s.head_dim;
    // (sign of the first half's rotation, keep the sin term)
    let formula = |sign: f64, with_sin: bool| -> Vec<f64> {
        (0..x.len())
            .map(|at| {
                let (r, col) = (at / cols, at % cols);
                let (d, p) = (col % s.head_dim, (s.start + r % s.seq) as f64);
                let angle = p * f64::from(freq[d % half]);
                let rot = if d < half {
                    -sign * f64::from(x[at + half])
                } else {
                    sign * f64::from(x[at - half])
                };
                let sin = if with_sin { angle.sin() } else { 0.0 };
                f64::from(x[at]) * angle.cos() + rot * sin
            })
            .collect()
    };
    let within = |want: &[f64]| {
        assert_eq!(twin.len(), want.len());
        twin.iter()
            .zip(want)
            .all(|(t, w)| (f64::from(*t) - w).abs() <= F64_FORMULA)
    };
    assert!(
        within(&formula(1.0, true)),
        "the twin is the rotary formula"
    );
    assert!(!within(&formula(-1.0, true)), "a swapped sign must fail");
    assert!(
        !within(&formula(1.0, false)),
        "a dropped sin term must fail"
    );
    // The table is KerasHub's: cos and sin of f32(p) * inv_freq, in f32.
    let (cos, sin) = table(&freq, 3);
    assert_eq!(cos.len(), 3 * half);
    assert_eq!(
        (cos[half + 1], sin[half + 1]),
        (freq[1].cos(), freq[1].sin())
    );
    assert_eq!((cos[1], sin[1]), (1.0, 0.0));
}

#[test]
fn rope_refuses_what_it_cannot_run() {
    let ctx = common::gpu::vulkan();
    let freq = inv_freq(8, 10_000.0);
    let table = ctx.upload_rope(&freq, 6).unwrap();
    assert_eq!((table.positions(), table.half()), (6, 4));
    assert_eq!(table.gpu_bytes(), 2 * 6 * 4 * 4);
    let mut graph = Graph::new();
    let x = graph.input(TensorShape::new(4, 16, StorageFormat::F32).unwrap());
    let err = |r: dtype_policy::Result<_>| r.unwrap_err().to_string();
    // Positions 3..7 past the table's 6.
    let e = err(graph.rope(x, &table, shape(1, 4, 2, 8, 3)));
    assert!(
        e.contains("positions 3 to 6") && e.contains("covers 0 to 5"),
        "{e}"
    );
    // x of another shape.
    let e = err(graph.rope(x, &table, shape(2, 4, 2, 8, 0)));
    assert!(e.contains("needs 8 x 16"), "{e}");
    // An odd head_dim, and a table for other heads.
    let e = err(graph.rope(x, &table, shape(1, 4, 16, 1, 0)));
    assert!(e.contains("head_dim must be even"), "{e}");
    let e = err(graph.rope(x, &table, shape(1, 4, 4, 4, 0)));
    assert!(e.contains("head_dim / 2 = 2"), "{e}");
    assert!(
        rope(
            StorageFormat::F32,
            shape(1, 4, 2, 8, 0),
            &freq[..3],
            &[0.0; 64]
        )
        .is_err()
    );
    assert!(rope(StorageFormat::F32, shape(1, 4, 2, 8, 0), &freq, &[0.0; 63]).is_err());
    assert!(ctx.upload_rope(&[], 4).is_err());
    assert!(ctx.upload_rope(&freq, 0).is_err());
    assert!(ctx.upload_rope(&[f32::NAN], 4).is_err());
}

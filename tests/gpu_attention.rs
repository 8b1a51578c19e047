// SPDX-License-Identifier: MIT OR Apache-2.0
//! The attention kernel on both adapters against its CPU twin, on awkward
//! shapes: one key, odd lengths, more keys than a workgroup's tile (64),
//! value heads wider than one pass of pairs (128), causal and given masks,
//! a query row that attends to nothing.

mod common;

use dtype_policy::cpu::attention::attention;
use dtype_policy::format::StorageFormat;
use dtype_policy::gpu::context::GpuContext;
use dtype_policy::gpu::recorder::Graph;
use dtype_policy::gpu::tensor::TensorShape;
use dtype_policy::ops::AttentionShape;

fn shape(batch: usize, t: usize, heads: usize, key_dim: usize, value_dim: usize) -> AttentionShape {
    AttentionShape {
        batch,
        tq: t,
        tk: t,
        heads,
        key_dim,
        value_dim,
        scale: 1.0 / (key_dim as f64).sqrt() as f32,
        causal: false,
        explicit: false,
    }
}

/// exp is the driver's: the twin's may differ in the last f32 place, which
/// the probabilities' rounding to 16 bits mostly hides; outputs are sums
/// of probabilities times values of order 1, so 2^-20 absolute in f32 and
/// one unit of the format's last place otherwise.
fn close(format: StorageFormat, a: f32, b: f32) -> bool {
    let ulp = match format {
        StorageFormat::F32 => return (a - b).abs() <= 1.0 / (1 << 20) as f32,
        StorageFormat::F16 => 2f32.powi(-10),
        _ => 2f32.powi(-7),
    };
    (a - b).abs() <= ulp * a.abs().max(b.abs()).max(1.0)
}

fn run(ctx: &mut GpuContext, format: StorageFormat, s: AttentionShape, masked: bool) {
    let (qk, v_cols) = (s.heads * s.key_dim, s.heads * s.value_dim);
    let round = |v: Vec<f32>| -> Vec<f32> {
        v.into_iter()
            .map(|x| format.round(f64::from(x)) as f32)
            .collect()
    };
    let q = round(common::gpu::values(s.batch * s.tq * qk, 1, 2.0));
    let k = round(common::gpu::values(s.batch * s.tk * qk, 2, 2.0));
    let v = round(common::gpu::values(s.batch * s.tk * v_cols, 3, 1.0));
    let mut mask: Vec<f32> = (0..s.batch * s.tq * s.tk)
        .map(|i| ((i * 7 + 3) % 5 != 0) as u8 as f32)
        .collect();
    // The last query row attends to nothing: uniform weights, as Keras.
    let last = (s.batch * s.tq - 1) * s.tk;
    mask[last..].fill(0.0);
    let mut graph = Graph::new();
    let qi = graph.input(TensorShape::new(s.batch * s.tq, qk, format).unwrap());
    let ki = graph.input(TensorShape::new(s.batch * s.tk, qk, format).unwrap());
    let vi = graph.input(TensorShape::new(s.batch * s.tk, v_cols, format).unwrap());
    let mi = masked
        .then(|| graph.input(TensorShape::new(s.batch * s.tq, s.tk, StorageFormat::F32).unwrap()));
    let y = graph.attention(qi, ki, vi, mi, s).unwrap();
    graph.output(y).unwrap();
    let forward = graph.build(ctx).unwrap();
    let mut inputs: Vec<&[f32]> = vec![&q, &k, &v];
    if masked {
        inputs.push(&mask);
    }
    let gpu = forward.run(ctx, &inputs).unwrap().remove(0);
    let twin = attention(format, s, &q, &k, &v, masked.then_some(&mask[..])).unwrap();
    assert_eq!(gpu.len(), twin.len());
    let label = format!(
        "{} {format:?} {s:?} masked {masked}",
        ctx.capabilities().adapter_name
    );
    for (i, (g, t)) in gpu.iter().zip(&twin).enumerate() {
        assert!(
            close(format, *g, *t),
            "{label}: value {i}: gpu {g}, twin {t}"
        );
    }
    // A planted mistake: the causal mask forgotten moves the outputs.
    if s.causal && s.tq > 1 {
        let open = attention(
            format,
            AttentionShape { causal: false, ..s },
            &q,
            &k,
            &v,
            masked.then_some(&mask[..]),
        )
        .unwrap();
        assert!(
            gpu.iter().zip(&open).any(|(g, t)| !close(format, *g, *t)),
            "{label}"
        );
    }
}

#[test]
fn attention_matches_its_twin_on_both_adapters() {
    for mut ctx in [common::gpu::vulkan(), common::gpu::gl()] {
        for format in [StorageFormat::F32, StorageFormat::F16, StorageFormat::BF16] {
            for s in [
                shape(1, 1, 1, 1, 2),
                shape(2, 7, 3, 5, 6),
                shape(1, 70, 2, 8, 8),
                shape(1, 3, 1, 16, 300),
            ] {
                for causal in [false, true] {
                    for masked in [false, true] {
                        run(&mut ctx, format, AttentionShape { causal, ..s }, masked);
                    }
                }
                // Keras's explicit path (dropout > 0), masked and causal.
                for (causal, masked) in [(false, false), (true, true)] {
                    let explicit = AttentionShape {
                        causal,
                        explicit: true,
                        ..s
                    };
                    run(&mut ctx, format, explicit, masked);
                }
            }
        }
    }
}

#[test]
fn attention_refuses_what_it_cannot_run() {
    let mut graph = Graph::new();
    let t = graph.input(TensorShape::new(4, 6, StorageFormat::F32).unwrap());
    let odd = shape(1, 4, 2, 3, 3);
    let err = graph.attention(t, t, t, None, odd).unwrap_err().to_string();
    assert!(err.contains("value_dim"), "{err}");
    let err = graph
        .attention(t, t, t, None, shape(1, 4, 2, 4, 4))
        .unwrap_err()
        .to_string();
    assert!(err.contains("queries"), "{err}");
}

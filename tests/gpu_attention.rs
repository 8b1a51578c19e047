// SPDX-License-Identifier: MIT OR Apache-2.0
//! The attention kernel on both adapters against its CPU twin, on awkward
//! shapes: one key, odd lengths, more keys than a workgroup's tile (64),
//! value heads wider than one pass of pairs (128), causal and given masks,
//! a query row that attends to nothing; grouped-query heads, padding masks
//! over keys, and the explicit path with its Softmax in float32.

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
        kv_heads: heads,
        key_dim,
        value_dim,
        scale: 1.0 / (key_dim as f64).sqrt() as f32,
        causal: false,
        explicit: false,
        key_mask: false,
        softmax_f32: false,
    }
}

const FORMATS: [StorageFormat; 3] = [StorageFormat::F32, StorageFormat::F16, StorageFormat::BF16];

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

/// Which mask an attention gets.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Mask {
    None,
    /// `[batch tq, tk]`, about four in five kept, the last query row none.
    Full,
    /// `[batch, tk]` (`key_mask`): the first sequence whole, the others
    /// padded after half their keys.
    Keys,
}

/// Deterministic inputs for `s`, rounded to `format`: q, k, v and the
/// mask `kind` asks for (empty for none).
fn inputs(format: StorageFormat, s: AttentionShape, kind: Mask) -> [Vec<f32>; 4] {
    let round = |v: Vec<f32>| -> Vec<f32> {
        v.into_iter()
            .map(|x| format.round(f64::from(x)) as f32)
            .collect()
    };
    let q = round(common::gpu::values(
        s.batch * s.tq * s.heads * s.key_dim,
        1,
        2.0,
    ));
    let k = round(common::gpu::values(
        s.batch * s.tk * s.kv_heads * s.key_dim,
        2,
        2.0,
    ));
    let v = round(common::gpu::values(
        s.batch * s.tk * s.kv_heads * s.value_dim,
        3,
        1.0,
    ));
    let mask = match kind {
        Mask::None => Vec::new(),
        Mask::Full => {
            let mut mask: Vec<f32> = (0..s.batch * s.tq * s.tk)
                .map(|i| ((i * 7 + 3) % 5 != 0) as u8 as f32)
                .collect();
            // The last query row attends to nothing: uniform weights, as Keras.
            let last = (s.batch * s.tq - 1) * s.tk;
            mask[last..].fill(0.0);
            mask
        }
        Mask::Keys => (0..s.batch * s.tk)
            .map(|i| {
                let (b, key) = (i / s.tk, i % s.tk);
                let valid = if b == 0 { s.tk } else { s.tk.div_ceil(2) };
                f32::from(key < valid)
            })
            .collect(),
    };
    [q, k, v, mask]
}

/// A planted mistake: a wrong twin of the attention of a shape, on q, k, v
/// and the mask.
type Planted<'a> = dyn Fn(AttentionShape, &[f32], &[f32], &[f32], Option<&[f32]>) -> Vec<f32> + 'a;

/// The attention of `s` on the GPU, after checking that it agrees with its
/// twin; and what `planted` (a mistake) gives on the same inputs, if
/// given.
fn run(
    ctx: &mut GpuContext,
    format: StorageFormat,
    s: AttentionShape,
    kind: Mask,
    planted: Option<&Planted<'_>>,
) -> (Vec<f32>, Vec<f32>, Option<Vec<f32>>) {
    let masked = kind != Mask::None;
    let [q, k, v, mask] = inputs(format, s, kind);
    let mut graph = Graph::new();
    let qi = graph.input(TensorShape::new(s.batch * s.tq, s.heads * s.key_dim, format).unwrap());
    let ki = graph.input(TensorShape::new(s.batch * s.tk, s.kv_heads * s.key_dim, format).unwrap());
    let vi =
        graph.input(TensorShape::new(s.batch * s.tk, s.kv_heads * s.value_dim, format).unwrap());
    let mask_rows = if kind == Mask::Keys {
        s.batch
    } else {
        s.batch * s.tq
    };
    let mi =
        masked.then(|| graph.input(TensorShape::new(mask_rows, s.tk, StorageFormat::F32).unwrap()));
    let y = graph.attention(qi, ki, vi, mi, s).unwrap();
    graph.output(y).unwrap();
    let forward = graph.build(ctx).unwrap();
    let mut inputs: Vec<&[f32]> = vec![&q, &k, &v];
    if masked {
        inputs.push(&mask);
    }
    let gpu = forward.run(ctx, &inputs).unwrap().remove(0);
    let mask = masked.then_some(&mask[..]);
    let twin = attention(format, s, &q, &k, &v, mask).unwrap();
    assert_eq!(gpu.len(), twin.len());
    let label = format!(
        "{} {format:?} {s:?} mask {kind:?}",
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
            mask,
        )
        .unwrap();
        assert!(
            gpu.iter().zip(&open).any(|(g, t)| !close(format, *g, *t)),
            "{label}"
        );
    }
    let planted = planted.map(|f| f(s, &q, &k, &v, mask));
    (gpu, twin, planted)
}

/// Whether `gpu` is beyond the tolerance of `wrong` somewhere.
fn caught(format: StorageFormat, gpu: &[f32], wrong: &[f32]) -> bool {
    gpu.len() != wrong.len() || gpu.iter().zip(wrong).any(|(g, w)| !close(format, *g, *w))
}

#[test]
fn attention_matches_its_twin_on_both_adapters() {
    for mut ctx in [common::gpu::vulkan(), common::gpu::gl()] {
        for format in FORMATS {
            for s in [
                shape(1, 1, 1, 1, 2),
                shape(2, 7, 3, 5, 6),
                shape(1, 70, 2, 8, 8),
                shape(1, 3, 1, 16, 300),
                // One query over more keys than the kernel keeps logits of
                // (1024): a decode step late in a long context.
                AttentionShape {
                    tq: 1,
                    ..shape(1, 1100, 2, 8, 8)
                },
            ] {
                // A causal mask needs as many queries as keys.
                let square = s.tq == s.tk;
                for causal in [false, true].into_iter().filter(|&c| square || !c) {
                    for kind in [Mask::None, Mask::Full] {
                        run(&mut ctx, format, AttentionShape { causal, ..s }, kind, None);
                    }
                }
                // Keras's explicit path (dropout > 0), masked and causal.
                for (causal, kind) in [(false, Mask::None), (square, Mask::Full)] {
                    let explicit = AttentionShape {
                        causal,
                        explicit: true,
                        ..s
                    };
                    run(&mut ctx, format, explicit, kind, None);
                }
            }
        }
    }
}

/// k or v `[rows, kv_heads dim]` with each head repeated `groups` times
/// (KerasHub's `ops.repeat(key, groups, axis=2)`), or, `tiled`, the whole
/// row of heads repeated (the planted mistake: query head n reading head
/// `n % kv_heads`).
fn repeat_heads(x: &[f32], kv_heads: usize, dim: usize, groups: usize, tiled: bool) -> Vec<f32> {
    x.chunks_exact(kv_heads * dim)
        .flat_map(|row| {
            (0..kv_heads * groups).flat_map(move |n| {
                let g = if tiled { n % kv_heads } else { n / groups };
                row[g * dim..(g + 1) * dim].iter().copied()
            })
        })
        .collect()
}

#[test]
fn grouped_query_attention_matches_its_twin_on_both_adapters() {
    // (batch, t, heads, kv_heads, key_dim, value_dim): two query heads per
    // key/value head; multi-query (one for all); more keys than a tile.
    let shapes = [(2, 5, 4, 2, 3, 4), (1, 7, 2, 1, 8, 6), (1, 70, 4, 2, 4, 2)];
    for mut ctx in [common::gpu::vulkan(), common::gpu::gl()] {
        for format in FORMATS {
            let mut planted_caught = false;
            for (batch, t, heads, kv_heads, key_dim, value_dim) in shapes {
                let s = AttentionShape {
                    kv_heads,
                    ..shape(batch, t, heads, key_dim, value_dim)
                };
                let groups = heads / kv_heads;
                // Planted: the heads tiled instead of repeated.
                let tiled =
                    |s: AttentionShape, q: &[f32], k: &[f32], v: &[f32], m: Option<&[f32]>| {
                        let k = repeat_heads(k, kv_heads, key_dim, groups, true);
                        let v = repeat_heads(v, kv_heads, value_dim, groups, true);
                        let full = AttentionShape {
                            kv_heads: heads,
                            ..s
                        };
                        attention(format, full, q, &k, &v, m).unwrap()
                    };
                let cases = [
                    (s, Mask::None),
                    (AttentionShape { causal: true, ..s }, Mask::Full),
                    (
                        AttentionShape {
                            explicit: true,
                            ..s
                        },
                        Mask::Full,
                    ),
                    (
                        AttentionShape {
                            causal: true,
                            explicit: true,
                            softmax_f32: true,
                            ..s
                        },
                        Mask::None,
                    ),
                ];
                for (s, kind) in cases {
                    let (gpu, _, wrong) = run(&mut ctx, format, s, kind, Some(&tiled));
                    planted_caught |= caught(format, &gpu, &wrong.unwrap());
                }
            }
            assert!(
                planted_caught,
                "{} {format:?}: tiled key/value heads must fail",
                ctx.capabilities().adapter_name
            );
        }
    }
}

#[test]
fn key_mask_with_causal_matches_its_twin_on_both_adapters() {
    // Two sequences, the second padded after half its keys (KerasHub's
    // padding mask), with and without grouped heads; one key per sequence;
    // more keys than a tile.
    let shapes = [
        shape(2, 6, 2, 4, 4),
        AttentionShape {
            kv_heads: 1,
            ..shape(2, 9, 3, 5, 6)
        },
        shape(2, 1, 1, 2, 2),
        shape(2, 67, 1, 4, 2),
    ];
    for mut ctx in [common::gpu::vulkan(), common::gpu::gl()] {
        for format in FORMATS {
            for s in shapes {
                let s = AttentionShape {
                    key_mask: true,
                    ..s
                };
                // Planted: the padding ignored.
                let unpadded =
                    |s: AttentionShape, q: &[f32], k: &[f32], v: &[f32], _: Option<&[f32]>| {
                        let open = AttentionShape {
                            key_mask: false,
                            ..s
                        };
                        attention(format, open, q, k, v, None).unwrap()
                    };
                for (causal, explicit, softmax_f32) in [
                    (true, false, false),
                    (false, false, false),
                    (true, true, false),
                    (true, true, true),
                ] {
                    let s = AttentionShape {
                        causal,
                        explicit,
                        softmax_f32,
                        ..s
                    };
                    let (gpu, _, wrong) = run(&mut ctx, format, s, Mask::Keys, Some(&unpadded));
                    assert!(
                        s.tk == 1 || caught(format, &gpu, &wrong.unwrap()),
                        "{} {format:?} {s:?}: ignoring the padding must fail",
                        ctx.capabilities().adapter_name
                    );
                }
            }
        }
    }
}

/// The per-op rounding of the Softmax layer moves outputs by less than the
/// attention's tolerance (a unit of the format's last place), so the
/// planted mistake is caught by distance: the GPU must be this many times
/// closer to its twin than to the rounded softmax, summed over the shapes.
const PLANTED_FACTOR: f64 = 4.0;

#[test]
fn float32_softmax_of_the_explicit_path_matches_its_twin_on_both_adapters() {
    let shapes = [
        shape(1, 1, 1, 1, 2),
        shape(2, 7, 3, 5, 6),
        shape(1, 70, 2, 8, 8),
        shape(1, 3, 1, 16, 300),
    ];
    for mut ctx in [common::gpu::vulkan(), common::gpu::gl()] {
        for format in FORMATS {
            // Summed distances of the GPU from the twin and from the planted one.
            let (mut near, mut far) = (0.0f64, 0.0f64);
            for s in shapes {
                let s = AttentionShape {
                    explicit: true,
                    softmax_f32: true,
                    ..s
                };
                // Planted: the Softmax layer's per-op rounding (the same
                // numbers in f32, where rounding is nothing).
                let rounded =
                    |s: AttentionShape, q: &[f32], k: &[f32], v: &[f32], m: Option<&[f32]>| {
                        let s = AttentionShape {
                            softmax_f32: false,
                            ..s
                        };
                        attention(format, s, q, k, v, m).unwrap()
                    };
                for (causal, kind) in [(false, Mask::None), (true, Mask::Full), (false, Mask::Full)]
                {
                    let s = AttentionShape { causal, ..s };
                    let (gpu, twin, wrong) = run(&mut ctx, format, s, kind, Some(&rounded));
                    let distance = |other: &[f32]| -> f64 {
                        gpu.iter()
                            .zip(other)
                            .map(|(g, o)| f64::from((g - o).abs()))
                            .sum()
                    };
                    near += distance(&twin);
                    far += distance(&wrong.unwrap());
                    if kind == Mask::Full {
                        // The fully masked last query row: all zeros.
                        let row = (s.batch * s.tq - 1) * s.heads * s.value_dim;
                        assert!(gpu[row..].iter().all(|&y| y == 0.0), "{s:?}");
                    }
                }
            }
            assert!(
                format == StorageFormat::F32 || far > PLANTED_FACTOR * near,
                "{} {format:?}: the per-op rounding must be farther from the GPU (summed \
                 distance {far}) than the twin ({near})",
                ctx.capabilities().adapter_name
            );
        }
    }
}

#[test]
fn grouped_heads_and_key_masks_are_the_full_forms_they_stand_for() {
    // CPU only: grouped-query attention is the attention over keys and
    // values repeated per group, and a key mask the full mask of its rows
    // repeated per query; bit for bit, on every path.
    let (batch, t, heads, kv_heads, key_dim, value_dim) = (2, 6, 4, 2, 3, 4);
    let groups = heads / kv_heads;
    for format in FORMATS {
        for (causal, explicit, softmax_f32) in [
            (false, false, false),
            (true, false, false),
            (true, true, false),
            (false, true, true),
        ] {
            let base = AttentionShape {
                causal,
                explicit,
                softmax_f32,
                kv_heads,
                ..shape(batch, t, heads, key_dim, value_dim)
            };
            let grouped = AttentionShape {
                key_mask: true,
                ..base
            };
            let [q, k, v, keys] = inputs(format, grouped, Mask::Keys);
            let y = attention(format, grouped, &q, &k, &v, Some(&keys)).unwrap();
            let expand_mask = |swap: bool| -> Vec<f32> {
                (0..batch * t)
                    .flat_map(|qr| {
                        let b = qr / t;
                        let b = if swap { batch - 1 - b } else { b };
                        keys[b * t..(b + 1) * t].iter().copied()
                    })
                    .collect()
            };
            let full = AttentionShape {
                kv_heads: heads,
                ..base
            };
            let expanded = |tiled: bool, swap: bool| {
                let k = repeat_heads(&k, kv_heads, key_dim, groups, tiled);
                let v = repeat_heads(&v, kv_heads, value_dim, groups, tiled);
                attention(format, full, &q, &k, &v, Some(&expand_mask(swap))).unwrap()
            };
            let label = format!("{format:?} {grouped:?}");
            assert_eq!(y.len(), batch * t * heads * value_dim, "{label}");
            assert_eq!(y, expanded(false, false), "{label}");
            // The check can fail: heads tiled, or another sequence's mask.
            assert_ne!(y, expanded(true, false), "{label}: tiled heads");
            assert_ne!(y, expanded(false, true), "{label}: swapped masks");
            // The grouped form with a full mask is the same as with its key mask.
            let full_mask = attention(format, base, &q, &k, &v, Some(&expand_mask(false))).unwrap();
            assert_eq!(y, full_mask, "{label}: full mask");
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
    // Three query heads cannot share two key/value heads.
    let uneven = AttentionShape {
        kv_heads: 2,
        ..shape(1, 4, 3, 2, 2)
    };
    let err = graph
        .attention(t, t, t, None, uneven)
        .unwrap_err()
        .to_string();
    assert!(err.contains("kv_heads must divide heads"), "{err}");
    let f32_softmax = AttentionShape {
        softmax_f32: true,
        ..shape(1, 4, 3, 2, 2)
    };
    let err = graph
        .attention(t, t, t, None, f32_softmax)
        .unwrap_err()
        .to_string();
    assert!(err.contains("explicit"), "{err}");
    // A key mask is [batch, tk]: a per-query mask of [batch tq, tk] is refused.
    let mut graph = Graph::new();
    let qkv = graph.input(TensorShape::new(8, 4, StorageFormat::F32).unwrap());
    let per_query = graph.input(TensorShape::new(8, 4, StorageFormat::F32).unwrap());
    let keys = AttentionShape {
        key_mask: true,
        ..shape(2, 4, 2, 2, 2)
    };
    let err = graph
        .attention(qkv, qkv, qkv, Some(per_query), keys)
        .unwrap_err()
        .to_string();
    assert!(err.contains("key mask"), "{err}");
    let twin = attention(
        StorageFormat::F32,
        keys,
        &[0.0; 32],
        &[0.0; 32],
        &[0.0; 32],
        Some(&[1.0; 32]),
    );
    assert!(twin.is_err(), "the twin refuses it too");
}

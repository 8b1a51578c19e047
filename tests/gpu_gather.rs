// SPDX-License-Identifier: MIT OR Apache-2.0
//! The Embedding gather (float, int8, int4 per row and in groups), the
//! Softmax layer (with and without a mask) and Reshape on both adapters
//! against their CPU twins, on awkward shapes (one value, odd, not a
//! multiple of 4, rows longer than a workgroup's 64 chunks).

mod common;

use std::num::NonZeroU32;

use dtype_policy::cpu::{embedding, norm};
use dtype_policy::format::{DenseKernel, StorageFormat, WeightFormat};
use dtype_policy::gpu::context::GpuContext;
use dtype_policy::gpu::recorder::Graph;
use dtype_policy::gpu::tensor::TensorShape;

const FORMATS: [StorageFormat; 3] = [StorageFormat::F32, StorageFormat::F16, StorageFormat::BF16];

fn run(ctx: &mut GpuContext, graph: Graph, inputs: &[&[f32]]) -> Vec<f32> {
    graph
        .build(ctx)
        .unwrap()
        .run(ctx, inputs)
        .unwrap()
        .remove(0)
}

use common::gpu::ulps;

#[test]
fn embedding_matches_its_twin_in_every_table_format_on_both_adapters() {
    // (vocab, dim, ids per row): one value; odd; a row of 300 values,
    // longer than 64 chunks of 4; a group size that does not divide dim.
    let shapes = [(1, 1, 1), (37, 7, 5), (9, 300, 3), (1000, 33, 2)];
    let formats = [
        WeightFormat::Float,
        WeightFormat::Int8 {
            quantized_inputs: false,
        },
        WeightFormat::Int4 {
            block: None,
            quantized_inputs: false,
        },
        WeightFormat::Int4 {
            block: NonZeroU32::new(8),
            quantized_inputs: false,
        },
    ];
    for mut ctx in [common::gpu::vulkan(), common::gpu::gl()] {
        for (vocab, dim, per_row) in shapes {
            let w = common::gpu::values(vocab * dim, 3, 2.0);
            let float = DenseKernel::float(&w, None, (dim, vocab)).unwrap();
            let rows = 2;
            let ids: Vec<f32> = (0..rows * per_row)
                .map(|i| ((i * 7919) % vocab) as f32)
                .collect();
            for weights in formats {
                let table = float.requantize(weights).unwrap();
                for format in FORMATS {
                    let uploaded = ctx.upload_embedding(&table, format).unwrap();
                    let mut graph = Graph::new();
                    let input =
                        graph.input(TensorShape::new(rows, per_row, StorageFormat::F32).unwrap());
                    let y = graph.embedding(input, &uploaded, format).unwrap();
                    graph.output(y).unwrap();
                    let gpu = run(&mut ctx, graph, &[&ids]);
                    let twin: Vec<f32> = embedding::embedding(&table, format, &ids).unwrap();
                    let label = format!(
                        "{} {weights:?} in {format:?}, {vocab} x {dim}",
                        ctx.capabilities().adapter_name
                    );
                    assert_eq!(gpu.len(), twin.len(), "{label}");
                    // One division or product, rounded once: the same bits.
                    assert_eq!(gpu, twin, "{label}");
                    // A planted mistake: the next id's row.
                    let shifted: Vec<f32> = ids
                        .iter()
                        .map(|&i| ((i as usize + 1) % vocab) as f32)
                        .collect();
                    let wrong: Vec<f32> = embedding::embedding(&table, format, &shifted).unwrap();
                    assert!(
                        vocab == 1 || gpu != wrong,
                        "{label}: a shifted id must fail"
                    );
                }
            }
        }
    }
}

#[test]
fn embedding_twin_refuses_ids_out_of_range() {
    let table = DenseKernel::float(&[1.0f32, 2.0], None, (1, 2)).unwrap();
    for bad in [2.0, -1.0, 0.5, f32::NAN] {
        assert!(embedding::embedding::<f32>(&table, StorageFormat::F32, &[bad]).is_err());
    }
}

/// The GPU's exp may differ from the twin's by an f32 ulp or two; after
/// the division that stays under one unit in the last place of a 16-bit
/// format, and under 2^-20 of the largest value in f32.
const SOFTMAX_ULPS: f64 = 1.0;

#[test]
fn softmax_matches_its_twin_with_and_without_a_mask_on_both_adapters() {
    let shapes = [(1, 1), (3, 37), (2, 1000), (65, 5)];
    for mut ctx in [common::gpu::vulkan(), common::gpu::gl()] {
        for format in FORMATS {
            for (rows, cols) in shapes {
                let x = common::gpu::values(rows * cols, 5, 4.0);
                // A mask keeping about two in three, one row fully masked.
                let mask: Vec<f32> = (0..rows * cols)
                    .map(|i| f32::from(i % 3 != 1 && (rows < 3 || i / cols != 2)))
                    .collect();
                for masked in [false, true] {
                    let mut graph = Graph::new();
                    let shape = TensorShape::new(rows, cols, format).unwrap();
                    let input = graph.input(shape);
                    let m = graph.input(TensorShape::new(rows, cols, StorageFormat::F32).unwrap());
                    let y = graph.softmax(input, masked.then_some(m)).unwrap();
                    graph.output(y).unwrap();
                    let gpu = run(&mut ctx, graph, &[&x, &mask]);
                    let twin: Vec<f32> =
                        norm::softmax(format, &x, cols, masked.then_some(mask.as_slice())).unwrap();
                    let label = format!(
                        "{} {format:?} {rows} x {cols} masked {masked}",
                        ctx.capabilities().adapter_name
                    );
                    assert_eq!(gpu.len(), twin.len(), "{label}");
                    for (i, (g, t)) in gpu.iter().zip(&twin).enumerate() {
                        let ok = if format == StorageFormat::F32 {
                            (g - t).abs() <= 2f32.powi(-20)
                        } else {
                            ulps(format, *g, *t) <= SOFTMAX_ULPS
                        };
                        assert!(ok, "{label}: value {i}: gpu {g}, twin {t}");
                    }
                    // Planted: the mask ignored (or applied where none is).
                    let other: Vec<f32> =
                        norm::softmax(format, &x, cols, (!masked).then_some(mask.as_slice()))
                            .unwrap();
                    assert!(
                        cols == 1 && rows == 1
                            || gpu
                                .iter()
                                .zip(&other)
                                .any(|(g, t)| ulps(format, *g, *t) > 4.0),
                        "{label}: the wrong mask must fail"
                    );
                }
            }
        }
    }
}

#[test]
fn reshape_moves_values_to_their_new_rows_on_both_adapters() {
    // (rows, cols) to rows of `to`: padded rows both sides, rows of one value, a
    // row longer than the padding step of 32.
    let cases = [(2, 6, 4), (2, 1, 2), (3, 40, 24), (4, 33, 3)];
    for mut ctx in [common::gpu::vulkan(), common::gpu::gl()] {
        for format in FORMATS {
            for (rows, cols, to) in cases {
                let x: Vec<f32> = (0..rows * cols).map(|i| i as f32 - 7.0).collect();
                let mut graph = Graph::new();
                let input = graph.input(TensorShape::new(rows, cols, format).unwrap());
                let y = graph.reshape(input, to).unwrap();
                graph.output(y).unwrap();
                let gpu = run(&mut ctx, graph, &[&x]);
                assert_eq!(gpu, x, "{format:?} {rows} x {cols} to rows of {to}");
            }
            let mut graph = Graph::new();
            let input = graph.input(TensorShape::new(2, 5, format).unwrap());
            assert!(graph.reshape(input, 3).is_err(), "10 values in rows of 3");
        }
    }
}

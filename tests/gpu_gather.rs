// SPDX-License-Identifier: MIT OR Apache-2.0
//! The Embedding gather (float, int8, int4 per row and in groups), the
//! PositionEmbedding gather (rows by position), the Softmax layer (with
//! and without a mask) and Reshape on both adapters against their CPU
//! twins, on awkward shapes (one value, odd, not a multiple of 4, rows
//! longer than a workgroup's 64 chunks).

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

#[test]
fn position_embedding_matches_its_twin_on_both_adapters() {
    // (max_positions, dim, batch, seq, start): one value; odd, two
    // sequences from position 3; a row of 300 values, longer than 64
    // chunks of 4; the table's last position alone, three sequences.
    let cases = [
        (1, 1, 1, 1, 0),
        (40, 7, 2, 5, 3),
        (16, 300, 1, 16, 0),
        (64, 33, 3, 1, 63),
    ];
    for mut ctx in [common::gpu::vulkan(), common::gpu::gl()] {
        for (positions, dim, batch, seq, start) in cases {
            // The [max_positions, dim] table, as the DenseKernel of its transpose.
            let table = common::gpu::values(positions * dim, 4, 2.0);
            let transposed: Vec<f32> = (0..dim * positions)
                .map(|i| table[(i % positions) * dim + i / positions])
                .collect();
            let kernel = DenseKernel::float(&transposed, None, (dim, positions)).unwrap();
            let rows = batch * seq;
            for format in FORMATS {
                let uploaded = ctx.upload_embedding(&kernel, format).unwrap();
                let mut graph = Graph::new();
                // Only the rows of `like` count: a tensor of another width and format.
                let like = graph.input(TensorShape::new(rows, 3, StorageFormat::BF16).unwrap());
                let y = graph
                    .positions(like, &uploaded, seq, start, format)
                    .unwrap();
                graph.output(y).unwrap();
                let ids = vec![0.0f32; rows * 3];
                let gpu = run(&mut ctx, graph, &[&ids]);
                let twin = embedding::positions(&kernel, format, rows, seq, start).unwrap();
                let label = format!(
                    "{} {format:?}, {positions} x {dim}, {batch} x {seq} from {start}",
                    ctx.capabilities().adapter_name
                );
                assert_eq!(gpu.len(), rows * dim, "{label}");
                assert_eq!(gpu.len(), twin.len(), "{label}");
                // A copy rounded once: the same bits.
                assert_eq!(gpu, twin, "{label}");
                // The twin is the table's rows start + r % seq, rounded.
                let direct: Vec<f32> = (0..rows)
                    .flat_map(|r| {
                        let p = start + r % seq;
                        table[p * dim..(p + 1) * dim]
                            .iter()
                            .map(|&v| format.round(f64::from(v)) as f32)
                    })
                    .collect();
                assert_eq!(twin, direct, "{label}");
                // Planted: positions from 0 rather than start.
                if start > 0 {
                    let wrong = embedding::positions(&kernel, format, rows, seq, 0).unwrap();
                    assert_ne!(gpu, wrong, "{label}: positions from 0 must fail");
                }
            }
        }
    }
}

#[test]
fn position_embedding_refuses_what_it_cannot_gather() {
    let ctx = common::gpu::vulkan();
    let float = DenseKernel::float(&common::gpu::values(8 * 4, 1, 1.0), None, (4, 8)).unwrap();
    let uploaded = ctx.upload_embedding(&float, StorageFormat::F32).unwrap();
    let mut graph = Graph::new();
    let like = graph.input(TensorShape::new(6, 4, StorageFormat::F32).unwrap());
    let err = |r: dtype_policy::Result<_>| r.unwrap_err().to_string();
    // 6 rows are no whole number of sequences of 4.
    let e = err(graph.positions(like, &uploaded, 4, 0, StorageFormat::F32));
    assert!(e.contains("whole"), "{e}");
    // Positions 6..9 past the table's 8.
    let e = err(graph.positions(like, &uploaded, 3, 6, StorageFormat::F32));
    assert!(e.contains("8 positions"), "{e}");
    let e = err(graph.positions(like, &uploaded, 0, 0, StorageFormat::F32));
    assert!(e.contains("sequences of 0"), "{e}");
    let int8 = float
        .requantize(WeightFormat::Int8 {
            quantized_inputs: false,
        })
        .unwrap();
    let quantized = ctx.upload_embedding(&int8, StorageFormat::F32).unwrap();
    let e = err(graph.positions(like, &quantized, 3, 0, StorageFormat::F32));
    assert!(e.contains("quantized"), "{e}");
    let e = embedding::positions(&int8, StorageFormat::F32, 6, 3, 0).unwrap_err();
    assert!(e.to_string().contains("quantized"), "{e}");
    assert!(embedding::positions(&float, StorageFormat::F32, 6, 4, 0).is_err());
    assert!(embedding::positions(&float, StorageFormat::F32, 6, 3, 6).is_err());
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

// SPDX-License-Identifier: MIT OR Apache-2.0
//! Recorded forwards on both adapters: the example decoder's 25 Dense
//! layers, each one's output the next one's input on the GPU (through
//! residual adds, and casts where the compute dtype changes), mixing every
//! weight format, run as one forward: one submission and one read-back per
//! run, no buffer, bind group or pipeline created when it runs again, every
//! layer equal to its CPU twin on its own GPU input (the harness of
//! gpu_dense.rs), and the logits close to the chained twins. The add
//! kernel against its twin, bit for bit.

mod common;

use common::harness::Case;
use dtype_policy::bench::decoder::{Decoder, WIDTH};
use dtype_policy::format::{HostFloat, StorageFormat};
use dtype_policy::gpu::context::GpuContext;
use dtype_policy::gpu::recorder::Graph;
use dtype_policy::gpu::tensor::TensorShape;
use dtype_policy::ops::Binary;
use dtype_policy::{DTypePolicyMap, Error};

/// A map that gives the decoder every weight format and four compute
/// dtypes: block 0 int8 (the key weight-only), per-channel int4, float8,
/// grouped int4 and a mixed_float16 layer; block 1 float32 and float8 from
/// float32; block 2 int4 in groups of 32 from float32 and int8; block 3 and
/// the head mixed_bfloat16.
fn every_format_map() -> DTypePolicyMap {
    let mut map = DTypePolicyMap::with_default_name("mixed_bfloat16").unwrap();
    for (key, policy) in [
        (
            r"decoder/block_0/attention/(query|key)",
            "int8_from_mixed_bfloat16",
        ),
        (
            "decoder/block_0/attention/value",
            "int4_from_mixed_bfloat16",
        ),
        (
            "decoder/block_0/attention/output",
            "float8_from_mixed_bfloat16",
        ),
        (
            "decoder/block_0/mlp/up_proj",
            "int4/128_from_mixed_bfloat16",
        ),
        ("decoder/block_0/mlp/down_proj", "mixed_float16"),
        (r"decoder/block_1/attention/(query|key|value)", "float32"),
        ("decoder/block_1/attention/output", "float8_from_float32"),
        (r"decoder/block_1/mlp/.*", "float32"),
        (r"decoder/block_2/attention/.*", "int4/32_from_float32"),
        (r"decoder/block_2/mlp/.*", "int8_from_float32"),
    ] {
        map.insert(key, policy).unwrap();
    }
    map
}

/// The decoder's logits may differ from the chained twins where a layer's
/// output differs by one rounding (a GPU may fuse a multiply-add; lavapipe
/// does in places) and later int8 quantizers turn that into a step of
/// their own; each layer is checked tightly against its twin on its own
/// input, so this only bounds how far such differences carry: 1% of the
/// largest logit.
const CHAIN_DRIFT: f32 = 0.01;

fn run_decoder(mut ctx: GpuContext, rows: usize) {
    let adapter = ctx.capabilities().adapter_name.clone();
    let decoder = Decoder::new(&every_format_map(), ctx.capabilities(), rows).unwrap();
    let formats: std::collections::BTreeSet<String> = decoder
        .plan
        .rows
        .iter()
        .map(|r| format!("{} {:?}", r.choice.format.name(), r.layout.format))
        .collect();
    assert!(formats.len() >= 10, "{formats:?}");
    let weights = decoder.upload(&ctx).unwrap();
    let mut graph = Graph::new();
    let x = graph.input(TensorShape::new(rows, WIDTH, decoder.stream).unwrap());
    // Every layer's input and output kept, to check each against its twin.
    let kept = decoder.record_every_layer(&mut graph, &weights, x).unwrap();
    assert_eq!(kept.layers.len(), 25);
    let forward = graph.build(&mut ctx).unwrap();
    let input = decoder.input();
    let built = ctx.counters();
    let first = forward.run(&ctx, &[&input]).unwrap();
    let after_first = ctx.counters();
    let second = forward.run(&ctx, &[&input]).unwrap();
    let after_second = ctx.counters();
    for (run, (before, after)) in [(built, after_first), (after_first, after_second)]
        .into_iter()
        .enumerate()
    {
        let label = format!("run {} on {adapter}", run + 1);
        assert_eq!(
            after.submissions - before.submissions,
            1,
            "{label}: submissions"
        );
        assert_eq!(
            after.read_backs - before.read_backs,
            1,
            "{label}: read-backs"
        );
        assert_eq!(
            (after.buffers, after.bind_groups, after.pipelines),
            (before.buffers, before.bind_groups, before.pipelines),
            "{label}: buffers, bind groups, pipelines created"
        );
    }
    assert_eq!(first, second, "two runs of the same forward on {adapter}");
    // Every layer against its twin, on the input the GPU gave it.
    for (i, (row, kernel)) in decoder.plan.rows.iter().zip(&decoder.kernels).enumerate() {
        let (gpu_in, gpu_out) = kept.of(&first, i);
        let case = Case {
            label: format!(
                "{} ({}) rows={rows} on {adapter}",
                row.spec.path,
                row.policy.name()
            ),
            kernel,
            format: row.layout.format,
            shape: row.choice.shape,
            activation: row.spec.activation,
            x: gpu_in,
            m: rows,
        };
        case.compare(gpu_out, &case.twin())
            .unwrap_or_else(|e| panic!("{e}"));
    }
    // The logits against the twins chained from the same input.
    let twins = decoder.run_cpu(&input).unwrap();
    let ((_, gpu), twin) = (kept.of(&first, 24), &twins[24].1);
    assert_eq!(gpu.len(), twin.len());
    assert_eq!(gpu.len(), rows * dtype_policy::bench::decoder::VOCAB);
    let largest = twin.iter().fold(0f32, |m, v| m.max(v.abs()));
    for (j, (g, c)) in gpu.iter().zip(twin).enumerate() {
        assert!(
            (g - c).abs() <= CHAIN_DRIFT * largest,
            "logit {j} rows={rows} on {adapter}: GPU {g}, chained twins {c} (largest {largest})"
        );
    }
}

#[test]
fn the_25_layer_decoder_runs_as_one_recorded_forward_on_lavapipe_vulkan() {
    for rows in [1, 12] {
        run_decoder(common::gpu::vulkan(), rows);
    }
}

#[test]
fn the_25_layer_decoder_runs_as_one_recorded_forward_on_llvmpipe_gl() {
    for rows in [1, 12] {
        run_decoder(common::gpu::gl(), rows);
    }
}

/// The residual add against its twin, bit for bit (an f32 sum rounded once
/// to the format, in integer arithmetic for 16-bit formats), on awkward
/// shapes: one value, odd columns, rows longer than a workgroup.
fn check_add<T: HostFloat>(ctx: &mut GpuContext, format: StorageFormat) {
    for (rows, cols) in [(1, 1), (3, 37), (2, 1000), (65, 129)] {
        let shape = TensorShape::new(rows, cols, format).unwrap();
        let host = |seed| -> Vec<T> {
            common::gpu::values(rows * cols, seed, 3.0)
                .into_iter()
                .map(T::from_f32)
                .collect()
        };
        let (a, b) = (host(1), host(2));
        for op in [Binary::Add, Binary::Multiply] {
            let mut graph = Graph::new();
            let (x, y) = (graph.input(shape), graph.input(shape));
            let sum = graph.binary(op, x, y).unwrap();
            graph.output(sum).unwrap();
            let gpu = graph
                .build(ctx)
                .unwrap()
                .run(ctx, &[&a, &b])
                .unwrap()
                .remove(0);
            let twin = dtype_policy::cpu::add::binary(format, op, &a, &b).unwrap();
            assert_eq!(gpu.len(), rows * cols);
            let bits = |v: &[T]| -> Vec<u64> { v.iter().map(|x| x.to_f64().to_bits()).collect() };
            assert_eq!(bits(&gpu), bits(&twin), "{format:?} {op:?} {rows} x {cols}");
        }
    }
}

#[test]
fn add_and_multiply_match_their_twin_bit_for_bit_on_both_adapters() {
    for mut ctx in [common::gpu::vulkan(), common::gpu::gl()] {
        for format in [StorageFormat::F32, StorageFormat::F16, StorageFormat::BF16] {
            check_add::<f32>(&mut ctx, format);
        }
        if ctx.capabilities().shader_f64 {
            check_add::<f64>(&mut ctx, StorageFormat::F64);
        }
    }
}

#[test]
fn a_forward_refuses_what_does_not_fit() {
    let mut ctx = common::gpu::vulkan();
    let mut graph = Graph::new();
    let a = graph.input(TensorShape::new(2, 8, StorageFormat::F32).unwrap());
    let b = graph.input(TensorShape::new(2, 9, StorageFormat::F32).unwrap());
    let err = graph.add(a, b).unwrap_err();
    assert!(matches!(err, Error::Shape(_)), "{err}");
    let c = graph.add(a, a).unwrap();
    graph.output(c).unwrap();
    let forward = graph.build(&mut ctx).unwrap();
    // Two inputs declared (b unused: no buffer is missing, it is written).
    let err = forward.run(&ctx, &[&[1.0f32; 16][..]]).unwrap_err();
    assert!(
        err.to_string().contains("takes 2 inputs, 1 were given"),
        "{err}"
    );
    let err = forward
        .run(&ctx, &[&[1.0f32; 15][..], &[1.0f32; 18][..]])
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("15 values given, but 2 rows of 8 need 16"),
        "{err}"
    );
    assert!(Graph::new().build(&mut ctx).is_err(), "an empty forward");
    assert!(TensorShape::new(0, 4, StorageFormat::F32).is_err());
    assert!(TensorShape::new(usize::MAX / 2, 64, StorageFormat::F32).is_err());
}

/// A dispatch that binds one tensor twice (an add of a tensor to itself)
/// frees its buffer once: two tensors alive together never share one.
#[test]
fn a_tensor_bound_twice_is_freed_once() {
    use dtype_policy::format::DenseKernel;
    use dtype_policy::gpu::shaders::StorageVariant;
    use dtype_policy::ops::{Activation, DenseShape};
    let mut ctx = common::gpu::vulkan();
    let k = 8;
    let weights = |scale: f32| {
        let w: Vec<f32> = (0..k * k)
            .map(|i| if i % (k + 1) == 0 { scale } else { 0.0 })
            .collect();
        DenseKernel::float(&w, None, (k, k)).unwrap()
    };
    let (w1, w2, w3) = (weights(1.0), weights(2.0), weights(3.0));
    let up = |w: &DenseKernel| ctx.upload_dense(StorageVariant::F32, w).unwrap();
    let (a, b, c) = (up(&w1), up(&w2), up(&w3));
    let mut graph = Graph::new();
    let x = graph.input(TensorShape::new(1, k, StorageFormat::F32).unwrap());
    let lin = (DenseShape::MatVec, Activation::Linear);
    let h = graph.dense(&a, lin.0, lin.1, x).unwrap();
    let s = graph.add(h, h).unwrap(); // 2x
    let p = graph.dense(&b, lin.0, lin.1, s).unwrap(); // 4x
    let q = graph.dense(&c, lin.0, lin.1, s).unwrap(); // 6x, while p lives
    let y = graph.add(p, q).unwrap(); // 10x
    graph.output(y).unwrap();
    let out = graph
        .build(&mut ctx)
        .unwrap()
        .run(&ctx, &[&[1.0f32; 8][..]])
        .unwrap();
    assert_eq!(out[0], vec![10.0f32; 8]);
}

/// An op that fails leaves the graph as it was (it still builds and runs),
/// and a tensor of another graph is an error, not a panic.
#[test]
fn a_failed_op_leaves_the_graph_whole_and_foreign_tensors_are_refused() {
    use dtype_policy::format::{DenseKernel, WeightFormat};
    use dtype_policy::gpu::shaders::StorageVariant;
    use dtype_policy::ops::{Activation, DenseShape};
    let mut ctx = common::gpu::vulkan();
    let int8 = WeightFormat::Int8 {
        quantized_inputs: true,
    };
    let kernel = DenseKernel::quantize(int8, &[0.5f32; 16], None, (4, 4)).unwrap();
    let weights = ctx.upload_dense(StorageVariant::F32, &kernel).unwrap();
    let mut graph = Graph::new();
    let x = graph.input(TensorShape::new(2, 4, StorageFormat::F32).unwrap());
    // Too many rows for the activation quantizer's workgroups: refused when recorded.
    let big = graph.input(TensorShape::new(70_000, 4, StorageFormat::F32).unwrap());
    let err = graph
        .dense(&weights, DenseShape::Tiled, Activation::Linear, big)
        .unwrap_err();
    assert!(err.to_string().contains("more than 65535"), "{err}");
    assert_eq!(graph.dispatches(), 0, "no half-recorded layer");
    let wrong = graph.input(TensorShape::new(2, 5, StorageFormat::F32).unwrap());
    assert!(
        graph
            .dense(&weights, DenseShape::MatVec, Activation::Linear, wrong)
            .is_err()
    );
    let y = graph
        .dense(&weights, DenseShape::MatVec, Activation::Linear, x)
        .unwrap();
    graph.output(y).unwrap();
    let mut other = Graph::new();
    let foreign = other.input(TensorShape::new(2, 4, StorageFormat::F32).unwrap());
    assert!(graph.add(foreign, y).is_err());
    assert!(graph.output(foreign).is_err());
    assert!(graph.shape(foreign).is_err());
    let forward = graph.build(&mut ctx).unwrap();
    let inputs: [&[f32]; 3] = [&[1.0; 8], &[0.0; 280_000], &[0.0; 10]];
    let out = forward.run(&ctx, &inputs).unwrap();
    assert_eq!(out[0].len(), 8);
}

/// Two int8 Dense layers reading the same tensor (a query and a key
/// projection) share one activation quantizer, and each gives what it
/// gives alone; a tensor written in place (an external one) is quantized
/// again for each.
#[test]
fn int8_layers_on_one_input_share_its_quantizer() {
    use dtype_policy::format::{DenseKernel, WeightFormat};
    use dtype_policy::gpu::shaders::StorageVariant;
    use dtype_policy::ops::{Activation, DenseShape};
    for mut ctx in [common::gpu::vulkan(), common::gpu::gl()] {
        let (m, k, n) = (3, 37, 21);
        let int8 = WeightFormat::Int8 {
            quantized_inputs: true,
        };
        let kernels: Vec<DenseKernel> = (0..2)
            .map(|seed| {
                let w = common::gpu::values(k * n, 40 + seed, 1.0);
                DenseKernel::quantize(int8, &w, None, (k, n)).unwrap()
            })
            .collect();
        let weights: Vec<_> = kernels
            .iter()
            .map(|kernel| ctx.upload_dense(StorageVariant::F32, kernel).unwrap())
            .collect();
        let x = common::gpu::values(m * k, 7, 2.0);
        let alone: Vec<Vec<f32>> = weights
            .iter()
            .map(|w| {
                ctx.dense(w, DenseShape::MatVec, Activation::Linear, &x, m)
                    .unwrap()
            })
            .collect();
        let mut graph = Graph::new();
        let input = graph.input(TensorShape::new(m, k, StorageFormat::F32).unwrap());
        for w in &weights {
            let y = graph
                .dense(w, DenseShape::MatVec, Activation::Linear, input)
                .unwrap();
            graph.output(y).unwrap();
        }
        assert_eq!(graph.dispatches(), 3, "one quantizer and two products");
        let forward = graph.build(&mut ctx).unwrap();
        assert_eq!(forward.run(&ctx, &[&x[..]]).unwrap(), alone);
        // An external tensor is quantized for each reader.
        let external = ctx
            .tensor(&x, TensorShape::new(m, k, StorageFormat::F32).unwrap())
            .unwrap();
        let mut graph = Graph::new();
        let input = graph.external(&external);
        for w in &weights {
            let y = graph
                .dense(w, DenseShape::MatVec, Activation::Linear, input)
                .unwrap();
            graph.output(y).unwrap();
        }
        assert_eq!(graph.dispatches(), 4, "a quantizer per product");
        let forward = graph.build(&mut ctx).unwrap();
        assert_eq!(forward.run::<f32>(&ctx, &[]).unwrap(), alone);
    }
}

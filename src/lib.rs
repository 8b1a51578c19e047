// SPDX-License-Identifier: MIT OR Apache-2.0
//! # dtype-policy
//!
//! Keras 3's dtype policies in Rust: which dtype each layer computes in, which
//! dtype stores its weights, and whether (and how) those weights are
//! quantized, looked up per layer path in a [`DTypePolicyMap`].
//!
//! ## Overview
//! | Keras | here |
//! |---|---|
//! | `DTypePolicy("mixed_bfloat16")` | [`DTypePolicy::new`] |
//! | `FloatDTypePolicy` | [`FloatDTypePolicy`] (the same type) |
//! | `QuantizedDTypePolicy("int8", "float32")` | [`QuantizedDTypePolicy::new`] |
//! | `QuantizedFloat8DTypePolicy("float8", "float32", 1024)` | [`QuantizedFloat8DTypePolicy::new`] |
//! | `Int4DTypePolicy("int4/128", "float32")` | [`Int4DTypePolicy::new`] |
//! | `GPTQDTypePolicy`, `AWQDTypePolicy` | [`GroupwiseDTypePolicy`] |
//! | `keras.dtype_policies.get("int8_from_float32")` | `"int8_from_float32".parse::<Policy>()` |
//! | `DTypePolicyMap(default_policy)` | [`DTypePolicyMap`] |
//! | `keras.config.dtype_policy()` / `set_dtype_policy` | [`dtype_policy()`] / [`set_dtype_policy()`] |
//! | `keras.dtype_policies.serialize` / `deserialize` | [`Policy::to_keras_value`] / [`Policy::from_keras_value`], serde |
//!
//! Names, dtypes, equality, `repr()` (here `Display`) and JSON follow released
//! Keras 3.15.1; `tests/keras_reference.rs` replays answers recorded from it.
//!
//! ## Usage
//! ```
//! use dtype_policy::{DTypePolicyMap, Policy, DType};
//!
//! // A model whose attention projections run int8 and whose MLPs run int4.
//! let mut map = DTypePolicyMap::with_default("mixed_bfloat16".parse()?);
//! map.insert(r"block_\d+/attention/(query|key|value)", "int8_from_mixed_bfloat16")?;
//! map.insert(r"block_\d+/mlp/.*", "int4/128_from_mixed_bfloat16")?;
//!
//! let p = map.get("block_3/attention/key")?;
//! assert_eq!(p.name(), "int8_from_mixed_bfloat16");
//! assert_eq!(p.compute_dtype(), DType::BFloat16);
//! assert_eq!(map.get("embedding")?.name(), "mixed_bfloat16");
//!
//! // Keras JSON round trip.
//! let json = map.to_keras_json();
//! let back = dtype_policy::DTypePolicyMap::from_keras_json(&json)?;
//! assert_eq!(back.to_keras_json(), json);
//! # Ok::<(), dtype_policy::Error>(())
//! ```
//!
//! ## On the GPU
//! The policy of each layer, looked up by path, and the adapter's
//! capabilities choose a kernel variant and buffer layout
//! ([`routing::select_dense`]); a [`plan::Plan`] does it for a whole model
//! and says why for each layer. A layer's kernel is a [`format::DenseKernel`]
//! (float, or quantized as Keras stores it: made from Keras's own variables
//! or through Keras's quantizers), uploaded once in its kernels' layout
//! ([`gpu::dense::DenseWeights`], one type for every format). Layers are
//! recorded into a [`gpu::recorder::Graph`] of device tensors, built once
//! into a [`gpu::recorder::Forward`] (buffers from a pool, bind groups and
//! pipelines made ahead) that runs as one submission and reads back only
//! its outputs. For many rows, the tiled kernel of a layer's family is the
//! fixed rule's unless the context's [`gpu::tuning::TuningTable`] holds a
//! measured winner for the adapter (`GpuContext::tune_tiled`,
//! `tune_missing`; cached on disk by adapter, driver and kernel version).
//!
//! ```no_run
//! use dtype_policy::gpu::context::GpuContext;
//! use dtype_policy::gpu::recorder::Graph;
//! use dtype_policy::gpu::tensor::TensorShape;
//! use dtype_policy::ops::Activation;
//! use dtype_policy::plan::{DenseLayerSpec, Plan};
//! use dtype_policy::DTypePolicyMap;
//!
//! let mut map = DTypePolicyMap::with_default_name("mixed_bfloat16")?;
//! map.insert(r".*/attention/.*", "int8_from_mixed_bfloat16")?;
//! let mut ctx = GpuContext::new()?; // WGPU_BACKEND, WGPU_ADAPTER_NAME choose
//! let layer = |path: &str, k, n| DenseLayerSpec {
//!     path: path.into(), rows: 1, k, n, activation: Activation::Linear,
//!     int8_weight_only: false,
//! };
//! let layers = [layer("block_0/attention/query", 4, 2), layer("block_0/mlp/up", 2, 3)];
//! let plan = Plan::new(&map, &layers, ctx.capabilities())?;
//! println!("{plan}");
//! // Each layer's kernel in its policy's format (int8 for the first), uploaded.
//! let kernels = [
//!     plan.rows[0].quantize(&[0.5f32; 8], None)?,
//!     plan.rows[1].quantize(&[0.25f32; 6], Some(&[0.0f32; 3]))?,
//! ];
//! let weights = [plan.rows[0].upload(&ctx, &kernels[0])?, plan.rows[1].upload(&ctx, &kernels[1])?];
//! // Both layers as one forward: the first one's output is the second's input.
//! let mut graph = Graph::new();
//! let x = graph.input(TensorShape::new(1, 4, plan.rows[0].layout.format)?);
//! let h = plan.rows[0].record(&mut graph, &weights[0], x)?;
//! let y = plan.rows[1].record(&mut graph, &weights[1], h)?;
//! graph.output(y)?;
//! let forward = graph.build(&mut ctx)?;
//! let out = forward.run(&ctx, &[&[1.0f32, 2.0, 3.0, 4.0][..]])?;
//! // The chained CPU twins, computed the same way.
//! let h_cpu = plan.rows[0].run_cpu(&kernels[0], &[1.0f32, 2.0, 3.0, 4.0])?;
//! println!("{:?}, twins {:?}", out[0], plan.rows[1].run_cpu(&kernels[1], &h_cpu)?);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! - [`mod@format`]: host formats and the Dense kernel as Keras stores it; no
//!   GPU types.
//! - [`gpu`]: the runtime (adapter, capabilities, error scopes, device
//!   tensors, pipelines, recorded forwards; Dense for every weight format,
//!   add, cast, roofline probes). It knows storage formats, not Keras.
//! - [`cpu`]: the CPU twin of every kernel, same summation order and rounding.
//! - `shaders/`: one WGSL file per kernel, helpers in `shaders/shared/`.
//! - [`models`]: Keras models and KerasHub backbones and causal LMs on top
//!   of the runtime; [`mod@bench`]: kernel and generation benchmarks.
//! - [`tokenizer`]: KerasHub's tokenizers (byte-level BPE, SentencePiece BPE),
//!   text to token ids and back; no GPU types.
//!
//! ## Keras's quantized variables
//! A quantized layer's kernel loads as Keras stores it, without a float
//! round trip: [`format::DenseKernel::from_keras`] takes the variables by
//! Keras's names (`kernel`, `bias`, `kernel_scale`, `kernel_zero`, `g_idx`,
//! `inputs_scale`), checks every shape and type against what Keras 3.15.1
//! writes for the layer's weight format and class (Dense `[in, units]`;
//! MultiHeadAttention's EinsumDense `[in, heads, head_dim]` and `[heads,
//! head_dim, out]`; int4 flattened and packed along the outputs, or packed
//! along the inputs as Keras before 3.14 did), and names what is wrong.
//! The GPU uploads it as it is, and the CPU twin computes from it.
//!
//! ```
//! use dtype_policy::format::{
//!     DenseKernel, KernelAxes, KerasDenseVariables, StorageFormat, Variable, VariableValues,
//!     WeightFormat,
//! };
//! use dtype_policy::ops::{Activation, DenseShape};
//!
//! // A Dense(2) on 3 inputs that Keras quantized to int8.
//! let (kernel, scale) = ([127i8, -64, 0, 127, -127, 32], [127.0f32, 127.0]);
//! let vars = KerasDenseVariables {
//!     kernel: Variable { shape: &[3, 2], values: VariableValues::I8(&kernel) },
//!     bias: None,
//!     kernel_scale: Some(Variable { shape: &[2], values: VariableValues::F32(&scale) }),
//!     kernel_zero: None,
//!     g_idx: None,
//!     inputs_scale: None,
//! };
//! let int8 = WeightFormat::Int8 { quantized_inputs: true };
//! let dense = DenseKernel::from_keras(int8, (3, 2), KernelAxes::Dense, &vars)?;
//! // Its CPU twin: Keras's int8 Dense (activations quantized per row).
//! let y = dtype_policy::cpu::dense::dense(
//!     &dense, StorageFormat::F32, DenseShape::MatVec, Activation::Linear, &[1.0f32, 0.5, -1.0], 1,
//! )?;
//! assert_eq!(y.len(), 2);
//! // A kernel of the wrong shape is an error that says which variable.
//! let wrong = KerasDenseVariables { kernel: Variable { shape: &[2, 3], ..vars.kernel }, ..vars };
//! let err = DenseKernel::from_keras(int8, (3, 2), KernelAxes::Dense, &wrong).unwrap_err();
//! assert!(err.to_string().contains("'kernel' has shape [2, 3]"), "{err}");
//! # Ok::<(), dtype_policy::Error>(())
//! ```
//!
//! ## The runtime
//! - A [`gpu::tensor::Tensor`] lives on the GPU: rows of values in one
//!   storage format, each padded with zeros to a multiple of 32 values,
//!   the layout every Dense kernel reads its input in and writes its
//!   output in; it is read back only when asked.
//! - A [`gpu::recorder::Graph`] lists tensors and the dispatches of its ops
//!   ([`gpu::recorder::Graph::dense`] for every weight format, `add`,
//!   `cast`). [`gpu::recorder::Graph::build`] gives a
//!   [`gpu::recorder::Forward`]: intermediates from a pool sized up front,
//!   one uniform buffer for every dispatch, bind groups and pipelines made
//!   once. [`gpu::recorder::Forward::run`] writes the inputs, encodes every
//!   dispatch in one compute pass, submits once and reads back the
//!   outputs through one staging buffer; [`gpu::recorder::Forward::time`]
//!   times each dispatch with GPU timestamps.
//!   [`gpu::context::GpuContext::counters`] counts what a context created,
//!   submitted and read back.
//! - Every kernel's facts (file, bindings, override constants, shape) are
//!   one table ([`gpu::kernels::KernelSpec`]); `build.rs` tables the WGSL
//!   files of `shaders/`.
//! - Errors are one type, [`Error`]; GPU failures are its
//!   [`Error::Gpu`] kind, and a layer's errors name it ([`Error::Layer`]).
//!
//! ## Keras models
//! [`models::Model::load`] reads a `.keras` file ([`io::archive`]: the zip;
//! [`io::h5`]: the weights) into its layers ([`layers`]), each with its
//! Keras path and policy; [`models::Model::plan`] says how each runs on an
//! adapter, [`models::Model::upload`] records the whole model as one
//! forward, and [`models::Model::run_cpu`] chains the layers' CPU twins.
//! [`models::Model::quantize`] is Keras's `Model.quantize` (Dense,
//! MultiHeadAttention's projections and Embedding: an Embedding's table is
//! held as the Dense kernel of its transpose, which Keras's Dense
//! quantizers quantize exactly as its Embedding's do, and which is the
//! output head of a model that ties its embeddings). The `dtype-policy`
//! tool's `plan` and `run` take `.keras` files and KerasHub preset
//! folders; [`io::npy`] reads and writes their inputs and outputs.
//!
//! ## KerasHub backbones
//! A `.keras` file or preset folder (`backbone.save_to_preset`) of
//! KerasHub 0.32.0's `GPT2Backbone`, `LlamaBackbone`, `Llama3Backbone` or
//! `GemmaBackbone` loads through the same [`models::Model::load`]
//! ([`models::backbones`]): the flat config is assembled into the layers
//! the Python class builds, each at its Keras path
//! (`transformer_layer_0/self_attention/query`) with its policy from the
//! config's DTypePolicyMap or the map given, and its variables from its
//! group of the weights file. Their inputs (`token_ids`, `padding_mask`)
//! take any length ([`models::Model::set_sequence_length`]); attention is
//! causal and masked by the padding mask over keys, as KerasHub combines
//! them; Llama's attention is grouped-query with its rotary embedding
//! (Llama 3.1's frequency adjustment included), Gemma's multi-query with
//! its `(1 + scale)` norms and its embedding scaled by `sqrt(hidden_dim)`.
//! `tests/keras_backbones.rs` checks every policy KerasHub saves against
//! its outputs.
//!
//! ## Generating text
//! [`models::causal_lm::CausalLm::load`] reads KerasHub's `GPT2CausalLM`,
//! `LlamaCausalLM`, `Llama3CausalLM` and `GemmaCausalLM` (a `.keras` file
//! or a preset folder, with the preset's tokenizer, [`tokenizer`]): the
//! backbone and the reverse projection of its `ReversibleEmbedding` as the
//! head. [`models::causal_lm::CausalLm::upload`] puts the weights and a KV
//! cache per attention layer on the GPU and records the decode step once;
//! [`models::causal_lm::GpuCausalLm::generate`] prefills the prompt (tiled
//! kernels, causal mask, the head on the last position) and then runs one
//! submission per token, reading back only the token (greedy, chosen on
//! the GPU) or the logits (top-k, top-p). `tests/keras_generate.rs`
//! checks KerasHub's greedy tokens and every step's logits.
//!
//! ## Where this differs from Keras, on purpose
//! - The global policy is process-wide, not per thread ([`policy::global`]).
//! - A map key that is not a valid regular expression is rejected when
//!   inserted, not at the first lookup that reaches it.
//! - Types rule out what Keras checks at run time (a map as the default of a
//!   map, a number as a policy); in JSON those are clear errors.
//! - `Int4DTypePolicy` made without a source is named after the global
//!   policy it uses, where Keras writes `int4/128_from_None`.
//! - `amax_history_length` must be at least 1 and is an integer, not a bool.
//! - Quantized layers in a 16-bit compute dtype: the kernels compute in f32
//!   and round once, to the compute dtype, on store. Keras rounds along the
//!   way: int8's activation scale and products (an activation can land one
//!   int8 step away), its i32 sum, its scales' product and quotient; the
//!   weights it dequantizes before its product (grouped int4, EinsumDense's
//!   per-channel int4). `tests/keras_dense_quantized.rs` bounds each of
//!   these against Keras's own numbers.
//! - float8 divides by its scales as Keras's code does. Under `jit`, jax's
//!   CPU backend multiplies by the scale's reciprocal rounded to float16,
//!   which moves a quotient on an e4m3 rounding boundary to the other code;
//!   the Keras tests allow for exactly that.
//! - int4 files of Keras before 3.14 (packed along the inputs, with int8
//!   activations), which Keras 3.15.1 refuses to load, load here
//!   ([`format::WeightFormat::Int4`] with `quantized_inputs`) and run on the
//!   int8 kernels, giving Keras 3.13's numbers.
//! - A Functional model whose MultiHeadAttention Keras quantized does not
//!   load back in Keras 3.15.1 (the config records no quantization for the
//!   attention's EinsumDense sublayers). Here each projection's format is
//!   read from the variables it stores, under the attention's policy.
//! - A map that gives a quantized policy to a layer stored in floats
//!   quantizes it on load with Keras's quantizers (as `Model.quantize`
//!   would; float8 with a fresh layer's scales), where Keras would refuse
//!   the variables.
//! - MultiHeadAttention computes as Keras does: its fused path
//!   (`dot_product_attention`: f32 logits and softmax, probabilities
//!   rounded to the compute dtype, a fully masked row uniform), or with
//!   `dropout > 0` its explicit path (the scaled query, the scores and each
//!   softmax step rounded to the compute dtype, a fully masked row zero).
//!   Each softmax is computed in one workgroup per query row and head; the
//!   sums run in another order than XLA's.
//! - A `.keras` member that declares more than 256 MiB and more than 100
//!   times its stored size is refused as a decompression bomb; Keras's
//!   in-memory reads start at 4 GiB (its own files are stored, ratio 1).
//! - LayerNormalization, Softmax, Embedding, Reshape, activations and
//!   attention do not run in float64 (their kernels compute in f32): a
//!   float64 model is an error naming the layer.
//! - Embedding ids arrive as float32 values (exact integers up to 2^24;
//!   an `int32` or `int64` input is read so), and an id that is not an
//!   integer below the vocabulary is an error, where Keras casts floats to
//!   int32 and jax's gather clamps or fills. `mask_zero=True` is refused:
//!   its implicit mask is not carried to later layers here.
//! - Softmax normalizes the last axis only, and its mask has the inputs'
//!   shape (Keras broadcasts smaller masks).
//! - Gemma's int4 query, key and value kernels of more than one head are
//!   held dequantized, as float in the compute dtype: Keras flattens the
//!   `[heads, hidden, head_dim]` kernel to `[hidden, heads head_dim]` by a
//!   plain reshape, which mixes the heads into the rows, so its scales are
//!   not per output column. The numbers are Keras's (it dequantizes the
//!   same way before its product); the memory is float's, and the plan
//!   says so.
//! - Gemma's rotary embedding interleaves the halves of each head after
//!   rotating them; both queries and keys are permuted alike, so their dot
//!   products are the same, and here the permutation is skipped (only the
//!   order of each q . k sum differs).
//! - KerasHub backbones are read, not written: [`models::Model::to_keras`]
//!   and the safetensors export refuse them with an error saying so.
//! - Generation: a decode step attends to the positions written so far
//!   only, where KerasHub's `call_with_cache` attends over the whole cache
//!   with the later rows masked (the same numbers); its prefill covers the
//!   prompt, where KerasHub's `_build_cache` runs over the padded sequence.
//!   The top-k and top-p samplers draw from their own seeded generator
//!   (SplitMix64), so their tokens for a seed are not jax's.
//! - A grouped int4 head (`int4/128`): Keras quantizes the head's inputs to
//!   int8 and multiplies them by the dequantized weights; the grouped
//!   kernel multiplies the unquantized inputs (measured on the fixtures:
//!   within 4e-7 of Keras's logits).
//! - As in KerasHub 0.32.0, Llama's rope ignores
//!   `rope_position_scaling_factor` (its `_get_inverse_freq` override
//!   drops it).
//!
//! ## Untrusted input
//! Every parser and loader returns `Err` on bad input and never panics (a
//! property test feeds arbitrary strings and JSON). Regex keys are compiled
//! by the `regex` crate, whose matching time is linear in the path length.
//! Shapes from files and users are checked before anything is allocated:
//! every size, byte count and dispatch count is computed in checked
//! arithmetic, and a zero-sized layer or tensor is an error (property tests
//! feed shapes up to `u64::MAX` to the plan, the kernel constructors and
//! the uploads).

#![warn(missing_docs)]

pub mod bench;
pub mod cpu;
pub mod error;
pub mod format;
pub mod gpu;
pub mod io;
pub mod layers;
pub mod models;
pub mod ops;
pub mod plan;
pub mod policy;
pub mod quant;
pub mod routing;
mod size;
pub mod tokenizer;

pub use error::{Error, Result};
pub use policy::any::{IntoPolicy, Policy};
pub use policy::dtype::DType;
pub use policy::float::{DTypePolicy, FloatDTypePolicy};
pub use policy::global::{dtype_policy, set_dtype_policy};
pub use policy::map::{DTypePolicyMap, Lookup, Matched};
pub use policy::quantized::{
    GroupwiseDTypePolicy, Int4DTypePolicy, QuantizationMode, QuantizedDTypePolicy,
    QuantizedFloat8DTypePolicy,
};

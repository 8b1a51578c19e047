// SPDX-License-Identifier: MIT OR Apache-2.0
//! Generation with a KV cache (tests/data/generate/, written by
//! tools/kerashub_generate_reference.py with KerasHub 0.32.0 and Keras
//! 3.15.1): tiny GPT2CausalLM, LlamaCausalLM (untied head) and
//! GemmaCausalLM under float32, after `quantize("int8")` and
//! `quantize("int4")`, and under mixed_bfloat16, from their .keras files
//! and preset folders, on both adapters. Greedy decoding of 16 tokens gives
//! KerasHub's tokens, the logits of every step are within the tolerances
//! below of KerasHub's `call_with_cache` and of the CPU twins' whole-sequence
//! forward, and a decode step submits once and makes nothing.

mod common;

use std::sync::Mutex;

use dtype_policy::format::StorageFormat;
use dtype_policy::gpu::context::GpuContext;
use dtype_policy::io::npy::NpyArray;
use dtype_policy::models::causal_lm::{CausalLm, GenerateOptions, Read, Sampler};
use serde_json::Value;

/// Loading resolves `source_name: null` against the global policy, as
/// Keras does; the tests that set it take turns.
static GLOBAL_POLICY: Mutex<()> = Mutex::new(());

const MODELS: [&str; 3] = ["gpt2", "llama", "gemma"];

fn data(file: &str) -> String {
    format!("{}/tests/data/generate/{file}", env!("CARGO_MANIFEST_DIR"))
}

fn fixture(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(data(&format!("{name}.json"))).unwrap()).unwrap()
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as u32)
        .collect()
}

/// KerasHub's logits of each step, `[steps][vocabulary]`.
fn keras_logits(case: &Value, vocab: usize) -> Vec<Vec<f32>> {
    let file = data(case["logits"].as_str().unwrap());
    let values = NpyArray::from_bytes(&std::fs::read(&file).unwrap(), &file)
        .unwrap()
        .values;
    assert_eq!(values.len() % vocab, 0, "{file}: {} values", values.len());
    values.chunks(vocab).map(<[f32]>::to_vec).collect()
}

/// Loads a case's file (or its preset folder) with the global policy
/// Keras had when it made it.
fn load(path: &str, policy: &str) -> CausalLm {
    let _turn = GLOBAL_POLICY.lock().unwrap_or_else(|e| e.into_inner());
    let global = if policy == "mixed_bfloat16" {
        "mixed_bfloat16"
    } else {
        "float32"
    };
    dtype_policy::policy::global::set_dtype_policy(global).unwrap();
    let lm = CausalLm::load(data(path), None);
    dtype_policy::policy::global::set_dtype_policy("float32").unwrap();
    lm.unwrap()
}

/// How far a step's logits may be from KerasHub's, relative to the
/// largest logit of the step. float32, int8 and int4: XLA sums in another
/// order and its exp, tanh and rsqrt are not the GPU's, a few f32 ulps
/// through two blocks and the head (measured worst 9.5e-7, Gemma int4,
/// on both adapters; int8 and int4 included: the kernels quantize the
/// activations as Keras does). bf16: every layer rounds its output to 8
/// bits, so a rounding that falls the other way moves later layers by a
/// bf16 ulp (2^-8 = 3.9e-3 of the largest; measured worst 6.2e-3, Gemma). A dropped
/// term of the head moves a logit by 1e-2 or more (planted below).
fn keras_tolerance(policy: &str) -> f32 {
    match policy {
        "mixed_bfloat16" => 1e-2,
        _ => 1e-5,
    }
}

/// How far the GPU's steps may be from the CPU twins' forward over the
/// whole sequence: the same roundings but for the driver's exp, tanh and
/// sqrt, and the attention's sums over the cache (measured worst 8.3e-7,
/// Gemma int4). In bf16 the twins' whole-sequence forward runs the tiled
/// kernels where the steps run the matrix-vector ones, whose sums round
/// otherwise: two bf16 ulps of the largest logit (measured 5.9e-3, Gemma).
fn twin_tolerance(policy: &str) -> f32 {
    match policy {
        "mixed_bfloat16" => 8e-3,
        _ => 1e-5,
    }
}

/// The largest difference relative to the largest magnitude of `want`,
/// after checking the lengths; NaN counts as infinitely far.
fn relative(got: &[f32], want: &[f32]) -> f32 {
    assert_eq!(got.len(), want.len(), "lengths");
    let scale = want.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-6);
    got.iter()
        .zip(want)
        .map(|(a, b)| {
            let d = (a - b).abs() / scale;
            if d.is_nan() { f32::INFINITY } else { d }
        })
        .fold(0.0, f32::max)
}

/// Steps of `lm` from `prompt` on `ctx`, each fed the token `feed` gives
/// for it (Keras's, so that a step that chose otherwise does not change
/// the later steps' inputs) or, with `None`, the token the last step chose:
/// the tokens chosen and the logits of every step.
fn steps(
    ctx: &mut GpuContext,
    lm: &CausalLm,
    prompt: &[u32],
    steps: usize,
    feed: Option<&[u32]>,
) -> (Vec<u32>, Vec<Vec<f32>>) {
    let mut gpu = lm.upload(ctx, prompt.len() + steps).unwrap();
    let mut out = gpu.prefill(ctx, prompt, Read::Logits).unwrap();
    let mut tokens = Vec::new();
    let mut logits = Vec::new();
    for step in 0..steps {
        tokens.push(out.token);
        logits.push(out.logits.take().unwrap());
        if step + 1 < steps {
            let next = feed.map_or(out.token, |f| f[step]);
            out = gpu.decode(ctx, next, Read::Logits).unwrap();
        }
    }
    (tokens, logits)
}

/// One case on one adapter: tokens and logits against Keras and the twins.
fn check_case(ctx: &mut GpuContext, model: &str, case: &Value, path: &str) {
    let caps = ctx.capabilities().clone();
    let adapter = format!("{} {}", caps.backend, caps.adapter_name);
    let policy = case["policy"].as_str().unwrap();
    let lm = load(path, policy);
    let prompt = ids(&case["prompt"]);
    let want = ids(&case["tokens"]);
    let keras = keras_logits(case, lm.vocabulary_size());
    assert_eq!(keras.len(), want.len(), "{path}: steps");
    let (tokens, logits) = steps(ctx, &lm, &prompt, want.len(), Some(&want));
    // The twins' whole-sequence forward: position p's logits choose the
    // token after it.
    let mut sequence = prompt.clone();
    sequence.extend_from_slice(&want[..want.len() - 1]);
    let twin = lm.logits_cpu(&caps, &sequence).unwrap();
    let vocab = lm.vocabulary_size();
    let (mut worst_keras, mut worst_twin) = (0f32, 0f32);
    for (step, got) in logits.iter().enumerate() {
        let row = prompt.len() - 1 + step;
        let twin_row = &twin[row * vocab..(row + 1) * vocab];
        worst_keras = worst_keras.max(relative(got, &keras[step]));
        worst_twin = worst_twin.max(relative(got, twin_row));
    }
    println!(
        "{adapter}: {path:<34} tokens {}, logits from Keras {worst_keras:.2e}, from the twins \
         {worst_twin:.2e}",
        if tokens == want { "= Keras" } else { "DIFFER" }
    );
    assert!(
        worst_keras <= keras_tolerance(policy),
        "{path} on {adapter}: logits {worst_keras:e} from Keras's (relative to the largest); \
         the tolerance is {:e}",
        keras_tolerance(policy)
    );
    assert!(
        worst_twin <= twin_tolerance(policy),
        "{path} on {adapter}: logits {worst_twin:e} from the CPU twins'"
    );
    // The fixture's prompts leave every greedy step a clear winner in
    // float32 and int8 (the case's smallest_gap), so those must agree, and
    // so must every other policy whose steps all have a clear winner (not
    // Llama's bf16 case, which has a tie); then free-running decoding
    // (each step fed its own choice) is the same as this one.
    let clear = case["smallest_gap"].as_f64().unwrap() > 0.05;
    if matches!(policy, "float32" | "int8") || clear {
        assert_eq!(tokens, want, "{path} on {adapter} ({model}): greedy tokens");
        let (free, _) = steps(ctx, &lm, &prompt, want.len(), None);
        assert_eq!(
            free, want,
            "{path} on {adapter} ({model}): free-running greedy tokens"
        );
    }
}

fn check_all(ctx: &mut GpuContext) {
    for model in MODELS {
        let f = fixture(model);
        for case in f["cases"].as_array().unwrap() {
            check_case(ctx, model, case, case["file"].as_str().unwrap());
            if let Some(preset) = case["preset"].as_str() {
                check_case(ctx, model, case, preset);
            }
        }
    }
}

#[test]
fn greedy_decoding_is_keras_s_on_vulkan() {
    check_all(&mut common::gpu::vulkan());
}

#[test]
fn greedy_decoding_is_keras_s_on_gl() {
    check_all(&mut common::gpu::gl());
}

/// The whole loop: `generate` with the greedy sampler gives the steps'
/// tokens, stops at a stop token (kept as the last) and at max_tokens.
#[test]
fn generate_stops_where_asked() {
    let mut ctx = common::gpu::vulkan();
    let f = fixture("llama");
    let case = &f["cases"][0];
    let lm = load(case["file"].as_str().unwrap(), "float32");
    let prompt = ids(&case["prompt"]);
    let want = ids(&case["tokens"]);
    let mut gpu = lm.upload(&mut ctx, prompt.len() + want.len()).unwrap();
    let mut streamed = Vec::new();
    let all = gpu
        .generate(&mut ctx, &prompt, &GenerateOptions::default(), |t| {
            streamed.push(t);
            true
        })
        .unwrap();
    assert_eq!(all.tokens, want, "generate");
    assert_eq!(streamed, want, "the tokens streamed");
    let stop = want[3];
    let first = want.iter().position(|&t| t == stop).unwrap();
    let options = GenerateOptions {
        stop_tokens: vec![stop],
        ..GenerateOptions::default()
    };
    let stopped = gpu.generate(&mut ctx, &prompt, &options, |_| true).unwrap();
    assert_eq!(stopped.tokens, want[..=first].to_vec(), "stopped at {stop}");
    let options = GenerateOptions {
        max_tokens: 3,
        ..GenerateOptions::default()
    };
    let short = gpu.generate(&mut ctx, &prompt, &options, |_| true).unwrap();
    assert_eq!(short.tokens, want[..3].to_vec(), "max_tokens 3");
}

/// Top-k and top-p with a seed: the same seed gives the same tokens, each
/// token is among the step's k largest logits, and top-k with k = 1 is
/// greedy.
#[test]
fn sampling_is_seeded_and_stays_in_the_top() {
    let mut ctx = common::gpu::vulkan();
    let f = fixture("gpt2");
    let case = &f["cases"][0];
    let lm = load(case["file"].as_str().unwrap(), "float32");
    let prompt = ids(&case["prompt"]);
    let mut gpu = lm.upload(&mut ctx, prompt.len() + 16).unwrap();
    let run = |gpu: &mut dtype_policy::models::causal_lm::GpuCausalLm,
               ctx: &mut GpuContext,
               sampler: Sampler,
               seed: u64| {
        let options = GenerateOptions {
            sampler,
            seed,
            ..GenerateOptions::default()
        };
        gpu.generate(ctx, &prompt, &options, |_| true)
            .unwrap()
            .tokens
    };
    let top_k = Sampler::TopK {
        k: 5,
        temperature: 1.0,
    };
    let a = run(&mut gpu, &mut ctx, top_k.clone(), 7);
    let b = run(&mut gpu, &mut ctx, top_k.clone(), 7);
    assert_eq!(a, b, "the same seed");
    let greedy = ids(&case["tokens"]);
    let k1 = Sampler::TopK {
        k: 1,
        temperature: 1.0,
    };
    assert_eq!(run(&mut gpu, &mut ctx, k1, 3), greedy, "top-k with k = 1");
    let tiny_p = Sampler::TopP {
        p: 1e-6,
        temperature: 1.0,
    };
    assert_eq!(
        run(&mut gpu, &mut ctx, tiny_p, 3),
        greedy,
        "top-p with a tiny p"
    );
    // Hot enough, some seed draws another token than the greedy one.
    let hot = Sampler::TopK {
        k: 5,
        temperature: 10.0,
    };
    assert!(
        (0..8).any(|seed| run(&mut gpu, &mut ctx, hot.clone(), seed) != greedy),
        "top-k at temperature 10 gave the greedy tokens for 8 seeds"
    );
    // Parameters KerasHub's samplers would not take.
    for bad in [
        Sampler::TopK {
            k: 0,
            temperature: 1.0,
        },
        Sampler::TopP {
            p: 0.0,
            temperature: 1.0,
        },
        Sampler::TopP {
            p: f32::NAN,
            temperature: 1.0,
        },
        Sampler::TopK {
            k: 5,
            temperature: -1.0,
        },
    ] {
        let options = GenerateOptions {
            sampler: bad.clone(),
            ..GenerateOptions::default()
        };
        let e = gpu
            .generate(&mut ctx, &prompt, &options, |_| true)
            .unwrap_err();
        assert!(e.to_string().contains("a sampler whose"), "{bad:?}: {e}");
    }
    // Every sampled token is among its step's five largest logits.
    let mut sequence = prompt.clone();
    sequence.extend_from_slice(&a[..a.len() - 1]);
    let logits = lm.logits_cpu(ctx.capabilities(), &sequence).unwrap();
    let vocab = lm.vocabulary_size();
    for (step, &t) in a.iter().enumerate() {
        let row = &logits[(prompt.len() - 1 + step) * vocab..][..vocab];
        let larger = row.iter().filter(|&&v| v > row[t as usize]).count();
        assert!(
            larger < 5,
            "step {step}: token {t} has {larger} larger logits"
        );
    }
}

/// The sampler's arithmetic on fixed logits: top-k keeps k, top-p the
/// smallest head reaching p, the draw walks the kept weights in order.
#[test]
fn samplers_pick_from_the_kept_head() {
    let logits = [0.0f32, 3.0, 1.0, 2.0, f32::NAN];
    let k2 = Sampler::TopK {
        k: 2,
        temperature: 1.0,
    };
    // Kept: 1 (weight 1) and 3 (weight e^-1): the split is at 1/(1+e^-1).
    assert_eq!(k2.sample(&logits, 0.0), 1);
    assert_eq!(k2.sample(&logits, 0.73), 1);
    assert_eq!(k2.sample(&logits, 0.74), 3);
    assert_eq!(k2.sample(&logits, 0.999), 3);
    // p = 0.5: id 1 alone holds 0.64 of the mass.
    let p = Sampler::TopP {
        p: 0.5,
        temperature: 1.0,
    };
    assert_eq!(p.sample(&logits, 0.99), 1);
    // An infinite logit holds all the mass.
    let inf = [0.0f32, f32::INFINITY, 1.0, f32::INFINITY];
    for draw in [0.0, 0.4, 0.6, 0.99] {
        let t = k2.sample(&inf, draw);
        assert!(t == 1 || t == 3, "draw {draw}: {t}");
    }
    // A high temperature flattens: p = 0.9 then keeps all four.
    let hot = Sampler::TopP {
        p: 0.9,
        temperature: 100.0,
    };
    assert_eq!(hot.sample(&logits, 0.99), 0);
    assert_eq!(Sampler::Greedy.sample(&logits, 0.5), 1);
}

/// A decode step is one recorded forward: one submission, and no buffer,
/// bind group or pipeline made after the first step.
#[test]
fn a_decode_step_submits_once_and_makes_nothing() {
    let mut ctx = common::gpu::vulkan();
    for model in MODELS {
        let f = fixture(model);
        let case = &f["cases"][1]; // int8
        let lm = load(case["file"].as_str().unwrap(), "int8");
        let prompt = ids(&case["prompt"]);
        let mut gpu = lm.upload(&mut ctx, prompt.len() + 8).unwrap();
        let mut token = gpu.prefill(&mut ctx, &prompt, Read::Token).unwrap().token;
        token = gpu.decode(&mut ctx, token, Read::Token).unwrap().token;
        for step in 0..5 {
            let before = ctx.counters();
            token = gpu.decode(&mut ctx, token, Read::Token).unwrap().token;
            let after = ctx.counters();
            assert_eq!(
                after.buffers, before.buffers,
                "{model} step {step}: buffers"
            );
            assert_eq!(
                after.bind_groups, before.bind_groups,
                "{model} step {step}: bind groups"
            );
            assert_eq!(
                after.pipelines, before.pipelines,
                "{model} step {step}: pipelines"
            );
            assert_eq!(
                after.submissions,
                before.submissions + 1,
                "{model} step {step}: submissions"
            );
            assert_eq!(
                after.read_backs,
                before.read_backs + 1,
                "{model} step {step}: read-backs"
            );
        }
    }
}

/// Bad input: an id past the vocabulary, a prompt longer than the cache,
/// a decode past the cache, an empty prompt, a model without a head.
#[test]
fn bad_input_is_a_clear_error() {
    let mut ctx = common::gpu::vulkan();
    let f = fixture("gpt2");
    let case = &f["cases"][0];
    let lm = load(case["file"].as_str().unwrap(), "float32");
    let vocab = lm.vocabulary_size() as u32;
    let mut gpu = lm.upload(&mut ctx, 6).unwrap();
    let err = |r: dtype_policy::error::Result<dtype_policy::models::causal_lm::StepOutput>| {
        r.unwrap_err().to_string()
    };
    let e = err(gpu.prefill(&mut ctx, &[1, vocab], Read::Token));
    assert!(e.contains(&format!("token id {vocab}")), "{e}");
    let e = err(gpu.prefill(&mut ctx, &[1; 7], Read::Token));
    assert!(e.contains("7 tokens") && e.contains("6 positions"), "{e}");
    let e = err(gpu.prefill(&mut ctx, &[], Read::Token));
    assert!(e.contains("empty prompt"), "{e}");
    let e = err(gpu.decode(&mut ctx, 1, Read::Token));
    assert!(e.contains("before any prefill"), "{e}");
    gpu.prefill(&mut ctx, &[1; 6], Read::Token).unwrap();
    let e = err(gpu.decode(&mut ctx, 1, Read::Token));
    assert!(e.contains("full"), "{e}");
    let e = gpu
        .generate(&mut ctx, &[1; 4], &GenerateOptions::default(), |_| true)
        .unwrap_err()
        .to_string();
    assert!(e.contains("4 tokens and 16 more"), "{e}");
    // A backbone alone has no head.
    let backbone = format!(
        "{}/tests/data/backbones/gpt2__float32.keras",
        env!("CARGO_MANIFEST_DIR")
    );
    let e = CausalLm::load(&backbone, None).unwrap_err().to_string();
    assert!(e.contains("not a causal LM"), "{e}");
    // A GPT-2 cache longer than its position embedding.
    let e = lm.upload(&mut ctx, 10_000).err().unwrap().to_string();
    assert!(e.contains("position embedding"), "{e}");
    let _ = StorageFormat::F32;
}

/// Planted mistakes: each moves the GPU's logits past the Keras tolerance
/// at some step (a test that could not fail would show nothing).
#[test]
fn planted_mistakes_exceed_the_tolerance() {
    use dtype_policy::layers::LayerKind;
    let mut ctx = common::gpu::vulkan();
    for model in ["gpt2", "llama"] {
        let f = fixture(model);
        let case = &f["cases"][0];
        let lm = load(case["file"].as_str().unwrap(), "float32");
        let prompt = ids(&case["prompt"]);
        let keras = keras_logits(case, lm.vocabulary_size());
        let mut plants: Vec<(&str, CausalLm)> = Vec::new();
        let mut head = lm.clone();
        if let Some(LayerKind::Dense(d)) = head.model.layers.last_mut().map(|l| &mut l.kind) {
            d.kernel = common::harness::without_last_term(&d.kernel);
        }
        plants.push(("the head's last term dropped", head));
        let mut late = lm.clone();
        // The last attention layer's value projection loses its last term:
        // it reaches the logits only through the cache's later rows.
        if let Some(LayerKind::MultiHeadAttention(a)) = late
            .model
            .layers
            .iter_mut()
            .rev()
            .map(|l| &mut l.kind)
            .find(|k| matches!(k, LayerKind::MultiHeadAttention(_)))
        {
            a.projections[2].kernel = common::harness::without_last_term(&a.projections[2].kernel);
        }
        plants.push(("the last value projection's last term dropped", late));
        if model == "llama" {
            let mut rope = lm.clone();
            for l in &mut rope.model.layers {
                if let LayerKind::MultiHeadAttention(a) = &mut l.kind {
                    a.rope = None;
                }
            }
            plants.push(("the rotary embedding dropped", rope));
        }
        for (what, planted) in plants {
            let want = ids(&case["tokens"]);
            let (_, logits) = steps(&mut ctx, &planted, &prompt, keras.len(), Some(&want));
            let worst = logits
                .iter()
                .zip(&keras)
                .map(|(g, k)| relative(g, k))
                .fold(0f32, f32::max);
            println!("{model}: {what}: {worst:.2e} from Keras");
            assert!(
                worst > keras_tolerance("float32"),
                "{model}: {what} stays within the tolerance ({worst:e})"
            );
        }
    }
}

/// A text prompt, as KerasHub's `generate("...")` takes it: the preset's
/// tokenizer gives the preprocessor's ids (the start token first), greedy
/// generation stops at the end token or the maximum length, and the
/// detokenized sequence, special tokens stripped, is Keras's text.
#[test]
fn text_in_text_out_is_keras_s() {
    let mut ctx = common::gpu::vulkan();
    for model in MODELS {
        let f = fixture(model);
        let case = &f["cases"][0];
        let text = &case["text"];
        assert!(text.is_object(), "{model}: the fixture has no text case");
        let lm = load(case["preset"].as_str().unwrap(), "float32");
        let tokenizer = lm.tokenizer.clone().expect("the preset's tokenizer");
        let prompt = tokenizer
            .encode_prompt(text["prompt"].as_str().unwrap())
            .unwrap();
        assert_eq!(
            prompt,
            ids(&text["prompt_ids"]),
            "{model}: the prompt's ids"
        );
        let max_length = text["max_length"].as_u64().unwrap() as usize;
        let mut gpu = lm.upload(&mut ctx, max_length).unwrap();
        let special: Vec<u32> = [
            tokenizer.start_token_id(),
            tokenizer.end_token_id(),
            tokenizer.pad_token_id(),
        ]
        .into_iter()
        .flatten()
        .collect();
        let options = GenerateOptions {
            max_tokens: max_length - prompt.len(),
            stop_tokens: tokenizer.end_token_id().into_iter().collect(),
            ..GenerateOptions::default()
        };
        let generated = gpu.generate(&mut ctx, &prompt, &options, |_| true).unwrap();
        let sequence: Vec<u32> = prompt
            .iter()
            .chain(&generated.tokens)
            .copied()
            .filter(|t| !special.contains(t))
            .collect();
        let got = tokenizer.decode(&sequence).unwrap();
        assert_eq!(got, text["output"].as_str().unwrap(), "{model}: the text");
    }
}

// SPDX-License-Identifier: MIT OR Apache-2.0
//! Generation benchmarks: a causal LM under each policy on one adapter,
//! its prompt processed and tokens decoded as [`GpuCausalLm`] runs them,
//! and the figures its users compare runtimes by: prompt tokens per
//! second, decode tokens per second, each decode step's time split into
//! the GPU's (timestamps, where the adapter has them) and the host's (the
//! rest of the step's wall clock: encoding, submission, waiting, the
//! read-back), and the memory of the weights and the KV cache.

use std::fmt;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::gpu::context::GpuContext;
use crate::models::causal_lm::{CausalLm, GpuCausalLm, Read};

/// What to run.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerationConfig {
    /// Tokens of the prompt.
    pub prompt_tokens: usize,
    /// Tokens made after it (at least 2: the prefill makes the first,
    /// each later one is a decode step).
    pub decode_tokens: usize,
    /// Timed repetitions of the whole (prefill and decode), after one
    /// warm-up; the median is reported.
    pub repetitions: usize,
}

impl Default for GenerationConfig {
    fn default() -> Self {
        GenerationConfig {
            prompt_tokens: 32,
            decode_tokens: 32,
            repetitions: 3,
        }
    }
}

/// One policy's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerationResult {
    /// The policy (`float32`, `int8` after `quantize`, ...).
    pub policy: String,
    /// Prompt tokens per second (the prefill, to the first token).
    pub prompt_tokens_per_s: f64,
    /// Decode tokens per second (one step per token).
    pub decode_tokens_per_s: f64,
    /// A decode step's wall clock (median).
    pub step_wall: Duration,
    /// Its GPU time (timestamps around the dispatches; median), where the
    /// adapter has timestamp queries.
    pub step_gpu: Option<Duration>,
    /// Bytes of the weights as uploaded.
    pub weight_bytes: u64,
    /// Bytes of the KV cache for prompt and decode tokens.
    pub cache_bytes: u64,
    /// Dispatches per decode step.
    pub dispatches: usize,
    /// Where a decode step's GPU time goes: the kernels (by their labels)
    /// that take most of it, with their time (median over the timed runs),
    /// largest first.
    pub kernels: Vec<(String, Duration)>,
}

impl GenerationResult {
    /// The host's share of a step: its wall clock less its GPU time.
    pub fn step_host(&self) -> Option<Duration> {
        self.step_gpu.map(|g| self.step_wall.saturating_sub(g))
    }
}

/// A generation benchmark's results, with the adapter and model named.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerationReport {
    /// The adapter, as `backend name`.
    pub adapter: String,
    /// The model (its path and class).
    pub model: String,
    /// What ran.
    pub config: GenerationConfig,
    /// Parameters of the model (weights of its layers, the head shared).
    pub parameters: u64,
    /// One per policy, in the order run.
    pub results: Vec<GenerationResult>,
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

/// Times `lm` on `ctx` as `config` says, under the label `policy`.
pub fn measure(
    ctx: &mut GpuContext,
    lm: &CausalLm,
    policy: &str,
    config: &GenerationConfig,
) -> Result<GenerationResult> {
    if config.prompt_tokens == 0 || config.decode_tokens < 2 || config.repetitions == 0 {
        return Err(Error::InvalidArgument(format!(
            "a generation benchmark of {} prompt tokens, {} decode tokens and {} repetitions: \
             it takes a prompt, 2 decode tokens (the prefill makes the first) and a repetition \
             at least",
            config.prompt_tokens, config.decode_tokens, config.repetitions
        )));
    }
    let capacity = config.prompt_tokens + config.decode_tokens;
    let mut gpu = lm.upload(ctx, capacity)?;
    // Ids spread over the vocabulary (speed does not depend on them).
    let vocab = lm.vocabulary_size().max(1) as u64;
    let prompt: Vec<u32> = (0..config.prompt_tokens as u64)
        .map(|i| ((i * 7919 + 13) % vocab) as u32)
        .collect();
    let mut prompts = Vec::new();
    let mut steps = Vec::new();
    let mut gpu_steps = Vec::new();
    let mut kernels: std::collections::BTreeMap<String, Vec<Duration>> = Default::default();
    for rep in 0..=config.repetitions {
        let (prompt_time, step_times) = run_once(ctx, &mut gpu, &prompt, config.decode_tokens)?;
        if rep > 0 {
            prompts.push(prompt_time);
            steps.extend(step_times);
            // The step's GPU time at the last position written.
            let timing = gpu.decode_forward(ctx, Read::Token)?.time(ctx)?;
            if timing.gpu.is_some() {
                // The dispatches' own times: the span between them (each
                // timed in a pass of its own) is the timing's, not the step's.
                gpu_steps.push(timing.dispatches.iter().map(|(_, d)| *d).sum());
                let mut by_label: std::collections::BTreeMap<String, Duration> = Default::default();
                for (label, d) in timing.dispatches {
                    *by_label.entry(label).or_default() += d;
                }
                for (label, d) in by_label {
                    kernels.entry(label).or_default().push(d);
                }
            }
        }
    }
    let prompt_time = median(prompts);
    let step_wall = median(steps);
    let dispatches = gpu.decode_forward(ctx, Read::Token)?.dispatches();
    let mut kernels: Vec<(String, Duration)> = kernels
        .into_iter()
        .map(|(label, t)| (label, median(t)))
        .collect();
    kernels.sort_by_key(|k| std::cmp::Reverse(k.1));
    kernels.truncate(4);
    Ok(GenerationResult {
        policy: policy.to_owned(),
        prompt_tokens_per_s: config.prompt_tokens as f64 / prompt_time.as_secs_f64(),
        decode_tokens_per_s: 1.0 / step_wall.as_secs_f64(),
        step_wall,
        step_gpu: (!gpu_steps.is_empty()).then(|| median(gpu_steps)),
        weight_bytes: gpu.weight_bytes(),
        cache_bytes: gpu.cache_bytes(),
        dispatches,
        kernels,
    })
}

/// A prefill and `decode` greedy steps: the prefill's wall clock and each
/// step's.
fn run_once(
    ctx: &mut GpuContext,
    gpu: &mut GpuCausalLm,
    prompt: &[u32],
    decode: usize,
) -> Result<(Duration, Vec<Duration>)> {
    let start = Instant::now();
    let mut token = gpu.prefill(ctx, prompt, Read::Token)?.token;
    let prompt_time = start.elapsed();
    let mut steps = Vec::with_capacity(decode);
    // The prefill chose the first token; each step feeds one and reads the next.
    for _ in 1..decode {
        let start = Instant::now();
        token = gpu.decode(ctx, token, Read::Token)?.token;
        steps.push(start.elapsed());
    }
    Ok((prompt_time, steps))
}

impl GenerationReport {
    /// The report as JSON: the adapter, model, config, and per policy the
    /// figures (times in milliseconds, `null` where not measured).
    pub fn to_json(&self) -> serde_json::Value {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        serde_json::json!({
            "adapter": self.adapter,
            "model": self.model,
            "parameters": self.parameters,
            "prompt_tokens": self.config.prompt_tokens,
            "decode_tokens": self.config.decode_tokens,
            "repetitions": self.config.repetitions,
            "results": self.results.iter().map(|r| serde_json::json!({
                "policy": r.policy,
                "prompt_tokens_per_s": r.prompt_tokens_per_s,
                "decode_tokens_per_s": r.decode_tokens_per_s,
                "step_wall_ms": ms(r.step_wall),
                "step_gpu_ms": r.step_gpu.map(ms),
                "step_host_ms": r.step_host().map(ms),
                "weight_bytes": r.weight_bytes,
                "kv_cache_bytes": r.cache_bytes,
                "dispatches_per_step": r.dispatches,
                "step_kernels_ms": r.kernels.iter().map(|(label, d)| serde_json::json!({
                    "kernel": label, "ms": ms(*d)
                })).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        })
    }

    /// Prompt and decode tokens per second per policy as a bar chart.
    pub fn to_svg(&self) -> String {
        let (w, row, left) = (640.0, 26.0, 150.0);
        let h = 70.0 + row * 2.0 * self.results.len() as f64;
        let top = self
            .results
            .iter()
            .flat_map(|r| [r.prompt_tokens_per_s, r.decode_tokens_per_s])
            .fold(1e-9, f64::max);
        let mut s = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" \
             font-family=\"sans-serif\" font-size=\"12\">\n<text x=\"10\" y=\"20\" \
             font-size=\"14\">{} on {}: tokens per second</text>\n",
            escape(&self.model),
            escape(&self.adapter)
        );
        for (i, r) in self.results.iter().enumerate() {
            for (j, (what, v, colour)) in [
                ("prompt", r.prompt_tokens_per_s, "#4c78a8"),
                ("decode", r.decode_tokens_per_s, "#f58518"),
            ]
            .into_iter()
            .enumerate()
            {
                let y = 40.0 + row * (2 * i + j) as f64;
                let len = (w - left - 90.0) * v / top;
                s += &format!(
                    "<text x=\"10\" y=\"{:.0}\">{} {what}</text><rect x=\"{left}\" y=\"{:.0}\" \
                     width=\"{len:.1}\" height=\"{:.0}\" fill=\"{colour}\"/><text x=\"{:.1}\" \
                     y=\"{:.0}\">{v:.1}</text>\n",
                    y + 15.0,
                    escape(&r.policy),
                    y + 3.0,
                    row - 6.0,
                    left + len + 5.0,
                    y + 15.0
                );
            }
        }
        s + "</svg>\n"
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

impl fmt::Display for GenerationReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} ({:.1} M parameters) on {}: a prompt of {} tokens, {} decoded, median of {}",
            self.model,
            self.parameters as f64 / 1e6,
            self.adapter,
            self.config.prompt_tokens,
            self.config.decode_tokens,
            self.config.repetitions
        )?;
        writeln!(
            f,
            "{:<16} {:>10} {:>10} {:>9} {:>9} {:>9} {:>10} {:>9}",
            "policy",
            "prompt t/s",
            "decode t/s",
            "step ms",
            "GPU ms",
            "host ms",
            "weights",
            "KV cache"
        )?;
        let ms = |d: Option<Duration>| {
            d.map_or("-".to_owned(), |d| format!("{:.2}", d.as_secs_f64() * 1e3))
        };
        let mib = |b: u64| format!("{:.1} MiB", b as f64 / (1 << 20) as f64);
        for r in &self.results {
            writeln!(
                f,
                "{:<16} {:>10.1} {:>10.1} {:>9} {:>9} {:>9} {:>10} {:>9}",
                r.policy,
                r.prompt_tokens_per_s,
                r.decode_tokens_per_s,
                ms(Some(r.step_wall)),
                ms(r.step_gpu),
                ms(r.step_host()),
                mib(r.weight_bytes),
                mib(r.cache_bytes)
            )?;
        }
        for r in &self.results {
            if r.kernels.is_empty() {
                continue;
            }
            let gpu = r.step_gpu.unwrap_or_default().as_secs_f64().max(1e-12);
            let parts: Vec<String> = r
                .kernels
                .iter()
                .map(|(label, d)| format!("{label} {:.0}%", 100.0 * d.as_secs_f64() / gpu))
                .collect();
            writeln!(f, "{}: a step's GPU time: {}", r.policy, parts.join(", "))?;
        }
        Ok(())
    }
}

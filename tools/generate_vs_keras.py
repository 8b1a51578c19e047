#!/usr/bin/env python3
# SPDX-License-Identifier: MIT OR Apache-2.0
"""Prompt and decode tokens per second of one GPT-2 causal LM, in Keras
(KerasHub's `generate`, greedy, on the jax backend's CPU) and here
(`dtype-policy bench --model`, on the adapter wgpu picks: lavapipe on a
machine without a GPU), in one run on the same machine: float32, and
after `quantize("int8")` and `quantize("int4")`.

The model: GPT2CausalLM with random weights (speed does not depend on
them), a vocabulary of 50257, 4 blocks of 384 features (6 heads, 1536
inner), 256 positions: 26.6 M parameters, 19.3 M of them the tied
embedding the head multiplies by. Saved as a preset folder under OUT.

Keras's figures: each `generate` call is timed after a warm-up call of the
same shapes (which compiles it). A prompt of P tokens and N new tokens is
a sequence of P + N ids with P unmasked; KerasHub prefills the whole
padded sequence, then runs one cached step per new token. Prompt tokens/s
is P over the time of a call that makes one token (P + 1 ids); decode
tokens/s is N - 1 over the difference between the N-token call and that
one. Ours: `dtype-policy bench --model` (a prefill of P tokens; each decode
step's median wall clock).

    KERAS_BACKEND=jax /work/kvenv/bin/python tools/generate_vs_keras.py [--out DIR] [--reps 3]

Writes OUT/keras.json, OUT/ours.json and prints both side by side.
"""
import argparse
import json
import os
import subprocess
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "jax")
import keras  # noqa: E402
import keras_hub  # noqa: E402
import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..")
PROMPT, DECODE = 32, 32


def build():
    keras.utils.set_random_seed(0)
    backbone = keras_hub.models.GPT2Backbone(
        vocabulary_size=50257, num_layers=4, num_heads=6, hidden_dim=384,
        intermediate_dim=1536, max_sequence_length=256)
    model = keras_hub.models.GPT2CausalLM(backbone=backbone, preprocessor=None)
    model.compile(sampler="greedy")
    return model


def call(model, new_tokens):
    ids = np.zeros((1, PROMPT + new_tokens), dtype=np.int32)
    ids[0, :PROMPT] = np.arange(PROMPT) * 7919 % 50257
    mask = np.zeros_like(ids, dtype=bool)
    mask[0, :PROMPT] = True
    start = time.perf_counter()
    model.generate({"token_ids": ids, "padding_mask": mask}, stop_token_ids=None)
    return time.perf_counter() - start


def keras_figures(model, reps):
    call(model, 1)
    call(model, DECODE)
    one = sorted(call(model, 1) for _ in range(reps))[reps // 2]
    full = sorted(call(model, DECODE) for _ in range(reps))[reps // 2]
    return {"prompt_tokens_per_s": PROMPT / one,
            "decode_tokens_per_s": (DECODE - 1) / max(full - one, 1e-9)}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="/tmp/generate-vs-keras")
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    if keras.__version__ != "3.15.1" or keras_hub.__version__ != "0.32.0":
        sys.exit(f"keras {keras.__version__}, keras-hub {keras_hub.__version__}: this script "
                 "compares against Keras 3.15.1 and KerasHub 0.32.0")
    os.makedirs(args.out, exist_ok=True)
    preset = os.path.join(args.out, "gpt2_float32_preset")
    model = build()
    params = model.count_params()
    if not os.path.exists(os.path.join(preset, "model.weights.h5")):
        model.save_to_preset(preset)
    keras_results = {}
    for policy in ("float32", "int8", "int4"):
        m = build()
        if policy != "float32":
            m.quantize(policy)
        print(f"Keras {policy} ...", file=sys.stderr, flush=True)
        keras_results[policy] = keras_figures(m, args.reps)
    with open(os.path.join(args.out, "keras.json"), "w") as f:
        json.dump({"keras": keras.__version__, "keras_hub": keras_hub.__version__,
                   "backend": keras.backend.backend(), "parameters": params,
                   "results": keras_results}, f, indent=1)
    ours_json = os.path.join(args.out, "ours.json")
    subprocess.run(
        ["cargo", "run", "--release", "--quiet", "--", "bench", "--model", preset,
         "--policies", "float32,int8,int4", "--prompt-tokens", str(PROMPT),
         "--decode-tokens", str(DECODE), "--reps", str(args.reps), "--json", ours_json],
        cwd=ROOT, check=True)
    with open(ours_json) as f:
        ours = json.load(f)
    print(f"\nGPT2CausalLM, {params / 1e6:.1f} M parameters; a prompt of {PROMPT} tokens, "
          f"{DECODE} decoded; median of {args.reps}")
    print(f"{'policy':<10} {'Keras prompt':>12} {'Keras decode':>12} {'ours prompt':>12} "
          f"{'ours decode':>12}   tokens/s; ours on {ours['adapter']}, Keras "
          f"{keras.__version__} on {keras.backend.backend()} CPU")
    for r in ours["results"]:
        policy = r["policy"].split(" ")[0]
        k = keras_results.get(policy, {})
        print(f"{policy:<10} {k.get('prompt_tokens_per_s', 0):>12.1f} "
              f"{k.get('decode_tokens_per_s', 0):>12.1f} {r['prompt_tokens_per_s']:>12.1f} "
              f"{r['decode_tokens_per_s']:>12.1f}   (ours per step: GPU "
              f"{r['step_gpu_ms'] or 0:.2f} ms, host {r['step_host_ms'] or 0:.2f} ms)")


if __name__ == "__main__":
    main()

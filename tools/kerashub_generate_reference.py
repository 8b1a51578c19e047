#!/usr/bin/env python3
# SPDX-License-Identifier: MIT OR Apache-2.0
"""Writes tests/data/generate/: tiny KerasHub causal LMs (GPT2CausalLM,
LlamaCausalLM with its untied head, GemmaCausalLM; random weights, fixed
seeds) as .keras files and, for float32, preset folders; and for each, a
prompt, the 16 tokens KerasHub's `generate` gives with the greedy sampler,
and the logits of every step as KerasHub's `call_with_cache` computes them
(`<case>.logits.npy`, float32 [steps, vocabulary]).

Policies: float32, mixed_bfloat16, and KerasHub's `quantize("int8")` and
`quantize("int4")` of the float32 model. The tokenizers are the ones
tools/tokenizer_reference.py wrote under tests/data/tokenizers/ (when
there): the presets then hold the tokenizer and its preprocessor, and the
vocabulary is the tokenizer's.

The prompt of each model is the first (of a few seeds) whose greedy steps
all have a gap of at least MIN_GAP between the two largest logits under
float32 and int8, so that a rounding difference cannot flip a token.

    KERAS_BACKEND=jax /work/kvenv/bin/python tools/kerashub_generate_reference.py [model ...]
"""
import json
import os
import shutil
import sys

os.environ.setdefault("KERAS_BACKEND", "jax")
import keras  # noqa: E402
import keras_hub  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kerashub_reference import randomize  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "tests", "data", "generate")
TOKENIZERS = os.path.join(HERE, "..", "tests", "data", "tokenizers")
PROMPT, STEPS, MIN_GAP = 5, 16, 0.02
DEFAULT_VOCAB = 300

TOKENIZER = {
    "gpt2": (keras_hub.models.GPT2Tokenizer, keras_hub.models.GPT2CausalLMPreprocessor),
    "llama": (keras_hub.models.LlamaTokenizer, keras_hub.models.LlamaCausalLMPreprocessor),
    "gemma": (keras_hub.models.GemmaTokenizer, keras_hub.models.GemmaCausalLMPreprocessor),
}


def tokenizer(name):
    folder = os.path.join(TOKENIZERS, name)
    if not os.path.exists(os.path.join(folder, "tokenizer.json")):
        return None
    return TOKENIZER[name][0].from_preset(folder)


def backbone(name, vocab):
    if name == "gpt2":
        return keras_hub.models.GPT2Backbone(
            vocabulary_size=vocab, num_layers=2, num_heads=4, hidden_dim=32,
            intermediate_dim=64, max_sequence_length=64)
    if name == "llama":
        return keras_hub.models.LlamaBackbone(
            vocabulary_size=vocab, num_layers=2, num_query_heads=4, num_key_value_heads=2,
            hidden_dim=32, intermediate_dim=64)
    return keras_hub.models.GemmaBackbone(
        vocabulary_size=vocab, num_layers=2, num_query_heads=2, num_key_value_heads=1,
        hidden_dim=32, intermediate_dim=64, head_dim=16)


CAUSAL_LM = {
    "gpt2": keras_hub.models.GPT2CausalLM,
    "llama": keras_hub.models.LlamaCausalLM,
    "gemma": keras_hub.models.GemmaCausalLM,
}


def build(name, seed, vocab, tok):
    keras.utils.set_random_seed(seed)
    preprocessor = None
    if tok is not None:
        preprocessor = TOKENIZER[name][1](tokenizer=tok, sequence_length=PROMPT + STEPS)
    model = CAUSAL_LM[name](backbone=backbone(name, vocab), preprocessor=preprocessor)
    randomize(model, 100 + seed)
    model.compile(sampler="greedy")
    return model


def steps(model, prompt):
    """The greedy steps as KerasHub's generate_step runs them: the cache
    built over the padded sequence, then call_with_cache at index - 1."""
    ids = np.zeros((1, PROMPT + STEPS), dtype=np.int32)
    ids[0, :PROMPT] = prompt
    _, cache = model._build_cache(ids)
    logits_at = []
    for index in range(PROMPT, PROMPT + STEPS):
        logits, _, cache = model.call_with_cache(ids[:, index - 1:index], cache, index - 1)
        row = np.asarray(keras.ops.cast(logits[0, 0], "float32"))
        logits_at.append(row)
        ids[0, index] = int(np.argmax(row))
    return ids[0].tolist(), np.stack(logits_at)


def gaps(logits):
    top2 = np.sort(logits, axis=-1)[:, -2:]
    return top2[:, 1] - top2[:, 0]


def generate(model, prompt):
    ids = np.zeros((1, PROMPT + STEPS), dtype=np.int32)
    ids[0, :PROMPT] = prompt
    mask = np.zeros_like(ids, dtype=bool)
    mask[0, :PROMPT] = True
    # Ids in, ids out: without the preprocessor (which would tokenize).
    preprocessor, model.preprocessor = model.preprocessor, None
    out = model.generate({"token_ids": ids, "padding_mask": mask}, stop_token_ids=None)
    model.preprocessor = preprocessor
    return np.asarray(out["token_ids"])[0].tolist()


TEXT_PROMPT = "The quick brown fox"


def text_case(model):
    """A text prompt through the preprocessor: its ids (the start token
    added) and the text `generate` returns (greedy, stopping at the end
    token, special tokens stripped)."""
    x = model.preprocessor.generate_preprocess([TEXT_PROMPT])
    ids = np.asarray(x["token_ids"])[0]
    mask = np.asarray(x["padding_mask"])[0]
    out = model.generate([TEXT_PROMPT], max_length=PROMPT + STEPS)
    return {"prompt": TEXT_PROMPT, "prompt_ids": ids[mask].tolist(),
            "max_length": PROMPT + STEPS, "output": str(out[0])}


def variant(name, seed, vocab, tok, policy):
    keras.config.set_dtype_policy("mixed_bfloat16" if policy == "mixed_bfloat16" else "float32")
    model = build(name, seed, vocab, tok)
    if policy in ("int8", "int4"):
        # The backbone holds every layer Keras quantizes (the head is its
        # ReversibleEmbedding); the task's quantize would also visit the
        # preprocessor's tokenizer, which Keras refuses as never built.
        model.backbone.quantize(policy)
    keras.config.set_dtype_policy("float32")
    return model


def main():
    if keras.__version__ != "3.15.1" or keras_hub.__version__ != "0.32.0":
        sys.exit(f"keras {keras.__version__}, keras-hub {keras_hub.__version__}: this script "
                 "records Keras 3.15.1 and KerasHub 0.32.0")
    os.makedirs(OUT, exist_ok=True)
    chosen = sys.argv[1:] or list(CAUSAL_LM)
    for i, name in enumerate(CAUSAL_LM):
        if name not in chosen:
            continue
        tok = tokenizer(name)
        vocab = tok.vocabulary_size() if tok is not None else DEFAULT_VOCAB
        low = 1 if tok is None else 3  # clear of the special tokens
        # A prompt whose greedy steps have clear winners in float32 and int8.
        for attempt in range(40):
            rng = np.random.default_rng(1000 * i + attempt)
            prompt = rng.integers(low, vocab, PROMPT).tolist()
            worst = min(gaps(steps(variant(name, i, vocab, tok, p), prompt)[1]).min()
                        for p in ("float32", "int8"))
            if worst >= MIN_GAP:
                break
        else:
            sys.exit(f"{name}: no prompt of 40 with greedy gaps of {MIN_GAP}")
        cases = []
        for policy in ("float32", "int8", "mixed_bfloat16", "int4"):
            model = variant(name, i, vocab, tok, policy)
            tokens, logits = steps(model, prompt)
            generated = generate(model, prompt)
            if generated != tokens:
                sys.exit(f"{name} {policy}: generate gave {generated}, the steps {tokens}")
            tag = f"{name}__{policy}"
            model.save(os.path.join(OUT, f"{tag}.keras"))
            preset = None
            if policy in ("float32", "int8"):
                preset = f"{tag}_preset"
                shutil.rmtree(os.path.join(OUT, preset), ignore_errors=True)
                model.save_to_preset(os.path.join(OUT, preset))
            np.save(os.path.join(OUT, f"{tag}.logits.npy"), logits.astype(np.float32))
            text = text_case(model) if tok is not None and policy == "float32" else None
            cases.append({
                "text": text,
                "file": f"{tag}.keras", "preset": preset, "policy": policy,
                "logits": f"{tag}.logits.npy", "prompt": prompt,
                "tokens": tokens[PROMPT:], "smallest_gap": float(gaps(logits).min()),
            })
            print(f"{tag}: {tokens[PROMPT:]}, smallest gap {gaps(logits).min():.4f}")
        with open(os.path.join(OUT, f"{name}.json"), "w") as f:
            json.dump({"keras_version": keras.__version__,
                       "keras_hub_version": keras_hub.__version__, "model": name,
                       "vocabulary_size": vocab, "tokenizer": tok is not None,
                       "steps": STEPS, "cases": cases}, f, indent=1)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
# SPDX-License-Identifier: MIT OR Apache-2.0
"""Writes tests/data/backbones/: tiny KerasHub backbones (random weights,
fixed seeds) as .keras files and preset folders, with token ids, a padding
mask that pads part of the batch, and KerasHub's sequence outputs, for the
backbone tests of issue 14.

Backbones: GPT2Backbone, LlamaBackbone, Llama3Backbone (also with Llama
3.1's rope frequency adjustment, `llama3_scaled`), GemmaBackbone, each
under float32, mixed_float16 and mixed_bfloat16, and after KerasHub's own
`quantize("int8")` and `quantize("int4")` of the float32 and
mixed_bfloat16 ones. Presets (`save_to_preset`: config.json,
model.weights.h5, metadata.json) for float32 and int8_from_float32.
`<backbone>.json` holds, per file: the policy, the inputs and the output
(every float32 as its bit pattern).

`maps` (an argument like a backbone's name) writes `<backbone>__map.keras`,
`<backbone>__map.json` and `<backbone>__map_policy.json` for GPT-2, Llama
and Gemma: the float32 backbone quantized by Keras the way a user's
DTypePolicyMap says (int8 attention projections, int4 feed-forward, the
rest float32), with that map as Keras serializes it.

    python3 -m venv /tmp/keras-env
    /tmp/keras-env/bin/pip install keras==3.15.1 keras-hub==0.32.0 jax ml-dtypes h5py
    KERAS_BACKEND=jax /tmp/keras-env/bin/python tools/kerashub_reference.py [backbone ...]
"""
import json
import os
import re
import shutil
import sys

os.environ.setdefault("KERAS_BACKEND", "jax")
import keras  # noqa: E402
import keras_hub  # noqa: E402
import numpy as np  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "backbones")
VOCAB, SEQ = 61, 6


def bits(a):
    return np.asarray(a, dtype=np.float32).reshape(-1).view(np.uint32).tolist()


BACKBONES = {
    "gpt2": lambda: keras_hub.models.GPT2Backbone(
        vocabulary_size=VOCAB, num_layers=2, num_heads=2, hidden_dim=16,
        intermediate_dim=32, max_sequence_length=16),
    "llama": lambda: keras_hub.models.LlamaBackbone(
        vocabulary_size=VOCAB, num_layers=2, num_query_heads=4, num_key_value_heads=2,
        hidden_dim=16, intermediate_dim=32),
    "llama3": lambda: keras_hub.models.Llama3Backbone(
        vocabulary_size=VOCAB, num_layers=2, num_query_heads=4, num_key_value_heads=2,
        hidden_dim=16, intermediate_dim=32),
    "gemma": lambda: keras_hub.models.GemmaBackbone(
        vocabulary_size=VOCAB, num_layers=2, num_query_heads=2, num_key_value_heads=1,
        hidden_dim=16, intermediate_dim=32, head_dim=8),
    "llama3_scaled": lambda: keras_hub.models.Llama3Backbone(
        vocabulary_size=VOCAB, num_layers=2, num_query_heads=4, num_key_value_heads=2,
        hidden_dim=32, intermediate_dim=32, rope_max_wavelength=500000,
        rope_frequency_adjustment_factor=8.0, rope_low_freq_factor=1.0,
        rope_high_freq_factor=4.0, rope_pretraining_sequence_length=64),
}


def randomize(model, seed):
    """Biases, gammas, betas, norm scales and embeddings (an untied head's
    too) away from their initial values, so that a dropped one changes the
    outputs. Every variable draws its noise, so the values of the others do
    not depend on which are assigned."""
    rng = np.random.default_rng(seed)
    for v in model.weights:
        name = v.path.split("/")[-1]
        noise = rng.standard_normal(v.shape).astype(np.float32)
        if name in ("bias", "beta"):
            v.assign(0.2 * noise)
        elif name in ("gamma", "scale"):
            v.assign(1.0 + 0.3 * noise)
        elif name in ("embeddings", "reverse_embeddings"):
            v.assign(0.5 * noise)


def inputs():
    rng = np.random.default_rng(3)
    ids = rng.integers(1, VOCAB, (2, SEQ)).astype(np.int32)
    mask = np.ones((2, SEQ), dtype=np.int32)
    mask[1, 4:] = 0  # the second sequence is padded
    ids[1, 4:] = 0
    return {"token_ids": ids, "padding_mask": mask}


def build(name, seed):
    keras.utils.set_random_seed(seed)
    model = BACKBONES[name]()
    randomize(model, 100 + seed)
    return model


def save_case(name, tag, model, x, cases, preset):
    file = f"{name}__{tag}.keras"
    model.save(os.path.join(OUT, file))
    if preset:
        folder = os.path.join(OUT, f"{name}__{tag}_preset")
        shutil.rmtree(folder, ignore_errors=True)
        model.save_to_preset(folder)
    y = model(x, training=False)
    cases.append({
        "file": file,
        "preset": f"{name}__{tag}_preset" if preset else None,
        "policy": tag,
        "inputs": {k: v.reshape(-1).tolist() for k, v in x.items()},
        "shape": list(x["token_ids"].shape),
        "output": {"shape": list(np.shape(y)), "bits": bits(y)},
    })


# The user's map: regexes over layer paths, which DTypePolicyMap fullmatches.
ATTENTION = r".*attention/(query|key|value|attention_output)"
FEEDFORWARD = r".*/(feedforward_(intermediate|gate|output)_dense|ffw_gating|ffw_gating_2|ffw_linear)"


def map_cases(name, seed):
    model = build(name, seed)
    model.quantize("int8", filters=lambda layer: re.fullmatch(ATTENTION, layer.path or "") is not None)
    model.quantize("int4", filters=lambda layer: re.fullmatch(FEEDFORWARD, layer.path or "") is not None)
    policy_map = keras.dtype_policies.DTypePolicyMap(default_policy="float32")
    policy_map[ATTENTION] = "int8_from_float32"
    policy_map[FEEDFORWARD] = "int4/128_from_float32"
    # The map routes every quantized sublayer to the mode Keras gave it.
    routed = 0
    for layer in model._flatten_layers(include_self=False, recursive=True):
        mode = getattr(layer, "quantization_mode", None)
        if mode is None:
            continue
        want = policy_map[layer.path].name
        if not want.startswith(mode):
            sys.exit(f"{layer.path}: Keras quantized it to {mode}, the map says {want}")
        routed += 1
    with open(os.path.join(OUT, f"{name}__map_policy.json"), "w") as f:
        json.dump(keras.saving.serialize_keras_object(policy_map), f, indent=1)
    cases = []
    save_case(name, "map", model, inputs(), cases, preset=False)
    with open(os.path.join(OUT, f"{name}__map.json"), "w") as f:
        json.dump({"keras_version": keras.__version__,
                   "keras_hub_version": keras_hub.__version__,
                   "backbone": name, "attention": ATTENTION, "feedforward": FEEDFORWARD,
                   "quantized_layers": routed, "cases": cases}, f)
    print(f"{name}: map, {routed} layers quantized")


def main():
    if keras.__version__ != "3.15.1" or keras_hub.__version__ != "0.32.0":
        sys.exit(f"keras {keras.__version__}, keras-hub {keras_hub.__version__}: this script "
                 "records Keras 3.15.1 and KerasHub 0.32.0")
    os.makedirs(OUT, exist_ok=True)
    chosen = sys.argv[1:] or list(BACKBONES) + ["maps"]
    x = inputs()
    if "maps" in chosen:
        keras.config.set_dtype_policy("float32")
        for i, name in enumerate(BACKBONES):
            if name in ("gpt2", "llama", "gemma"):
                map_cases(name, i)
    for i, name in enumerate(BACKBONES):
        if name not in chosen:
            continue
        cases = []
        for policy in ("float32", "mixed_float16", "mixed_bfloat16"):
            keras.config.set_dtype_policy(policy)
            save_case(name, policy, build(name, i), x, cases, preset=policy == "float32")
            if policy == "mixed_float16":
                continue
            for mode in ("int8", "int4"):
                model = build(name, i)
                model.quantize(mode)
                tag = f"{mode}_from_{policy}"
                save_case(name, tag, model, x, cases, preset=tag == "int8_from_float32")
        keras.config.set_dtype_policy("float32")
        with open(os.path.join(OUT, f"{name}.json"), "w") as f:
            json.dump({"keras_version": keras.__version__,
                       "keras_hub_version": keras_hub.__version__,
                       "backbone": name, "cases": cases}, f)
        print(f"{name}: {len(cases)} files")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
# SPDX-License-Identifier: MIT OR Apache-2.0
"""Writes tests/data/keras_reference.json: what released Keras answers.

The Rust tests in tests/keras_reference.rs replay every case below through the
crate's API and compare. Regenerate with:

    python3 -m venv /tmp/keras-env
    /tmp/keras-env/bin/pip install keras==3.15.1 jax
    KERAS_BACKEND=jax /tmp/keras-env/bin/python tools/keras_reference.py

Every case is data, not code: a "call" names the Keras constructor or function
and its arguments, and the answer is either {"ok": ...} or {"err": {"kind",
"message"}} with Python's exception class and message.
"""
import copy
import json
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "jax")
import keras  # noqa: E402
from keras import dtype_policies as dp  # noqa: E402
from keras.src.backend.common import dtypes as kdtypes  # noqa: E402
from keras.src.utils import dtype_utils  # noqa: E402
from keras.src.dtype_policies import QUANTIZATION_MODES  # noqa: E402

EXPECTED_VERSION = "3.15.1"
OUT = os.path.join(
    os.path.dirname(os.path.abspath(__file__)),
    "..",
    "tests",
    "data",
    "keras_reference.json",
)


def error(e):
    return {"err": {"kind": type(e).__name__, "message": str(e)}}


def describe(p):
    out = {
        "class": type(p).__name__,
        "name": p.name,
        "compute_dtype": p.compute_dtype,
        "variable_dtype": p.variable_dtype,
        "quantization_mode": p.quantization_mode,
        "repr": repr(p),
        "config": p.get_config(),
        "serialized": dp.serialize(p),
    }
    for attr in ("amax_history_length", "block_size", "weight_bits", "group_size"):
        if hasattr(p, attr):
            out[attr] = getattr(p, attr)
    return out


def call(spec):
    """Runs one construction described by data and returns the policy."""
    kind = spec["call"]
    args = spec.get("args", {})
    if kind == "get":
        return dp.get(args["identifier"])
    if kind == "deserialize":
        return dp.deserialize(copy.deepcopy(args["config"]))
    cls = getattr(dp, kind)
    return cls(**args)


def run(spec):
    try:
        return {"ok": describe(call(spec))}
    except Exception as e:  # noqa: BLE001 - every Keras error is data here
        return error(e)


# --- 1. dtype names -------------------------------------------------------
DTYPE_INPUTS = list(kdtypes.ALLOWED_DTYPES) + [
    "int", "float", "Float32", "FLOAT32", " float32", "float32 ", "fp32",
    "float8_e4m3fnuz", "float8_e4m3", "uint4", "int4", "complex32", "",
    "half", "double", "bfloat", "str", "boolean",
]


def dtype_case(name):
    try:
        std = keras.backend.standardize_dtype(name)
    except Exception as e:  # noqa: BLE001
        return {"input": name, **error(e)}
    bits = dtype_utils.DTYPE_TO_SIZE.get(std)
    return {
        "input": name,
        "ok": {
            "name": std,
            "bits": bits,
            "is_float": keras.backend.is_float_dtype(std),
            "is_int": keras.backend.is_int_dtype(std),
        },
    }


# --- 2. policy constructions ---------------------------------------------
GET_STRINGS = [
    # float policies
    "float32", "float16", "bfloat16", "float64", "mixed_float16",
    "mixed_bfloat16", "int", "int32", "int16", "int64", "uint8", "uint16",
    "uint32", "uint64", "bool", "string", "complex64", "complex128",
    "float8_e5m2x", "mixed_float32", "mixed_int8", "Mixed_float16",
    "float", "", "float32_from_float16", " mixed_float16",
    # strings that start with a quantization mode
    "int8", "int8_from_float32", "int8_from_mixed_bfloat16",
    "int8_from_bfloat16", "int8_from_float16", "int8_from_mixed_float16",
    "int8_from_float64", "int8_from_int", "int8_from_string",
    "int8_from_", "int8_from_float32_from_float32", "int8x_from_float32",
    "int8/128_from_float32", "int4_from_float32", "int4_from_mixed_float16",
    "int4_from_mixed_bfloat16", "int4/128_from_float32", "int4/64_from_bfloat16",
    "int4/-1_from_float32", "int4/1_from_float32", "int4/0_from_float32",
    "int4/-2_from_float32", "int4/abc_from_float32", "int4/_from_float32",
    "int4/128/1_from_float32", "int4/0128_from_float32", "int4/+128_from_float32",
    "int4/ 128_from_float32", "int4/1_28_from_float32", "int4/1__28_from_float32",
    "int4/128_from_nope", "int4x/128_from_float32", "int4x_from_float32",
    "float8", "float8_from_float32", "float8_from_mixed_bfloat16",
    "float8_from_mixed_float16", "float8_e4m3fn", "float8_e5m2",
    "float8_e4m3fn_from_float32", "float8/1_from_float32",
    "gptq/4/128_from_float32", "gptq/8/-1_from_bfloat16", "gptq/5/128_from_float32",
    "gptq/4/0_from_float32", "gptq/4_from_float32", "gptq_from_float32",
    "gptq/x/128_from_float32", "awq/4/128_from_float32", "awq/4/-1_from_float32",
    "awq/8/128_from_float32", "awq/4/-3_from_float32", "awq_from_float32",
]

DIRECT_CALLS = [
    {"call": "DTypePolicy", "args": {"name": "mixed_float16"}},
    {"call": "DTypePolicy", "args": {"name": "int8"}},
    {"call": "DTypePolicy", "args": {"name": "float8_e4m3fn"}},
    {"call": "DTypePolicy", "args": {"name": "int8_from_float32"}},
    {"call": "FloatDTypePolicy", "args": {"name": "float32"}},
    {"call": "FloatDTypePolicy", "args": {"name": "mixed_bfloat16"}},
    {"call": "QuantizedDTypePolicy", "args": {"mode": "int8", "source_name": "float32"}},
    {"call": "QuantizedDTypePolicy", "args": {"mode": "int4", "source_name": "mixed_bfloat16"}},
    {"call": "QuantizedDTypePolicy", "args": {"mode": "float8", "source_name": "float32"}},
    {"call": "QuantizedDTypePolicy", "args": {"mode": "gptq", "source_name": "float32"}},
    {"call": "QuantizedDTypePolicy", "args": {"mode": "int16", "source_name": "float32"}},
    {"call": "QuantizedDTypePolicy", "args": {"mode": "int16", "source_name": "nope"}},
    {"call": "QuantizedDTypePolicy", "args": {"mode": "int8", "source_name": "float16"}},
    {"call": "QuantizedDTypePolicy", "args": {"mode": "int4", "source_name": "float16"}},
    {"call": "QuantizedDTypePolicy", "args": {"mode": "int4/128", "source_name": "float32"}},
    {"call": "QuantizedFloat8DTypePolicy", "args": {"mode": "float8", "source_name": "float32"}},
    {"call": "QuantizedFloat8DTypePolicy", "args": {"mode": "float8", "source_name": "mixed_bfloat16", "amax_history_length": 16}},
    {"call": "QuantizedFloat8DTypePolicy", "args": {"mode": "int8", "source_name": "float32", "amax_history_length": 4}},
    {"call": "QuantizedFloat8DTypePolicy", "args": {"mode": "float8", "source_name": "float32", "amax_history_length": "16"}},
    {"call": "QuantizedFloat8DTypePolicy", "args": {"mode": "float8", "source_name": "float32", "amax_history_length": 16.0}},
    {"call": "QuantizedFloat8DTypePolicy", "args": {"mode": "float9", "source_name": "float32", "amax_history_length": 16}},
    {"call": "Int4DTypePolicy", "args": {"mode": "int4/128", "source_name": "float32"}},
    {"call": "Int4DTypePolicy", "args": {"mode": "int4/-1", "source_name": "mixed_bfloat16"}},
    {"call": "Int4DTypePolicy", "args": {"mode": "int4", "source_name": "float32"}},
    {"call": "Int4DTypePolicy", "args": {"mode": "int8/128", "source_name": "float32"}},
    {"call": "Int4DTypePolicy", "args": {"mode": "int4/0", "source_name": "nope"}},
    {"call": "Int4DTypePolicy", "args": {"mode": "int4/32", "source_name": "nope"}},
    {"call": "GPTQDTypePolicy", "args": {"mode": "gptq/3/64", "source_name": "float32"}},
    {"call": "AWQDTypePolicy", "args": {"mode": "awq/4/32", "source_name": "bfloat16"}},
]

# Keras JSON (serialized objects) as they appear in config.json files.
DESERIALIZE = [
    {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "mixed_bfloat16"}, "registered_name": None},
    {"module": "keras", "class_name": "FloatDTypePolicy", "config": {"name": "float32"}, "registered_name": None},
    {"class_name": "DTypePolicy", "config": {"name": "float16"}},
    {"module": "keras", "class_name": "DTypePolicy", "config": {"name": 3}, "registered_name": None},
    {"module": "keras", "class_name": "DTypePolicy", "config": {"name": ["float32"]}, "registered_name": None},
    {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32", "extra": 1}, "registered_name": None},
    {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "nope"}, "registered_name": None},
    {"module": "keras.dtype_policies", "class_name": "QuantizedDTypePolicy", "config": {"mode": "int8", "source_name": "mixed_bfloat16"}, "registered_name": None},
    {"module": "keras.dtype_policies", "class_name": "QuantizedDTypePolicy", "config": {"mode": "int8", "source_name": "float16"}, "registered_name": None},
    {"module": "keras.dtype_policies", "class_name": "QuantizedFloat8DTypePolicy", "config": {"mode": "float8", "source_name": "float32", "amax_history_length": 1024}, "registered_name": None},
    {"module": "keras.dtype_policies", "class_name": "QuantizedFloat8DTypePolicy", "config": {"mode": "float8", "source_name": "float32"}, "registered_name": None},
    {"module": "keras.dtype_policies", "class_name": "QuantizedFloat8DTypePolicy", "config": {"mode": "float8", "source_name": "float32", "amax_history_length": 2.5}, "registered_name": None},
    {"module": "keras.dtype_policies", "class_name": "Int4DTypePolicy", "config": {"mode": "int4/128", "source_name": "float32"}, "registered_name": None},
    {"module": "keras.dtype_policies", "class_name": "Int4DTypePolicy", "config": {"mode": "int4/-1", "source_name": "bfloat16"}, "registered_name": None},
    {"module": "keras.dtype_policies", "class_name": "GPTQDTypePolicy", "config": {"mode": "gptq/4/128", "source_name": "float32"}, "registered_name": None},
    {"module": "keras.dtype_policies", "class_name": "AWQDTypePolicy", "config": {"mode": "awq/4/-1", "source_name": "float32"}, "registered_name": None},
    {"module": "keras.dtype_policies", "class_name": "QuantizedDTypePolicy", "config": {"mode": "int8"}, "registered_name": None},
]

EQUALITY = [
    ({"call": "get", "args": {"identifier": "float32"}}, {"call": "DTypePolicy", "args": {"name": "float32"}}),
    ({"call": "DTypePolicy", "args": {"name": "float32"}}, {"call": "FloatDTypePolicy", "args": {"name": "float32"}}),
    ({"call": "DTypePolicy", "args": {"name": "int"}}, {"call": "DTypePolicy", "args": {"name": "int32"}}),
    ({"call": "DTypePolicy", "args": {"name": "float32"}}, {"call": "DTypePolicy", "args": {"name": "mixed_float16"}}),
    ({"call": "get", "args": {"identifier": "int8_from_float32"}}, {"call": "QuantizedDTypePolicy", "args": {"mode": "int8", "source_name": "float32"}}),
    ({"call": "get", "args": {"identifier": "int8_from_float32"}}, {"call": "DTypePolicy", "args": {"name": "float32"}}),
    ({"call": "DTypePolicy", "args": {"name": "float32"}}, {"call": "get", "args": {"identifier": "int8_from_float32"}}),
    ({"call": "get", "args": {"identifier": "int8_from_float32"}}, {"call": "get", "args": {"identifier": "int8_from_bfloat16"}}),
    ({"call": "get", "args": {"identifier": "float8_from_float32"}}, {"call": "QuantizedDTypePolicy", "args": {"mode": "float8", "source_name": "float32"}}),
    ({"call": "get", "args": {"identifier": "float8_from_float32"}}, {"call": "QuantizedFloat8DTypePolicy", "args": {"mode": "float8", "source_name": "float32", "amax_history_length": 1024}}),
    ({"call": "get", "args": {"identifier": "float8_from_float32"}}, {"call": "QuantizedFloat8DTypePolicy", "args": {"mode": "float8", "source_name": "float32", "amax_history_length": 16}}),
    ({"call": "get", "args": {"identifier": "int4_from_float32"}}, {"call": "get", "args": {"identifier": "int4/-1_from_float32"}}),
    ({"call": "get", "args": {"identifier": "int4/128_from_float32"}}, {"call": "Int4DTypePolicy", "args": {"mode": "int4/128", "source_name": "float32"}}),
    ({"call": "get", "args": {"identifier": "int4/128_from_float32"}}, {"call": "get", "args": {"identifier": "int4/0128_from_float32"}}),
    ({"call": "get", "args": {"identifier": "int4/128_from_float32"}}, {"call": "get", "args": {"identifier": "int4/64_from_float32"}}),
    ({"call": "get", "args": {"identifier": "gptq/4/128_from_float32"}}, {"call": "GPTQDTypePolicy", "args": {"mode": "gptq/4/128", "source_name": "float32"}}),
    ({"call": "get", "args": {"identifier": "gptq/4/128_from_float32"}}, {"call": "get", "args": {"identifier": "awq/4/128_from_float32"}}),
]


# --- 4. maps ----------------------------------------------------------------
def run_map_script(script):
    results = []
    try:
        m = dp.DTypePolicyMap(**script.get("init", {}))
    except Exception as e:  # noqa: BLE001
        return {"init": script.get("init", {}), "ops": script["ops"], "init_result": error(e), "results": []}
    for op in script["ops"]:
        try:
            kind = op["op"]
            if kind == "set":
                m[op["key"]] = op["value"]
                r = {"ok": None}
            elif kind == "get":
                r = {"ok": repr(m[op["path"]])}
            elif kind == "del":
                r = {"ok": repr(m.pop(op["key"]))}
            elif kind == "contains":
                r = {"ok": op["key"] in m}
            elif kind == "len":
                r = {"ok": len(m)}
            elif kind == "keys":
                r = {"ok": list(m)}
            elif kind == "name":
                r = {"ok": m.name}
            elif kind == "dtypes":
                r = {"ok": [m.compute_dtype, m.variable_dtype, m.quantization_mode]}
            elif kind == "serialize":
                r = {"ok": dp.serialize(copy.deepcopy(m))}
            else:
                raise AssertionError(kind)
        except Exception as e:  # noqa: BLE001
            r = error(e)
        results.append(r)
    return {"init": script.get("init", {}), "ops": script["ops"], "init_result": {"ok": None}, "results": results}


MAP_SCRIPTS = [
    {"init": {"default_policy": "float32"}, "ops": [
        {"op": "set", "key": "encoder/layer_0/dense", "value": "bfloat16"},
        {"op": "set", "key": "encoder/.*", "value": "float16"},
        {"op": "set", "key": "decoder", "value": "bfloat16"},
        {"op": "get", "path": "encoder/layer_0/dense"},
        {"op": "get", "path": "encoder/attention/query"},
        {"op": "get", "path": "decoder/attention"},
        {"op": "get", "path": "decoder"},
        {"op": "get", "path": "xencoder/a"},
        {"op": "get", "path": "encoder/"},
        {"op": "set", "key": "encoder/attention/.*", "value": "bfloat16"},
        {"op": "get", "path": "encoder/attention/query"},
        {"op": "get", "path": "encoder/layer_0/dense"},
        {"op": "set", "key": ".*query", "value": "int8_from_float32"},
        {"op": "get", "path": "encoder/attention/query"},
        {"op": "len"}, {"op": "keys"}, {"op": "name"}, {"op": "dtypes"},
        {"op": "contains", "key": "decoder"},
        {"op": "contains", "key": "decoder/attention"},
        {"op": "contains", "key": "encoder/.*"},
        {"op": "serialize"},
    ]},
    {"init": {"default_policy": "mixed_bfloat16"}, "ops": [
        {"op": "set", "key": "dense", "value": "int8_from_mixed_bfloat16"},
        {"op": "set", "key": "dense", "value": "float32"},
        {"op": "set", "key": "other", "value": "nope"},
        {"op": "set", "key": "other", "value": "int8_from_float16"},
        {"op": "set", "key": "other", "value": "int8"},
        {"op": "len"},
        {"op": "del", "key": "dense"},
        {"op": "del", "key": "dense"},
        {"op": "len"},
        {"op": "get", "path": "dense"},
        {"op": "set", "key": "dense_[0-9]+", "value": "int4/128_from_mixed_bfloat16"},
        {"op": "set", "key": "dense_1", "value": "float8_from_mixed_bfloat16"},
        {"op": "get", "path": "dense_1"},
        {"op": "get", "path": "dense_12"},
        {"op": "get", "path": "dense_x"},
        {"op": "keys"}, {"op": "name"}, {"op": "dtypes"},
        {"op": "serialize"},
    ]},
    {"init": {"default_policy": "int8_from_mixed_bfloat16"}, "ops": [
        {"op": "name"}, {"op": "dtypes"},
        {"op": "set", "key": "a.b", "value": "float16"},
        {"op": "get", "path": "a.b"},
        {"op": "get", "path": "axb"},
        {"op": "get", "path": "a.bc"},
        {"op": "set", "key": "a/(b|c)/d", "value": "bfloat16"},
        {"op": "get", "path": "a/c/d"},
        {"op": "get", "path": "a/e/d"},
        {"op": "serialize"},
    ]},
    {"init": {}, "ops": [
        {"op": "name"},
        {"op": "set", "key": "block/dense", "value": "int8_from_mixed_bfloat16"},
        {"op": "set", "key": "block/proj", "value": "float16"},
        {"op": "set", "key": "block/ffn", "value": "int4/64_from_bfloat16"},
        {"op": "set", "key": "block/fp8", "value": "float8_from_float32"},
        {"op": "get", "path": "block/dense"},
        {"op": "get", "path": "nothing"},
        {"op": "serialize"},
    ]},
    {"init": {"default_policy": "nope"}, "ops": []},
    {"init": {"default_policy": "int8"}, "ops": []},
]

# Config JSON of maps, loaded under a given global policy.
MAP_CONFIGS = [
    ("float32", {"module": "keras.dtype_policies", "class_name": "DTypePolicyMap", "config": {"default_policy": None, "policy_map": {"a/b": {"module": "keras.dtype_policies", "class_name": "QuantizedDTypePolicy", "config": {"mode": "int8", "source_name": None}, "registered_name": None}, "c": {"module": "keras", "class_name": "DTypePolicy", "config": {"name": None}, "registered_name": None}, "d": {"module": "keras.dtype_policies", "class_name": "Int4DTypePolicy", "config": {"mode": "int4/64", "source_name": None}, "registered_name": None}}}, "registered_name": None}),
    ("mixed_bfloat16", {"module": "keras.dtype_policies", "class_name": "DTypePolicyMap", "config": {"default_policy": None, "policy_map": {"a/b": {"module": "keras.dtype_policies", "class_name": "QuantizedDTypePolicy", "config": {"mode": "int8", "source_name": None}, "registered_name": None}, "c": {"module": "keras", "class_name": "DTypePolicy", "config": {"name": None}, "registered_name": None}, "f8": {"module": "keras.dtype_policies", "class_name": "QuantizedFloat8DTypePolicy", "config": {"mode": "float8", "source_name": None, "amax_history_length": 64}, "registered_name": None}}}, "registered_name": None}),
    ("float32", {"module": "keras.dtype_policies", "class_name": "DTypePolicyMap", "config": {"default_policy": {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "bfloat16"}, "registered_name": None}, "policy_map": {"enc/.*": {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float16"}, "registered_name": None}}}, "registered_name": None}),
    ("float32", {"module": "keras.dtype_policies", "class_name": "DTypePolicyMap", "config": {"default_policy": "mixed_bfloat16", "policy_map": {}}, "registered_name": None}),
    ("float32", {"module": "keras.dtype_policies", "class_name": "DTypePolicyMap", "config": {"default_policy": {"module": "keras.dtype_policies", "class_name": "DTypePolicyMap", "config": {"default_policy": None, "policy_map": {}}, "registered_name": None}, "policy_map": {}}, "registered_name": None}),
    ("float32", {"module": "keras.dtype_policies", "class_name": "DTypePolicyMap", "config": {"default_policy": "nope", "policy_map": {}}, "registered_name": None}),
    ("float32", {"module": "keras.dtype_policies", "class_name": "DTypePolicyMap", "config": {"default_policy": None, "policy_map": {"a": {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "nope"}, "registered_name": None}}}, "registered_name": None}),
]


def run_map_config(global_name, config):
    keras.config.set_dtype_policy(global_name)
    try:
        m = dp.deserialize(copy.deepcopy(config))
        out = {
            "name": m.name,
            "default": repr(m.default_policy),
            "entries": [[k, repr(v)] for k, v in m._policy_map.items()],
            "reserialized": dp.serialize(copy.deepcopy(m)),
        }
        r = {"ok": out}
    except Exception as e:  # noqa: BLE001
        r = error(e)
    finally:
        keras.config.set_dtype_policy("float32")
    return {"global": global_name, "input": config, **r}


# --- 5. the global policy -------------------------------------------------
GLOBAL_SETS = [
    "mixed_float16", "mixed_bfloat16", "float64", "int8_from_float32",
    "int4/128_from_mixed_bfloat16", "float8_from_float32", "nope", "int8",
    "int8_from_float16",
]


def run_global(name):
    keras.config.set_dtype_policy("float32")
    try:
        keras.config.set_dtype_policy(name)
        after = {"global": repr(keras.config.dtype_policy())}
        for label, fn in (
            ("DTypePolicy()", lambda: dp.DTypePolicy()),
            ("QuantizedDTypePolicy('int8')", lambda: dp.QuantizedDTypePolicy("int8")),
            ("QuantizedFloat8DTypePolicy('float8')", lambda: dp.QuantizedFloat8DTypePolicy("float8")),
            ("DTypePolicyMap().default_policy", lambda: dp.DTypePolicyMap().default_policy),
        ):
            try:
                after[label] = {"ok": repr(fn())}
            except Exception as e:  # noqa: BLE001
                after[label] = error(e)
        r = {"ok": after}
    except Exception as e:  # noqa: BLE001
        r = error(e)
    finally:
        keras.config.set_dtype_policy("float32")
    return {"set": name, **r}


def main():
    if keras.__version__ != EXPECTED_VERSION:
        sys.exit(f"expected keras=={EXPECTED_VERSION}, found {keras.__version__}")
    keras.config.set_dtype_policy("float32")
    initial = repr(keras.config.dtype_policy())
    calls = [{"call": "get", "args": {"identifier": s}} for s in GET_STRINGS]
    calls += DIRECT_CALLS
    calls += [{"call": "deserialize", "args": {"config": c}} for c in DESERIALIZE]
    data = {
        "keras_version": keras.__version__,
        "quantization_modes": list(QUANTIZATION_MODES),
        "initial_global_policy": initial,
        "dtypes": [dtype_case(n) for n in DTYPE_INPUTS],
        "policies": [{**c, **run(c)} for c in calls],
        "equality": [
            {"a": a, "b": b, "equal": call(a) == call(b)} for a, b in EQUALITY
        ],
        "maps": [run_map_script(s) for s in MAP_SCRIPTS],
        "map_configs": [run_map_config(g, c) for g, c in MAP_CONFIGS],
        "global": [run_global(n) for n in GLOBAL_SETS],
    }
    with open(OUT, "w") as f:
        json.dump(data, f, indent=1)
        f.write("\n")
    print(f"wrote {os.path.normpath(OUT)}")


if __name__ == "__main__":
    main()

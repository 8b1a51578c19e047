#!/usr/bin/env python3
# SPDX-License-Identifier: MIT OR Apache-2.0
"""Writes tests/data/keras_legacy_int4.json: int4 Dense layers as Keras
before 3.14 quantized them, for the loader of that layout.

Keras 3.13.2 (the last release before 3.14) packs an int4 Dense kernel
along the inputs, `[ceil(in / 2), units]` (two adjacent input rows per byte,
the even row in the low nibble), per output channel only, and by default
quantizes the activations to int8 as well (an int8 x int4 integer product).
Keras 3.14 and later pack along the units and do neither; 3.15.1 cannot load
these files. Every float32 is stored as its bit pattern.

    python3 -m venv /tmp/keras313
    /tmp/keras313/bin/pip install keras==3.13.2 jax ml-dtypes
    KERAS_BACKEND=jax /tmp/keras313/bin/python tools/keras_legacy_int4_reference.py
"""
import json
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "jax")
import keras  # noqa: E402
import numpy as np  # noqa: E402

EXPECTED_VERSION = "3.13.2"
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "keras_legacy_int4.json")


def bits(a):
    return np.asarray(a, dtype=np.float32).reshape(-1).view(np.uint32).tolist()


def ints(a):
    return np.asarray(a).astype(np.int64).reshape(-1).tolist()


def variable(v):
    a = np.asarray(v)
    if a.dtype == np.int8:
        return {"shape": list(a.shape), "dtype": "int8", "values": ints(a)}
    return {"shape": list(a.shape), "dtype": "float32", "values": bits(a)}


def main():
    if keras.__version__ != EXPECTED_VERSION:
        sys.exit(f"expected keras=={EXPECTED_VERSION}, found {keras.__version__}")
    rng = np.random.default_rng(41)
    cases = []
    for policy in ("float32", "mixed_bfloat16"):
        for (m, k, n), activation in [((1, 7, 5), None), ((3, 37, 13), "gelu"), ((2, 64, 9), None)]:
            w = (rng.standard_normal((k, n)) * 0.2).astype(np.float32)
            b = (rng.standard_normal(n) * 0.1).astype(np.float32)
            x = rng.standard_normal((m, k)).astype(np.float32)
            layer = keras.layers.Dense(n, activation=activation, dtype=policy)
            layer.build((None, k))
            layer.kernel.assign(w)
            layer.bias.assign(b)
            layer.quantize("int4")
            y = np.asarray(layer(x)).astype(np.float32)
            xc = keras.ops.cast(x, layer.compute_dtype)
            q, s = layer.inputs_quantizer(xc, axis=-1)
            cases.append({
                "policy": layer.dtype_policy.name, "activation": activation or "linear",
                "m": m, "k": k, "n": n, "x_bits": bits(x), "y_bits": bits(y),
                "variables": {"kernel": variable(layer._kernel), "bias": variable(layer.bias),
                              "kernel_scale": variable(layer.kernel_scale)},
                "inputs_quantized": {"values": ints(q), "scale_bits": bits(np.asarray(s).astype(np.float32))},
            })
    with open(OUT, "w") as f:
        json.dump({"keras_version": keras.__version__, "dense_int4": cases}, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {os.path.normpath(OUT)}")


if __name__ == "__main__":
    main()

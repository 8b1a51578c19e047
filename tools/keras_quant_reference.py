#!/usr/bin/env python3
# SPDX-License-Identifier: MIT OR Apache-2.0
"""Writes tests/data/keras_quant_reference.json: Keras's quantizers, exactly.

What released Keras 3.15.1 (with ml_dtypes) produces for the host side of
quantized Dense layers: int8 abs-max kernels and scales (per output column)
and activations (per row), int4 per-channel and grouped kernels with Keras's
nibble packing, float8 e4m3fn / e5m2 encodings and decodings, float8
quantize-dequantize, and the amax history with its delayed scale.

Every float32 is stored as its bit pattern (an unsigned integer), so the
Rust tests (tests/keras_quantizers.rs) compare bit for bit.

    python3 -m venv /tmp/keras-env
    /tmp/keras-env/bin/pip install keras==3.15.1 jax
    KERAS_BACKEND=jax /tmp/keras-env/bin/python tools/keras_quant_reference.py
"""
import json
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "jax")
import keras  # noqa: E402
import ml_dtypes  # noqa: E402
import numpy as np  # noqa: E402
from keras import quantizers  # noqa: E402
from keras.src.quantizers.quantization_config import Int4QuantizationConfig  # noqa: E402
from keras.src.quantizers.quantization_config import Int8QuantizationConfig  # noqa: E402

EXPECTED_VERSION = "3.15.1"
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "keras_quant_reference.json")


def bits(a):
    return np.asarray(a, dtype=np.float32).reshape(-1).view(np.uint32).tolist()


def ints(a):
    return np.asarray(a).astype(np.int64).reshape(-1).tolist()


def kernels():
    rng = np.random.default_rng(7)
    out = []
    for name, (k, n), scale in [
        ("one", (1, 1), 1.0), ("small", (5, 3), 1.0), ("odd", (37, 13), 0.5),
        ("wide", (64, 9), 3.0), ("large_values", (16, 6), 1000.0),
        ("tiny_values", (16, 6), 1e-6), ("k300", (300, 7), 1.0),
    ]:
        out.append((name, (rng.standard_normal((k, n)) * scale).astype(np.float32)))
    w = rng.standard_normal((10, 5)).astype(np.float32)
    w[:, 1] = 0.0  # an all-zero column: the epsilon path
    w[3, :] = 0.0
    w[:, 4] = np.array([0.5, -0.5, 1.5, 2.5, -2.5, 0.25, 7.0, -7.0, 3.5, 0.0], dtype=np.float32)
    out.append(("zero_column_and_halfway", w))
    return out


def dense_quantized(w, mode, config=None):
    k, n = w.shape
    layer = keras.layers.Dense(n, use_bias=False)
    layer.build((None, k))
    layer.kernel.assign(w)
    layer.quantize(mode, config=config)
    return layer


def int8_weights():
    cases = []
    for name, w in kernels():
        layer = dense_quantized(w, "int8")
        cases.append({
            "name": name, "k": w.shape[0], "n": w.shape[1], "w_bits": bits(w),
            "kernel": ints(layer._kernel), "kernel_scale_bits": bits(layer.kernel_scale),
        })
    return cases


def int8_inputs():
    rng = np.random.default_rng(11)
    cases = []
    for name, x in [
        ("rows", rng.standard_normal((4, 37)).astype(np.float32)),
        ("one", np.array([[0.75]], dtype=np.float32)),
        ("zero_row", np.vstack([np.zeros((1, 9)), rng.standard_normal((1, 9))]).astype(np.float32)),
        ("large", (rng.standard_normal((2, 16)) * 1e4).astype(np.float32)),
        ("halfway", np.array([[127.0, 0.5, 1.5, -2.5, 63.5, -0.5]], dtype=np.float32)),
    ]:
        q, s = quantizers.AbsMaxQuantizer(axis=-1)(x)
        cases.append({"name": name, "m": x.shape[0], "k": x.shape[1], "x_bits": bits(x),
                      "quantized": ints(q), "scale_bits": bits(s)})
    return cases


def int4_weights():
    cases = []
    for name, w in kernels():
        for block in (-1, 4, 128):
            layer = dense_quantized(w, "int4", Int4QuantizationConfig(block_size=block))
            case = {"name": name, "block_size": block, "k": w.shape[0], "n": w.shape[1],
                    "w_bits": bits(w), "packed_kernel": ints(layer._kernel),
                    "packed_shape": list(layer._kernel.shape),
                    "kernel_scale_bits": bits(layer.kernel_scale),
                    "policy": layer.dtype_policy.name}
            if block > 0:
                case["kernel_zero"] = ints(layer.kernel_zero)
                case["scale_shape"] = list(layer.kernel_scale.shape)
            cases.append(case)
    return cases


def float8():
    specials = [0.0, -0.0, 1.0, -1.0, 448.0, 449.0, 464.0, 465.0, 480.0, 500.0, -500.0, 57344.0,
                61440.0, 61441.0, 1e9, 1e-9, 2.0**-6, 2.0**-7, 2.0**-9, 2.0**-10, 3 * 2.0**-10,
                2.0**-14, 2.0**-16, 2.0**-17, 1.0625, 1.1875, 1.125, 1.25, 1.375, np.inf, -np.inf, np.nan]
    rng = np.random.default_rng(5)
    values = np.concatenate([np.array(specials, dtype=np.float32),
                             (rng.standard_normal(400) * 50).astype(np.float32),
                             (rng.standard_normal(200) * 1e-3).astype(np.float32)])
    out = {"values_bits": bits(values)}
    for fmt in ("float8_e4m3fn", "float8_e5m2"):
        dt = getattr(ml_dtypes, fmt)
        codes = values.astype(dt).view(np.uint8)
        all_codes = np.arange(256, dtype=np.uint8).view(dt).astype(np.float32)
        out[fmt] = {"encode": ints(codes), "decode_bits": bits(all_codes),
                    "max_bits": bits(np.float32(float(ml_dtypes.finfo(dt).max)))}
    qdq = []
    x = (rng.standard_normal((3, 11)) * 100).astype(np.float32)
    for scale in (1.0, 0.5, 0.3, 2.0**-8):
        y = quantizers.quantize_and_dequantize(x, np.float32(scale), "float8_e4m3fn", "float32")
        qdq.append({"scale_bits": bits(np.float32(scale)), "x_bits": bits(x), "y_bits": bits(y)})
    out["qdq"] = qdq
    return out


def amax_history():
    rng = np.random.default_rng(9)
    steps = []
    history = np.zeros((3,), dtype=np.float32)
    scale = np.float32(1.0)
    xs = [rng.standard_normal(8).astype(np.float32) * s for s in (1.0, 30.0, 0.0, 2.0, 1e3)]
    xs.append(np.array([np.inf, 1.0], dtype=np.float32))
    for x in xs:
        history = np.asarray(quantizers.compute_float8_amax_history(x, history), dtype=np.float32)
        scale = np.asarray(quantizers.compute_float8_scale(np.max(history), scale, np.float32(448.0)), dtype=np.float32)
        steps.append({"x_bits": bits(x), "history_bits": bits(history), "scale_bits": bits(scale)})
    return {"length": 3, "dtype_max": 448.0, "steps": steps}


def dense_outputs():
    """Dense layers quantized by Keras (int8, int4 per channel, int4 in
    groups), called on inputs: the outputs the GPU kernels must reproduce."""
    rng = np.random.default_rng(21)
    cases = []
    modes = [("int8", None), ("int4", Int4QuantizationConfig(block_size=-1)),
             ("int4", Int4QuantizationConfig(block_size=128)), ("int4", Int4QuantizationConfig(block_size=4)),
             ("float8", None), ("int8", Int8QuantizationConfig(activation_quantizer=None))]
    for (mode, config), policy, ((m, k, n), activation) in [
        (mc, p, sa)
        for mc in modes
        for p in ("float32", "mixed_bfloat16")
        for sa in [((1, 37, 13), None), ((3, 64, 9), "gelu"), ((2, 5, 7), None),
                   ((1, 300, 5), "relu"), ((4, 100, 8), "silu")]
    ]:
        if True:
            w = rng.standard_normal((k, n)).astype(np.float32) * 0.2
            b = rng.standard_normal(n).astype(np.float32) * 0.1
            x = rng.standard_normal((m, k)).astype(np.float32)
            if m > 1:
                x[1, :] = 0.0  # an all-zero row: the epsilon path
            w[:, 0] = 0.0  # an all-zero column
            layer = keras.layers.Dense(n, activation=activation, dtype=policy)
            layer.build((None, k))
            layer.kernel.assign(w)
            layer.bias.assign(b)
            layer.quantize(mode, config=config)
            y = np.asarray(layer(x)).astype(np.float32)
            weight_only = isinstance(config, Int8QuantizationConfig)
            cases.append({"policy": layer.dtype_policy.name, "weight_only": weight_only,
                          "activation": activation or "linear",
                          "m": m, "k": k, "n": n, "w_bits": bits(w), "b_bits": bits(b),
                          "x_bits": bits(x), "y_bits": bits(y)})
    return cases


def main():
    if keras.__version__ != EXPECTED_VERSION:
        sys.exit(f"expected keras=={EXPECTED_VERSION}, found {keras.__version__}")
    data = {
        "keras_version": keras.__version__,
        "ml_dtypes_version": ml_dtypes.__version__,
        "epsilon": keras.config.epsilon(),
        "int8_weights": int8_weights(),
        "int8_inputs": int8_inputs(),
        "int4_weights": int4_weights(),
        "float8": float8(),
        "amax_history": amax_history(),
        "dense_outputs": dense_outputs(),
    }
    with open(OUT, "w") as f:
        json.dump(data, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {os.path.normpath(OUT)}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
# SPDX-License-Identifier: MIT OR Apache-2.0
"""Writes tests/data/keras_quant_reference.json: Keras's quantizers, exactly.

What released Keras 3.15.1 (with ml_dtypes) produces for the host side of
quantized Dense layers: int8 abs-max kernels and scales (per output column)
and activations (per row), int4 per-channel and grouped kernels with Keras's
nibble packing, float8 e4m3fn / e5m2 encodings and decodings, float8
quantize-dequantize, and the amax history with its delayed scale. Then
Dense and EinsumDense layers Keras quantized (float8 calibrated by two
optimizer steps), with their variables as a .keras file stores them and
their outputs, which tests/keras_dense_quantized.rs reproduces on the GPU
from those variables.

Every float32 is stored as its bit pattern (an unsigned integer), so the
Rust tests (tests/keras_quantizers.rs) compare bit for bit.

    python3 -m venv /tmp/keras-env
    /tmp/keras-env/bin/pip install keras==3.15.1 jax ml-dtypes
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


def variable(v):
    """A variable as a .keras file stores it: shape, dtype, values (int8 as
    integers, float32 as bit patterns)."""
    a = np.asarray(v)
    if a.dtype == np.int8:
        return {"shape": list(a.shape), "dtype": "int8", "values": ints(a)}
    return {"shape": list(a.shape), "dtype": "float32", "values": bits(a)}


def quantized_variables(layer, mode):
    """The layer's variables after quantize, by Keras's names (only those it has)."""
    out = {}
    for name in ("_kernel", "bias", "kernel_scale", "kernel_zero", "g_idx", "inputs_scale"):
        v = getattr(layer, name, None)
        if v is None or not hasattr(v, "shape"):
            continue
        out[name.lstrip("_")] = variable(v)
    if mode == "float8":
        # Keras's float8 kernel scale is a scalar variable named kernel_scale too.
        out["kernel_scale"] = variable(layer.kernel_scale)
    return out


def calibrate_float8(layer, k, n, x):
    """Two optimizer steps with a zero learning rate: the first fills the
    amax histories, the second sets the scales (amax / 448); the kernel
    does not move. (A forward with training=True changes nothing.)"""
    model = keras.Sequential([keras.Input((k,)), layer])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.0), loss="mse")
    target = np.zeros((x.shape[0], n), dtype=np.float32)
    for _ in range(2):
        model.train_on_batch(x, target)


def activation_quantized(layer, x):
    """Keras's own quantized activations and scales for `x` (int8 with an
    activation quantizer), in the layer's compute dtype."""
    if not getattr(layer, "inputs_quantizer", None):
        return None
    xc = keras.ops.cast(x, layer.compute_dtype)
    # Dense quantizes over the last axis; EinsumDense over its reduced axes
    # (both heads and head_dim for abcd,cde->abe).
    q, s = layer.inputs_quantizer(xc, axis=getattr(layer, "quantization_axis", -1))
    return {"values": ints(q), "scale_bits": bits(np.asarray(s).astype(np.float32))}


def dense_outputs():
    """Dense layers quantized by Keras (int8, int4 per channel and in groups,
    float8 calibrated, weight-only int8), called on inputs: their variables
    as a .keras file stores them, and the outputs the GPU kernels must
    reproduce from those variables."""
    rng = np.random.default_rng(21)
    cases = []
    modes = [("int8", None), ("int4", Int4QuantizationConfig(block_size=-1)),
             ("int4", Int4QuantizationConfig(block_size=128)), ("int4", Int4QuantizationConfig(block_size=4)),
             ("float8", None), ("int8", Int8QuantizationConfig(activation_quantizer=None))]
    shapes = [((1, 37, 13), None), ((3, 64, 9), "gelu"), ((2, 5, 7), None),
              ((1, 300, 5), "relu"), ((4, 100, 8), "silu")]
    runs = [(mc, p, sa) for mc in modes for p in ("float32", "mixed_bfloat16") for sa in shapes]
    # float8 with float16 compute: Keras rounds its bias to float16 there.
    runs += [(("float8", None), "mixed_float16", sa) for sa in shapes[:3]]
    for (mode, config), policy, ((m, k, n), activation) in runs:
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
        if mode == "float8":
            calibrate_float8(layer, k, n, np.concatenate([x, 2 * x]))
        try:
            y = np.asarray(layer(x)).astype(np.float32)
        except Exception as e:  # noqa: BLE001 - recorded, not hidden
            print(f"skipped {layer.dtype_policy.name} {m}x{k}x{n}: {e}", file=sys.stderr)
            continue
        weight_only = isinstance(config, Int8QuantizationConfig)
        case = {"policy": layer.dtype_policy.name, "mode": mode, "weight_only": weight_only,
                "activation": activation or "linear",
                "m": m, "k": k, "n": n, "w_bits": bits(w), "b_bits": bits(b),
                "x_bits": bits(x), "y_bits": bits(y),
                "variables": quantized_variables(layer, mode)}
        if mode == "int8":
            quantized = activation_quantized(layer, x)
            if quantized is not None:
                case["inputs_quantized"] = quantized
        cases.append(case)
    return cases


def einsum_outputs():
    """MultiHeadAttention's EinsumDense projections quantized by Keras: the
    query/key/value form (abc,cde->abde, kernel [in, heads, head_dim]) and
    the output form (abcd,cde->abe, kernel [heads, head_dim, out]), int8 and
    int4 (per channel and grouped), under float32 and mixed_bfloat16."""
    rng = np.random.default_rng(31)
    heads, head_dim, k_in, out, seq = 3, 5, 37, 7, 2
    cases = []
    forms = [("abc,cde->abde", (None, heads, head_dim), "de", (1, seq, k_in), (k_in, heads, head_dim)),
             ("abcd,cde->abe", (None, out), "e", (1, seq, heads, head_dim), (heads, head_dim, out))]
    modes = [("int8", None), ("int4", Int4QuantizationConfig(block_size=-1)),
             ("int4", Int4QuantizationConfig(block_size=4))]
    for (equation, output_shape, bias_axes, x_shape, kernel_shape) in forms:
        for (mode, config) in modes:
            for policy in ("float32", "mixed_bfloat16"):
                layer = keras.layers.EinsumDense(equation, output_shape=output_shape, bias_axes=bias_axes,
                                                 dtype=policy)
                layer.build(x_shape)
                w = (rng.standard_normal(kernel_shape) * 0.2).astype(np.float32)
                b = (rng.standard_normal(layer.bias.shape) * 0.1).astype(np.float32)
                layer.kernel.assign(w)
                layer.bias.assign(b)
                layer.quantize(mode, config=config)
                x = rng.standard_normal(x_shape).astype(np.float32)
                y = np.asarray(layer(x)).astype(np.float32)
                case = {"equation": equation, "policy": layer.dtype_policy.name, "mode": mode,
                        "heads": heads, "head_dim": head_dim, "m": seq,
                        "k": int(np.prod(x_shape[2:])), "n": int(np.prod(y.shape[2:])),
                        "x_bits": bits(x), "y_bits": bits(y), "variables": quantized_variables(layer, mode)}
                if mode == "int8":
                    quantized = activation_quantized(layer, x)
                    if quantized is not None:
                        case["inputs_quantized"] = quantized
                cases.append(case)
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
        "einsum_outputs": einsum_outputs(),
    }
    with open(OUT, "w") as f:
        json.dump(data, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {os.path.normpath(OUT)}")


if __name__ == "__main__":
    main()

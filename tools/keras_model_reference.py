#!/usr/bin/env python3
# SPDX-License-Identifier: MIT OR Apache-2.0
"""Writes tests/data/models/: small Keras-made models as .keras files, with
inputs and Keras's own outputs, for tests/keras_models.rs.

Models (random weights, fixed seeds):
- mlp: a Sequential MLP (Dense with activations, one without a bias,
  LayerNormalization, Dropout, an Activation layer);
- attention_cross: a MultiHeadAttention of a query, a value and a key of
  their own (`key=`), under float32 and mixed_bfloat16;
- encoder, encoder_causal, encoder_masked: a Functional transformer
  encoder block (MultiHeadAttention, Add, LayerNormalization, Dense FFN),
  without a mask, with `use_causal_mask=True`, and with an
  `attention_mask` given as a second input; encoder_dropout(_masked):
  the causal and masked blocks with MultiHeadAttention(dropout=0.1), which
  Keras computes on its explicit path (float policies);
- embedder: int32 ids through an Embedding, a Reshape that changes the
  row length, a Dense and a Softmax with a mask (a second input), with the
  embeddings as a second output (int8 and int4 only: Keras has no float8
  Embedding);
- rms: a Sequential with RMSNormalization between two Dense layers;
- activations: the element-wise Keras activations beyond the mlp's, one
  Activation layer (and one model output) each, float policies only;
- einsum: stand-alone EinsumDense layers ('abc,cde->abde',
  'abcd,cde->abe' with an activation, 'abc,cd->abd') and a Multiply.

Each model is saved under float32, mixed_float16 and mixed_bfloat16, and
after Keras's own `quantize("int8")`, `quantize("int4")` and
`quantize("float8")` of the float32 and mixed_bfloat16 models (float8
scales calibrated by two optimizer steps with a zero learning rate, which
move no weight). `<model>.json` holds, per file: the policy, the inputs
and Keras's outputs (every float32 as its bit pattern), and the output of
each layer (a Sequential's) for diagnosis.

    python3 -m venv /tmp/keras-env
    /tmp/keras-env/bin/pip install keras==3.15.1 jax ml-dtypes h5py
    KERAS_BACKEND=jax /tmp/keras-env/bin/python tools/keras_model_reference.py [model ...]
"""
import json
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "jax")
import keras  # noqa: E402
import numpy as np  # noqa: E402

EXPECTED_VERSION = "3.15.1"
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "models")
SEQ, DIM, HEADS, KEY_DIM, FFN = 6, 16, 2, 8, 32


def bits(a):
    return np.asarray(a, dtype=np.float32).reshape(-1).view(np.uint32).tolist()


def tensor(a):
    a = np.asarray(a)
    return {"shape": list(a.shape), "bits": bits(a.astype(np.float32))}


def rms():
    """RMSNormalization between two Dense layers (a Keras core layer since
    3.9; Llama's and Gemma's norms are its relatives)."""
    keras.utils.set_random_seed(8)
    model = keras.Sequential([
        keras.Input((DIM,)),
        keras.layers.Dense(FFN, activation="silu"),
        keras.layers.RMSNormalization(epsilon=1e-5),
        keras.layers.Dense(8),
    ])
    randomize(model, 17)
    return model


def mlp():
    keras.utils.set_random_seed(1)
    model = keras.Sequential([
        keras.Input((DIM,)),
        keras.layers.Dense(FFN, activation="gelu"),
        keras.layers.LayerNormalization(),
        keras.layers.Dense(24, activation="relu", use_bias=False),
        keras.layers.Dropout(0.25),
        keras.layers.Dense(12),
        keras.layers.Activation("tanh"),
        keras.layers.Dense(8, activation="silu"),
    ])
    randomize(model, 11)
    return model


def encoder(mask, dropout=0.0):
    keras.utils.set_random_seed(2)
    x = keras.Input((SEQ, DIM), name="tokens")
    inputs = [x]
    kwargs = {}
    if mask == "causal":
        kwargs["use_causal_mask"] = True
    elif mask == "given":
        m = keras.Input((SEQ, SEQ), name="attention_mask", dtype="bool")
        inputs.append(m)
        kwargs["attention_mask"] = m
    attention = keras.layers.MultiHeadAttention(num_heads=HEADS, key_dim=KEY_DIM,
                                                dropout=dropout)(x, x, **kwargs)
    h = keras.layers.LayerNormalization(epsilon=1e-5)(keras.layers.Add()([x, attention]))
    f = keras.layers.Dense(FFN, activation="gelu")(h)
    f = keras.layers.Dense(DIM)(keras.layers.Dropout(0.1)(f))
    y = keras.layers.LayerNormalization(epsilon=1e-5)(keras.layers.Add()([h, f]))
    model = keras.Model(inputs, y, name=f"encoder_{mask}" + ("_dropout" if dropout else ""))
    randomize(model, 12)
    return model


def cross():
    """Cross-attention: a query, a value and a separate key of their own
    lengths and widths (key=... given). (Keras on jax needs value_dim ==
    key_dim: jax.nn.dot_product_attention takes one head size.)"""
    keras.utils.set_random_seed(4)
    q = keras.Input((SEQ, DIM), name="query")
    v = keras.Input((5, 12), name="value")
    k = keras.Input((5, 10), name="key")
    y = keras.layers.MultiHeadAttention(num_heads=HEADS, key_dim=KEY_DIM)(q, v, key=k)
    model = keras.Model([q, v, k], y, name="cross")
    randomize(model, 13)
    return model


VOCAB = 37


def embedder():
    """Ids through an Embedding, a Reshape that changes the row length, a
    Dense and a masked Softmax; the embeddings are a second output."""
    keras.utils.set_random_seed(5)
    ids = keras.Input((SEQ,), name="ids", dtype="int32")
    m = keras.Input((2 * SEQ, 5), name="softmax_mask", dtype="bool")
    e = keras.layers.Embedding(VOCAB, DIM)(ids)
    r = keras.layers.Reshape((-1, DIM // 2))(e)
    s = keras.layers.Dense(5)(r)
    y = keras.layers.Softmax()(s, mask=m)
    model = keras.Model([ids, m], [y, e], name="embedder")
    randomize(model, 14)
    return model


def einsum():
    """Stand-alone EinsumDense layers in MultiHeadAttention's equations
    and a Dense-like one, and a Multiply of two branches."""
    keras.utils.set_random_seed(6)
    x = keras.Input((SEQ, DIM), name="tokens")
    heads = keras.layers.EinsumDense("abc,cde->abde", output_shape=(None, HEADS, 8),
                                     bias_axes="de")(x)
    merged = keras.layers.EinsumDense("abcd,cde->abe", output_shape=(None, 12),
                                      bias_axes="e", activation="relu")(heads)
    a = keras.layers.EinsumDense("abc,cd->abd", output_shape=(None, 5), bias_axes="d")(merged)
    b = keras.layers.Dense(5, activation="sigmoid")(merged)
    y = keras.layers.Multiply()([a, b])
    model = keras.Model(x, y, name="einsum")
    randomize(model, 15)
    return model


ACTIVATIONS = ["elu", "selu", "celu", "softplus", "softsign", "relu6", "leaky_relu",
               "hard_sigmoid", "hard_silu", "hard_tanh", "exponential", "mish",
               "log_sigmoid", "tanh_shrink", "squareplus", "sparse_plus", "hard_shrink",
               "soft_shrink", "swish"]


def activations():
    """Every element-wise Keras activation the kernels apply beyond the
    mlp's, each as an Activation layer on one Dense output (one model output
    each), and one as a Dense's `activation=`."""
    keras.utils.set_random_seed(7)
    x = keras.Input((DIM,), name="x")
    h = keras.layers.Dense(24)(x)
    # exponential on the model's input: its condition number is |x|, so
    # on a Dense output one bf16 rounding of h (which XLA's sums may place
    # the other way) would move it by |h| ulps.
    outputs = [keras.layers.Activation(a)(x if a == "exponential" else h) for a in ACTIVATIONS]
    outputs.append(keras.layers.Dense(8, activation="mish")(h))
    # softmax, which is not element-wise: as activation= and as a layer.
    outputs.append(keras.layers.Dense(8, activation="softmax")(h))
    outputs.append(keras.layers.Activation("softmax")(h))
    model = keras.Model(x, outputs, name="activations")
    randomize(model, 16)
    return model


MODELS = {
    "mlp": mlp,
    "encoder": lambda: encoder(None),
    "encoder_causal": lambda: encoder("causal"),
    "encoder_masked": lambda: encoder("given"),
    # dropout > 0: Keras's explicit attention path (identity dropout at
    # inference), causal and with a given mask.
    "encoder_dropout": lambda: encoder("causal", 0.1),
    "encoder_dropout_masked": lambda: encoder("given", 0.1),
    "attention_cross": cross,
    "embedder": embedder,
    "einsum": einsum,
    "activations": activations,
    "rms": rms,
}


def randomize(model, seed):
    """Biases, gammas and betas away from their zero/one initial values,
    so that a dropped bias or a dropped scale changes the outputs."""
    rng = np.random.default_rng(seed)
    for v in model.weights:
        name = v.path.split("/")[-1]
        noise = rng.standard_normal(v.shape).astype(np.float32)
        if name in ("bias", "beta"):
            v.assign(0.2 * noise)
        elif name == "gamma":
            v.assign(1.0 + 0.3 * noise)
        elif name == "scale":
            v.assign(1.0 + 0.3 * noise)
        elif name == "embeddings":
            # Keras's uniform(-0.05, 0.05) would leave the Dense after it
            # too little to do for a dropped term to show.
            v.assign(noise)


def inputs_for(name):
    rng = np.random.default_rng(3)
    if name in ("mlp", "rms"):
        x = rng.standard_normal((5, DIM)).astype(np.float32)
        x[1] = 0.0  # an all-zero row
        return [x]
    if name == "activations":
        # Wide enough to reach every branch (|x| > 1, > 3, > 6; near 0).
        x = 3.0 * rng.standard_normal((5, DIM)).astype(np.float32)
        x[1] = 1e-4 * rng.standard_normal(DIM)
        return [x]
    if name == "embedder":
        ids = rng.integers(0, VOCAB, (3, SEQ)).astype(np.int32)
        ids[0, 0], ids[2, 5] = 0, VOCAB - 1
        mask = rng.random((3, 2 * SEQ, 5)) > 0.3
        mask[1, 4, :] = False  # a fully masked row: Keras gives zeros
        return [ids, mask]
    x = rng.standard_normal((2, SEQ, DIM)).astype(np.float32)
    if name == "attention_cross":
        return [x, rng.standard_normal((2, 5, 12)).astype(np.float32),
                rng.standard_normal((2, 5, 10)).astype(np.float32)]
    if name in ("encoder_masked", "encoder_dropout_masked"):
        # Each sequence attends to its first tokens only (padding), one row
        # of the second attends to nothing: Keras's softmax then gives it
        # uniform weights.
        mask = np.zeros((2, SEQ, SEQ), dtype=bool)
        mask[0, :, :4] = True
        mask[1, :, :2] = True
        mask[1, 3, :] = False
        return [x, mask]
    return [x]


def calibrate(model, inputs):
    """Two optimizer steps with a zero learning rate: the first fills the
    float8 amax histories, the second sets the scales; no weight moves."""
    y = model(inputs)
    target = [np.zeros(np.shape(o), np.float32) for o in y] if isinstance(y, (list, tuple)) else np.zeros(np.shape(y), np.float32)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.0), loss="mse")
    for _ in range(2):
        model.train_on_batch(inputs, target)


def layer_outputs(model, inputs):
    """Each layer's output (Sequential only): where a difference starts."""
    if not isinstance(model, keras.Sequential):
        return []
    out, h = [], inputs[0]
    for layer in model.layers:
        h = layer(h)
        out.append({"path": layer.path, "output": tensor(h)})
    return out


def save_case(name, tag, model, inputs, cases):
    file = f"{name}__{tag}.keras"
    model.save(os.path.join(OUT, file))
    # Called directly: predict of mixed_float16 attention fails on jax's CPU.
    y = model(inputs if len(inputs) > 1 else inputs[0], training=False)
    cases.append({
        "file": file,
        "policy": tag,
        "inputs": [tensor(x) if x.dtype != bool else {"shape": list(x.shape), "bool": x.reshape(-1).astype(int).tolist()} for x in inputs],
        "outputs": [tensor(o) for o in (y if isinstance(y, (list, tuple)) else [y])],
        "layers": layer_outputs(model, inputs),
    })


def main():
    if keras.__version__ != EXPECTED_VERSION:
        sys.exit(f"keras {keras.__version__}: this script records Keras {EXPECTED_VERSION}")
    os.makedirs(OUT, exist_ok=True)
    chosen = sys.argv[1:] or list(MODELS)
    for name, build in MODELS.items():
        if name not in chosen:
            continue
        inputs = inputs_for(name)
        feed = inputs if len(inputs) > 1 else inputs[0]
        cases = []
        policies = ("float32", "mixed_float16", "mixed_bfloat16")
        if name == "attention_cross":
            policies = ("float32", "mixed_bfloat16")
        if name == "encoder_masked":
            policies = ("float32",)
        if name.startswith("encoder_dropout"):
            policies = ("float32", "mixed_float16", "mixed_bfloat16")
        for policy in policies:
            keras.config.set_dtype_policy(policy)
            save_case(name, policy, build(), inputs, cases)
            if policy == "mixed_float16" or name in ("encoder_masked", "attention_cross", "activations") \
                    or name.startswith("encoder_dropout"):
                continue
            # The embedder's float8 is its one Dense (float8 Dense is covered
            # above; Keras's training step does not take its masked output).
            modes = ("int8", "int4") if name == "embedder" else ("int8", "int4", "float8")
            for mode in modes:
                model = build()
                model.quantize(mode)
                if mode == "float8":
                    calibrate(model, feed)
                save_case(name, f"{mode}_from_{policy}", model, inputs, cases)
        keras.config.set_dtype_policy("float32")
        with open(os.path.join(OUT, f"{name}.json"), "w") as f:
            json.dump({"keras_version": keras.__version__, "model": name, "cases": cases}, f)
        print(f"{name}: {len(cases)} files")


if __name__ == "__main__":
    main()

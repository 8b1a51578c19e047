#!/usr/bin/env python3
# SPDX-License-Identifier: MIT OR Apache-2.0
"""Checks that Keras 3.15.1 loads the .keras files this crate writes
(tests/data/models/saved/, written by tests/keras_save.rs) and that each
gives what Keras itself gives for the same model: the fixture it came from,
quantized by Keras's own `Model.quantize` with the same mode and filter,
called on the fixture's inputs. Variables and outputs must be equal bit for
bit. Writes tests/data/models/saved/keras_check.json, which
tests/keras_save.rs reads.

    KERAS_BACKEND=jax /tmp/keras-env/bin/python tools/keras_load_check.py
"""
import glob
import json
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "jax")
import keras  # noqa: E402
import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = os.path.join(HERE, "..", "tests", "data", "models")
SAVED = os.path.join(MODELS, "saved")


def inputs_of(fixture):
    """The inputs recorded for `fixture` (`mlp__float32`) in <model>.json."""
    model = fixture.split("__")[0]
    with open(os.path.join(MODELS, f"{model}.json")) as f:
        cases = json.load(f)["cases"]
    case = next(c for c in cases if c["file"] == f"{fixture}.keras")
    out = []
    for t in case["inputs"]:
        if "bool" in t:
            out.append(np.array(t["bool"], dtype=bool).reshape(t["shape"]))
        else:
            v = np.array(t["bits"], dtype=np.uint32).view(np.float32).reshape(t["shape"])
            out.append(v)
    return out


def call(model, inputs):
    # Ids go in as Keras's int32, as the fixture script gave them.
    feed = [x.astype(np.int32) if model.inputs[i].dtype == "int32" else x
            for i, x in enumerate(inputs)]
    y = model(feed if len(feed) > 1 else feed[0], training=False)
    return [np.asarray(o, dtype=np.float32) for o in (y if isinstance(y, (list, tuple)) else [y])]


def main():
    if keras.__version__ != "3.15.1":
        sys.exit(f"keras {keras.__version__}: this script checks against Keras 3.15.1")
    results = []
    for path in sorted(glob.glob(os.path.join(SAVED, "*.keras"))):
        name = os.path.basename(path)
        stem = name[: -len(".keras")]
        fixture, mode = stem.rsplit("__", 1)
        filters = None
        if mode.endswith("_dense_only"):
            mode, filters = mode[: -len("_dense_only")], "^dense"
        reference = keras.saving.load_model(os.path.join(MODELS, f"{fixture}.keras"))
        if mode != "none":
            reference.quantize(mode, filters=filters)
        ours = keras.saving.load_model(path)
        inputs = inputs_of(fixture)
        a, b = call(reference, inputs), call(ours, inputs)
        outputs_equal = len(a) == len(b) and all(
            x.shape == y.shape and np.array_equal(x.view(np.uint32), y.view(np.uint32))
            for x, y in zip(a, b))
        # By path: a model quantized in memory lists a layer's new
        # variables after its old ones, a loaded one in build order.
        va = {v.path: np.asarray(v) for v in reference.weights}
        vb = {v.path: np.asarray(v) for v in ours.weights}
        variables_equal = va.keys() == vb.keys() and all(
            va[p].shape == vb[p].shape and va[p].dtype == vb[p].dtype
            and np.array_equal(va[p], vb[p]) for p in va)
        policies = [l.dtype_policy.name for l in ours.layers]
        reference_policies = [l.dtype_policy.name for l in reference.layers]
        results.append({
            "file": name,
            "outputs_equal": bool(outputs_equal),
            "variables_equal": bool(variables_equal),
            "policies_equal": policies == reference_policies,
            "policies": policies,
        })
        print(name, results[-1])
    with open(os.path.join(SAVED, "keras_check.json"), "w") as f:
        json.dump({"keras_version": keras.__version__, "files": results}, f, indent=1)


if __name__ == "__main__":
    main()

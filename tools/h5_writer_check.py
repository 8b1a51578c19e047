#!/usr/bin/env python3
# SPDX-License-Identifier: MIT OR Apache-2.0
"""Checks that h5py and Keras read what this crate's HDF5 writer
(`WeightsFile::to_bytes`) writes, and records what they read in
tests/data/h5_written.json for tests/h5_writer.rs.

`cargo test --test h5_writer` leaves the files it wrote in
target/tmp/h5_written/ (its test of this record fails until the record
matches them):
- `<case>.h5`: hand-built files (every dtype, scalars, empty shapes, long
  and nested names, a group of 300 links). For each, h5py's view is
  recorded: every group's attributes, every dataset's numpy dtype, shape,
  bytes (hex) and attributes (`[dtype, shape, hex, attrs]`), and what
  Keras's own `H5IOStore` reads from each `vars` group (`[dtype, same]`:
  its dtype after Keras's bfloat16 conversion, and whether its shape and
  bytes are h5py's);
- `fixtures/<name>.weights.h5`: a fixture's weights read and rewritten by
  the crate. Each is loaded by Keras in place of the original (a `.keras`
  archive with its `model.weights.h5` replaced, through
  `keras.saving.load_model`; a bare weights file through `load_weights`
  into the model tools/h5_oracle.py made it from), run on the fixture's
  inputs (tests/data/models/<model>.json; random ones for a bare file)
  beside the original loaded here, and the outputs compared bit for bit
  (against the original, not the outputs recorded in the json: this
  machine's float32 outputs differ from those by an ulp here and there).

Every file's size and FNV-1a hash are recorded, so the Rust test can
check that the writer still writes the bytes checked here. Exits 1 if a
Keras comparison fails.

    KERAS_BACKEND=jax /work/kvenv/bin/python tools/h5_writer_check.py [dir]
"""
import json
import os
import sys
import tempfile
import zipfile

os.environ.setdefault("KERAS_BACKEND", "jax")
import h5py  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras.src.saving.saving_lib import H5IOStore  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
DATA = os.path.join(ROOT, "tests", "data")
OUT = os.path.join(DATA, "h5_written.json")


def fnv1a64(data):
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def attrs(obj):
    """Attributes, each as {type name: value} (strings as h5py returns them)."""
    out = {}
    for k, v in obj.attrs.items():
        out[k] = {"str": v} if isinstance(v, str) else {type(v).__name__: repr(v)}
    return out


def h5py_view(path):
    """Every group and dataset of a file, as h5py reads it."""
    groups, datasets = {}, {}
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            if isinstance(obj, h5py.Group):
                groups[name] = attrs(obj)
            else:
                a = obj[()]
                # A list, not a dict: the record of 300 of them stays small.
                datasets[name] = [
                    str(obj.dtype),
                    list(obj.shape),
                    np.ascontiguousarray(a).tobytes().hex(),
                    attrs(obj),
                ]
        f.visititems(visit)
        vars_groups = [n[: -len("/vars")] for n in groups if n.endswith("/vars")]
    keras_view = {}
    store = H5IOStore(path, mode="r")
    try:
        for layer in vars_groups:
            entry = store.get(layer)
            keras_view[layer] = []
            for i in range(len(entry)):
                v, (_, shape, data, _) = entry[str(i)], datasets[f"{layer}/vars/{i}"]
                same = list(v.shape) == shape
                same &= np.ascontiguousarray(v).tobytes().hex() == data
                keras_view[layer].append([keras.backend.standardize_dtype(v.dtype), bool(same)])
    finally:
        store.close()
    return {"groups": groups, "datasets": datasets, "keras": keras_view}


def compact(value):
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def tensor(t):
    bits = np.asarray(t["bits"], dtype=np.uint32).view(np.float32)
    return bits.reshape(t["shape"])


def outputs(model, inputs):
    out = model(inputs if len(inputs) > 1 else inputs[0], training=False)
    out = out if isinstance(out, (list, tuple)) else [out]
    return [np.asarray(o, dtype=np.float32) for o in out]


def same(a, b):
    return len(a) == len(b) and all(
        x.shape == y.shape and np.array_equal(x.view(np.uint32), y.view(np.uint32))
        for x, y in zip(a, b)
    )


def keras_archive_check(fixture, weights):
    """Loads `fixture` and a copy whose weights are `weights`; compares them
    on the fixture's recorded inputs. Returns (outputs equal, cases)."""
    model_name = fixture.split("__")[0]
    with open(os.path.join(DATA, "models", model_name + ".json")) as f:
        cases = [c for c in json.load(f)["cases"] if c["file"] == fixture]
    src = os.path.join(DATA, "models", fixture)
    with tempfile.TemporaryDirectory() as tmp:
        copy = os.path.join(tmp, fixture)
        with zipfile.ZipFile(src) as zin, zipfile.ZipFile(copy, "w") as zout:
            for item in zin.infolist():
                data = weights if item.filename == "model.weights.h5" else zin.read(item)
                zout.writestr(item, data)
        original = keras.saving.load_model(src, compile=False)
        rewritten = keras.saving.load_model(copy, compile=False)
    equal = True
    for case in cases:
        inputs = [tensor(t) for t in case["inputs"]]
        equal &= same(outputs(rewritten, inputs), outputs(original, inputs))
    return equal, len(cases)


def keras_weights_check(name, path):
    """A bare weights file of tools/h5_oracle.py's model: the original and
    ours loaded with `load_weights`, compared on random inputs."""
    dtype = name.split(".")[0]

    def model():
        m = keras.Sequential([
            keras.Input((3,)),
            keras.layers.Dense(4, dtype=dtype),
            keras.layers.LayerNormalization(dtype=dtype),
            keras.layers.Dense(2, dtype=dtype),
        ])
        m(np.zeros((1, 3), "float32"))
        return m

    original, rewritten = model(), model()
    original.load_weights(os.path.join(DATA, "h5", name))
    rewritten.load_weights(path)
    x = np.random.default_rng(0).normal(size=(8, 3)).astype("float32")
    a, b = outputs(original, [x]), outputs(rewritten, [x])
    return same(a, b) and not same(a, outputs(model(), [x])), 1


def main():
    written = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target", "tmp", "h5_written")
    record = {
        "h5py": h5py.version.version,
        "hdf5": h5py.version.hdf5_version,
        "keras": keras.__version__,
        "files": {},
        "keras_loads": {},
    }
    for name in sorted(os.listdir(written)):
        path = os.path.join(written, name)
        if not name.endswith(".h5"):
            continue
        data = open(path, "rb").read()
        record["files"][name] = {"size": len(data), "fnv1a64": fnv1a64(data), **h5py_view(path)}
        print(f"{name}: {len(data)} bytes, {len(record['files'][name]['datasets'])} datasets")
    failed = []
    fixtures = os.path.join(written, "fixtures")
    for name in sorted(os.listdir(fixtures)):
        path = os.path.join(fixtures, name)
        data = open(path, "rb").read()
        h5py_view(path)  # h5py and H5IOStore read every group and dataset
        if os.path.exists(os.path.join(DATA, "h5", name)):
            equal, compared = keras_weights_check(name, path)
        else:
            equal, compared = keras_archive_check(name.replace(".weights.h5", ".keras"), data)
        record["keras_loads"][name] = {
            "size": len(data),
            "fnv1a64": fnv1a64(data),
            "outputs_equal": bool(equal),
            "compared": compared,
        }
        print(f"{name}: {len(data)} bytes, {compared} cases, outputs equal: {equal}")
        if not equal:
            failed.append(name)
    with open(OUT, "w") as f:
        # One line a file: the record stays small.
        f.write("{\n")
        items = [(k, record[k]) for k in sorted(record)]
        for n, (key, value) in enumerate(items):
            if isinstance(value, dict):
                f.write(f" {json.dumps(key)}: {{\n")
                rows = [f"  {json.dumps(k)}: {compact(v)}" for k, v in sorted(value.items())]
                f.write(",\n".join(rows) + "\n }")
            else:
                f.write(f" {json.dumps(key)}: {compact(value)}")
            f.write(",\n" if n + 1 < len(items) else "\n}\n")
        f.write("\n")
    print(f"wrote {os.path.relpath(OUT, ROOT)}")
    if failed:
        print("Keras's outputs differ for", ", ".join(failed))
        sys.exit(1)


if __name__ == "__main__":
    main()

# SPDX-License-Identifier: MIT OR Apache-2.0
"""The oracle for tests/h5_reader.rs: what h5py reads from each weights file.

    KERAS_BACKEND=jax python tools/h5_oracle.py [--fixtures]

--fixtures first (re)writes the small files of tests/data/h5/: Keras models
saved in bfloat16 and float16, h5py files of many links (a B-tree of
two levels) and of unusual dtypes and layouts, and hostile files
patched by hand (a dataset never written, datatypes nested thousands deep,
cycles). Then, for every tests/data/models/*.keras and every
tests/data/h5/*.h5 that h5py reads, it writes tests/data/h5_oracle.json:
for each `vars` group under `layers`, its path, `name` attribute, and per
variable its shape, dtype and checksums (exact sum, sum of magnitudes, the
first 3 values).
"""

import glob
import io
import json
import math
import os
import struct
import sys
import zipfile

import h5py
import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
DATA = os.path.join(ROOT, "tests", "data")
H5 = os.path.join(DATA, "h5")
# The files that must be refused (or read as an unsupported dtype).
HOSTILE = [
    "unwritten.h5",
    "nested_compound.h5",
    "nested_vlen.h5",
    "btree_cycle.h5",
    "continuation_cycle.h5",
    "group_loop.h5",
]


def keras_weights(dtype, path):
    """A small model's model.weights.h5 with every layer in `dtype`."""
    os.environ.setdefault("KERAS_BACKEND", "jax")
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((3,)),
            keras.layers.Dense(4, dtype=dtype),
            keras.layers.LayerNormalization(dtype=dtype),
            keras.layers.Dense(2, dtype=dtype),
        ]
    )
    model(np.zeros((1, 3), "float32"))
    model.save_weights(path)  # `path` ends in .weights.h5, as Keras wants


def keras_like(f, path, arrays, name):
    """A Keras-style `vars` group at `path` holding `arrays` as 0, 1, ..."""
    g = f.create_group(path + "/vars")
    g.attrs["name"] = name
    for i, a in enumerate(arrays):
        g.create_dataset(str(i), data=a)
    return g


def many_links(path, count=150):
    """A `vars` group of `count` variables, enough for its B-tree to split
    into two levels (a node holds 32 symbol-table nodes of at most 8 links).
    All but the first are hard links to one scalar, which keeps the file
    small; the `name` is a fixed-length string, which needs no global heap."""
    with h5py.File(path, "w") as f:
        g = f.create_group("layers/wide/vars")
        g.attrs["name"] = np.bytes_(b"wide")
        g.create_dataset("0", data=np.arange(4, dtype="float32").reshape(2, 2))
        g.create_dataset("1", data=np.float32(0.5))
        for i in range(2, count):
            g[str(i)] = g["1"]
    b = open(path, "rb").read()
    with h5py.File(path, "r") as f:
        tree, _ = symbol_table(b, f, "layers/wide/vars")
    assert b[tree : tree + 4] == b"TREE" and b[tree + 5] >= 1, "the B-tree did not split"


def dtypes(path):
    """float64, int8, int32 (unsupported), big-endian float32, a scalar, an
    empty array, compact storage, a fixed-length string attribute, nesting."""
    with h5py.File(path, "w") as f:
        keras_like(
            f,
            "layers/mixed",
            [
                np.arange(6, dtype="float64").reshape(2, 3) / 7,
                np.arange(-4, 4, dtype="int8"),
                np.array([1, 2, 3], dtype="int32"),
                np.array([1.5, -2.25, 3.0], dtype=">f4"),
                np.float32(0.125),
                np.zeros((0, 3), "float32"),
            ],
            "mixed",
        )
        g = f.create_group("layers/mha/query_dense/vars")
        g.attrs["name"] = np.bytes_(b"query")
        space = h5py.h5s.create_simple((3,))
        dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        dcpl.set_layout(h5py.h5d.COMPACT)
        ds = h5py.h5d.create(g.id, b"0", h5py.h5t.IEEE_F32LE, space, dcpl=dcpl)
        ds.write(h5py.h5s.ALL, h5py.h5s.ALL, np.array([0.5, 1.5, 2.5], "float32"))
        f.create_dataset("optimizer/vars/0", data=np.int64(7))


def headers(b, addr):
    """The messages of the version 1 object header at `addr`, continuations
    followed: (offset of the message's header, type, size)."""
    chunks, out = [(addr + 16, struct.unpack_from("<I", b, addr + 8)[0])], []
    for start, size in chunks:
        p = start
        while p + 8 <= start + size:
            t, s = struct.unpack_from("<HH", b, p)
            out.append((p, t, s))
            if t == 0x10:
                chunks.append(struct.unpack_from("<QQ", b, p + 8))
            p += 8 + s
    return out


def relocate_datatype(b, header, chunk):
    """Replaces the datatype message of `header` by a continuation to a new
    chunk at the end of the file; `chunk(addr)` gives its bytes."""
    while len(b) % 8:
        b.append(0)
    addr = len(b)
    body = chunk(addr)
    (p, _, _), = [m for m in headers(b, header) if m[1] == 3]
    struct.pack_into("<HHB3xQQ", b, p, 0x10, 16, 0, addr, len(body))
    b += body
    struct.pack_into("<Q", b, 40, len(b))  # the superblock's end of file


def message(kind, payload):
    payload += bytes(-len(payload) % 8)
    return struct.pack("<HHB3x", kind, len(payload), 0) + payload


F32 = bytes([0x11, 0x20, 0x1F, 0]) + struct.pack("<IHHBBBBI", 4, 0, 32, 23, 8, 0, 23, 127)


def hostile(path, patch):
    """A one-variable Keras-style file patched by `patch(bytes, file)`."""
    with h5py.File(path, "w") as f:
        f.create_group("layers/dense/vars").create_dataset("0", data=np.arange(4, dtype="float32"))
    b = bytearray(open(path, "rb").read())
    with h5py.File(path, "r") as f:
        patch(b, f)
    open(path, "wb").write(b)


def addr_of(f, name):
    return h5py.h5o.get_info(f[name].id).addr


def symbol_table(b, f, name):
    """(B-tree address, local heap address) of group `name`."""
    (p, _, _), = [m for m in headers(b, addr_of(f, name)) if m[1] == 0x11]
    return struct.unpack_from("<QQ", b, p + 8)


def write_fixtures():
    os.makedirs(H5, exist_ok=True)
    keras_weights("bfloat16", os.path.join(H5, "bfloat16.weights.h5"))
    keras_weights("float16", os.path.join(H5, "float16.weights.h5"))
    many_links(os.path.join(H5, "btree.weights.h5"))
    dtypes(os.path.join(H5, "dtypes.weights.h5"))
    with h5py.File(os.path.join(H5, "unwritten.h5"), "w") as f:
        f.create_group("layers/dense/vars").create_dataset("0", shape=(1 << 40,), dtype="float32")
    var = "layers/dense/vars/0"

    def compound(b, f):
        # A 4-byte compound of one member, itself such a compound, ... 900
        # deep; each level declares 65535 members.
        level = bytes([0x36, 0xFF, 0xFF, 0]) + struct.pack("<I", 4) + b"a\x00\x00"
        relocate_datatype(b, addr_of(f, var), lambda _: message(3, level * 900 + F32))

    def vlen(b, f):
        # A variable-length sequence of one, of one, ... 1200 deep.
        level = bytes([0x19, 0, 0, 0]) + struct.pack("<I", 4)
        relocate_datatype(b, addr_of(f, var), lambda _: message(3, level * 1200 + F32))

    def continuation_cycle(b, f):
        # The new chunk continues to itself.
        body = message(3, F32)
        size = len(body) + 24  # and the continuation's own 8 + 16 bytes
        relocate_datatype(b, addr_of(f, var), lambda at: body + message(0x10, struct.pack("<QQ", at, size)))

    def btree_cycle(b, f):
        # The root group's B-tree node made an inner node whose child is itself.
        tree, _ = symbol_table(b, f, "/")
        assert b[tree : tree + 4] == b"TREE"
        b[tree + 5] = 1
        struct.pack_into("<Q", b, tree + 32, tree)

    def group_loop(b, f):
        # layers/dense linked to the root group instead.
        tree, _ = symbol_table(b, f, "layers")
        snod = struct.unpack_from("<Q", b, tree + 32)[0]
        assert b[snod : snod + 4] == b"SNOD"
        struct.pack_into("<Q", b, snod + 8 + 8, addr_of(f, "/"))

    for name, patch in [
        ("nested_compound.h5", compound),
        ("nested_vlen.h5", vlen),
        ("continuation_cycle.h5", continuation_cycle),
        ("btree_cycle.h5", btree_cycle),
        ("group_loop.h5", group_loop),
    ]:
        hostile(os.path.join(H5, name), patch)


def variable(ds):
    """One variable's oracle entry."""
    a = np.asarray(ds[()])
    dtype = ds.dtype.newbyteorder("=").name  # big-endian ones are read converted
    if ds.dtype.kind == "V" and ds.dtype.itemsize == 2 and ds.attrs.get("dtype") == "bfloat16":
        a, dtype = (a.view("<u2").astype("<u4") << 16).view("<f4"), "bfloat16"
    entry = {"shape": list(ds.shape), "dtype": dtype}
    if dtype in ("float16", "float32", "float64", "bfloat16", "int8"):
        flat = [float(x) for x in a.astype("float64").ravel()]
        entry["sum"] = math.fsum(flat)
        entry["abs_sum"] = math.fsum(abs(x) for x in flat)
        entry["first"] = flat[:3]
    return entry


def oracle(data):
    """The `vars` groups under `layers` of the HDF5 file `data`."""
    out = {}
    with h5py.File(io.BytesIO(data), "r") as f:
        if "layers" not in f:
            return out

        def walk(group, path):
            for key, child in group.items():
                if not isinstance(child, h5py.Group):
                    continue
                if key == "vars":
                    name = child.attrs.get("name")
                    if isinstance(name, bytes):
                        name = name.decode()
                    sets = sorted((int(k), v) for k, v in child.items() if isinstance(v, h5py.Dataset))
                    out[path] = {"name": name, "vars": [variable(v) for _, v in sets]}
                else:
                    walk(child, f"{path}/{key}")

        walk(f["layers"], "layers")
    return out


def main():
    if "--fixtures" in sys.argv:
        write_fixtures()
    files = {}
    for path in sorted(glob.glob(os.path.join(DATA, "models", "*.keras"))):
        with zipfile.ZipFile(path) as z:
            files["models/" + os.path.basename(path)] = oracle(z.read("model.weights.h5"))
    for path in sorted(glob.glob(os.path.join(H5, "*.h5"))):
        if os.path.basename(path) not in HOSTILE:
            files["h5/" + os.path.basename(path)] = oracle(open(path, "rb").read())
    compact = lambda v: json.dumps(v, separators=(",", ":"), sort_keys=True)
    with open(os.path.join(DATA, "h5_oracle.json"), "w") as f:
        f.write("{\n" + ",\n".join(f"{compact(k)}:{compact(v)}" for k, v in sorted(files.items())) + "\n}\n")
    print(f"{len(files)} files")


if __name__ == "__main__":
    main()

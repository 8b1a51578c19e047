// SPDX-License-Identifier: MIT OR Apache-2.0
// y = a + b or a * b (the OP override: 0 add, 1 multiply), element by
// element, over whole padded rows (a residual add, Keras's Add and
// Multiply): the result in the arithmetic type (f32, or f64), rounded to
// the storage format to nearest even on store; the zero padding stays 0. One
// invocation per 16-byte chunk. Stay in sync with the `Add` dispatch in
// src/gpu/tensor.rs. CPU twin: `cpu::add::binary`.

#import storage
#import elementwise

struct AddDims {
    chunks: u32, // 16-byte chunks in each tensor
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

override OP: u32 = 0u;

fn combine(a: Scalar, b: Scalar) -> Scalar {
    if (OP == 1u) {
        return a * b;
    }
    return a + b;
}

@group(0) @binding(0) var<uniform> dims: AddDims;
@group(0) @binding(1) var<storage, read> a_buf: array<Chunk>;
@group(0) @binding(2) var<storage, read> b_buf: array<Chunk>;
@group(0) @binding(3) var<storage, read_write> y_buf: array<OutWord>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>,
        @builtin(num_workgroups) groups: vec3<u32>) {
    let c = chunk_index(gid, groups);
    if (c >= dims.chunks) {
        return;
    }
    let a = a_buf[c];
    let b = b_buf[c];
    for (var p = 0u; p < VALUES_PER_VEC / 2u; p++) {
        store_chunk_pair(c, p, combine(chunk_value(a, 2u * p), chunk_value(b, 2u * p)),
                         combine(chunk_value(a, 2u * p + 1u), chunk_value(b, 2u * p + 1u)));
    }
}

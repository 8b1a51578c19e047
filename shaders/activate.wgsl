// SPDX-License-Identifier: MIT OR Apache-2.0
// y = activation(x), element by element (Keras's `Activation` layer): the
// activation in f32 (shared/activation.wgsl, as the Dense kernels apply
// it), rounded to the storage format on store; padding columns written 0
// (sigmoid(0) is not 0). One invocation per 16-byte chunk. Stay in sync
// with `Graph::activate` (src/gpu/norm.rs). CPU twin:
// `cpu::elementwise::activate`.

#import storage
#import elementwise

struct ActivateDims {
    chunks: u32,          // 16-byte chunks in the tensor
    chunks_per_row: u32,
    cols: u32,            // values per row
    _pad: u32,
}

@group(0) @binding(0) var<uniform> dims: ActivateDims;
@group(0) @binding(1) var<storage, read> x_buf: array<Chunk>;
@group(0) @binding(2) var<storage, read_write> y_buf: array<OutWord>;

fn value(v: Chunk, c: u32, j: u32) -> Scalar {
    if ((c % dims.chunks_per_row) * VALUES_PER_VEC + j >= dims.cols) {
        return Scalar(0.0);
    }
    return Scalar(activate(f32(chunk_value(v, j))));
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>,
        @builtin(num_workgroups) groups: vec3<u32>) {
    let c = chunk_index(gid, groups);
    if (c >= dims.chunks) {
        return;
    }
    let v = x_buf[c];
    for (var p = 0u; p < VALUES_PER_VEC / 2u; p++) {
        store_chunk_pair(c, p, value(v, c, 2u * p), value(v, c, 2u * p + 1u));
    }
}

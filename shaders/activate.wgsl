// SPDX-License-Identifier: MIT OR Apache-2.0
// y = activation(x) * factor, element by element: Keras's `Activation`
// layer (factor 1, exact) and a scaling by a constant (ACTIVATION linear;
// Gemma's `x * sqrt(hidden_dim)`, the factor already in the storage
// format). The activation and the product in f32 (shared/activation.wgsl,
// as the Dense kernels apply it), rounded to the storage format on store;
// padding columns written 0 (sigmoid(0) is not 0). One invocation per
// 16-byte chunk. Stay in sync with `Graph::activate` and `Graph::scale`
// (src/gpu/norm.rs). CPU twins: `cpu::norm::activate`, `cpu::norm::scale`.

#import storage
#import elementwise

struct ActivateDims {
    chunks: u32,          // 16-byte chunks in the tensor
    chunks_per_row: u32,
    cols: u32,            // values per row
    factor: f32,          // what each activated value is multiplied by
}

@group(0) @binding(0) var<uniform> dims: ActivateDims;
@group(0) @binding(1) var<storage, read> x_buf: array<Chunk>;
@group(0) @binding(2) var<storage, read_write> y_buf: array<OutWord>;

fn value(v: Chunk, c: u32, j: u32) -> Scalar {
    if ((c % dims.chunks_per_row) * VALUES_PER_VEC + j >= dims.cols) {
        return Scalar(0.0);
    }
    return Scalar(activate(f32(chunk_value(v, j))) * dims.factor);
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

// SPDX-License-Identifier: MIT OR Apache-2.0
// Dense forward, matrix-vector shape (few rows: the decode case, memory
// bound). One invocation per (row, pair of outputs): it streams the two
// weight rows once with the widest loads (vec4<u32>) and shares each x load
// between them. CPU twin: `dense_lanes4` in src/cpu/dense.rs.

#import storage
#import activation
#import dense_bindings

override WORKGROUP_SIZE: u32 = 64u;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let n0 = gid.x * 2u;
    let row = gid.y;
    if (n0 >= dims.n || row >= dims.m) {
        return;
    }
    let x_row = row * dims.k_vecs;
    let w_row0 = n0 * dims.k_vecs;
    let w_row1 = w_row0 + dims.k_vecs;
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    for (var i = 0u; i < dims.k_vecs; i++) {
        let x = x_buf[x_row + i];
        acc0 = mul_add_chunk(acc0, x, w_buf[w_row0 + i]);
        acc1 = mul_add_chunk(acc1, x, w_buf[w_row1 + i]);
    }
    let y0 = finish((acc0.x + acc0.y) + (acc0.z + acc0.w), n0);
    let y1 = finish((acc1.x + acc1.y) + (acc1.z + acc1.w), n0 + 1u);
    store_out_pair(row, n0, y0, y1);
}

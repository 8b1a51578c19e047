// SPDX-License-Identifier: MIT OR Apache-2.0
// Dense forward, matrix-vector shape (few rows: the decode case, memory
// bound). One invocation per (row, four outputs): it streams the four
// weight rows once with the widest loads (16-byte chunks) and shares each
// x chunk, and its unpacking, between them. CPU twin: the `DenseMatVec`
// order of src/cpu/dense.rs.

#import storage
#import dense_bindings

override WORKGROUP_SIZE: u32 = 64u;
const OUTPUTS: u32 = 4u;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let n0 = gid.x * OUTPUTS;
    let row = gid.y;
    if (n0 >= dims.n || row >= dims.m) {
        return;
    }
    let j = rows4(n0);
    let w = j * dims.k_vecs;
    let x_row = row * dims.k_vecs;
    var acc0 = acc_zero();
    var acc1 = acc_zero();
    var acc2 = acc_zero();
    var acc3 = acc_zero();
    for (var i = 0u; i < dims.k_vecs; i++) {
        let x = x_buf[x_row + i];
        acc0 = mul_add_chunk(acc0, x, w_buf[w.x + i]);
        acc1 = mul_add_chunk(acc1, x, w_buf[w.y + i]);
        acc2 = mul_add_chunk(acc2, x, w_buf[w.z + i]);
        acc3 = mul_add_chunk(acc3, x, w_buf[w.w + i]);
    }
    store_outputs4(row, n0, finish(lane_sum(acc0), j.x), finish(lane_sum(acc1), j.y),
                   finish(lane_sum(acc2), j.z), finish(lane_sum(acc3), j.w));
}

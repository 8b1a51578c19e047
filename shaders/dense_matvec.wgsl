// SPDX-License-Identifier: MIT OR Apache-2.0
// Dense forward, matrix-vector shape (few rows: the decode case, memory
// bound). One invocation per (row, eight outputs): it streams the eight
// weight rows once with 16-byte loads (the widest in core WGSL) and shares each
// x chunk, and its unpacking, between them (on CPU drivers each load costs
// a scalar load per component and invocation, so x's share matters). CPU
// twin: `cpu::dense::dense` in the matrix-vector shape.

#import storage
#import dense_bindings

override WORKGROUP_SIZE: u32 = 64u;
const OUTPUTS: u32 = 8u;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let n0 = gid.x * OUTPUTS;
    let row = gid.y;
    if (n0 >= dims.n || row >= dims.m) {
        return;
    }
    let ja = rows4(n0);
    let jb = rows4(n0 + 4u);
    let wa = ja * dims.k_vecs;
    let wb = jb * dims.k_vecs;
    let x_row = row * dims.k_vecs;
    var acc0 = acc_zero();
    var acc1 = acc_zero();
    var acc2 = acc_zero();
    var acc3 = acc_zero();
    var acc4 = acc_zero();
    var acc5 = acc_zero();
    var acc6 = acc_zero();
    var acc7 = acc_zero();
    for (var i = 0u; i < dims.k_vecs; i++) {
        let x = x_buf[x_row + i];
        acc0 = mul_add_chunk(acc0, x, w_buf[wa.x + i]);
        acc1 = mul_add_chunk(acc1, x, w_buf[wa.y + i]);
        acc2 = mul_add_chunk(acc2, x, w_buf[wa.z + i]);
        acc3 = mul_add_chunk(acc3, x, w_buf[wa.w + i]);
        acc4 = mul_add_chunk(acc4, x, w_buf[wb.x + i]);
        acc5 = mul_add_chunk(acc5, x, w_buf[wb.y + i]);
        acc6 = mul_add_chunk(acc6, x, w_buf[wb.z + i]);
        acc7 = mul_add_chunk(acc7, x, w_buf[wb.w + i]);
    }
    store_outputs8(row, n0, array<Scalar, 8>(
        finish(lane_sum(acc0), ja.x), finish(lane_sum(acc1), ja.y),
        finish(lane_sum(acc2), ja.z), finish(lane_sum(acc3), ja.w),
        finish(lane_sum(acc4), jb.x), finish(lane_sum(acc5), jb.y),
        finish(lane_sum(acc6), jb.z), finish(lane_sum(acc7), jb.w)));
}

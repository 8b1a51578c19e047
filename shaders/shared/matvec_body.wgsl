// SPDX-License-Identifier: MIT OR Apache-2.0
// The body of the float matrix-vector Dense kernels (dense_matvec.wgsl,
// dense_matvec_wide.wgsl), which differ in how they load W^T (`w_pair`).
// One invocation per (row, eight outputs): it streams the eight weight rows
// once, two chunks per step, and shares each x chunk, and its unpacking,
// between them (on CPU drivers each load costs a scalar load per component
// and invocation, so x's share matters). Each output sums its chunks in
// order, as the CPU twin does (`cpu::dense::dense` in the matrix-vector
// shape).

override WORKGROUP_SIZE: u32 = 64u;

#import matvec_slot

// acc += x0 . w[0] then x1 . w[1], lane by lane.
fn mul_add_pair(acc: Acc, x0: Chunk, x1: Chunk, w: array<Chunk, 2>) -> Acc {
    return mul_add_chunk(mul_add_chunk(acc, x0, w[0]), x1, w[1]);
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let s = matvec_slot(gid);
    if (outside(s)) {
        return;
    }
    var acc0 = acc_zero();
    var acc1 = acc_zero();
    var acc2 = acc_zero();
    var acc3 = acc_zero();
    var acc4 = acc_zero();
    var acc5 = acc_zero();
    var acc6 = acc_zero();
    var acc7 = acc_zero();
    for (var i = 0u; i < dims.k_vecs; i += 2u) {
        let x0 = x_buf[s.x_row + i];
        let x1 = x_buf[s.x_row + i + 1u];
        acc0 = mul_add_pair(acc0, x0, x1, w_pair(s.wa.x, i));
        acc1 = mul_add_pair(acc1, x0, x1, w_pair(s.wa.y, i));
        acc2 = mul_add_pair(acc2, x0, x1, w_pair(s.wa.z, i));
        acc3 = mul_add_pair(acc3, x0, x1, w_pair(s.wa.w, i));
        acc4 = mul_add_pair(acc4, x0, x1, w_pair(s.wb.x, i));
        acc5 = mul_add_pair(acc5, x0, x1, w_pair(s.wb.y, i));
        acc6 = mul_add_pair(acc6, x0, x1, w_pair(s.wb.z, i));
        acc7 = mul_add_pair(acc7, x0, x1, w_pair(s.wb.w, i));
    }
    store_outputs8(s.row, s.n0, array<Scalar, 8>(
        finish(lane_sum(acc0), s.ja.x), finish(lane_sum(acc1), s.ja.y),
        finish(lane_sum(acc2), s.ja.z), finish(lane_sum(acc3), s.ja.w),
        finish(lane_sum(acc4), s.jb.x), finish(lane_sum(acc5), s.jb.y),
        finish(lane_sum(acc6), s.jb.z), finish(lane_sum(acc7), s.jb.w)));
}

// SPDX-License-Identifier: MIT OR Apache-2.0
// Where one invocation of a matrix-vector Dense kernel works (one row, eight
// outputs): its outputs j (W^T rows, clamped to the last by rows4), the
// starts of their W^T rows (`w_starts` of the weights' layout), and its x
// row's first chunk.

const OUTPUTS: u32 = 8u;

struct MatVecSlot {
    n0: u32,
    row: u32,
    ja: vec4<u32>,
    jb: vec4<u32>,
    wa: vec4<u32>,
    wb: vec4<u32>,
    x_row: u32,
}

fn matvec_slot(gid: vec3<u32>) -> MatVecSlot {
    let ja = rows4(gid.x * OUTPUTS);
    let jb = rows4(gid.x * OUTPUTS + 4u);
    return MatVecSlot(gid.x * OUTPUTS, gid.y, ja, jb, w_starts(ja), w_starts(jb),
                      gid.y * dims.k_vecs);
}

// Past the last output or row (whole invocations of the last workgroup).
fn outside(s: MatVecSlot) -> bool {
    return s.n0 >= dims.n || s.row >= dims.m;
}

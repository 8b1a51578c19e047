// SPDX-License-Identifier: MIT OR Apache-2.0
// Keras's float8 Dense (inference): y = qdq(x, s_x) · qdq(W, s_w) + bias,
// activation. W is stored as e4m3fn (or, by choice, e5m2) codes, four per
// u32 along k (lowest k in the lowest byte), already quantized on the host
// as clip(W / s_w); the kernel decodes them and multiplies by s_w. The
// activations are quantize-dequantized here with the per-tensor scale s_x,
// a quarter of each step per invocation where subgroups share them
// (x_share). One invocation per (row, eight outputs), 32 k per step; lane l
// of each accumulator takes k = l (mod 4). CPU twin:
// `cpu::dense::dense`.

#import storage
#import float8_weights
#import weight_buffers
#import x_share

override WORKGROUP_SIZE: u32 = 64u;
const OUTPUTS: u32 = 8u;

fn prepared_x(v: vec4<f32>) -> vec4<f32> {
    return qdq4(v);
}

// a + x · w over a step (two vec4 of codes) of one output.
fn float8_step(a: vec4<f32>, x: array<vec4<f32>, 8>, w: vec4<u32>, v: vec4<u32>, scale: f32,
               exact: bool) -> vec4<f32> {
    let a1 = ((a + x[0] * weights4(w.x, scale, exact)) + x[1] * weights4(w.y, scale, exact))
        + x[2] * weights4(w.z, scale, exact);
    let a2 = ((a1 + x[3] * weights4(w.w, scale, exact)) + x[4] * weights4(v.x, scale, exact))
        + x[5] * weights4(v.y, scale, exact);
    return (a2 + x[6] * weights4(v.z, scale, exact)) + x[7] * weights4(v.w, scale, exact);
}

// Every step for the eight outputs whose W^T rows start at r.
fn float8_rows(acc: ptr<function, array<vec4<f32>, 8>>, inv: Invocation, r: array<u32, 8>,
               x_row: u32, scale: f32, exact: bool) {
    let steps = dims.k_vecs / 2u;
    let step_chunks = 32u / VALUES_PER_VEC;
    for (var s = 0u; s < steps; s++) {
        let x = x_step(inv, x_row + s * step_chunks);
        let v = 2u * s;
        (*acc)[0] = float8_step((*acc)[0], x, w_buf[r[0] + v], w_buf[r[0] + v + 1u], scale, exact);
        (*acc)[1] = float8_step((*acc)[1], x, w_buf[r[1] + v], w_buf[r[1] + v + 1u], scale, exact);
        (*acc)[2] = float8_step((*acc)[2], x, w_buf[r[2] + v], w_buf[r[2] + v + 1u], scale, exact);
        (*acc)[3] = float8_step((*acc)[3], x, w_buf[r[3] + v], w_buf[r[3] + v + 1u], scale, exact);
        (*acc)[4] = float8_step((*acc)[4], x, w_buf[r[4] + v], w_buf[r[4] + v + 1u], scale, exact);
        (*acc)[5] = float8_step((*acc)[5], x, w_buf[r[5] + v], w_buf[r[5] + v + 1u], scale, exact);
        (*acc)[6] = float8_step((*acc)[6], x, w_buf[r[6] + v], w_buf[r[6] + v + 1u], scale, exact);
        (*acc)[7] = float8_step((*acc)[7], x, w_buf[r[7] + v], w_buf[r[7] + v + 1u], scale, exact);
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(inv: Invocation) {
    // No early return: every invocation of a subgroup takes part in x_step.
    // Outputs past the last are computed on the last W^T row, not stored.
    let n0 = inv.gid.x * OUTPUTS;
    let row = inv.gid.y;
    let ja = rows4(n0);
    let jb = rows4(n0 + 4u);
    let ra = ja * dims.k_vecs;
    let rb = jb * dims.k_vecs;
    let r = array<u32, 8>(ra.x, ra.y, ra.z, ra.w, rb.x, rb.y, rb.z, rb.w);
    let exact = exact_decoding();
    let scale = decode_scale(exact);
    let x_row = row * dims.k_vecs * 16u / VALUES_PER_VEC;
    var acc: array<vec4<f32>, 8>;
    // Calls with constant arguments, so the decoder's choice is made once,
    // not per word. A power-of-two scale multiplies the sums instead of
    // the weights: the same numbers, one multiplication per output.
    var sum_scale = 1.0;
    if (exact) {
        float8_rows(&acc, inv, r, x_row, scale, true);
    } else if (dims.fold_scale != 0u) {
        float8_rows(&acc, inv, r, x_row, 1.0, false);
        sum_scale = scale;
    } else {
        float8_rows(&acc, inv, r, x_row, scale, false);
    }
    store_outputs8(row, n0, array<Scalar, 8>(
        finish(lane_sum(acc[0]) * sum_scale, ja.x), finish(lane_sum(acc[1]) * sum_scale, ja.y),
        finish(lane_sum(acc[2]) * sum_scale, ja.z), finish(lane_sum(acc[3]) * sum_scale, ja.w),
        finish(lane_sum(acc[4]) * sum_scale, jb.x), finish(lane_sum(acc[5]) * sum_scale, jb.y),
        finish(lane_sum(acc[6]) * sum_scale, jb.z), finish(lane_sum(acc[7]) * sum_scale, jb.w)));
}

// SPDX-License-Identifier: MIT OR Apache-2.0
// Keras's int4 Dense (and weight-only int8, WEIGHT_BITS 8): activations
// stay in the compute dtype; weights are int4, eight per u32 along k (lowest
// k in the lowest nibble), dequantized in the kernel. Per channel
// (GROUPING PER_CHANNEL): y = (x · q) / s_w. Grouped: y = x · ((q - zero[g])
// * scale[g]) with g = k / block, computed per group as
// scale · (x · q - zero · Σx) when the block is a multiple of 32
// (GROUPS_OF_STEPS), else per k (GROUPS_ANY).
// Then bias and activation.
//
// One invocation per (row, eight outputs), 32 k per step; lane l of each
// accumulator takes k = l (mod 4). Eight outputs share each step's x, which
// comes from the subgroup where there is one (x_share). Written without
// dynamically indexed private arrays: CPU drivers (lavapipe) spill those to
// memory. CPU twin: `cpu::dense::dense`.

#import storage
#import int4_weights
#import weight_buffers
#import x_share

override WORKGROUP_SIZE: u32 = 64u;
const OUTPUTS: u32 = 8u;

fn prepared_x(v: vec4<f32>) -> vec4<f32> {
    return v;
}

// a + x · q over one word of eight int4 meeting the x quarters lo and hi.
fn dot_int4_word(a: vec4<f32>, lo: vec4<f32>, hi: vec4<f32>, word: u32) -> vec4<f32> {
    return (a + lo * nibbles(word, 0u)) + hi * nibbles(word, 1u);
}

// a + x · q over a step of int4 weights (one vec4 of words).
fn int4_step(a: vec4<f32>, x: array<vec4<f32>, 8>, w: vec4<u32>) -> vec4<f32> {
    let a1 = dot_int4_word(a, x[0], x[1], w.x);
    let a2 = dot_int4_word(a1, x[2], x[3], w.y);
    let a3 = dot_int4_word(a2, x[4], x[5], w.z);
    return dot_int4_word(a3, x[6], x[7], w.w);
}

// a + x · q over a step of int8 weights (two vec4 of words).
fn int8_step(a: vec4<f32>, x: array<vec4<f32>, 8>, w: vec4<u32>, v: vec4<u32>) -> vec4<f32> {
    let a1 = ((a + x[0] * bytes_i8(w.x)) + x[1] * bytes_i8(w.y)) + x[2] * bytes_i8(w.z);
    let a2 = ((a1 + x[3] * bytes_i8(w.w)) + x[4] * bytes_i8(v.x)) + x[5] * bytes_i8(v.y);
    return (a2 + x[6] * bytes_i8(v.z)) + x[7] * bytes_i8(v.w);
}

// One word of int4 weights of output j at k0 .. k0+7, each dequantized with
// its own group (grouped, any block).
fn any_block_word(a: vec4<f32>, lo: vec4<f32>, hi: vec4<f32>, word: u32, k0: u32, j: u32) -> vec4<f32> {
    return (a + lo * weights4(nibbles(word, 0u), k0, j)) + hi * weights4(nibbles(word, 1u), k0 + 4u, j);
}

// Weights of output j for k = k0 .. k0+3 dequantized with their groups.
fn weights4(q: vec4<f32>, k0: u32, j: u32) -> vec4<f32> {
    return vec4<f32>(grouped_weight(q.x, k0, j), grouped_weight(q.y, k0 + 1u, j),
                     grouped_weight(q.z, k0 + 2u, j), grouped_weight(q.w, k0 + 3u, j));
}

// A step of int4 weights of output j, any block, starting at k0.
fn any_block_step(a: vec4<f32>, x: array<vec4<f32>, 8>, w: vec4<u32>, k0: u32, j: u32) -> vec4<f32> {
    let a1 = any_block_word(a, x[0], x[1], w.x, k0, j);
    let a2 = any_block_word(a1, x[2], x[3], w.y, k0 + 8u, j);
    let a3 = any_block_word(a2, x[4], x[5], w.z, k0 + 16u, j);
    return any_block_word(a3, x[6], x[7], w.w, k0 + 24u, j);
}

// The sum of a step's x in the accumulators' lanes and order.
fn x_sum(xs: vec4<f32>, x: array<vec4<f32>, 8>) -> vec4<f32> {
    return (((((((xs + x[0]) + x[1]) + x[2]) + x[3]) + x[4]) + x[5]) + x[6]) + x[7];
}

// Adds one group's sums to the accumulator of an output:
// scale · (x · q - zero · Σx).
fn add_group(acc: vec4<f32>, p: vec4<f32>, xs: vec4<f32>, scale: f32, zero: f32) -> vec4<f32> {
    return acc + scale * (p - zero * xs);
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
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    var acc4 = vec4<f32>(0.0);
    var acc5 = vec4<f32>(0.0);
    var acc6 = vec4<f32>(0.0);
    var acc7 = vec4<f32>(0.0);
    // vec4<u32> of weights per 32-k step: 1 (int4), 2 (int8).
    let step_vecs = WEIGHT_BITS / 4u;
    let steps = dims.k_vecs / step_vecs;
    let step_chunks = 32u / VALUES_PER_VEC;
    let x_row = row * steps * step_chunks;
    if (WEIGHT_BITS == 8u) {
        for (var s = 0u; s < steps; s++) {
            let x = x_step(inv, x_row + s * step_chunks);
            let v = 2u * s;
            acc0 = int8_step(acc0, x, w_buf[ra.x + v], w_buf[ra.x + v + 1u]);
            acc1 = int8_step(acc1, x, w_buf[ra.y + v], w_buf[ra.y + v + 1u]);
            acc2 = int8_step(acc2, x, w_buf[ra.z + v], w_buf[ra.z + v + 1u]);
            acc3 = int8_step(acc3, x, w_buf[ra.w + v], w_buf[ra.w + v + 1u]);
            acc4 = int8_step(acc4, x, w_buf[rb.x + v], w_buf[rb.x + v + 1u]);
            acc5 = int8_step(acc5, x, w_buf[rb.y + v], w_buf[rb.y + v + 1u]);
            acc6 = int8_step(acc6, x, w_buf[rb.z + v], w_buf[rb.z + v + 1u]);
            acc7 = int8_step(acc7, x, w_buf[rb.w + v], w_buf[rb.w + v + 1u]);
        }
    } else if (GROUPING == PER_CHANNEL) {
        for (var s = 0u; s < steps; s++) {
            let x = x_step(inv, x_row + s * step_chunks);
            acc0 = int4_step(acc0, x, w_buf[ra.x + s]);
            acc1 = int4_step(acc1, x, w_buf[ra.y + s]);
            acc2 = int4_step(acc2, x, w_buf[ra.z + s]);
            acc3 = int4_step(acc3, x, w_buf[ra.w + s]);
            acc4 = int4_step(acc4, x, w_buf[rb.x + s]);
            acc5 = int4_step(acc5, x, w_buf[rb.y + s]);
            acc6 = int4_step(acc6, x, w_buf[rb.z + s]);
            acc7 = int4_step(acc7, x, w_buf[rb.w + s]);
        }
    } else if (GROUPING == GROUPS_OF_STEPS) {
        // A group at a time: x · q and Σx over its steps, then scaled once.
        let group_steps = dims.block / 32u;
        var g = 0u;
        for (var s0 = 0u; s0 < steps; s0 += group_steps) {
            var p0 = vec4<f32>(0.0);
            var p1 = vec4<f32>(0.0);
            var p2 = vec4<f32>(0.0);
            var p3 = vec4<f32>(0.0);
            var p4 = vec4<f32>(0.0);
            var p5 = vec4<f32>(0.0);
            var p6 = vec4<f32>(0.0);
            var p7 = vec4<f32>(0.0);
            var xs = vec4<f32>(0.0);
            for (var s = s0; s < min(s0 + group_steps, steps); s++) {
                let x = x_step(inv, x_row + s * step_chunks);
                p0 = int4_step(p0, x, w_buf[ra.x + s]);
                p1 = int4_step(p1, x, w_buf[ra.y + s]);
                p2 = int4_step(p2, x, w_buf[ra.z + s]);
                p3 = int4_step(p3, x, w_buf[ra.w + s]);
                p4 = int4_step(p4, x, w_buf[rb.x + s]);
                p5 = int4_step(p5, x, w_buf[rb.y + s]);
                p6 = int4_step(p6, x, w_buf[rb.z + s]);
                p7 = int4_step(p7, x, w_buf[rb.w + s]);
                xs = x_sum(xs, x);
            }
            // Invocations past the last output read the last block (not stored).
            let t = group_tables8(g, min(n0, dims.n_padded - 8u));
            acc0 = add_group(acc0, p0, xs, t.scale_a.x, t.zero_a.x);
            acc1 = add_group(acc1, p1, xs, t.scale_a.y, t.zero_a.y);
            acc2 = add_group(acc2, p2, xs, t.scale_a.z, t.zero_a.z);
            acc3 = add_group(acc3, p3, xs, t.scale_a.w, t.zero_a.w);
            acc4 = add_group(acc4, p4, xs, t.scale_b.x, t.zero_b.x);
            acc5 = add_group(acc5, p5, xs, t.scale_b.y, t.zero_b.y);
            acc6 = add_group(acc6, p6, xs, t.scale_b.z, t.zero_b.z);
            acc7 = add_group(acc7, p7, xs, t.scale_b.w, t.zero_b.w);
            g += 1u;
        }
    } else {
        for (var s = 0u; s < steps; s++) {
            let x = x_step(inv, x_row + s * step_chunks);
            let k0 = 32u * s;
            acc0 = any_block_step(acc0, x, w_buf[ra.x + s], k0, ja.x);
            acc1 = any_block_step(acc1, x, w_buf[ra.y + s], k0, ja.y);
            acc2 = any_block_step(acc2, x, w_buf[ra.z + s], k0, ja.z);
            acc3 = any_block_step(acc3, x, w_buf[ra.w + s], k0, ja.w);
            acc4 = any_block_step(acc4, x, w_buf[rb.x + s], k0, jb.x);
            acc5 = any_block_step(acc5, x, w_buf[rb.y + s], k0, jb.y);
            acc6 = any_block_step(acc6, x, w_buf[rb.z + s], k0, jb.z);
            acc7 = any_block_step(acc7, x, w_buf[rb.w + s], k0, jb.w);
        }
    }
    store_outputs8(row, n0, array<Scalar, 8>(
        weight_only_output(lane_sum(acc0), ja.x), weight_only_output(lane_sum(acc1), ja.y),
        weight_only_output(lane_sum(acc2), ja.z), weight_only_output(lane_sum(acc3), ja.w),
        weight_only_output(lane_sum(acc4), jb.x), weight_only_output(lane_sum(acc5), jb.y),
        weight_only_output(lane_sum(acc6), jb.z), weight_only_output(lane_sum(acc7), jb.w)));
}

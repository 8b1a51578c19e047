// SPDX-License-Identifier: MIT OR Apache-2.0
// Keras's int4 Dense (and weight-only int8, WEIGHT_BITS 8): activations
// stay in the compute dtype; weights are int4, eight per u32 along k (lowest
// k in the lowest nibble), dequantized in the kernel. Per channel (GROUPED
// false): y = (x · q) / s_w. Grouped (GROUPED true): y = x · ((q - zero[g]) *
// scale[g]) with g = k / block, computed per 32-k step as
// scale · (x · q - zero · Σx) when the block is a multiple of 32, else per k.
// Then bias and activation. One invocation per (row, four outputs); lane l
// of each accumulator takes k = l (mod 4). CPU twin: `cpu::int4::dense_int4`.
//
// Written without private arrays and with the word loop unrolled: CPU
// drivers (lavapipe) spill dynamically indexed arrays to memory, which
// cost more than the weights' decoding.

#import storage
#import int4_weights

override WORKGROUP_SIZE: u32 = 64u;
const OUTPUTS: u32 = 4u;
const X_CHUNKS_PER_STEP: u32 = 8u / VALUES_PER_VEC;

// Weights of output j for k = k0 .. k0+3 dequantized with the group of
// each k (grouped, any block).
fn weights4(q: vec4<f32>, k0: u32, j: u32) -> vec4<f32> {
    return vec4<f32>(grouped_weight(q.x, k0, j), grouped_weight(q.y, k0 + 1u, j),
                     grouped_weight(q.z, k0 + 2u, j), grouped_weight(q.w, k0 + 3u, j));
}

fn output_value(acc: vec4<f32>, j: u32) -> Scalar {
    return weight_only_output(lane_sum(acc), j);
}

// a + x · q over one word of eight int4 (k = 8t .. 8t+7; lane l takes k = l mod 4).
fn dot_int4_word(a: vec4<f32>, lo: vec4<f32>, hi: vec4<f32>, word: u32) -> vec4<f32> {
    return (a + lo * nibbles(word, 0u)) + hi * nibbles(word, 1u);
}

// Word t of a step for four outputs (`words`: word t of each), with the
// eight x values it meets from chunk `c`; `xs` sums those x in the same
// lanes and order (for the zero points of grouped weights).
fn word4(p0: ptr<function, vec4<f32>>, p1: ptr<function, vec4<f32>>, p2: ptr<function, vec4<f32>>,
         p3: ptr<function, vec4<f32>>, xs: ptr<function, vec4<f32>>, c: u32, words: vec4<u32>) {
    let x = chunk8(x_buf[c], x_buf[c + X_CHUNKS_PER_STEP - 1u]);
    let lo = x[0];
    let hi = x[1];
    *p0 = dot_int4_word(*p0, lo, hi, words.x);
    *p1 = dot_int4_word(*p1, lo, hi, words.y);
    *p2 = dot_int4_word(*p2, lo, hi, words.z);
    *p3 = dot_int4_word(*p3, lo, hi, words.w);
    if (GROUPED) {
        *xs = (*xs + lo) + hi;
    }
}

// Four words of int8 weights (sixteen k) for one output, from chunk `c`.
fn dot_int8_step(a: vec4<f32>, c: u32, words: vec4<u32>) -> vec4<f32> {
    let x01 = chunk8(x_buf[c], x_buf[c + X_CHUNKS_PER_STEP - 1u]);
    let d = c + X_CHUNKS_PER_STEP;
    let x23 = chunk8(x_buf[d], x_buf[d + X_CHUNKS_PER_STEP - 1u]);
    return (((a + x01[0] * vec4<f32>(unpack4xI8(words.x))) + x01[1] * vec4<f32>(unpack4xI8(words.y)))
        + x23[0] * vec4<f32>(unpack4xI8(words.z))) + x23[1] * vec4<f32>(unpack4xI8(words.w));
}

// One output's 32-k step with the group of each k (grouped, any block).
fn dot_step_any_block(a: vec4<f32>, c0: u32, s: u32, j: u32) -> vec4<f32> {
    let words = w_buf[j * dims.k_vecs + s];
    var r = a;
    for (var t = 0u; t < 4u; t++) {
        let c = c0 + t * X_CHUNKS_PER_STEP;
        let x = chunk8(x_buf[c], x_buf[c + X_CHUNKS_PER_STEP - 1u]);
        let k0 = 32u * s + 8u * t;
        r = (r + x[0] * weights4(nibbles(words[t], 0u), k0, j)) + x[1] * weights4(nibbles(words[t], 1u), k0 + 4u, j);
    }
    return r;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let n0 = gid.x * OUTPUTS;
    let row = gid.y;
    if (n0 >= dims.n || row >= dims.m) {
        return;
    }
    let j = rows4(n0);
    let r = j * dims.k_vecs;
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    // Eight-value groups of x per vec4<u32> of weights: 4 (int4), 2 (int8).
    let step_chunks = (16u / WEIGHT_BITS) * X_CHUNKS_PER_STEP;
    let x_row = row * dims.k_vecs * step_chunks;
    if (WEIGHT_BITS == 8u) {
        for (var s = 0u; s < dims.k_vecs; s++) {
            let c = x_row + s * step_chunks;
            acc0 = dot_int8_step(acc0, c, w_buf[r.x + s]);
            acc1 = dot_int8_step(acc1, c, w_buf[r.y + s]);
            acc2 = dot_int8_step(acc2, c, w_buf[r.z + s]);
            acc3 = dot_int8_step(acc3, c, w_buf[r.w + s]);
        }
    } else if (!GROUPED || dims.block % 32u == 0u) {
        // The group of step s, counted rather than divided (integer division
        // is slow on CPU drivers).
        let steps_per_group = max(dims.block / 32u, 1u);
        var g = 0u;
        var group_end = steps_per_group;
        for (var s = 0u; s < dims.k_vecs; s++) {
            if (s == group_end) {
                g += 1u;
                group_end += steps_per_group;
            }
            let w0 = w_buf[r.x + s];
            let w1 = w_buf[r.y + s];
            let w2 = w_buf[r.z + s];
            let w3 = w_buf[r.w + s];
            let c = x_row + s * step_chunks;
            // Per channel the step adds to the accumulators; grouped it
            // sums x · q and Σx apart, then scales them.
            var p0 = select(acc0, vec4<f32>(0.0), GROUPED);
            var p1 = select(acc1, vec4<f32>(0.0), GROUPED);
            var p2 = select(acc2, vec4<f32>(0.0), GROUPED);
            var p3 = select(acc3, vec4<f32>(0.0), GROUPED);
            var xs = vec4<f32>(0.0);
            word4(&p0, &p1, &p2, &p3, &xs, c, vec4<u32>(w0.x, w1.x, w2.x, w3.x));
            word4(&p0, &p1, &p2, &p3, &xs, c + X_CHUNKS_PER_STEP, vec4<u32>(w0.y, w1.y, w2.y, w3.y));
            word4(&p0, &p1, &p2, &p3, &xs, c + 2u * X_CHUNKS_PER_STEP, vec4<u32>(w0.z, w1.z, w2.z, w3.z));
            word4(&p0, &p1, &p2, &p3, &xs, c + 3u * X_CHUNKS_PER_STEP, vec4<u32>(w0.w, w1.w, w2.w, w3.w));
            if (GROUPED) {
                let t = g * dims.n_padded;
                acc0 = acc0 + scale_buf[t + j.x] * (p0 - zero_point(g, j.x) * xs);
                acc1 = acc1 + scale_buf[t + j.y] * (p1 - zero_point(g, j.y) * xs);
                acc2 = acc2 + scale_buf[t + j.z] * (p2 - zero_point(g, j.z) * xs);
                acc3 = acc3 + scale_buf[t + j.w] * (p3 - zero_point(g, j.w) * xs);
            } else {
                acc0 = p0;
                acc1 = p1;
                acc2 = p2;
                acc3 = p3;
            }
        }
    } else {
        for (var s = 0u; s < dims.k_vecs; s++) {
            let c = x_row + s * step_chunks;
            acc0 = dot_step_any_block(acc0, c, s, j.x);
            acc1 = dot_step_any_block(acc1, c, s, j.y);
            acc2 = dot_step_any_block(acc2, c, s, j.z);
            acc3 = dot_step_any_block(acc3, c, s, j.w);
        }
    }
    store_outputs4(row, n0, output_value(acc0, j.x), output_value(acc1, j.y),
                   output_value(acc2, j.z), output_value(acc3, j.w));
}

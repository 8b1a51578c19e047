// SPDX-License-Identifier: MIT OR Apache-2.0
// The body of the int8 matrix-vector Dense kernels (dense_int8.wgsl,
// dense_int8_wide.wgsl), which differ in how they load W^T (`w_pair`).
// Integer sums: any order gives the same numbers.

override WORKGROUP_SIZE: u32 = 64u;

#import matvec_slot

fn dot_chunk(x: vec4<u32>, w: vec4<u32>) -> i32 {
    return dot4I8Packed(x.x, w.x) + dot4I8Packed(x.y, w.y) + dot4I8Packed(x.z, w.z) + dot4I8Packed(x.w, w.w);
}

// Two chunks of x against two of W^T (k even chunks per row: 32 k padded).
fn dot_pair(x0: vec4<u32>, x1: vec4<u32>, w: array<WeightChunk, 2>) -> i32 {
    return dot_chunk(x0, w[0]) + dot_chunk(x1, w[1]);
}

fn dequantize(acc: i32, row: u32, n: u32) -> Scalar {
    return Scalar(f32(acc) / (w_scale[n] * x_scale[row]));
}

fn store_accumulators(row: u32, n0: u32, a: i32, b: i32) {
    // Only for 32-bit outputs: one word per value.
    let base = row * dims.y_row_words + n0;
    y_buf[base] = bitcast<OutWord>(a);
    if (n0 + 1u < dims.n) {
        y_buf[base + 1u] = bitcast<OutWord>(b);
    }
}

// The four accumulators of outputs n0 .. n0+3 (for tests of the twin).
fn store_accumulators4(row: u32, n0: u32, acc: vec4<i32>) {
    if (n0 < dims.n) {
        store_accumulators(row, n0, acc.x, acc.y);
    }
    if (n0 + 2u < dims.n) {
        store_accumulators(row, n0 + 2u, acc.z, acc.w);
    }
}

// Outputs j (W^T rows) of a row from their sums.
fn outputs4(row: u32, acc: vec4<i32>, j: vec4<u32>) -> vec4<f32> {
    return vec4<f32>(finish(dequantize(acc.x, row, j.x), j.x), finish(dequantize(acc.y, row, j.y), j.y),
                     finish(dequantize(acc.z, row, j.z), j.z), finish(dequantize(acc.w, row, j.w), j.w));
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let s = matvec_slot(gid);
    if (outside(s)) {
        return;
    }
    var acc_a = vec4<i32>(0);
    var acc_b = vec4<i32>(0);
    for (var i = 0u; i < dims.k_vecs; i += 2u) {
        let x0 = q_buf[s.x_row + i];
        let x1 = q_buf[s.x_row + i + 1u];
        acc_a += vec4<i32>(dot_pair(x0, x1, w_pair(s.wa.x, i)), dot_pair(x0, x1, w_pair(s.wa.y, i)),
                           dot_pair(x0, x1, w_pair(s.wa.z, i)), dot_pair(x0, x1, w_pair(s.wa.w, i)));
        acc_b += vec4<i32>(dot_pair(x0, x1, w_pair(s.wb.x, i)), dot_pair(x0, x1, w_pair(s.wb.y, i)),
                           dot_pair(x0, x1, w_pair(s.wb.z, i)), dot_pair(x0, x1, w_pair(s.wb.w, i)));
    }
    if (WRITE_ACCUMULATOR) {
        store_accumulators4(s.row, s.n0, acc_a);
        store_accumulators4(s.row, s.n0 + 4u, acc_b);
        return;
    }
    let a = outputs4(s.row, acc_a, s.ja);
    let b = outputs4(s.row, acc_b, s.jb);
    store_outputs8(s.row, s.n0, array<Scalar, 8>(Scalar(a.x), Scalar(a.y), Scalar(a.z), Scalar(a.w),
                                             Scalar(b.x), Scalar(b.y), Scalar(b.z), Scalar(b.w)));
}

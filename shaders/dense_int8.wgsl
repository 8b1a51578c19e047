// SPDX-License-Identifier: MIT OR Apache-2.0
// Keras's int8 Dense: activations quantized per row (quantize_rows.wgsl),
// weights per output column, products accumulated exactly in i32 with
// dot4I8Packed (16 per 16-byte chunk), then y = f32(acc) / (s_w * s_x),
// bias, activation, stored in the compute dtype's format. One invocation per
// (row, eight outputs), as dense_matvec.wgsl.
// CPU twin: `cpu::dense::dense`.

#import storage

#import int8_bindings

override WORKGROUP_SIZE: u32 = 64u;
const OUTPUTS: u32 = 8u;

fn dot_chunk(x: vec4<u32>, w: vec4<u32>) -> i32 {
    return dot4I8Packed(x.x, w.x) + dot4I8Packed(x.y, w.y) + dot4I8Packed(x.z, w.z) + dot4I8Packed(x.w, w.w);
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
    var acc_a = vec4<i32>(0);
    var acc_b = vec4<i32>(0);
    for (var i = 0u; i < dims.k_vecs; i++) {
        let x = q_buf[x_row + i];
        acc_a += vec4<i32>(dot_chunk(x, w_buf[wa.x + i]), dot_chunk(x, w_buf[wa.y + i]),
                           dot_chunk(x, w_buf[wa.z + i]), dot_chunk(x, w_buf[wa.w + i]));
        acc_b += vec4<i32>(dot_chunk(x, w_buf[wb.x + i]), dot_chunk(x, w_buf[wb.y + i]),
                           dot_chunk(x, w_buf[wb.z + i]), dot_chunk(x, w_buf[wb.w + i]));
    }
    if (WRITE_ACCUMULATOR) {
        store_accumulators4(row, n0, acc_a);
        store_accumulators4(row, n0 + 4u, acc_b);
        return;
    }
    let a = outputs4(row, acc_a, ja);
    let b = outputs4(row, acc_b, jb);
    store_outputs8(row, n0, array<Scalar, 8>(Scalar(a.x), Scalar(a.y), Scalar(a.z), Scalar(a.w),
                                             Scalar(b.x), Scalar(b.y), Scalar(b.z), Scalar(b.w)));
}

// SPDX-License-Identifier: MIT OR Apache-2.0
// Keras's int8 Dense: activations quantized per row (quantize_rows.wgsl),
// weights per output column, products accumulated exactly in i32 with
// dot4I8Packed (16 per 16-byte chunk), then y = f32(acc) / (s_w * s_x),
// bias, activation, stored in the compute dtype's format. One invocation per
// (row, four outputs), as dense_matvec.wgsl.
// CPU twin: `cpu::int8::dense_int8`.

#import storage

#import int8_bindings

override WORKGROUP_SIZE: u32 = 64u;
const OUTPUTS: u32 = 4u;

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
    var acc = vec4<i32>(0);
    for (var i = 0u; i < dims.k_vecs; i++) {
        let x = q_buf[x_row + i];
        acc += vec4<i32>(dot_chunk(x, w_buf[w.x + i]), dot_chunk(x, w_buf[w.y + i]),
                         dot_chunk(x, w_buf[w.z + i]), dot_chunk(x, w_buf[w.w + i]));
    }
    if (WRITE_ACCUMULATOR) {
        store_accumulators(row, n0, acc.x, acc.y);
        if (n0 + 2u < dims.n) {
            store_accumulators(row, n0 + 2u, acc.z, acc.w);
        }
        return;
    }
    store_outputs4(row, n0, finish(dequantize(acc.x, row, j.x), j.x), finish(dequantize(acc.y, row, j.y), j.y),
                   finish(dequantize(acc.z, row, j.z), j.z), finish(dequantize(acc.w, row, j.w), j.w));
}

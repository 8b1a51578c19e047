// SPDX-License-Identifier: MIT OR Apache-2.0
// Keras's int8 Dense, tiled matrix-matrix shape (many rows): the same
// quantized activations and weights as dense_int8.wgsl, staged in
// workgroup memory 32 k at a time; a workgroup of 8 x 8 invocations
// computes a 64-row x 32-output block, each invocation 8 rows x 4 outputs
// with dot4I8Packed and exact i32 sums. CPU twin: `cpu::dense::dense`.

#import storage

#import int8_bindings
#import dense_weights

const TILE_M: u32 = 64u;
const TILE_N: u32 = 32u;
const STEP_VECS: u32 = 2u; // vec4<u32> per row per step: 32 k

// [word of the step][row or output]: 8 words per step.
var<workgroup> x_tile: array<u32, 512>;
var<workgroup> w_tile: array<u32, 256>;

fn store_value(row: u32, n: u32, acc: i32) -> Scalar {
    return finish(Scalar(f32(acc) / (w_scale[n] * x_scale[row])), n);
}

@compute @workgroup_size(8, 8)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let tx = lid % 8u;
    let ty = lid / 8u;
    let row0 = wg.y * TILE_M;
    let n_base = wg.x * TILE_N;
    let n_rows_w = w_rows();
    var acc: array<vec4<i32>, 8>;
    let steps = dims.k_vecs / STEP_VECS;
    for (var s = 0u; s < steps; s++) {
        for (var v = lid; v < TILE_M * STEP_VECS; v += 64u) {
            let r = v / STEP_VECS;
            let c = v % STEP_VECS;
            var q = vec4<u32>(0u);
            if (row0 + r < dims.m) {
                q = q_buf[(row0 + r) * dims.k_vecs + s * STEP_VECS + c];
            }
            for (var j = 0u; j < 4u; j++) {
                x_tile[(4u * c + j) * TILE_M + r] = q[j];
            }
        }
        for (var v = lid; v < TILE_N * STEP_VECS; v += 64u) {
            let r = v / STEP_VECS;
            let c = v % STEP_VECS;
            var q = vec4<u32>(0u);
            if (n_base + r < n_rows_w) {
                q = w_buf[(n_base + r) * dims.k_vecs + s * STEP_VECS + c];
            }
            for (var j = 0u; j < 4u; j++) {
                w_tile[(4u * c + j) * TILE_N + r] = q[j];
            }
        }
        workgroupBarrier();
        for (var c = 0u; c < 4u * STEP_VECS; c++) {
            let w = vec4<u32>(w_tile[c * TILE_N + 2u * tx], w_tile[c * TILE_N + 2u * tx + 1u],
                              w_tile[c * TILE_N + 16u + 2u * tx], w_tile[c * TILE_N + 17u + 2u * tx]);
            for (var i = 0u; i < 8u; i++) {
                let x = x_tile[c * TILE_M + 8u * ty + i];
                acc[i] += vec4<i32>(dot4I8Packed(x, w.x), dot4I8Packed(x, w.y), dot4I8Packed(x, w.z), dot4I8Packed(x, w.w));
            }
        }
        workgroupBarrier();
    }
    let n0 = n_base + 2u * tx;
    let n1 = n_base + 16u + 2u * tx;
    for (var i = 0u; i < 8u; i++) {
        let row = row0 + 8u * ty + i;
        if (row >= dims.m) {
            continue;
        }
        let a = acc[i];
        if (WRITE_ACCUMULATOR) {
            // Only for 32-bit outputs: one word per value.
            let base = row * dims.y_row_words;
            if (n0 < dims.n) { y_buf[base + n0] = bitcast<OutWord>(a.x); }
            if (n0 + 1u < dims.n) { y_buf[base + n0 + 1u] = bitcast<OutWord>(a.y); }
            if (n1 < dims.n) { y_buf[base + n1] = bitcast<OutWord>(a.z); }
            if (n1 + 1u < dims.n) { y_buf[base + n1 + 1u] = bitcast<OutWord>(a.w); }
            continue;
        }
        if (n0 < dims.n) {
            store_out_pair(row, n0, store_value(row, n0, a.x), store_value(row, n0 + 1u, a.y));
        }
        if (n1 < dims.n) {
            store_out_pair(row, n1, store_value(row, n1, a.z), store_value(row, n1 + 1u, a.w));
        }
    }
}

// SPDX-License-Identifier: MIT OR Apache-2.0
// Keras's float8 Dense (inference): y = qdq(x, s_x) · qdq(W, s_w) + bias,
// activation. W is stored as e4m3fn (or, by choice, e5m2) codes, four per
// u32 along k (lowest k in the lowest byte), already quantized on the host
// as clip(W / s_w); the kernel decodes them and multiplies by s_w. The
// activations are quantize-dequantized here, per element, with the
// per-tensor scale s_x: a tile of the row at a time, by the whole workgroup
// into workgroup memory, so each value is converted once, not once per
// invocation. One invocation per (row, four outputs); lane l of each
// accumulator takes k = l (mod 4). CPU twin: `cpu::float8::dense_float8`.

#import storage
#import float8_weights

override WORKGROUP_SIZE: u32 = 64u;
const X_CHUNKS_PER_8: u32 = 8u / VALUES_PER_VEC;
// x values quantize-dequantized per tile (8 KiB of workgroup memory; a
// multiple of the 32 the rows are padded to).
const X_TILE: u32 = 2048u;
var<workgroup> x_tile: array<vec4<f32>, 512>;

// Word t of a step for four outputs (`words`: word t of each) with the
// four x values it meets.
fn word4(a0: ptr<function, vec4<f32>>, a1: ptr<function, vec4<f32>>, a2: ptr<function, vec4<f32>>,
         a3: ptr<function, vec4<f32>>, x: vec4<f32>, words: vec4<u32>, scale: f32, exact: bool) {
    *a0 = *a0 + x * weights4(words.x, scale, exact);
    *a1 = *a1 + x * weights4(words.y, scale, exact);
    *a2 = *a2 + x * weights4(words.z, scale, exact);
    *a3 = *a3 + x * weights4(words.w, scale, exact);
}

// `steps` steps of 16 k over the tile in workgroup memory, for the four
// outputs whose W^T rows start (at this tile) at `first`.
fn tile_steps(a0: ptr<function, vec4<f32>>, a1: ptr<function, vec4<f32>>, a2: ptr<function, vec4<f32>>,
              a3: ptr<function, vec4<f32>>, first: vec4<u32>, steps: u32, scale: f32, exact: bool) {
    for (var s = 0u; s < steps; s++) {
        let w0 = w_buf[first.x + s];
        let w1 = w_buf[first.y + s];
        let w2 = w_buf[first.z + s];
        let w3 = w_buf[first.w + s];
        word4(a0, a1, a2, a3, x_tile[4u * s], vec4<u32>(w0.x, w1.x, w2.x, w3.x), scale, exact);
        word4(a0, a1, a2, a3, x_tile[4u * s + 1u], vec4<u32>(w0.y, w1.y, w2.y, w3.y), scale, exact);
        word4(a0, a1, a2, a3, x_tile[4u * s + 2u], vec4<u32>(w0.z, w1.z, w2.z, w3.z), scale, exact);
        word4(a0, a1, a2, a3, x_tile[4u * s + 3u], vec4<u32>(w0.w, w1.w, w2.w, w3.w), scale, exact);
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    // The row is the workgroup's (uniform), so every invocation reaches the
    // barriers; invocations past the last output only help with the tiles.
    let row = wg.y;
    if (row >= dims.m) {
        return;
    }
    let n0 = (wg.x * WORKGROUP_SIZE + lid) * 4u;
    let has_outputs = n0 < dims.n;
    let j = rows4(n0);
    let exact = exact_decoding();
    let scale = decode_scale(exact);
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    let k_values = dims.k_vecs * 16u;
    let x_row = row * k_values / 8u * X_CHUNKS_PER_8;
    for (var t0 = 0u; t0 < k_values; t0 += X_TILE) {
        let len = min(X_TILE, k_values - t0);
        workgroupBarrier();
        for (var v = 8u * lid; v < len; v += 8u * WORKGROUP_SIZE) {
            let c = x_row + (t0 + v) / 8u * X_CHUNKS_PER_8;
            let x = chunk8(x_buf[c], x_buf[c + X_CHUNKS_PER_8 - 1u]);
            x_tile[v / 4u] = qdq4(x[0]);
            x_tile[v / 4u + 1u] = qdq4(x[1]);
        }
        workgroupBarrier();
        if (has_outputs) {
            let first = j * dims.k_vecs + vec4<u32>(t0 / 16u);
            // Two calls with constant `exact`, so the decoder's choice is
            // made once per tile, not per word.
            if (exact) {
                tile_steps(&acc0, &acc1, &acc2, &acc3, first, len / 16u, scale, true);
            } else {
                tile_steps(&acc0, &acc1, &acc2, &acc3, first, len / 16u, scale, false);
            }
        }
    }
    if (has_outputs) {
        store_outputs4(row, n0, finish(lane_sum(acc0), j.x), finish(lane_sum(acc1), j.y),
                       finish(lane_sum(acc2), j.z), finish(lane_sum(acc3), j.w));
    }
}

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
#import float8

// The weights are e5m2 codes (a storage choice: more range, less
// precision) instead of e4m3fn; the activations stay e4m3fn, as in Keras.
override WEIGHTS_E5M2: bool = false;

struct Float8Dims {
    m: u32,
    n: u32,
    k_vecs: u32,      // vec4<u32> (16 codes) per row of W^T: k padded / 16
    y_row_words: u32, // OutWords per row of y
    x_scale: f32,
    w_scale: f32,
    // 1 when some e4m3 weight code is NaN: decode exactly (slower) then.
    weight_nans: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> dims: Float8Dims;
// x: [m, k padded] in the storage format.
@group(0) @binding(1) var<storage, read> x_buf: array<Chunk>;
// W^T codes: [n rounded up to even, k padded / 16].
@group(0) @binding(2) var<storage, read> w_buf: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read> bias_buf: array<Scalar>;
@group(0) @binding(4) var<storage, read_write> y_buf: array<OutWord>;

#import dense_output

override WORKGROUP_SIZE: u32 = 64u;
const X_CHUNKS_PER_8: u32 = 8u / VALUES_PER_VEC;
// x values quantize-dequantized per tile (8 KiB of workgroup memory; a
// multiple of the 32 the rows are padded to).
const X_TILE: u32 = 2048u;
var<workgroup> x_tile: array<vec4<f32>, 512>;

fn qdq4(v: vec4<f32>) -> vec4<f32> {
    return vec4<f32>(e4m3_qdq(v.x, dims.x_scale), e4m3_qdq(v.y, dims.x_scale),
                     e4m3_qdq(v.z, dims.x_scale), e4m3_qdq(v.w, dims.x_scale));
}

// The four weights of a word, decoded and scaled: round(decode(code) · s_w).
// Fast: each code becomes an f16 with the same bits in place (e5m2 is the
// top byte of an f16; e4m3 moves its exponent and mantissa down one bit,
// giving the value / 256) and `unpack2x16float` converts two at a time,
// exactly (f16 subnormals included). `scale` is s_w (e5m2) or 256 · s_w
// (e4m3; exact, a power of two). The e4m3 NaN code would decode as 480, so
// with NaN codes present the kernel takes the exact decoder instead.
fn weights4(word: u32, scale: f32, exact: bool) -> vec4<f32> {
    var w: vec4<f32>;
    if (exact) {
        w = e4m3_decode4(word) * scale;
    } else {
        var even: vec2<f32>; // codes 0 and 2
        var odd: vec2<f32>;  // codes 1 and 3
        if (WEIGHTS_E5M2) {
            even = unpack2x16float((word & 0x00ff00ffu) << 8u);
            odd = unpack2x16float(word & 0xff00ff00u);
        } else {
            even = unpack2x16float(((word & 0x007f007fu) << 7u) | ((word & 0x00800080u) << 8u));
            odd = unpack2x16float(((word >> 1u) & 0x3f803f80u) | (word & 0x80008000u));
        }
        w = vec4<f32>(even.x, odd.x, even.y, odd.y) * scale;
    }
    return vec4<f32>(round_compute(w.x), round_compute(w.y), round_compute(w.z), round_compute(w.w));
}

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
    let exact = dims.weight_nans != 0u && !WEIGHTS_E5M2;
    let scale = select(dims.w_scale * 256.0, dims.w_scale, WEIGHTS_E5M2 || exact);
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

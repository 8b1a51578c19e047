// SPDX-License-Identifier: MIT OR Apache-2.0
// Keras's float8 Dense (inference): y = qdq(x, s_x) · qdq(W, s_w) + bias,
// activation. W is stored as e4m3fn (or, by choice, e5m2) codes, four per u32 along k (lowest k
// in the lowest byte), already quantized on the host as clip(W / s_w); the
// kernel decodes them and multiplies by s_w. The activations are
// quantize-dequantized here, per element, with the per-tensor scale s_x.
// One invocation per (row, four outputs); lane l of each accumulator takes
// k = l (mod 4). CPU twin: `cpu::float8::dense_float8`.

#import storage
#import float8

// The weights are e5m2 codes (a storage choice: more range, less
// precision) instead of e4m3fn; the activations stay e4m3fn, as in Keras.
override WEIGHTS_E5M2: bool = false;

fn decode_weights4(word: u32) -> vec4<f32> {
    if (WEIGHTS_E5M2) {
        return e5m2_decode4(word);
    }
    return e4m3_decode4(word);
}

struct Float8Dims {
    m: u32,
    n: u32,
    k_vecs: u32,      // vec4<u32> (16 codes) per row of W^T: k padded / 16
    y_row_words: u32, // OutWords per row of y
    x_scale: f32,
    w_scale: f32,
    _pad0: u32,
    _pad1: u32,
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
const OUTPUTS: u32 = 4u;
const X_CHUNKS_PER_8: u32 = 8u / VALUES_PER_VEC;

fn qdq4(v: vec4<f32>) -> vec4<f32> {
    return vec4<f32>(e4m3_qdq(v.x, dims.x_scale), e4m3_qdq(v.y, dims.x_scale),
                     e4m3_qdq(v.z, dims.x_scale), e4m3_qdq(v.w, dims.x_scale));
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let n0 = gid.x * OUTPUTS;
    let row = gid.y;
    if (n0 >= dims.n || row >= dims.m) {
        return;
    }
    let last = w_rows() - 1u;
    var acc = array<vec4<f32>, 4>(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    let x_row = row * dims.k_vecs * 2u * X_CHUNKS_PER_8;
    for (var s = 0u; s < dims.k_vecs; s++) {
        let c = x_row + 2u * s * X_CHUNKS_PER_8;
        let lo = chunk8(x_buf[c], x_buf[c + X_CHUNKS_PER_8 - 1u]);
        let hi = chunk8(x_buf[c + X_CHUNKS_PER_8], x_buf[c + 2u * X_CHUNKS_PER_8 - 1u]);
        let x = array<vec4<f32>, 4>(qdq4(lo[0]), qdq4(lo[1]), qdq4(hi[0]), qdq4(hi[1]));
        for (var o = 0u; o < OUTPUTS; o++) {
            let words = w_buf[min(n0 + o, last) * dims.k_vecs + s];
            var a = acc[o];
            for (var t = 0u; t < 4u; t++) {
                let w = decode_weights4(words[t]) * dims.w_scale;
                a = a + x[t] * vec4<f32>(round_compute(w.x), round_compute(w.y), round_compute(w.z), round_compute(w.w));
            }
            acc[o] = a;
        }
    }
    for (var o = 0u; o < OUTPUTS; o += 2u) {
        let n = n0 + o;
        if (n < dims.n) {
            let a = acc[o];
            let b = acc[o + 1u];
            let n1 = min(n + 1u, last);
            store_out_pair(row, n, finish(Scalar((a.x + a.y) + (a.z + a.w)), n), finish(Scalar((b.x + b.y) + (b.z + b.w)), n1));
        }
    }
}

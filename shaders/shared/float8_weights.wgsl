// SPDX-License-Identifier: MIT OR Apache-2.0
// Bindings and decoders of the float8 Dense kernels (dense_float8.wgsl,
// dense_float8_tiled.wgsl). Stay in sync with `Float8Dims` and the upload
// in src/gpu/float8.rs.

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
    // 1 when every decoded weight times s_w is exact in f32, f16 and bf16
    // (s_w a power of two in f16's range for the format) and s_x keeps
    // every product and sum normal and finite either way (2^-60 .. 2^60):
    // the matrix-vector kernel then multiplies the sums by the decoder's
    // scale (s_w, or 256 · s_w for e4m3) instead of every weight, with the
    // same result. Set by `fold_scale` in src/gpu/float8.rs.
    fold_scale: u32,
}

@group(0) @binding(0) var<uniform> dims: Float8Dims;
// x and W^T (bindings 1 and 2): weight_buffers.wgsl, or chunk_texture.wgsl.
@group(0) @binding(3) var<storage, read> bias_buf: array<Scalar>;
@group(0) @binding(4) var<storage, read_write> y_buf: array<OutWord>;

#import dense_output

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


// Whether the weights hold e4m3 NaN codes, which the fast decoder would
// read as 480: then `weights4` takes the exact decoder.
fn exact_decoding() -> bool {
    return dims.weight_nans != 0u && !WEIGHTS_E5M2;
}

// The `scale` argument of `weights4`.
fn decode_scale(exact: bool) -> f32 {
    return select(dims.w_scale * 256.0, dims.w_scale, WEIGHTS_E5M2 || exact);
}

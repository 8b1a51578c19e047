// SPDX-License-Identifier: MIT OR Apache-2.0
// Keras's int4 Dense (and weight-only int8, WEIGHT_BITS 8): activations
// stay in the compute dtype; weights are int4, eight per u32 along k (lowest
// k in the lowest nibble), dequantized in the kernel. Per channel (GROUPED false): y = (x · q) / s_w. Grouped
// (GROUPED true): y = x · ((q - zero[g]) * scale[g]) with g = k / block.
// Then bias and activation. One invocation per (row, four outputs); lane l
// of each accumulator takes k = l (mod 4). CPU twin: `cpu::int4::dense_int4`.

#import storage

override GROUPED: bool = false;
// 8: the same kernel for Keras's int8 Dense without an activation quantizer
// (weight-only int8: four per u32 along k, per-column scales, never grouped).
override WEIGHT_BITS: u32 = 4u;

struct Int4Dims {
    m: u32,
    n: u32,
    k_vecs: u32,      // vec4<u32> per row of W^T: k padded / 32
    y_row_words: u32, // OutWords per row of y
    block: u32,       // group size along k (grouped)
    n_padded: u32,    // row length of the scale and zero tables
    groups: u32,      // groups along k (grouped)
    _pad: u32,
}

@group(0) @binding(0) var<uniform> dims: Int4Dims;
// x: [m, k padded] in the storage format.
@group(0) @binding(1) var<storage, read> x_buf: array<Chunk>;
// W^T: [n rounded up to even, k padded / 32] vectors of four words of eight int4.
@group(0) @binding(2) var<storage, read> w_buf: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read> bias_buf: array<Scalar>;
@group(0) @binding(4) var<storage, read_write> y_buf: array<OutWord>;
// Scales: [n_padded] per channel, or [groups, n_padded].
@group(0) @binding(5) var<storage, read> scale_buf: array<f32>;
// Zero points [groups, n_padded], int8 four per u32 (unused per channel).
@group(0) @binding(6) var<storage, read> zero_buf: array<u32>;

#import dense_output

override WORKGROUP_SIZE: u32 = 64u;
const OUTPUTS: u32 = 4u;
const X_CHUNKS_PER_STEP: u32 = 8u / VALUES_PER_VEC;

// Nibbles 4h .. 4h+3 of a word as signed values.
fn nibbles(word: u32, h: u32) -> vec4<f32> {
    let s = vec4<u32>(28u, 24u, 20u, 16u) - vec4<u32>(16u * h);
    return vec4<f32>(bitcast<vec4<i32>>(vec4<u32>(word) << s) >> vec4<u32>(28u));
}

fn zero_point(g: u32, j: u32) -> f32 {
    let idx = g * dims.n_padded + j;
    return f32((i32(zero_buf[idx / 4u] << (24u - 8u * (idx % 4u)))) >> 24u);
}

// Weights of output j for k = k0 .. k0+3: q itself per channel, else
// dequantized with the group of each k.
fn weights4(q: vec4<f32>, k0: u32, j: u32) -> vec4<f32> {
    if (!GROUPED) {
        return q;
    }
    var w: vec4<f32>;
    for (var e = 0u; e < 4u; e++) {
        let g = min((k0 + e) / dims.block, dims.groups - 1u);
        w[e] = scale_buf[g * dims.n_padded + j] * (q[e] - zero_point(g, j));
    }
    return w;
}

fn output_value(acc: vec4<f32>, row: u32, j: u32) -> Scalar {
    let sum = (acc.x + acc.y) + (acc.z + acc.w);
    if (GROUPED) {
        return finish(Scalar(sum), j);
    }
    return finish(Scalar(sum / scale_buf[j]), j);
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let n0 = gid.x * OUTPUTS;
    let row = gid.y;
    if (n0 >= dims.n || row >= dims.m) {
        return;
    }
    let last = w_rows() - 1u;
    // One group per 32-k step when the block is a multiple of 32 (the usual
    // 32, 64, 128...): one scale and zero point per output and step.
    let whole_steps = GROUPED && dims.block % 32u == 0u;
    var acc = array<vec4<f32>, 4>(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    // Eight-value groups of x per step of one vec4<u32> of weights: 4 (int4), 2 (int8).
    let groups8 = 16u / WEIGHT_BITS;
    let x_row = row * dims.k_vecs * groups8 * X_CHUNKS_PER_STEP;
    for (var s = 0u; s < dims.k_vecs; s++) {
        var x: array<array<vec4<f32>, 2>, 4>;
        for (var t = 0u; t < groups8; t++) {
            let c = x_row + (groups8 * s + t) * X_CHUNKS_PER_STEP;
            x[t] = chunk8(x_buf[c], x_buf[c + X_CHUNKS_PER_STEP - 1u]);
        }
        for (var o = 0u; o < OUTPUTS; o++) {
            let j = min(n0 + o, last);
            let words = w_buf[j * dims.k_vecs + s];
            var a = acc[o];
            if (WEIGHT_BITS == 8u) {
                for (var t = 0u; t < 4u; t++) {
                    a = a + x[t / 2u][t % 2u] * vec4<f32>(unpack4xI8(words[t]));
                }
            } else if (whole_steps) {
                let g = min(32u * s / dims.block, dims.groups - 1u);
                let scale = scale_buf[g * dims.n_padded + j];
                let zero = zero_point(g, j);
                for (var t = 0u; t < 4u; t++) {
                    a = (a + x[t][0] * ((nibbles(words[t], 0u) - zero) * scale)) + x[t][1] * ((nibbles(words[t], 1u) - zero) * scale);
                }
            } else {
                for (var t = 0u; t < 4u; t++) {
                    let k0 = 32u * s + 8u * t;
                    a = (a + x[t][0] * weights4(nibbles(words[t], 0u), k0, j)) + x[t][1] * weights4(nibbles(words[t], 1u), k0 + 4u, j);
                }
            }
            acc[o] = a;
        }
    }
    store_out_pair(row, n0, output_value(acc[0], row, n0), output_value(acc[1], row, min(n0 + 1u, last)));
    if (n0 + 2u < dims.n) {
        store_out_pair(row, n0 + 2u, output_value(acc[2], row, n0 + 2u), output_value(acc[3], row, min(n0 + 3u, last)));
    }
}

// SPDX-License-Identifier: MIT OR Apache-2.0
// What the fused add and norm kernels (add_layer_norm.wgsl,
// add_layer_norm_quantize.wgsl) read and write before their own outputs:
// the uniform, a and b, the norm's parameters and y, and the sum a + b, as
// add.wgsl computes and rounds it, for shared/layer_norm_body.wgsl.

@group(0) @binding(0) var<uniform> dims: NormDims;
@group(0) @binding(1) var<storage, read> a_buf: array<Chunk>;
@group(0) @binding(2) var<storage, read> b_buf: array<Chunk>;
// gamma (cols values) then beta (cols values), f32.
@group(0) @binding(3) var<storage, read> params: array<f32>;
@group(0) @binding(4) var<storage, read_write> y_buf: array<OutWord>;
// a + b, as add.wgsl writes it.
@group(0) @binding(5) var<storage, read_write> s_buf: array<Chunk>;

// Chunk i of a + b in the storage format: each pair of values summed in
// the arithmetic type and packed as add.wgsl stores it.
fn x_chunk(i: u32) -> Chunk {
    let a = a_buf[i];
    let b = b_buf[i];
    var s: Chunk;
    for (var p = 0u; p < VALUES_PER_VEC / 2u; p++) {
        let words = pack_out_pair(chunk_value(a, 2u * p) + chunk_value(b, 2u * p),
                                  chunk_value(a, 2u * p + 1u) + chunk_value(b, 2u * p + 1u));
        s[p * OUT_WORDS_PER_PAIR] = words.x;
        if (OUT_WORDS_PER_PAIR == 2u) {
            s[p * OUT_WORDS_PER_PAIR + 1u] = words.y;
        }
    }
    return s;
}

fn keep_input(i: u32, v: Chunk) {
    s_buf[i] = v;
}

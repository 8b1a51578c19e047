// SPDX-License-Identifier: MIT OR Apache-2.0
// Keras's float8 Dense, tiled matrix-matrix shape (many rows):
// shared/dense_tile.wgsl with the activations quantize-dequantized and the
// weight codes decoded and scaled as they are staged, each once per tile.
// CPU twin: `cpu::dense::dense` in the tiled shape (k in order).

#import storage
#import float8_weights
#import weight_buffers
#import dense_tile
#import dense_tile_x8

fn x_tile_values(v: vec4<f32>) -> vec4<f32> {
    return qdq4(v);
}

// Words (four codes each) per W^T row per tile of 32 k.
const TILE_WORDS: u32 = 8u;

fn stage_tile(kt: u32, row0: u32, n_base: u32, lid: u32) {
    stage_x_tile8(kt, row0, lid, dims.k_vecs * 16u / VALUES_PER_VEC);
    let exact = exact_decoding();
    let scale = decode_scale(exact);
    let last_row = w_rows() - 1u;
    for (var v = lid; v < TILE_N * TILE_WORDS; v += 64u) {
        let r = v / TILE_WORDS;
        let t = v % TILE_WORDS;
        // Outputs past the last W^T row read it again; they are not stored.
        let j = min(n_base + r, last_row);
        let addr = j * dims.k_vecs * 4u + kt * TILE_WORDS + t;
        let w = weights4(w_buf[addr / 4u][addr % 4u], scale, exact);
        for (var e = 0u; e < 4u; e++) {
            put_w(4u * t + e, r, w[e]);
        }
    }
}

fn tile_output(sum: Scalar, row: u32, n: u32) -> Scalar {
    return finish(sum, n);
}

@compute @workgroup_size(8, 8)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    tiled_dense(wg, lid, dims.k_vecs / 2u);
}

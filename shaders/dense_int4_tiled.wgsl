// SPDX-License-Identifier: MIT OR Apache-2.0
// Keras's int4 Dense (and weight-only int8, WEIGHT_BITS 8), tiled
// matrix-matrix shape (many rows): shared/dense_tile.wgsl with the weights
// dequantized as they are staged (q per channel, divided by s_w at the end;
// scale · (q - zero) per group), so each is decoded once per 64 rows.
// CPU twin: `cpu::dense::dense` in the tiled shape (k in order).

#import storage
#import int4_weights
#import weight_buffers
#import dense_tile
#import dense_tile_x8

fn x_tile_values(v: vec4<f32>) -> vec4<f32> {
    return v;
}

fn stage_tile(kt: u32, row0: u32, n_base: u32, lid: u32) {
    // Words per W^T row per tile (32 k): 4 of int4, 8 of int8.
    let tile_words = WEIGHT_BITS;
    let word_values = 32u / WEIGHT_BITS;
    stage_x_tile8(kt, row0, lid, dims.k_vecs * 4u * word_values / VALUES_PER_VEC);
    let last_row = w_rows() - 1u;
    for (var v = lid; v < TILE_N * tile_words; v += 64u) {
        let r = v / tile_words;
        let t = v % tile_words;
        // Outputs past the last W^T row read it again; they are not stored.
        let j = min(n_base + r, last_row);
        let addr = j * dims.k_vecs * 4u + kt * tile_words + t;
        let word = w_buf[addr / 4u][addr % 4u];
        let kk0 = t * word_values;
        if (WEIGHT_BITS == 8u) {
            let q = bytes_i8(word);
            for (var e = 0u; e < 4u; e++) {
                put_w(kk0 + e, r, q[e]);
            }
        } else {
            let lo = nibbles(word, 0u);
            let hi = nibbles(word, 1u);
            for (var e = 0u; e < 4u; e++) {
                var a = lo[e];
                var b = hi[e];
                if (GROUPING != PER_CHANNEL) {
                    let k0 = kt * TILE_K + kk0 + e;
                    a = grouped_weight(a, k0, j);
                    b = grouped_weight(b, k0 + 4u, j);
                }
                put_w(kk0 + e, r, a);
                put_w(kk0 + 4u + e, r, b);
            }
        }
    }
}

fn tile_output(sum: Scalar, row: u32, n: u32) -> Scalar {
    return weight_only_output(sum, n);
}

@compute @workgroup_size(8, 8)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    tiled_dense(wg, lid, dims.k_vecs * 4u / WEIGHT_BITS);
}

// SPDX-License-Identifier: MIT OR Apache-2.0
// Dense forward, tiled matrix-matrix shape (many rows: the prefill case):
// shared/dense_tile.wgsl with x and W^T read in the storage format.
// CPU twin: `cpu::dense::dense` in the tiled shape.

#import storage
#import dense_bindings
#import dense_weights
#import dense_tile

const VECS_PER_TILE_ROW: u32 = TILE_K / VALUES_PER_VEC;

fn stage_tile(kt: u32, row0: u32, n_base: u32, lid: u32) {
    let n_rows_w = w_rows();
    for (var v = lid; v < TILE_M * VECS_PER_TILE_ROW; v += 64u) {
        let r = v / VECS_PER_TILE_ROW;
        let c = v % VECS_PER_TILE_ROW;
        var xv = Chunk();
        if (row0 + r < dims.m) {
            xv = x_buf[(row0 + r) * dims.k_vecs + kt * VECS_PER_TILE_ROW + c];
        }
        for (var j = 0u; j < VALUES_PER_VEC; j++) {
            put_x(c * VALUES_PER_VEC + j, r, chunk_value(xv, j));
        }
    }
    for (var v = lid; v < TILE_N * VECS_PER_TILE_ROW; v += 64u) {
        let r = v / VECS_PER_TILE_ROW;
        let c = v % VECS_PER_TILE_ROW;
        var wv = Chunk();
        if (n_base + r < n_rows_w) {
            wv = w_buf[(n_base + r) * dims.k_vecs + kt * VECS_PER_TILE_ROW + c];
        }
        for (var j = 0u; j < VALUES_PER_VEC; j++) {
            put_w(c * VALUES_PER_VEC + j, r, chunk_value(wv, j));
        }
    }
}

fn tile_output(sum: Scalar, row: u32, n: u32) -> Scalar {
    return finish(sum, n);
}

@compute @workgroup_size(8, 8)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    tiled_dense(wg, lid, dims.k_vecs / VECS_PER_TILE_ROW);
}

// SPDX-License-Identifier: MIT OR Apache-2.0
// Dense forward, tiled matrix-matrix shape (many rows: the prefill case).
// A workgroup computes a TILE x TILE block of y; each of its 8 x 8
// invocations a 4 x 4 block. Tiles of x and W^T, unpacked to f32, are staged
// in workgroup memory, loaded with vec4<u32> reads. Each output sums k in
// order 0, 1, 2, ... CPU twin: `dense_sequential` in src/cpu/dense.rs.

#import storage
#import activation
#import dense_bindings

const TILE: u32 = 32u;       // rows, outputs and k per tile; k_padded is a multiple of it
const PER_THREAD: u32 = 4u;  // TILE / 8
const VECS_PER_TILE_ROW: u32 = TILE / VALUES_PER_VEC;

var<workgroup> x_tile: array<f32, 1024>; // [TILE rows][TILE k]
var<workgroup> w_tile: array<f32, 1024>; // [TILE outputs][TILE k]

@compute @workgroup_size(8, 8)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let tx = lid % 8u;
    let ty = lid / 8u;
    let row0 = wg.y * TILE;
    let n_base = wg.x * TILE;
    let n_rows_w = (dims.n + 1u) / 2u * 2u;
    var acc: array<array<f32, 4>, 4>;
    for (var i = 0u; i < 4u; i++) {
        acc[i] = array<f32, 4>(0.0, 0.0, 0.0, 0.0);
    }
    let k_tiles = dims.k_vecs / VECS_PER_TILE_ROW;
    for (var kt = 0u; kt < k_tiles; kt++) {
        // Stage both tiles: TILE rows x VECS_PER_TILE_ROW vectors each.
        for (var v = lid; v < TILE * VECS_PER_TILE_ROW; v += 64u) {
            let r = v / VECS_PER_TILE_ROW;
            let c = v % VECS_PER_TILE_ROW;
            let col = kt * VECS_PER_TILE_ROW + c;
            var xv = Chunk();
            if (row0 + r < dims.m) {
                xv = x_buf[(row0 + r) * dims.k_vecs + col];
            }
            var wv = Chunk();
            if (n_base + r < n_rows_w) {
                wv = w_buf[(n_base + r) * dims.k_vecs + col];
            }
            for (var j = 0u; j < VALUES_PER_VEC; j++) {
                x_tile[r * TILE + c * VALUES_PER_VEC + j] = chunk_value(xv, j);
                w_tile[r * TILE + c * VALUES_PER_VEC + j] = chunk_value(wv, j);
            }
        }
        workgroupBarrier();
        for (var kk = 0u; kk < TILE; kk++) {
            var xs: array<f32, 4>;
            var ws: array<f32, 4>;
            for (var i = 0u; i < 4u; i++) {
                xs[i] = x_tile[(ty * PER_THREAD + i) * TILE + kk];
                ws[i] = w_tile[(tx * PER_THREAD + i) * TILE + kk];
            }
            for (var i = 0u; i < 4u; i++) {
                for (var j = 0u; j < 4u; j++) {
                    acc[i][j] = acc[i][j] + xs[i] * ws[j];
                }
            }
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < 4u; i++) {
        let row = row0 + ty * PER_THREAD + i;
        for (var j = 0u; j < 4u; j += 2u) {
            let n0 = n_base + tx * PER_THREAD + j;
            if (row < dims.m && n0 < dims.n) {
                store_out_pair(row, n0, finish(acc[i][j], n0), finish(acc[i][j + 1u], n0 + 1u));
            }
        }
    }
}

// SPDX-License-Identifier: MIT OR Apache-2.0
// Dense forward, tiled matrix-matrix shape (many rows: the prefill case).
// A workgroup of 8 x 8 invocations computes a 64-row x 32-output block of
// y; each invocation 8 rows x 4 outputs. Tiles of x and W^T, unpacked to
// f32, are staged in workgroup memory k-major, so that at each k the 8
// invocations of a row of the workgroup (which run side by side as SIMD
// lanes on CPU drivers, and in one warp on GPUs) read broadcast x vectors
// and consecutive W pairs. Each output sums k in order 0, 1, 2, ...
// CPU twin: the `DenseTiled` order of src/cpu/dense.rs.

#import storage
#import dense_bindings

const TILE_M: u32 = 64u; // rows per workgroup
const TILE_N: u32 = 32u; // outputs per workgroup
const TILE_K: u32 = 32u; // k per step; k_padded is a multiple of it
const VECS_PER_TILE_ROW: u32 = TILE_K / VALUES_PER_VEC;

// x_rows[k * 16 + q] holds rows 4q .. 4q+3 of the tile at k;
// w_pairs[k * 16 + p] holds outputs 2p and 2p + 1 of the tile at k.
var<workgroup> x_rows: array<vec4<Scalar>, 512>;
var<workgroup> w_pairs: array<vec2<Scalar>, 512>;

@compute @workgroup_size(8, 8)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let tx = lid % 8u; // output pairs tx and tx + 8 of the tile
    let ty = lid / 8u; // rows 8*ty .. 8*ty+7 of the tile
    let row0 = wg.y * TILE_M;
    let n_base = wg.x * TILE_N;
    let n_rows_w = w_rows();
    var acc: array<vec4<Scalar>, 8>;
    for (var i = 0u; i < 8u; i++) {
        acc[i] = vec4<Scalar>();
    }
    let k_tiles = dims.k_vecs / VECS_PER_TILE_ROW;
    for (var kt = 0u; kt < k_tiles; kt++) {
        // Stage both tiles, unpacked, k-major.
        for (var v = lid; v < TILE_M * VECS_PER_TILE_ROW; v += 64u) {
            let r = v / VECS_PER_TILE_ROW;
            let c = v % VECS_PER_TILE_ROW;
            let col = kt * VECS_PER_TILE_ROW + c;
            var xv = Chunk();
            if (row0 + r < dims.m) {
                xv = x_buf[(row0 + r) * dims.k_vecs + col];
            }
            for (var j = 0u; j < VALUES_PER_VEC; j++) {
                x_rows[(c * VALUES_PER_VEC + j) * 16u + r / 4u][r % 4u] = chunk_value(xv, j);
            }
        }
        for (var v = lid; v < TILE_N * VECS_PER_TILE_ROW; v += 64u) {
            let r = v / VECS_PER_TILE_ROW;
            let c = v % VECS_PER_TILE_ROW;
            let col = kt * VECS_PER_TILE_ROW + c;
            var wv = Chunk();
            if (n_base + r < n_rows_w) {
                wv = w_buf[(n_base + r) * dims.k_vecs + col];
            }
            for (var j = 0u; j < VALUES_PER_VEC; j++) {
                w_pairs[(c * VALUES_PER_VEC + j) * 16u + r / 2u][r % 2u] = chunk_value(wv, j);
            }
        }
        workgroupBarrier();
        for (var kk = 0u; kk < TILE_K; kk++) {
            let xa = x_rows[kk * 16u + 2u * ty];
            let xb = x_rows[kk * 16u + 2u * ty + 1u];
            let w = vec4<Scalar>(w_pairs[kk * 16u + tx], w_pairs[kk * 16u + 8u + tx]);
            acc[0] = acc[0] + xa.x * w;
            acc[1] = acc[1] + xa.y * w;
            acc[2] = acc[2] + xa.z * w;
            acc[3] = acc[3] + xa.w * w;
            acc[4] = acc[4] + xb.x * w;
            acc[5] = acc[5] + xb.y * w;
            acc[6] = acc[6] + xb.z * w;
            acc[7] = acc[7] + xb.w * w;
        }
        workgroupBarrier();
    }
    let n0 = n_base + 2u * tx;
    let n1 = n_base + 16u + 2u * tx;
    for (var i = 0u; i < 8u; i++) {
        let row = row0 + ty * 8u + i;
        let a = acc[i];
        if (row < dims.m && n0 < dims.n) {
            store_out_pair(row, n0, finish(a.x, n0), finish(a.y, n0 + 1u));
        }
        if (row < dims.m && n1 < dims.n) {
            store_out_pair(row, n1, finish(a.z, n1), finish(a.w, n1 + 1u));
        }
    }
}

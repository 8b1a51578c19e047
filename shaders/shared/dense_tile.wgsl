// SPDX-License-Identifier: MIT OR Apache-2.0
// The tiled matrix-matrix shape of the float, int4, weight-only int8 and
// float8 Dense kernels (many rows: the prefill case; the int8 kernel with
// dot4I8Packed keeps its own tiles of packed words, dense_int8_tiled.wgsl). A workgroup of 8 x 8 invocations computes a 64-row x
// 32-output block of y; each invocation 8 rows x 4 outputs. Tiles of x and
// of W^T, 32 k deep and already in the arithmetic type (unpacked,
// dequantized, decoded), are staged in workgroup memory k-major, so that at
// each k the 8 invocations of a row of the workgroup (side by side as SIMD
// lanes on CPU drivers, in one warp on GPUs) read broadcast x vectors and
// consecutive W pairs. Each output sums k in order 0, 1, 2, ...
//
// The x values of each depth come from `tile_x8` (the tile_x import: loaded by
// each invocation, or shared through subgroups of 8 where the adapter has
// them).
//
// The kernel provides `stage_tile(kt, row0, n_base, lid)`, which fills the
// tiles for k = 32 kt .. 32 kt + 31 with `put_x` and `put_w` (zeros past
// the last row and output), and `tile_output(sum, row, n) -> Scalar`, the
// value stored for a sum.

#import tile_x

const TILE_M: u32 = 64u; // rows per workgroup
const TILE_N: u32 = 32u; // outputs per workgroup
const TILE_K: u32 = 32u; // k per tile; k is padded to a multiple of it

// x_rows[kk * 16 + q] holds rows 4q .. 4q+3 of the tile at kk;
// w_pairs[kk * 16 + p] holds outputs 2p and 2p + 1 of the tile at kk.
var<workgroup> x_rows: array<vec4<Scalar>, 512>;
var<workgroup> w_pairs: array<vec2<Scalar>, 512>;

// Row r (of the tile's 64) at depth kk.
fn put_x(kk: u32, r: u32, v: Scalar) {
    x_rows[kk * 16u + r / 4u][r % 4u] = v;
}

// Output r (of the tile's 32) at depth kk.
fn put_w(kk: u32, r: u32, v: Scalar) {
    w_pairs[kk * 16u + r / 2u][r % 2u] = v;
}

// The whole product for workgroup `wg` over `k_tiles` tiles of k.
fn tiled_dense(wg: vec3<u32>, lid: u32, k_tiles: u32) {
    let tx = lid % 8u; // output pairs tx and tx + 8 of the tile
    let ty = lid / 8u; // rows 8*ty .. 8*ty+7 of the tile
    let row0 = wg.y * TILE_M;
    let n_base = wg.x * TILE_N;
    var acc: array<vec4<Scalar>, 8>;
    for (var i = 0u; i < 8u; i++) {
        acc[i] = vec4<Scalar>();
    }
    for (var kt = 0u; kt < k_tiles; kt++) {
        stage_tile(kt, row0, n_base, lid);
        workgroupBarrier();
        for (var kk = 0u; kk < TILE_K; kk++) {
            let x = tile_x8(kk, tx, ty);
            let xa = x[0];
            let xb = x[1];
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
            store_out_pair(row, n0, tile_output(a.x, row, n0), tile_output(a.y, row, n0 + 1u));
        }
        if (row < dims.m && n1 < dims.n) {
            store_out_pair(row, n1, tile_output(a.z, row, n1), tile_output(a.w, row, n1 + 1u));
        }
    }
}

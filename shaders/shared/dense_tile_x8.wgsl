// SPDX-License-Identifier: MIT OR Apache-2.0
// The x tile of shared/dense_tile.wgsl staged eight values at a time, for
// the quantized kernels (f32 arithmetic): each value passes through the
// kernel's `x_tile_values(vec4<f32>) -> vec4<f32>` (identity, or Keras's
// quantize-dequantize).

const X_CHUNKS_PER_8: u32 = 8u / VALUES_PER_VEC;

// Stages rows row0 .. row0+63 of x at k = 32 kt .. 32 kt + 31; a row of x
// holds `row_chunks` chunks.
fn stage_x_tile8(kt: u32, row0: u32, lid: u32, row_chunks: u32) {
    for (var v = lid; v < TILE_M * 4u; v += 64u) {
        let r = v / 4u;
        let e = v % 4u; // the tile's eight-value group
        var x = array<vec4<f32>, 2>();
        if (row0 + r < dims.m) {
            let c = (row0 + r) * row_chunks + (kt * TILE_K + 8u * e) / VALUES_PER_VEC;
            x = chunk8(x_buf[c], x_buf[c + X_CHUNKS_PER_8 - 1u]);
        }
        let lo = x_tile_values(x[0]);
        let hi = x_tile_values(x[1]);
        for (var j = 0u; j < 4u; j++) {
            put_x(8u * e + j, r, lo[j]);
            put_x(8u * e + 4u + j, r, hi[j]);
        }
    }
}

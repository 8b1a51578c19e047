// SPDX-License-Identifier: MIT OR Apache-2.0
// The x values of one depth of shared/dense_tile.wgsl's step, each
// invocation loading its eight rows from workgroup memory (two vectors).
// Where subgroups are exactly 8 invocations: tile_x_subgroup.wgsl.

// Rows 8 ty .. 8 ty + 7 of the tile at depth kk.
fn tile_x8(kk: u32, tx: u32, ty: u32) -> array<vec4<Scalar>, 2> {
    return array<vec4<Scalar>, 2>(x_rows[kk * 16u + 2u * ty], x_rows[kk * 16u + 2u * ty + 1u]);
}

// SPDX-License-Identifier: MIT OR Apache-2.0
// The x values of one depth of shared/dense_tile.wgsl's step, shared
// through the subgroup: the eight invocations of a row of the workgroup
// (tx 0 .. 7, one ty) need the same eight values, so each loads one and
// subgroupBroadcast hands all eight to every one. On CPU drivers, where
// each load from workgroup memory is a scalar load per lane and component,
// that is one load instead of two vec4 (the tiled kernels about 20% faster
// on lavapipe). Needs subgroups of exactly 8 invocations, formed from
// consecutive local invocation indices, so that lane tx holds tx (the host
// checks the size). Fallback: tile_x_plain.wgsl.

// Rows 8 ty .. 8 ty + 7 of the tile at depth kk.
fn tile_x8(kk: u32, tx: u32, ty: u32) -> array<vec4<Scalar>, 2> {
    let mine = x_rows[kk * 16u + 2u * ty + tx / 4u][tx % 4u];
    return array<vec4<Scalar>, 2>(
        vec4<Scalar>(subgroupBroadcast(mine, 0u), subgroupBroadcast(mine, 1u),
                     subgroupBroadcast(mine, 2u), subgroupBroadcast(mine, 3u)),
        vec4<Scalar>(subgroupBroadcast(mine, 4u), subgroupBroadcast(mine, 5u),
                     subgroupBroadcast(mine, 6u), subgroupBroadcast(mine, 7u)));
}

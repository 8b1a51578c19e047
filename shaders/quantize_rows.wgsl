// SPDX-License-Identifier: MIT OR Apache-2.0
// Keras's int8 activation quantizer (shared/quantize_rows_common.wgsl), one
// workgroup per row: the row's chunks split over 64 invocations, their
// maxima reduced by shared/workgroup_reduce.wgsl. For the matrix-vector and workgroup
// tiled products (GPUs, and the single row of a decode step).

#import quantize_rows_common
#import workgroup_reduce

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let row = wg.x;
    if (row >= qdims.m) {
        return;
    }
    var amax = 0.0;
    for (var c = lid; c < qdims.k_vecs; c += 64u) {
        amax = chunk_abs_max(amax, x_chunk(row, c));
    }
    let scale = row_scale(workgroup_reduce(lid, amax, true));
    for (var c = lid; c < qdims.k_vecs; c += 64u) {
        store_quantized(row, c, x_chunk(row, c), scale);
    }
    if (lid == 0u) {
        scale_buf[row] = scale;
    }
}

// SPDX-License-Identifier: MIT OR Apache-2.0
// Keras's int8 activation quantizer (shared/quantize_rows_common.wgsl), one
// invocation per row, eight rows per workgroup: no workgroup memory and no
// barrier, which CPU drivers pay for per workgroup (on lavapipe the
// workgroup-per-row kernel took 11 ms for 1024 rows of 1024). It runs
// before the register-tile products, which are for the same adapters.

#import quantize_rows_common

@compute @workgroup_size(8)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
    let row = id.x;
    if (row >= qdims.m) {
        return;
    }
    var amax = 0.0;
    for (var c = 0u; c < qdims.k_vecs; c++) {
        amax = chunk_abs_max(amax, x_chunk(row, c));
    }
    let scale = row_scale(amax);
    for (var c = 0u; c < qdims.k_vecs; c++) {
        store_quantized(row, c, x_chunk(row, c), scale);
    }
    scale_buf[row] = scale;
}

// SPDX-License-Identifier: MIT OR Apache-2.0
// Dense forward, tiled shape, for adapters that load storage buffers lane by
// lane (CPU drivers): x and W^T fetched as 16-byte chunks from texture
// mirrors, each invocation keeping ROWS rows x OUTPUTS outputs of y in
// registers, without workgroup memory or barriers. A workgroup is 8 lanes on
// the same rows and neighbouring output pairs; with subgroups, lane i fetches
// x row i of each 8 and subgroupBroadcast hands it to the others, so each
// lane fetches ROWS / 8 x chunks and OUTPUTS W chunks per 16 bytes of k.
// Each output sums k in order 0, 1, 2, ... (mul then add), as the tiled CPU
// twin does (`cpu::dense::dense` in the tiled shape).
//
// The body (`main`) is generated for the tile (src/gpu/shaders.rs,
// `register_tile`): NIR does not unroll the tile's loops, and with the
// accumulators in an indexed array it ran 3.5x slower.

#import storage

#import dense_dims
// bias: [n rounded up to even], Scalar (already rounded to the compute dtype).
@group(0) @binding(3) var<storage, read> bias_buf: array<Scalar>;
// y: [m, y_row_words] in the storage format.
@group(0) @binding(4) var<storage, read_write> y_buf: array<OutWord>;

#import dense_output
#import chunk_texture
#import register_tile

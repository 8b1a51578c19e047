// SPDX-License-Identifier: MIT OR Apache-2.0
// Keras's float8 Dense, tiled shape, for adapters that load storage buffers
// lane by lane (CPU drivers): x and the weight codes of float8_weights.wgsl
// fetched as 16-byte chunks from texture mirrors into register tiles, as
// dense_tex_tile.wgsl does for floats. Each lane quantize-dequantizes the x
// values it fetches (qdq4) before sharing them, and decodes and scales its
// weight codes as dense_float8_tiled.wgsl stages them (weights4); each
// output sums k in order, as the tiled CPU twin does (`cpu::dense::dense`).
//
// The body (`main`) is generated for the tile (src/gpu/shaders.rs,
// `register_tile`).

#import storage
#import float8_weights

#import chunk_texture
#import register_tile

// SPDX-License-Identifier: MIT OR Apache-2.0
// Keras's int4 Dense (and weight-only int8, WEIGHT_BITS 8), tiled shape, for
// adapters that load storage buffers lane by lane (CPU drivers): x and the
// packed weights of int4_weights.wgsl fetched as 16-byte chunks from texture
// mirrors into register tiles, as dense_tex_tile.wgsl does for floats. The
// weights are used as dense_int4_tiled.wgsl stages them: q per channel (the
// sum divided by s_w at the end), scale · (q - zero) per group; each output
// sums k in order, as the tiled CPU twin does (`cpu::dense::dense`).
//
// The body (`main`) is generated for the tile and the weight width
// (src/gpu/shaders.rs, `register_tile`).

#import storage
#import int4_weights

#import chunk_texture

// Scale and zero point of output j for chunk kv (32 k) where groups are
// whole 32-k steps (one group per chunk); unused otherwise.
fn chunk_group(kv: u32, j: u32) -> vec2<f32> {
    if (GROUPING != GROUPS_OF_STEPS) {
        return vec2<f32>(0.0);
    }
    let g = group_of(kv * 32u);
    return vec2<f32>(scale_at(g * dims.n_padded + j), zero_point(g, j));
}

// Weights k0 .. k0 + 3 of output j as the sums take them: q per channel,
// scale · (q - zero) per group (`grouped_weight`, from the chunk's tables
// `g` where the chunk is one group).
fn tile_weights(q: vec4<f32>, k0: u32, j: u32, g: vec2<f32>) -> vec4<f32> {
    if (GROUPING == PER_CHANNEL) {
        return q;
    }
    if (GROUPING == GROUPS_OF_STEPS) {
        return vec4<f32>(g.x) * (q - vec4<f32>(g.y));
    }
    return vec4<f32>(grouped_weight(q.x, k0, j), grouped_weight(q.y, k0 + 1u, j),
                     grouped_weight(q.z, k0 + 2u, j), grouped_weight(q.w, k0 + 3u, j));
}

#import register_tile

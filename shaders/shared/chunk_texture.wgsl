// SPDX-License-Identifier: MIT OR Apache-2.0
// x and W^T of the register-tile kernels as chunk textures (src/gpu/mirror.rs),
// bindings 1 and 2: chunk i sits at texel (i mod 4096, i / 4096) of an
// rgba32uint texture.

// x: [m, k padded] chunks (in the storage format, or int8 for the int8 tiles).
@group(0) @binding(1) var x_tex: texture_2d<u32>;
// W^T: [n rounded up to even, k padded] chunks of the weights as uploaded.
@group(0) @binding(2) var w_tex: texture_2d<u32>;

fn x_chunk(i: u32) -> Chunk {
    return Chunk(textureLoad(x_tex, vec2<u32>(i & 4095u, i >> 12u), 0));
}

fn w_chunk(i: u32) -> Chunk {
    return Chunk(textureLoad(w_tex, vec2<u32>(i & 4095u, i >> 12u), 0));
}

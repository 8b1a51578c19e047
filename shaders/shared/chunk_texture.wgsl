// SPDX-License-Identifier: MIT OR Apache-2.0
// Chunks of x and W^T fetched from their textures (src/gpu/mirror.rs): chunk
// i sits at texel (i mod 4096, i / 4096) of an rgba32uint texture. The kernel
// declares `x_tex` and `w_tex`.

fn x_chunk(i: u32) -> Chunk {
    return Chunk(textureLoad(x_tex, vec2<u32>(i & 4095u, i >> 12u), 0));
}

fn w_chunk(i: u32) -> Chunk {
    return Chunk(textureLoad(w_tex, vec2<u32>(i & 4095u, i >> 12u), 0));
}

// SPDX-License-Identifier: MIT OR Apache-2.0
// What the element-wise kernels share (add, activate, layer_norm): which
// 16-byte chunk an invocation of a 2-D dispatch of 64-wide workgroups
// handles, and the store of a pair of values of chunk `c` in the storage
// format. The kernel provides `y_buf`.

fn chunk_index(gid: vec3<u32>, groups: vec3<u32>) -> u32 {
    return gid.x + gid.y * groups.x * 64u;
}

// Values 2p and 2p + 1 of chunk c (chunks of the whole tensor, in order).
fn store_chunk_pair(c: u32, p: u32, a: Scalar, b: Scalar) {
    let words = pack_out_pair(a, b);
    let base = (c * VALUES_PER_VEC / 2u + p) * OUT_WORDS_PER_PAIR;
    y_buf[base] = words.x;
    if (OUT_WORDS_PER_PAIR == 2u) {
        y_buf[base + 1u] = words.y;
    }
}

// SPDX-License-Identifier: MIT OR Apache-2.0
// The streaming-read probe over vectors of four `Word`s (the includer's
// alias, with `fold_word(Word) -> u32`): each invocation sums a contiguous
// run and writes the sum, so no read can be dropped. CPU twin:
// `cpu::probes::read_sums`.

#import probe_dims
@group(0) @binding(1) var<storage, read> data: array<vec4<Word>>;
@group(0) @binding(2) var<storage, read_write> sums: array<u32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let start = gid.x * dims.run;
    if (start >= dims.vecs) {
        return;
    }
    let end = min(start + dims.run, dims.vecs);
    // Four consecutive loads per iteration into four sums (one stream per
    // invocation: on lavapipe, more streams per invocation read slower).
    var a0 = vec4<Word>();
    var a1 = vec4<Word>();
    var a2 = vec4<Word>();
    var a3 = vec4<Word>();
    var i = start;
    for (; i + 4u <= end; i += 4u) {
        a0 += data[i];
        a1 += data[i + 1u];
        a2 += data[i + 2u];
        a3 += data[i + 3u];
    }
    for (; i < end; i++) {
        a0 += data[i];
    }
    let acc = (a0 ^ a1) ^ (a2 ^ a3);
    sums[gid.x] = fold_word(acc.x ^ acc.y ^ acc.z ^ acc.w);
}

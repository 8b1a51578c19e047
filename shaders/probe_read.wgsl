// SPDX-License-Identifier: MIT OR Apache-2.0
// Roofline probe: streaming read. Each invocation sums a contiguous run of
// vec4<u32> (the widest load) and writes the sum, so no read can be dropped.
// Bytes moved = the buffer read + 4 per invocation written.

#import probe_dims
@group(0) @binding(1) var<storage, read> data: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read_write> sums: array<u32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let start = gid.x * dims.run;
    if (start >= dims.vecs) {
        return;
    }
    let end = min(start + dims.run, dims.vecs);
    var acc = vec4<u32>(0u);
    for (var i = start; i < end; i++) {
        acc += data[i];
    }
    sums[gid.x] = acc.x ^ acc.y ^ acc.z ^ acc.w;
}

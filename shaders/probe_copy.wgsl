// SPDX-License-Identifier: MIT OR Apache-2.0
// Roofline probe: streaming copy. Each invocation copies a contiguous run
// of vec4<u32> (the widest load and store in core WGSL). Bytes moved =
// read + written.

#import probe_dims
@group(0) @binding(1) var<storage, read> data: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read_write> copy: array<vec4<u32>>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let start = gid.x * dims.run;
    let end = min(start + dims.run, dims.vecs);
    for (var i = start; i < end; i++) {
        copy[i] = data[i];
    }
}

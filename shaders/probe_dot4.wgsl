// SPDX-License-Identifier: MIT OR Apache-2.0
// Roofline probe: packed int8 dot products. Each invocation runs
// `iterations` rounds of 4 independent `dot4I8Packed` chains on registers
// (8 integer operations each: 4 multiplies, 4 adds) and writes a result.
// Against the FMA probe it tells whether the adapter has the instruction
// or emulates it (wgpu does not say).

#import probe_dims
@group(0) @binding(1) var<storage, read> seed: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read_write> sums: array<u32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let m = seed[0].x | 0x01010101u;
    var a = seed[0].y ^ gid.x;
    var b = seed[0].z ^ gid.x;
    var c = seed[0].w ^ gid.x;
    var d = a ^ b;
    for (var i = 0u; i < dims.iterations; i++) {
        a = bitcast<u32>(dot4I8Packed(a, m)) + a;
        b = bitcast<u32>(dot4I8Packed(b, m)) + b;
        c = bitcast<u32>(dot4I8Packed(c, m)) + c;
        d = bitcast<u32>(dot4I8Packed(d, m)) + d;
    }
    sums[gid.x] = a ^ b ^ c ^ d;
}

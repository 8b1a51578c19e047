// SPDX-License-Identifier: MIT OR Apache-2.0
// Roofline probe: packed int8 dot products. Each invocation runs
// `iterations` rounds of four steps of 16 independent chains (four vec4 of
// u32), a `dot4I8Packed` per chain and step added to the chain (8 integer
// operations per dot: 4 multiplies, 4 adds; 512 per round, as the FMA
// probe), on registers, and writes a result. Against the FMA probe it tells
// whether the adapter has the instruction or emulates it (wgpu does not
// say). With 4 chains of one dot per round lavapipe read 64 Gop/s where it
// can do 115. Integer arithmetic, exact: the CPU twin
// (`cpu::probes::dot4_sums`) gives the same bits.

#import probe_dims
@group(0) @binding(1) var<storage, read> seed: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read_write> sums: array<u32>;

// One dot product per lane (4 independent chains), added to the chain.
fn step4(a: vec4<u32>, m: u32) -> vec4<u32> {
    return bitcast<vec4<u32>>(vec4<i32>(dot4I8Packed(a.x, m), dot4I8Packed(a.y, m),
                                        dot4I8Packed(a.z, m), dot4I8Packed(a.w, m))) + a;
}

// The 16 chains.
struct Chains {
    a0: vec4<u32>,
    a1: vec4<u32>,
    a2: vec4<u32>,
    a3: vec4<u32>,
}

// One step of every chain, the chains interleaved.
fn step_all(c: Chains, m: u32) -> Chains {
    return Chains(step4(c.a0, m), step4(c.a1, m), step4(c.a2, m), step4(c.a3, m));
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let m = seed[0].x | 0x01010101u;
    let s = seed[0] ^ vec4<u32>(gid.x);
    var c = Chains(s, s.yzwx + 1u, s.zwxy + 2u, s.wxyz + 3u);
    for (var i = 0u; i < dims.iterations; i++) {
        // Four steps per round, written out: an inner loop costs lavapipe
        // its masked stores again.
        c = step_all(step_all(step_all(step_all(c, m), m), m), m);
    }
    let r = (c.a0 ^ c.a1) ^ (c.a2 ^ c.a3);
    sums[gid.x] = (r.x ^ r.y) ^ (r.z ^ r.w);
}

// SPDX-License-Identifier: MIT OR Apache-2.0
// Roofline probe: arithmetic throughput. Each invocation runs `iterations`
// rounds of 4 independent vec4<f32> fused multiply-adds on registers
// (32 FLOP per round) and writes a result, so the work can't be dropped.

#import probe_dims
@group(0) @binding(1) var<storage, read> seed: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read_write> sums: array<u32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let s = bitcast<vec4<f32>>(seed[0]);
    var a = s + vec4<f32>(f32(gid.x));
    var b = s * 0.5;
    var c = s * 0.25;
    var d = s * 0.125;
    let m = vec4<f32>(0.999);
    let k = vec4<f32>(0.001);
    for (var i = 0u; i < dims.iterations; i++) {
        a = fma(a, m, k);
        b = fma(b, m, k);
        c = fma(c, m, k);
        d = fma(d, m, k);
    }
    let r = a + b + c + d;
    sums[gid.x] = bitcast<u32>(r.x + r.y + r.z + r.w);
}

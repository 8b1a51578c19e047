// SPDX-License-Identifier: MIT OR Apache-2.0
// Roofline probe: arithmetic throughput. Each invocation runs `iterations`
// rounds of 16 independent vec4<f32> chains, four fused multiply-adds each
// (512 FLOP per round), on registers, and writes a result, so the work
// can't be dropped. Enough independent chains that latency does not bound
// it, and four operations per chain and round so that the loop's own cost
// (a masked store per variable and iteration on lavapipe) is small; with 4
// chains of one FMA, lavapipe read 60 GFLOP/s where it can do 165. 16 vec4
// (64 registers) stay within a GPU thread's registers.
//
// The seed holds m, k, base, step (f32): every FMA is a * m + k, and chain
// c of invocation g starts at base + (g mod 64) + step * c, lanes 0, 1/4,
// 1/2, 3/4 above. m and k come from memory, so nothing folds at compile
// time; with m = 1 and k a power of two every value is exact, fused or
// not, and the CPU twin (`cpu::probes::fma_sums`) gives the same bits.

#import probe_dims
@group(0) @binding(1) var<storage, read> seed: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read_write> sums: array<u32>;

// Four dependent FMAs (8 FLOP per lane).
fn round4(a: vec4<f32>, m: vec4<f32>, k: vec4<f32>) -> vec4<f32> {
    return fma(fma(fma(fma(a, m, k), m, k), m, k), m, k);
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let seed_values = bitcast<vec4<f32>>(seed[0]);
    let m = vec4<f32>(seed_values.x);
    let k = vec4<f32>(seed_values.y);
    let step = seed_values.w;
    let s = vec4<f32>(seed_values.z + f32(gid.x % 64u)) + vec4<f32>(0.0, 0.25, 0.5, 0.75);
    var a0 = s;
    var a1 = s + step;
    var a2 = s + 2.0 * step;
    var a3 = s + 3.0 * step;
    var a4 = s + 4.0 * step;
    var a5 = s + 5.0 * step;
    var a6 = s + 6.0 * step;
    var a7 = s + 7.0 * step;
    var a8 = s + 8.0 * step;
    var a9 = s + 9.0 * step;
    var a10 = s + 10.0 * step;
    var a11 = s + 11.0 * step;
    var a12 = s + 12.0 * step;
    var a13 = s + 13.0 * step;
    var a14 = s + 14.0 * step;
    var a15 = s + 15.0 * step;
    for (var i = 0u; i < dims.iterations; i++) {
        a0 = round4(a0, m, k);
        a1 = round4(a1, m, k);
        a2 = round4(a2, m, k);
        a3 = round4(a3, m, k);
        a4 = round4(a4, m, k);
        a5 = round4(a5, m, k);
        a6 = round4(a6, m, k);
        a7 = round4(a7, m, k);
        a8 = round4(a8, m, k);
        a9 = round4(a9, m, k);
        a10 = round4(a10, m, k);
        a11 = round4(a11, m, k);
        a12 = round4(a12, m, k);
        a13 = round4(a13, m, k);
        a14 = round4(a14, m, k);
        a15 = round4(a15, m, k);
    }
    let r = (((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7)))
        + (((a8 + a9) + (a10 + a11)) + ((a12 + a13) + (a14 + a15)));
    sums[gid.x] = bitcast<u32>(r.x + r.y + r.z + r.w);
}

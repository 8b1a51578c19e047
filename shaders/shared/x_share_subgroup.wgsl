// SPDX-License-Identifier: MIT OR Apache-2.0
// The x values of a 32-k step of the quantized matrix-vector kernels,
// shared through the subgroup: each invocation loads one quarter (four
// values) and prepares it (`prepared_x`, the kernel's), and
// subgroupBroadcast hands the eight quarters to every invocation. On CPU
// drivers, where each invocation's load costs a scalar load per component,
// this replaces 32 loads per invocation and step by 4. Needs subgroups of
// at least 8 invocations (the host checks) with all of them present (the
// kernels do not return early). Fallback: x_share_plain.wgsl.

#import x_quarter

struct Invocation {
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(subgroup_invocation_id) lane: u32,
}

// The step's x as eight quarters (values 4q .. 4q+3), from chunk c0.
fn x_step(inv: Invocation, c0: u32) -> array<vec4<f32>, 8> {
    let mine = prepared_x(x_quarter(c0, inv.lane % 8u));
    return array<vec4<f32>, 8>(
        subgroupBroadcast(mine, 0u), subgroupBroadcast(mine, 1u),
        subgroupBroadcast(mine, 2u), subgroupBroadcast(mine, 3u),
        subgroupBroadcast(mine, 4u), subgroupBroadcast(mine, 5u),
        subgroupBroadcast(mine, 6u), subgroupBroadcast(mine, 7u));
}

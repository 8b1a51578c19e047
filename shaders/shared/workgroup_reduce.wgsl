// SPDX-License-Identifier: MIT OR Apache-2.0
// A sum or maximum over the 64 invocations of a workgroup, the same for
// all of them, in a fixed order: the partial values added (or compared) as
// a tree, i += i + 32, + 16, ... (the CPU twins repeat it). Called in
// uniform control flow. Each invocation evaluates the whole tree from the
// published partials itself: two barriers instead of one a level, which
// CPU drivers pay for (lavapipe switches between its SIMD groups at each).

const REDUCE_THREADS: u32 = 64u;
var<workgroup> partial: array<f32, 64>;

fn reduce_pair(a: f32, b: f32, is_max: bool) -> f32 {
    return select(a + b, max(a, b), is_max);
}

// Element i of the tree after the step of half 16: (i, i + 32) and
// (i + 16, i + 48) combined; v8, v4, v2 the steps after it.
fn reduce_v16(i: u32, m: bool) -> f32 {
    return reduce_pair(reduce_pair(partial[i], partial[i + 32u], m),
                       reduce_pair(partial[i + 16u], partial[i + 48u], m), m);
}

fn reduce_v8(i: u32, m: bool) -> f32 {
    return reduce_pair(reduce_v16(i, m), reduce_v16(i + 8u, m), m);
}

fn reduce_v4(i: u32, m: bool) -> f32 {
    return reduce_pair(reduce_v8(i, m), reduce_v8(i + 4u, m), m);
}

fn reduce_v2(i: u32, m: bool) -> f32 {
    return reduce_pair(reduce_v4(i, m), reduce_v4(i + 2u, m), m);
}

fn workgroup_reduce(lid: u32, v: f32, is_max: bool) -> f32 {
    partial[lid] = v;
    workgroupBarrier();
    let total = reduce_pair(reduce_v2(0u, is_max), reduce_v2(1u, is_max), is_max);
    workgroupBarrier();
    return total;
}

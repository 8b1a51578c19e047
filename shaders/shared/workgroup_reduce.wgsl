// SPDX-License-Identifier: MIT OR Apache-2.0
// A sum or maximum over the 64 invocations of a workgroup, the same for
// all of them, in a fixed order: the partial values added (or compared) as
// a tree, i += i + 32, + 16, ... (the CPU twins repeat it). Called in
// uniform control flow.

const REDUCE_THREADS: u32 = 64u;
var<workgroup> partial: array<f32, 64>;

fn workgroup_reduce(lid: u32, v: f32, is_max: bool) -> f32 {
    partial[lid] = v;
    workgroupBarrier();
    for (var half = REDUCE_THREADS / 2u; half > 0u; half = half / 2u) {
        if (lid < half) {
            let o = partial[lid + half];
            partial[lid] = select(partial[lid] + o, max(partial[lid], o), is_max);
        }
        workgroupBarrier();
    }
    let total = partial[0];
    workgroupBarrier();
    return total;
}

// SPDX-License-Identifier: MIT OR Apache-2.0
//! CPU twins of the GPU kernels: the same inputs, the same order of
//! summation, the same rounding, so that a GPU result can be checked
//! against a value computed the same way. Host code only: no GPU types.

pub mod add;
pub mod attention;
pub mod cast;
pub mod dense;
pub mod embedding;
pub mod norm;
pub mod probes;
pub mod rope;

/// Invocations of a reducing workgroup (`REDUCE_THREADS` in
/// shaders/shared/workgroup_reduce.wgsl).
pub(crate) const REDUCE_THREADS: usize = 64;

/// shaders/shared/workgroup_reduce.wgsl's tree over one partial value per
/// invocation (`part(i)`): a sum, or a maximum.
pub(crate) fn workgroup_reduce(part: impl Fn(usize) -> f32, is_max: bool) -> f32 {
    let mut p: Vec<f32> = (0..REDUCE_THREADS).map(part).collect();
    let mut half = REDUCE_THREADS / 2;
    while half > 0 {
        for i in 0..half {
            p[i] = if is_max {
                p[i].max(p[i + half])
            } else {
                p[i] + p[i + half]
            };
        }
        half /= 2;
    }
    p[0]
}

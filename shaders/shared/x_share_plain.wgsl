// SPDX-License-Identifier: MIT OR Apache-2.0
// The x values of a 32-k step of the quantized matrix-vector kernels, for
// adapters without subgroups (of at least 8): every invocation loads and
// prepares all eight quarters itself. Same values as x_share_subgroup.wgsl.

#import x_quarter

struct Invocation {
    @builtin(global_invocation_id) gid: vec3<u32>,
}

// The step's x as eight quarters (values 4q .. 4q+3), from chunk c0.
fn x_step(inv: Invocation, c0: u32) -> array<vec4<f32>, 8> {
    return array<vec4<f32>, 8>(
        prepared_x(x_quarter(c0, 0u)), prepared_x(x_quarter(c0, 1u)),
        prepared_x(x_quarter(c0, 2u)), prepared_x(x_quarter(c0, 3u)),
        prepared_x(x_quarter(c0, 4u)), prepared_x(x_quarter(c0, 5u)),
        prepared_x(x_quarter(c0, 6u)), prepared_x(x_quarter(c0, 7u)));
}

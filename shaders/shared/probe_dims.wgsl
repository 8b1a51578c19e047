// SPDX-License-Identifier: MIT OR Apache-2.0
// The uniform of every roofline probe. Stays in sync with `ProbeDims` in
// src/gpu/probes.rs.

struct ProbeDims {
    vecs: u32,       // vec4<u32> in the input (streaming probes)
    run: u32,        // vec4<u32> per invocation (streaming probes)
    iterations: u32, // rounds per invocation (arithmetic probes)
    _pad: u32,
}

@group(0) @binding(0) var<uniform> dims: ProbeDims;

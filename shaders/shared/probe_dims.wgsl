// SPDX-License-Identifier: MIT OR Apache-2.0
// The uniform of every roofline probe. Stays in sync with `ProbeDims` in
// src/gpu/probes.rs.

struct ProbeDims {
    vecs: u32,       // vectors in the input (streaming probes; vec4<u32>, or vec4<u64> for the wide read)
    run: u32,        // vectors per invocation (streaming probes)
    iterations: u32, // rounds per invocation (arithmetic probes)
    _pad: u32,
}

@group(0) @binding(0) var<uniform> dims: ProbeDims;

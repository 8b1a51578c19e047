// SPDX-License-Identifier: MIT OR Apache-2.0
// Dense forward, matrix-vector shape, W^T read with 32-byte loads
// (SHADER_INT64; storage formats with vec4<u32> chunks): for CPU drivers,
// which pay per load instruction. The same numbers as dense_matvec.wgsl;
// the body is shared/matvec_body.wgsl.

#import storage
#import dense_bindings
#import dense_weights_wide
#import matvec_body

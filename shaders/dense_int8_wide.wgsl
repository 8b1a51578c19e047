// SPDX-License-Identifier: MIT OR Apache-2.0
// Keras's int8 Dense as dense_int8.wgsl, W^T read with 32-byte loads
// (SHADER_INT64): for CPU drivers, which pay per load instruction. The same
// sums; the body is shared/int8_matvec_body.wgsl.
// CPU twin: `cpu::dense::dense`.

#import storage

#import int8_bindings
#import dense_weights_wide
#import int8_matvec_body

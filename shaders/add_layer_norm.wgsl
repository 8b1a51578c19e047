// SPDX-License-Identifier: MIT OR Apache-2.0
// A residual add and the LayerNormalization (or RMS normalization) of its
// sum in one dispatch: s = a + b exactly as add.wgsl computes and rounds
// it (written to s_buf, which later layers read), then y = the norm of s
// exactly as layer_norm.wgsl (shared/layer_norm_body.wgsl) computes it
// from s as stored. One workgroup per row; each invocation recomputes the
// sums of its chunks where the body reads them (two loads instead of one,
// and a dispatch less: lavapipe pays about 40 us per dispatch). Recorded by
// `Graph::layer_norm` in place of an add it follows (src/gpu/norm.rs). CPU
// twins: `cpu::add::binary`, then `cpu::norm::layer_norm` or
// `cpu::norm::rms_norm`.

#import storage
#import elementwise
#import workgroup_reduce
#import norm_dims
#import add_norm_input

// Not quantized here (add_layer_norm_quantize.wgsl quantizes).
const QUANTIZES_OUTPUT: bool = false;
fn keep_quantized(i: u32, word: u32) {}
fn keep_scale(row: u32, scale: f32) {}

#import layer_norm_body

// SPDX-License-Identifier: MIT OR Apache-2.0
// Keras's LayerNormalization over the last axis, one workgroup per row, in
// f32 whatever the storage format (Keras computes norms in at least
// float32): mean = sum / n, variance = sum((x - mean)^2) / n (centred, as
// jnp.var), inv = gamma / sqrt(variance + epsilon), y = x * inv +
// (beta - mean * inv) (Keras's `x * inv + res`), rounded to the storage
// format on store; padding columns written 0.
//
// Sums: invocation i adds the values of chunks i, i + 64, ... in order,
// then the 64 partial sums are added as a tree (i += i + 32, + 16, ...).
// RMS = 1 is Keras's RMSNormalization (ops.rms_normalization): no mean,
// no beta, rms = sum(x^2) / n, y = (x * (1 / sqrt(rms + epsilon))) * scale.
// Stay in sync with `Graph::layer_norm` (src/gpu/norm.rs). CPU twins:
// `cpu::norm::layer_norm`, `cpu::norm::rms_norm`.

#import storage
#import elementwise
#import workgroup_reduce
#import norm_dims

@group(0) @binding(0) var<uniform> dims: NormDims;
@group(0) @binding(1) var<storage, read> x_buf: array<Chunk>;
// gamma (cols values) then beta (cols values), f32.
@group(0) @binding(2) var<storage, read> params: array<f32>;
@group(0) @binding(3) var<storage, read_write> y_buf: array<OutWord>;

// Chunk i of the rows normalized.
fn x_chunk(i: u32) -> Chunk {
    return x_buf[i];
}

// Nothing to keep of an input chunk (add_layer_norm.wgsl keeps its sums).
fn keep_input(i: u32, v: Chunk) {}

// Not quantized here (add_layer_norm_quantize.wgsl quantizes).
const QUANTIZES_OUTPUT: bool = false;
fn keep_quantized(i: u32, word: u32) {}
fn keep_scale(row: u32, scale: f32) {}

#import layer_norm_body


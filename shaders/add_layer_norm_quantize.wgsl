// SPDX-License-Identifier: MIT OR Apache-2.0
// add_layer_norm.wgsl (a residual add and the norm of its sum) and Keras's
// int8 activation quantizer of the norm's output in one dispatch, with
// shaders/quantize_rows.wgsl's numbers: recorded by `Graph::dense` in place
// of an add_layer_norm.wgsl whose output an int8 Dense quantizes
// (src/gpu/dense.rs). CPU twins: `cpu::add::binary`, `cpu::norm`, then
// `quant::abs_max::quantize_rows`.

#import storage
#import elementwise
#import workgroup_reduce
#import norm_dims
#import add_norm_input

// Keras's int8 activation quantizer of the norm's output, for the int8
// Dense layers that read it: q words (k padded / 4 a row) and a scale a row,
// as shaders/quantize_rows.wgsl writes them.
const QUANTIZES_OUTPUT: bool = true;
@group(0) @binding(6) var<storage, read_write> q_buf: array<u32>;
@group(0) @binding(7) var<storage, read_write> scale_buf: array<f32>;

fn keep_quantized(i: u32, word: u32) {
    q_buf[i] = word;
}

fn keep_scale(row: u32, scale: f32) {
    scale_buf[row] = scale;
}

#import layer_norm_body

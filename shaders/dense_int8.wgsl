// SPDX-License-Identifier: MIT OR Apache-2.0
// Keras's int8 Dense: activations quantized per row (quantize_rows.wgsl),
// weights per output column, products accumulated exactly in i32 with
// dot4I8Packed (16 per 16-byte chunk), then y = f32(acc) / (s_w * s_x),
// bias, activation, stored in the compute dtype's format. One invocation per
// (row, eight outputs), as dense_matvec.wgsl.
// CPU twin: `cpu::dense::dense`.

#import storage

#import int8_bindings
#import dense_weights
#import int8_matvec_body

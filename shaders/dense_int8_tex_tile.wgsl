// SPDX-License-Identifier: MIT OR Apache-2.0
// Keras's int8 Dense, tiled shape, for adapters that load storage buffers
// lane by lane (CPU drivers): the quantized activations (quantize_rows.wgsl)
// and int8 weights of dense_int8.wgsl fetched as 16-byte chunks from texture
// mirrors into register tiles, as dense_tex_tile.wgsl does for floats. The
// int8 values are multiplied as f32: their products and sums of up to 1024
// of them are exact there, and the kernel folds them into i32 every 1024 k,
// so y is what dot4I8Packed's exact sums give (`cpu::dense::dense`), at the
// cost of an FMA per product where lavapipe emulates dot4I8Packed.
//
// The body (`main`) is generated for the tile (src/gpu/shaders.rs).

#import storage

// Write the raw i32 accumulators instead of y (for tests of the twin).
override WRITE_ACCUMULATOR: bool = false;

#import dense_dims
// bias: [n rounded up to even], Scalar.
@group(0) @binding(3) var<storage, read> bias_buf: array<Scalar>;
// y: [m, y_row_words] in the storage format (i32 accumulators when WRITE_ACCUMULATOR).
@group(0) @binding(4) var<storage, read_write> y_buf: array<OutWord>;
// Per-row activation scales [m] and per-column weight scales [n rounded up to even].
@group(0) @binding(5) var<storage, read> x_scale: array<f32>;
@group(0) @binding(6) var<storage, read> w_scale: array<f32>;

#import dense_output
#import chunk_texture

// Outputs n and n + 1 of a row from their exact sums (n even, n < dims.n).
fn store_sums(row: u32, n: u32, a: i32, b: i32) {
    if (WRITE_ACCUMULATOR) {
        // Only for 32-bit outputs: one word per value.
        let base = row * dims.y_row_words;
        y_buf[base + n] = bitcast<OutWord>(a);
        if (n + 1u < dims.n) { y_buf[base + n + 1u] = bitcast<OutWord>(b); }
        return;
    }
    let va = finish(Scalar(f32(a) / (w_scale[n] * x_scale[row])), n);
    let vb = finish(Scalar(f32(b) / (w_scale[n + 1u] * x_scale[row])), n + 1u);
    store_out_pair(row, n, va, vb);
}

#import register_tile

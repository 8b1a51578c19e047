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

struct NormDims {
    cols: u32,     // values per row
    chunks: u32,   // 16-byte chunks per padded row
    rows: u32,
    epsilon: f32,
}

@group(0) @binding(0) var<uniform> dims: NormDims;
@group(0) @binding(1) var<storage, read> x_buf: array<Chunk>;
// gamma (cols values) then beta (cols values), f32.
@group(0) @binding(2) var<storage, read> params: array<f32>;
@group(0) @binding(3) var<storage, read_write> y_buf: array<OutWord>;

const THREADS: u32 = REDUCE_THREADS;
override RMS: u32 = 0u;

@compute @workgroup_size(64)
fn main(@builtin(local_invocation_index) lid: u32,
        @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) groups: vec3<u32>) {
    let row = wid.x + wid.y * groups.x;
    // Uniform control flow: a whole workgroup leaves together.
    if (row >= dims.rows) {
        return;
    }
    let n = f32(dims.cols);
    let base = row * dims.chunks;
    var sum = 0.0;
    if (RMS == 0u) {
        for (var c = lid; c < dims.chunks; c += THREADS) {
            let v = x_buf[base + c];
            for (var j = 0u; j < VALUES_PER_VEC; j++) {
                sum = sum + f32(chunk_value(v, j));
            }
        }
    }
    // RMS: the mean is 0 (sum stays 0), so the "variance" below is sum(x^2) / n.
    let mean = workgroup_reduce(lid, sum, false) / n;
    var squares = 0.0;
    for (var c = lid; c < dims.chunks; c += THREADS) {
        let v = x_buf[base + c];
        for (var j = 0u; j < VALUES_PER_VEC; j++) {
            if (c * VALUES_PER_VEC + j < dims.cols) {
                let d = f32(chunk_value(v, j)) - mean;
                squares = squares + d * d;
            }
        }
    }
    let variance = workgroup_reduce(lid, squares, false) / n;
    let rstd = 1.0 / sqrt(variance + dims.epsilon);
    for (var c = lid; c < dims.chunks; c += THREADS) {
        let v = x_buf[base + c];
        for (var p = 0u; p < VALUES_PER_VEC / 2u; p++) {
            var out = vec2<f32>(0.0);
            for (var h = 0u; h < 2u; h++) {
                let j = c * VALUES_PER_VEC + 2u * p + h;
                if (j < dims.cols && RMS == 1u) {
                    out[h] = f32(chunk_value(v, 2u * p + h)) * rstd * params[j];
                } else if (j < dims.cols) {
                    let inv = rstd * params[j];
                    out[h] = f32(chunk_value(v, 2u * p + h)) * inv + (params[dims.cols + j] - mean * inv);
                }
            }
            store_chunk_pair(base + c, p, Scalar(out.x), Scalar(out.y));
        }
    }
}

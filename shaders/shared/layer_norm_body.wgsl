// SPDX-License-Identifier: MIT OR Apache-2.0
// The body of the norm kernels (layer_norm.wgsl, add_layer_norm.wgsl),
// which differ in where a row's chunks come from (`x_chunk`) and what they
// keep of them (`keep_input`, called once per chunk), and whether they
// also quantize the output for an int8 Dense (`QUANTIZES_OUTPUT`; the
// codes and the row's scale go to `keep_quantized` and `keep_scale`). What it computes: layer_norm.wgsl.

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
            let v = x_chunk(base + c);
            for (var j = 0u; j < VALUES_PER_VEC; j++) {
                sum = sum + f32(chunk_value(v, j));
            }
        }
    }
    // RMS: the mean is 0 (sum stays 0), so the "variance" below is sum(x^2) / n.
    let mean = workgroup_reduce(lid, sum, false) / n;
    var squares = 0.0;
    for (var c = lid; c < dims.chunks; c += THREADS) {
        let v = x_chunk(base + c);
        keep_input(base + c, v);
        for (var j = 0u; j < VALUES_PER_VEC; j++) {
            if (c * VALUES_PER_VEC + j < dims.cols) {
                let d = f32(chunk_value(v, j)) - mean;
                squares = squares + d * d;
            }
        }
    }
    let variance = workgroup_reduce(lid, squares, false) / n;
    let rstd = 1.0 / sqrt(variance + dims.epsilon);
    // The largest |y| as stored, for a quantizer after the norm.
    var amax = 0.0;
    for (var c = lid; c < dims.chunks; c += THREADS) {
        let v = x_chunk(base + c);
        for (var p = 0u; p < VALUES_PER_VEC / 2u; p++) {
            let out = normalized_pair(v, c, p, mean, rstd);
            store_chunk_pair(base + c, p, Scalar(out.x), Scalar(out.y));
            amax = max(amax, max(abs(round_compute(out.x)), abs(round_compute(out.y))));
        }
    }
    if (QUANTIZES_OUTPUT) {
        // Keras's int8 activation quantizer of y, as shared/quantize_rows_common.wgsl
        // computes it from y as stored: the outputs computed again.
        let scale = 127.0 / (workgroup_reduce(lid, amax, true) + 1e-7);
        for (var c = lid; c < dims.chunks; c += THREADS) {
            let v = x_chunk(base + c);
            for (var part = 0u; part < VALUES_PER_VEC / 4u; part++) {
                let lo = normalized_pair(v, c, 2u * part, mean, rstd);
                let hi = normalized_pair(v, c, 2u * part + 1u, mean, rstd);
                let y = vec4<f32>(round_compute(lo.x), round_compute(lo.y), round_compute(hi.x),
                                  round_compute(hi.y));
                let q = clamp(round(y * scale), vec4<f32>(-127.0), vec4<f32>(127.0));
                let words = VALUES_PER_VEC / 4u;
                keep_quantized((base + c) * words + part, pack4xI8(vec4<i32>(q)));
            }
        }
        if (lid == 0u) {
            keep_scale(row, scale);
        }
    }
}

// Values 2p and 2p + 1 of chunk c of a row, normalized (0 past the row's
// values), before rounding to the storage format.
fn normalized_pair(v: Chunk, c: u32, p: u32, mean: f32, rstd: f32) -> vec2<f32> {
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
    return out;
}

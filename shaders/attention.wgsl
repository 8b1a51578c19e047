// SPDX-License-Identifier: MIT OR Apache-2.0
// Keras's MultiHeadAttention core as jax.nn.dot_product_attention computes
// it (Keras 3.15 routes MultiHeadAttention there): for one query row of
// one head per workgroup, logits = (q . k) in f32, times the scale, masked
// positions set to -0.7 * f32::MAX; softmax in f32; the probabilities
// rounded to the storage format; out = sum over keys of p * v in f32,
// rounded on store. Flag 4 is Keras's explicit path (dropout > 0): q
// scaled by the rounded scale and rounded, scores = round(q . k), masked
// ones Keras's large negative number, then the Softmax layer's rounding
// (round(exp(round(l - m))), a rounded sum, round(e / s)) and masked
// probabilities 0. Flag 16 (with 4) is KerasHub's Gemma attention, whose
// Softmax runs in float32: masked scores -1e9 (the host passes it as
// large_negative), exp(l - m), the sum and the division in f32 without
// rounding, masked probabilities 0, the probability rounded.
//
// q is [batch * tq, heads * key_dim], k [batch * tk, kv_heads * key_dim],
// v [batch * tk, kv_heads * value_dim] (query head n reads key/value head
// n / (heads / kv_heads): grouped-query attention), the optional mask an
// f32 tensor of 0 and 1, [batch * tq, tk], or [batch, tk] with flag 8 (a
// padding mask over keys shared by a sequence's queries); y is [batch *
// tq, heads * value_dim]; all with rows padded to 32 values. Orders: logits sum h in order; the softmax sum is each
// invocation's keys (s = i, i + 64, ...) in order, then a tree; out sums
// keys in order. Stay in sync with `Graph::attention`
// (src/gpu/attention.rs). CPU twin: `cpu::attention::attention`.

#import storage
#import elementwise
#import workgroup_reduce

struct AttentionDims {
    workgroups: u32, // batch * tq * heads
    tq: u32,
    tk: u32,
    heads: u32,     // heads | kv_heads << 16
    head_dims: u32, // key_dim | value_dim << 16
    flags: u32,     // 1: causal, 2: mask, 4: explicit, 8: key mask, 16: f32 softmax

    scale: f32,
    large_negative: f32, // the explicit path's masked score
}
// Stays in sync with the uniform `Graph::attention` writes.

@group(0) @binding(0) var<uniform> dims: AttentionDims;
@group(0) @binding(1) var<storage, read> q_buf: array<Chunk>;
@group(0) @binding(2) var<storage, read> k_buf: array<Chunk>;
@group(0) @binding(3) var<storage, read> v_buf: array<Chunk>;
@group(0) @binding(4) var<storage, read> mask_buf: array<f32>;
@group(0) @binding(5) var<storage, read_write> y_buf: array<OutWord>;

const THREADS: u32 = REDUCE_THREADS;
// Units of values an invocation accumulates: value_dim up to 512 in pairs.
const UNITS: u32 = 4u;
const MASKED: f32 = -0.7 * 3.4028234663852886e38;

// The logits of the first SCORES keys, computed once: each invocation
// writes and reads back only its own keys (s = lid, lid + 64, ...), so no
// barrier guards them; later keys are computed again in each pass. Then
// the probabilities of a block of SCORES keys, which every invocation
// reads.
const SCORES: u32 = 1024u;
var<workgroup> scores: array<f32, SCORES>;

// Chunks in a row of `cols` values (rows padded to 32 values).
fn row_chunks(cols: u32) -> u32 {
    return (cols + 31u) / 32u * 32u / VALUES_PER_VEC;
}

fn key_dim() -> u32 {
    return dims.head_dims & 0xffffu;
}

fn value_dim() -> u32 {
    return dims.head_dims >> 16u;
}

fn heads() -> u32 {
    return dims.heads & 0xffffu;
}

fn kv_heads() -> u32 {
    return dims.heads >> 16u;
}

// The key/value head query head n reads.
fn kv_head(n: u32) -> u32 {
    return n / (heads() / kv_heads());
}

fn q_at(row: u32, col: u32) -> f32 {
    let at = row * row_chunks(heads() * key_dim()) + col / VALUES_PER_VEC;
    return f32(chunk_value(q_buf[at], col % VALUES_PER_VEC));
}

fn k_at(row: u32, col: u32) -> f32 {
    let at = row * row_chunks(kv_heads() * key_dim()) + col / VALUES_PER_VEC;
    return f32(chunk_value(k_buf[at], col % VALUES_PER_VEC));
}

fn explicit_path() -> bool {
    return (dims.flags & 4u) != 0u;
}

// The explicit path's Softmax layer rounds each step (not in float32).
fn rounded_softmax() -> bool {
    return explicit_path() && (dims.flags & 16u) == 0u;
}

// Whether query row `qr` (position t of sequence b) attends to key s.
fn kept(qr: u32, t: u32, b: u32, s: u32) -> bool {
    if ((dims.flags & 1u) != 0u && s > t) {
        return false;
    }
    let mask_row = select(qr, b, (dims.flags & 8u) != 0u);
    return (dims.flags & 2u) == 0u || mask_buf[mask_row * ((dims.tk + 31u) / 32u * 32u) + s] != 0.0;
}

// The masked, scaled logit of query row `qr` (position t) and key s.
fn logit(qr: u32, t: u32, b: u32, n: u32, s: u32) -> f32 {
    var dot = 0.0;
    let scale = select(dims.scale, round_compute(dims.scale), explicit_path());
    let g = kv_head(n);
    if (key_dim() % VALUES_PER_VEC == 0u) {
        // Heads start on a chunk: whole chunks of q and k, h still in order.
        let q_row = qr * row_chunks(heads() * key_dim()) + n * key_dim() / VALUES_PER_VEC;
        let k_row = (b * dims.tk + s) * row_chunks(kv_heads() * key_dim())
            + g * key_dim() / VALUES_PER_VEC;
        for (var c = 0u; c < key_dim() / VALUES_PER_VEC; c++) {
            let qc = q_buf[q_row + c];
            let kc = k_buf[k_row + c];
            for (var j = 0u; j < VALUES_PER_VEC; j++) {
                var q = f32(chunk_value(qc, j));
                if (explicit_path()) {
                    q = round_compute(q * scale);
                }
                dot = dot + q * f32(chunk_value(kc, j));
            }
        }
    } else {
        for (var h = 0u; h < key_dim(); h++) {
            var q = q_at(qr, n * key_dim() + h);
            if (explicit_path()) {
                q = round_compute(q * scale);
            }
            dot = dot + q * k_at(b * dims.tk + s, g * key_dim() + h);
        }
    }
    if (explicit_path()) {
        return select(dims.large_negative, round_compute(dot), kept(qr, t, b, s));
    }
    return select(MASKED, dot * scale, kept(qr, t, b, s));
}

// The logit of key s: as the first pass stored it, or computed again.
fn cached_logit(qr: u32, t: u32, b: u32, n: u32, s: u32) -> f32 {
    if (s < SCORES) {
        return scores[s];
    }
    return logit(qr, t, b, n, s);
}

// exp(l - m), rounded as the explicit path's Softmax layer rounds it.
fn weight(l: f32, m: f32) -> f32 {
    if (rounded_softmax()) {
        return round_compute(exp(round_compute(l - m)));
    }
    return exp(l - m);
}

// exp(l - m) / total rounded to the storage format: key s's probability
// (0 for a masked key on the explicit path).
fn probability(qr: u32, t: u32, b: u32, s: u32, l: f32, m: f32, total: f32) -> f32 {
    if (explicit_path() && !kept(qr, t, b, s)) {
        return 0.0;
    }
    return round_compute(weight(l, m) / total);
}

// The values an invocation accumulates at once: a quad of a head where
// value_dim is a multiple of 4 (one load a key), else a pair in .xy.
fn value_unit(row: u32, col: u32, width: u32) -> vec4<f32> {
    let c = v_buf[row * row_chunks(kv_heads() * value_dim()) + col / VALUES_PER_VEC];
    if (width == 4u) {
        return chunk_part(c, (col % VALUES_PER_VEC) / 4u);
    }
    let j = col % VALUES_PER_VEC;
    return vec4<f32>(f32(chunk_value(c, j)), f32(chunk_value(c, j + 1u)), 0.0, 0.0);
}

@compute @workgroup_size(64)
fn main(@builtin(local_invocation_index) lid: u32,
        @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) groups: vec3<u32>) {
    let w = wid.x + wid.y * groups.x;
    if (w >= dims.workgroups) {
        return;
    }
    let n = w % heads();
    let qr = w / heads();
    let t = qr % dims.tq;
    let b = qr / dims.tq;
    var top = -bitcast<f32>(0x7f800000u);
    for (var s = lid; s < dims.tk; s += THREADS) {
        let l = logit(qr, t, b, n, s);
        if (s < SCORES) {
            scores[s] = l;
        }
        top = max(top, l);
    }
    let m = workgroup_reduce(lid, top, true);
    var sum = 0.0;
    for (var s = lid; s < dims.tk; s += THREADS) {
        sum = sum + weight(cached_logit(qr, t, b, n, s), m);
    }
    var total = workgroup_reduce(lid, sum, false);
    if (rounded_softmax()) {
        total = round_compute(total);
    }
    // Invocation lid accumulates units lid, lid + 64, ... of the head's
    // values over keys in order, a block of SCORES keys at a time: each
    // invocation turns its own keys' logits into probabilities in scores,
    // one barrier, then all read them (the first block's logits are the
    // first pass's).
    let width = select(2u, 4u, value_dim() % 4u == 0u);
    var acc: array<vec4<f32>, UNITS>;
    for (var u = 0u; u < UNITS; u++) {
        acc[u] = vec4<f32>(0.0);
    }
    for (var start = 0u; start < dims.tk; start += SCORES) {
        let end = min(dims.tk, start + SCORES);
        if (start > 0u) {
            workgroupBarrier();
        }
        for (var s = start + lid; s < end; s += THREADS) {
            var l: f32;
            if (start == 0u) {
                l = scores[s];
            } else {
                l = logit(qr, t, b, n, s);
            }
            scores[s - start] = probability(qr, t, b, s, l, m, total);
        }
        workgroupBarrier();
        for (var u = 0u; u < UNITS; u++) {
            let d = width * (lid + u * THREADS);
            if (d < value_dim()) {
                let col = kv_head(n) * value_dim() + d;
                for (var s = start; s < end; s++) {
                    acc[u] = acc[u] + scores[s - start] * value_unit(b * dims.tk + s, col, width);
                }
            }
        }
    }
    let y_chunks = row_chunks(heads() * value_dim());
    for (var u = 0u; u < UNITS; u++) {
        let d = width * (lid + u * THREADS);
        if (d < value_dim()) {
            let col = n * value_dim() + d;
            let at = qr * y_chunks + col / VALUES_PER_VEC;
            let pair = (col % VALUES_PER_VEC) / 2u;
            store_chunk_pair(at, pair, Scalar(acc[u].x), Scalar(acc[u].y));
            if (width == 4u) {
                store_chunk_pair(at, pair + 1u, Scalar(acc[u].z), Scalar(acc[u].w));
            }
        }
    }
}

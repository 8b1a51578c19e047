// SPDX-License-Identifier: MIT OR Apache-2.0
// Storage format f64 (needs SHADER_F64): two per 16-byte chunk, f64
// arithmetic, f64 output. Only linear and relu activations (WGSL has no
// f64 transcendental functions); the host refuses the others.

#import activation_f64

const VALUES_PER_VEC: u32 = 2u;
alias Chunk = vec2<f64>;
alias Scalar = f64;
alias Acc = vec2<f64>;

fn acc_zero() -> Acc {
    return Acc(0.0);
}

// Lane l takes elements l (mod 2).
fn mul_add_chunk(acc: Acc, x: Chunk, w: Chunk) -> Acc {
    return acc + x * w;
}

fn lane_sum(acc: Acc) -> Scalar {
    return acc.x + acc.y;
}

fn chunk_value(v: Chunk, j: u32) -> Scalar {
    return v[j];
}

alias OutWord = f64;
const OUT_WORDS_PER_PAIR: u32 = 2u;

fn pack_out_pair(a: Scalar, b: Scalar) -> vec2<OutWord> {
    return vec2<f64>(a, b);
}

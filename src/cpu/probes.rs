// SPDX-License-Identifier: MIT OR Apache-2.0
//! CPU twins of the roofline probes: the sums the streaming-read probe
//! (shaders/shared/probe_read_body.wgsl) and the arithmetic probes
//! (shaders/probe_fma.wgsl, shaders/probe_dot4.wgsl) write, so that a test
//! can check that each did all the work it is credited with.

use crate::gpu::probes::{DOT4_PROBE_SEED, FMA_PROBE_SEED, ReadShape, probe_word};

/// The sum each invocation of the read probe writes over `shape`'s buffer
/// (word `i` is [`probe_word`]`(i)`): four accumulators of four lanes, each wrapping in
/// the load's word size, fed four vectors at a time, the tail into the
/// first; then every lane and accumulator xor-ed, the halves of a 64-bit
/// word folded. A `run` of 0 is taken as 1.
pub fn read_sums(shape: ReadShape) -> Vec<u32> {
    let ReadShape { vecs, run, wide } = shape;
    let run = run.max(1);
    // Lane c of vector v: one word, or two words as a little-endian u64.
    let lane = |v: u64, c: u64| -> u64 {
        if wide {
            let w = v * 8 + 2 * c;
            u64::from(probe_word(w)) | (u64::from(probe_word(w + 1)) << 32)
        } else {
            u64::from(probe_word(v * 4 + c))
        }
    };
    let mask = if wide { u64::MAX } else { u64::from(u32::MAX) };
    let add = |acc: &mut [u64; 4], v: u64| {
        for (c, a) in acc.iter_mut().enumerate() {
            *a = a.wrapping_add(lane(v, c as u64)) & mask;
        }
    };
    (0..vecs.div_ceil(run))
        .map(|g| {
            let (start, end) = (g * run, ((g + 1) * run).min(vecs));
            let mut acc = [[0u64; 4]; 4];
            let mut i = start;
            while i + 4 <= end {
                for (a, acc) in acc.iter_mut().enumerate() {
                    add(acc, i + a as u64);
                }
                i += 4;
            }
            for v in i..end {
                add(&mut acc[0], v);
            }
            let folded = (0..4).fold(0u64, |x, c| {
                x ^ (acc[0][c] ^ acc[1][c]) ^ (acc[2][c] ^ acc[3][c])
            });
            (folded as u32) ^ ((folded >> 32) as u32)
        })
        .collect()
}

/// What each of `invocations` invocations of the FMA probe writes after
/// `rounds` rounds: 16 chains of four lanes, each FMA `a * m + k`, summed
/// as the shader sums them. Exact with [`FMA_PROBE_SEED`] (m = 1, k a power
/// of two), so fused or not the GPU gives the same bits.
pub fn fma_sums(invocations: u64, rounds: u32) -> Vec<u32> {
    let [m, k, base, step] = FMA_PROBE_SEED;
    (0..invocations)
        .map(|g| {
            let chain = |c: usize| -> [f32; 4] {
                let start = base + (g % 64) as f32;
                let mut a = [0.0, 0.25, 0.5, 0.75].map(|l| start + l + c as f32 * step);
                for _ in 0..4 * rounds {
                    a = a.map(|v| v.mul_add(m, k));
                }
                a
            };
            let a: Vec<[f32; 4]> = (0..16).map(chain).collect();
            let add =
                |p: [f32; 4], q: [f32; 4]| [p[0] + q[0], p[1] + q[1], p[2] + q[2], p[3] + q[3]];
            let quad = |i: usize| add(add(a[i], a[i + 1]), add(a[i + 2], a[i + 3]));
            let r = add(add(quad(0), quad(4)), add(quad(8), quad(12)));
            (r[0] + r[1] + r[2] + r[3]).to_bits()
        })
        .collect()
}

/// What each of `invocations` invocations of the `dot4I8Packed` probe
/// writes after `rounds` rounds of four steps: 16 chains, each step
/// `a + dot4I8Packed(a, m)` wrapping, xor-ed as the shader does.
pub fn dot4_sums(invocations: u64, rounds: u32) -> Vec<u32> {
    let m = DOT4_PROBE_SEED[0] | 0x0101_0101;
    let dot = |a: u32, b: u32| -> u32 {
        let (a, b) = (a.to_le_bytes(), b.to_le_bytes());
        (0..4)
            .map(|i| i32::from(a[i] as i8) * i32::from(b[i] as i8))
            .sum::<i32>() as u32
    };
    (0..invocations)
        .map(|g| {
            let s = DOT4_PROBE_SEED.map(|v| v ^ g as u32);
            let rotate = |r: usize, add: u32| -> [u32; 4] {
                [0, 1, 2, 3].map(|l| s[(l + r) % 4].wrapping_add(add))
            };
            let chains = [rotate(0, 0), rotate(1, 1), rotate(2, 2), rotate(3, 3)];
            let r = chains
                .map(|mut a| {
                    for _ in 0..4 * rounds {
                        a = a.map(|v| dot(v, m).wrapping_add(v));
                    }
                    a
                })
                .into_iter()
                .fold([0u32; 4], |x, a| {
                    [x[0] ^ a[0], x[1] ^ a[1], x[2] ^ a[2], x[3] ^ a[3]]
                });
            (r[0] ^ r[1]) ^ (r[2] ^ r[3])
        })
        .collect()
}

// SPDX-License-Identifier: MIT OR Apache-2.0
//! CPU twin of the streaming-read probe (shaders/shared/probe_read_body.wgsl):
//! the sums it writes, so that a test can check that it read every byte.

use crate::gpu::probes::{ReadShape, probe_word};

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

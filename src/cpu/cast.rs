// SPDX-License-Identifier: MIT OR Apache-2.0
//! CPU twin of shaders/cast.wgsl: decode with `half`, re-encode with `half`
//! (round to nearest even).

use crate::format::StorageFormat;

/// Casts `count` values in `words` from one format to another.
pub fn cast(from: StorageFormat, to: StorageFormat, words: &[u32], count: usize) -> Vec<u32> {
    // Through f32, as the kernel: every 32- and 16-bit value is exact in it.
    to.encode(&from.decode::<f32>(words, count))
}

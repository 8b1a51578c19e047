// SPDX-License-Identifier: MIT OR Apache-2.0
// Roofline probe: streaming read with 32-byte loads (vec4<u64>,
// SHADER_INT64). On CPU drivers each load costs a loop over the lanes
// whatever its width, so this reads faster than 16-byte loads (lavapipe:
// about 20 GB/s against 15): the memory roof is the faster read.
// Bytes moved = the buffer read + 4 per invocation written.

alias Word = u64;

// Both halves, so that no half of a load can be dropped.
fn fold_word(w: Word) -> u32 {
    return u32(w) ^ u32(w >> 32u);
}

#import probe_read_body

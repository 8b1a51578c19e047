// SPDX-License-Identifier: MIT OR Apache-2.0
// Roofline probe: streaming read with 16-byte loads (vec4<u32>, the widest
// in core WGSL). Bytes moved = the buffer read + 4 per invocation written.
// Where the adapter has SHADER_INT64, probe_read_wide.wgsl is used instead.

alias Word = u32;

fn fold_word(w: Word) -> u32 {
    return w;
}

#import probe_read_body

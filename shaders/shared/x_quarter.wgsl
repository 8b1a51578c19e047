// SPDX-License-Identifier: MIT OR Apache-2.0
// Four consecutive x values as f32, for the formats with f32 arithmetic.

// Values 4q .. 4q+3 counted from chunk c0 (q < 8: a 32-k step).
fn x_quarter(c0: u32, q: u32) -> vec4<f32> {
    return chunk_part(x_buf[c0 + q * 4u / VALUES_PER_VEC], (q * 4u) % VALUES_PER_VEC / 4u);
}

// SPDX-License-Identifier: MIT OR Apache-2.0
//! Host quantizers that reproduce Keras's bit for bit (no GPU types):
//! abs-max int8 and int4, grouped int4 with zero points, Keras's int4 nibble
//! packing, float8 e4m3fn / e5m2 as ml_dtypes converts them, and the float8
//! amax history with its delayed scale. All arithmetic is in f32 in the
//! order Keras does it, so the results equal Keras's exactly
//! (`tests/keras_quantizers.rs` checks against recorded Keras output).

pub mod abs_max;
pub mod float8;
pub mod int4;

/// Keras's `backend.epsilon()`, added to every abs-max before dividing.
pub const EPSILON: f32 = 1e-7;

/// The maximum as NumPy and XLA take it: NaN wins (`f32::max` would drop it).
pub(crate) fn nan_max(values: impl Iterator<Item = f32>, start: f32) -> f32 {
    values.fold(start, |a, b| {
        if a.is_nan() || b > a || b.is_nan() {
            b
        } else {
            a
        }
    })
}

// SPDX-License-Identifier: MIT OR Apache-2.0
// Activations in f64: linear and relu only (WGSL has no f64 exp or tanh).
// Values of ACTIVATION as in activation.wgsl.

override ACTIVATION: u32 = 0u;

fn activate(x: f64) -> f64 {
    if (ACTIVATION == 1u) {
        return max(x, f64(0.0));
    }
    return x;
}

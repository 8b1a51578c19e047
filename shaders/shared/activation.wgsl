// SPDX-License-Identifier: MIT OR Apache-2.0
// Keras activations applied in f32. Stay in sync with `Activation` in
// src/gpu/dense.rs (the override values) and with src/cpu/dense.rs (the math).

// 0 linear, 1 relu, 2 gelu (exact, erf), 3 silu, 4 sigmoid, 5 tanh.
override ACTIVATION: u32 = 0u;

// erf by Abramowitz & Stegun 7.1.26 (absolute error below 1.5e-7): WGSL has
// no erf, and Keras's gelu defaults to the exact (erf) form.
fn erf_approx(x: f32) -> f32 {
    let t = 1.0 / (1.0 + 0.3275911 * abs(x));
    let poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
    let y = 1.0 - poly * exp(-x * x);
    return select(-y, y, x >= 0.0);
}

fn sigmoid(x: f32) -> f32 {
    return 1.0 / (1.0 + exp(-x));
}

fn activate(x: f32) -> f32 {
    switch ACTIVATION {
        case 1u: { return max(x, 0.0); }
        case 2u: { return 0.5 * x * (1.0 + erf_approx(x * 0.70710678)); }
        case 3u: { return x * sigmoid(x); }
        case 4u: { return sigmoid(x); }
        case 5u: { return tanh(x); }
        default: { return x; }
    }
}

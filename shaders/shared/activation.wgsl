// SPDX-License-Identifier: MIT OR Apache-2.0
// Keras activations applied in f32. Stay in sync with `Activation` in
// src/gpu/dense.rs (the override values) and with src/cpu/dense.rs (the math).

// 0 linear, 1 relu, 2 gelu (exact, erf), 3 silu, 4 sigmoid, 5 tanh,
// 6 elu, 7 selu, 8 celu, 9 softplus, 10 softsign, 11 relu6, 12 leaky_relu,
// 13 hard_sigmoid, 14 hard_silu, 15 hard_tanh, 16 exponential, 17 mish,
// 18 log_sigmoid, 19 tanh_shrink, 20 squareplus, 21 sparse_plus,
// 22 hard_shrink, 23 soft_shrink, 24 gelu_approximate (Keras's default
// parameters; jax's formulas).
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

// WGSL has neither expm1 nor log1p: near 0 their series, where exp(x) - 1
// and log(1 + x) would lose the digits.
fn expm1_approx(x: f32) -> f32 {
    if (abs(x) < 1e-3) {
        return x + x * x * 0.5 + x * x * x * (1.0 / 6.0);
    }
    return exp(x) - 1.0;
}

fn log1p_approx(x: f32) -> f32 {
    if (abs(x) < 1e-3) {
        return x - x * x * 0.5 + x * x * x * (1.0 / 3.0);
    }
    return log(1.0 + x);
}

// jax.nn.softplus: logaddexp(x, 0).
fn softplus(x: f32) -> f32 {
    return max(x, 0.0) + log1p_approx(exp(-abs(x)));
}

// gelu(x, approximate=True) = x * 0.5 * (1 + tanh(u)), u = sqrt(2 / pi) *
// (x + 0.044715 x^3), as x * sigmoid(2u) (0.5 * (1 + tanh(u)) is
// sigmoid(2u)): tanh from exp, which is accurate near 0, where drivers'
// tanh is loose (lavapipe's is off by ~1.3e-6 absolute). Stays in sync
// with `gelu_approximate` in src/cpu/dense.rs.
fn gelu_approximate(x: f32) -> f32 {
    let u = 0.7978845608028654 * (x + 0.044715 * (x * x * x));
    return x / (1.0 + exp(-2.0 * u));
}

fn hard_sigmoid(x: f32) -> f32 {
    return min(max(x + 3.0, 0.0), 6.0) / 6.0;
}

fn activate(x: f32) -> f32 {
    switch ACTIVATION {
        case 1u: { return max(x, 0.0); }
        case 2u: { return 0.5 * x * (1.0 + erf_approx(x * 0.70710678)); }
        case 3u: { return x * sigmoid(x); }
        case 4u: { return sigmoid(x); }
        case 5u: { return tanh(x); }
        case 6u: { return select(expm1_approx(min(x, 0.0)), x, x > 0.0); }
        case 7u: { return 1.0507009873554805 * select(1.6732632423543772 * expm1_approx(min(x, 0.0)), x, x > 0.0); }
        case 8u: { return max(x, 0.0) + min(expm1_approx(min(x, 0.0)), 0.0); }
        case 9u: { return softplus(x); }
        case 10u: { return x / (abs(x) + 1.0); }
        case 11u: { return min(max(x, 0.0), 6.0); }
        case 12u: { return select(0.2 * x, x, x >= 0.0); }
        case 13u: { return hard_sigmoid(x); }
        case 14u: { return x * hard_sigmoid(x); }
        case 15u: { return clamp(x, -1.0, 1.0); }
        case 16u: { return exp(x); }
        case 17u: { return x * tanh(softplus(x)); }
        case 18u: { return -softplus(-x); }
        case 19u: { return x - tanh(x); }
        case 20u: { return (x + sqrt(x * x + 4.0)) * 0.5; }
        case 21u: { return select(select((x + 1.0) * (x + 1.0) * 0.25, x, x >= 1.0), 0.0, x <= -1.0); }
        case 22u: { return select(0.0, x, abs(x) > 0.5); }
        case 23u: { return select(select(0.0, x + 0.5, x < -0.5), x - 0.5, x > 0.5); }
        case 24u: { return gelu_approximate(x); }
        default: { return x; }
    }
}

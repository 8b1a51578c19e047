// SPDX-License-Identifier: MIT OR Apache-2.0
//! Opening the adapters GPU tests run on. Without one, a test fails and
//! says how to get it; it never skips.

use dtype_policy::gpu::context::{AdapterChoice, GpuContext};

/// Mesa's lavapipe (Vulkan on the CPU) where there is no GPU.
pub fn vulkan() -> GpuContext {
    open(
        wgpu::Backends::VULKAN,
        "A Vulkan adapter (Mesa's lavapipe on a machine without a GPU)",
    )
}

/// Mesa's llvmpipe through EGL: no SHADER_F16, no subgroups.
pub fn gl() -> GpuContext {
    open(
        wgpu::Backends::GL,
        "An OpenGL adapter (Mesa's llvmpipe through EGL)",
    )
}

/// Deterministic values in [-scale, scale) (the library's LCG: tests need no RNG crate).
pub fn values(count: usize, seed: u64, scale: f32) -> Vec<f32> {
    dtype_policy::bench::values(count, seed, scale)
}

/// How far an f32-accumulating kernel may be from its twin that sums the
/// same products in the same order: fused multiply-adds (one rounding less
/// per step: (k + 2) · ε · Σ|x·w|), a division within 2.5 ulp (4 ulp of |y|),
/// exp/tanh for a non-linear activation (2e-6 (1 + |y|)), and one ulp of a
/// 16-bit output format.
pub fn f32_kernel_tolerance(
    format: dtype_policy::gpu::formats::StorageFormat,
    nonlinear: bool,
    k: usize,
    l1: f64,
    y: f64,
) -> f64 {
    use dtype_policy::gpu::formats::StorageFormat;
    let eps = f64::from(f32::EPSILON);
    let mut tol = (k as f64 + 2.0) * eps * l1 + 4.0 * eps * y.abs();
    if nonlinear {
        tol += 2e-6 * (1.0 + y.abs());
    }
    tol + match format {
        StorageFormat::F16 => y.abs() * 2f64.powi(-10),
        StorageFormat::BF16 => y.abs() * 2f64.powi(-7),
        _ => 0.0,
    }
}

fn open(backends: wgpu::Backends, what: &str) -> GpuContext {
    GpuContext::with_choice(&AdapterChoice {
        backends: Some(backends),
        name: None,
    })
    .unwrap_or_else(|e| panic!("{what} is needed for this test and could not be opened: {e}"))
}

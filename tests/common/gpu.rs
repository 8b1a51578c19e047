// SPDX-License-Identifier: MIT OR Apache-2.0
//! Opening the adapters GPU tests run on. Without one, a test fails and
//! says how to get it; it never skips.

use dtype_policy::gpu::context::{AdapterChoice, GpuContext};
use dtype_policy::gpu::tuning::{TuningKey, TuningTable};

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

/// The context routes by the fixed rule: a table a tuned run on this
/// machine left in the user's cache would change which kernels (and how
/// many pipelines) a test sees. Tests of the tuned choice set their own.
fn open(backends: wgpu::Backends, what: &str) -> GpuContext {
    let mut ctx = GpuContext::with_choice(&AdapterChoice {
        backends: Some(backends),
        name: None,
    })
    .unwrap_or_else(|e| panic!("{what} is needed for this test and could not be opened: {e}"));
    let key = TuningKey::of(ctx.capabilities());
    ctx.set_tuning(TuningTable::new(key));
    ctx
}

/// The difference of `a` and `b` in units in the last place of `format`
/// at the larger of them.
pub fn ulps(format: dtype_policy::format::StorageFormat, a: f32, b: f32) -> f64 {
    use dtype_policy::format::StorageFormat;
    let bits = match format {
        StorageFormat::F32 => 23,
        StorageFormat::F16 => 10,
        _ => 7,
    };
    let scale = a.abs().max(b.abs()).max(f32::MIN_POSITIVE) as f64;
    let ulp = 2f64.powi(scale.log2().floor() as i32 - bits);
    (a as f64 - b as f64).abs() / ulp
}

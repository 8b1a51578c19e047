// SPDX-License-Identifier: MIT OR Apache-2.0
//! Adapter choice and capabilities on this machine's two adapters, and the
//! environment variables wgpu users know. One test function: it changes
//! the process environment, which only one thread may do.

use dtype_policy::gpu::GpuError;
use dtype_policy::gpu::context::{AdapterChoice, GpuContext};

#[test]
fn adapters_capabilities_and_environment_variables() {
    // SAFETY (for set_var/remove_var): this test binary runs this one test,
    // on one thread; nothing else reads the environment meanwhile.
    unsafe {
        std::env::remove_var("WGPU_ADAPTER_NAME");
        std::env::set_var("WGPU_BACKEND", "vulkan");
    }
    let vulkan = GpuContext::new().unwrap_or_else(|e| panic!("Vulkan (lavapipe) needed: {e}"));
    let caps = vulkan.capabilities();
    assert_eq!(caps.backend, "Vulkan");
    assert!(
        caps.shader_f16 && caps.shader_f64 && caps.shader_int64 && caps.subgroups,
        "{caps}"
    );
    assert_eq!(caps.subgroup_size, Some((8, 8)), "lavapipe runs 8 lanes");
    assert!(
        caps.timestamp_query && caps.pipeline_cache && caps.packed_4x8_dot,
        "{caps}"
    );
    assert!(caps.max_storage_buffer_binding_size >= 128 << 20);

    unsafe { std::env::set_var("WGPU_BACKEND", "gl") };
    let gl = GpuContext::new().unwrap_or_else(|e| panic!("OpenGL (llvmpipe) needed: {e}"));
    let caps = gl.capabilities();
    assert_eq!(caps.backend, "Gl");
    assert!(
        !caps.shader_f16 && !caps.shader_int64 && !caps.subgroups && caps.subgroup_size.is_none(),
        "{caps}"
    );

    unsafe {
        std::env::set_var("WGPU_BACKEND", "vulkan");
        std::env::set_var("WGPU_ADAPTER_NAME", "LLVMPIPE");
    }
    let named = GpuContext::new().unwrap();
    assert!(named.capabilities().adapter_name.contains("llvmpipe"));

    unsafe { std::env::set_var("WGPU_ADAPTER_NAME", "no such adapter") };
    match GpuContext::new() {
        Err(dtype_policy::Error::Gpu(GpuError::AdapterNotFound { wanted, found })) => {
            assert_eq!(wanted, "no such adapter");
            assert!(
                found.contains("llvmpipe"),
                "the error lists what there is: {found}"
            );
        }
        other => panic!("expected AdapterNotFound, got {:?}", other.map(|_| ())),
    }
    // An explicit choice overrides the environment.
    let explicit = GpuContext::with_choice(&AdapterChoice {
        backends: Some(wgpu::Backends::GL),
        name: Some("llvmpipe".to_owned()),
    })
    .unwrap();
    assert_eq!(explicit.capabilities().backend, "Gl");
}

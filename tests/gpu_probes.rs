// SPDX-License-Identifier: MIT OR Apache-2.0
//! The streaming-read probe reads every byte it claims: its sums equal its
//! CPU twin's on both adapters, with 32-byte loads where the adapter has
//! SHADER_INT64 (lavapipe) and 16-byte loads where it has not (llvmpipe
//! GL), for sizes of one vector, odd counts, counts that are not a multiple
//! of the four loads per iteration, and more invocations than a workgroup.

mod common;

use common::gpu;
use dtype_policy::cpu::probes::read_sums;
use dtype_policy::gpu::context::GpuContext;
use dtype_policy::gpu::shaders::Kernel;

fn check_read_probe(mut ctx: GpuContext, expected_kernel: Kernel) {
    let adapter = ctx.capabilities().adapter_name.clone();
    assert_eq!(ctx.read_probe_kernel(), expected_kernel, "{adapter}");
    // Bytes: one vector, odd counts of either size, a tail after the
    // four-load loop, and more vectors than invocations (runs > 1).
    for bytes in [1, 48, 16 * 7, 32 * 9 + 5, 4096 * 16 * 3 + 16 * 5, 5 << 20] {
        let probe = ctx.prepare_probe_read(bytes).unwrap();
        let shape = probe.read_shape.expect("the read probe has a shape");
        assert_eq!(shape.wide, expected_kernel == Kernel::ProbeReadWide);
        let vec_bytes = if shape.wide { 32 } else { 16 };
        assert!(shape.vecs * vec_bytes >= bytes, "{adapter}: {bytes} bytes");
        ctx.run_prepared(&probe.dispatch, 1).unwrap();
        let got = ctx.probe_output(&probe).unwrap();
        let want = read_sums(shape);
        assert!(
            want.len() > 1 || bytes <= 4096 * 16,
            "{adapter}: {bytes} bytes"
        );
        assert_eq!(
            &got[..want.len()],
            &want[..],
            "{adapter}: read probe of {bytes} bytes ({shape:?})"
        );
    }
}

#[test]
fn read_probe_sums_every_byte_on_lavapipe_with_wide_loads() {
    check_read_probe(gpu::vulkan(), Kernel::ProbeReadWide);
}

#[test]
fn read_probe_sums_every_byte_on_gl_with_16_byte_loads() {
    check_read_probe(gpu::gl(), Kernel::ProbeRead);
}

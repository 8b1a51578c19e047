// SPDX-License-Identifier: MIT OR Apache-2.0
//! The probes do the work they are credited with. The streaming-read probe
//! reads every byte it claims: its sums equal its CPU twin's on both
//! adapters, with 32-byte loads where the adapter has SHADER_INT64
//! (lavapipe) and 16-byte loads where it has not (llvmpipe GL), for sizes
//! of one vector, odd counts, runs that are not a multiple of the four
//! loads per iteration, and more invocations than a workgroup. The FMA and
//! `dot4I8Packed` probes run every chain and step: their results equal
//! their twins' bit for bit, and their operation counts match.

mod common;

use common::gpu;
use dtype_policy::cpu::probes::{dot4_sums, fma_sums, read_sums};
use dtype_policy::gpu::context::GpuContext;
use dtype_policy::gpu::kernels::Kernel;

fn check_read_probe(mut ctx: GpuContext, expected_kernel: Kernel) {
    let adapter = ctx.capabilities().adapter_name.clone();
    assert_eq!(ctx.read_probe_kernel(), expected_kernel, "{adapter}");
    let vec_bytes = expected_kernel.spec().probe_vector_bytes;
    // Bytes: one vector, odd counts of either size, more vectors than
    // invocations (runs of 2 to 6 and of 11 with a tail after the four-load
    // loop), and runs of 40 to 80 vectors.
    let sizes = [
        1,
        48,
        16 * 7,
        32 * 9 + 5,
        4096 * 16 * 3 + 16 * 5,
        4096 * 32 * 5 + 32 * 3,
        5 << 20,
    ];
    let mut loop_then_tail = false;
    for bytes in sizes {
        let probe = ctx.prepare_probe_read(bytes).unwrap();
        let shape = probe.read_shape.expect("the read probe has a shape");
        assert_eq!(shape.wide, expected_kernel == Kernel::ProbeReadWide);
        assert!(shape.vecs * vec_bytes >= bytes, "{adapter}: {bytes} bytes");
        let invocations = shape.vecs.div_ceil(shape.run);
        assert_eq!(
            probe.bytes,
            shape.vecs * vec_bytes + 4 * invocations,
            "{adapter}: bytes counted for {bytes}"
        );
        loop_then_tail |= shape.run > 4 && !shape.run.is_multiple_of(4);
        probe.forward.submit(&ctx).unwrap();
        ctx.finish().unwrap();
        let got = ctx.probe_output(&probe).unwrap();
        assert_eq!(
            got,
            read_sums(shape),
            "{adapter}: read probe of {bytes} bytes ({shape:?})"
        );
    }
    assert!(loop_then_tail, "{adapter}: no size ran the loop and a tail");
}

#[test]
fn read_probe_sums_every_byte_on_lavapipe_with_wide_loads() {
    check_read_probe(gpu::vulkan(), Kernel::ProbeReadWide);
}

#[test]
fn read_probe_sums_every_byte_on_gl_with_16_byte_loads() {
    check_read_probe(gpu::gl(), Kernel::ProbeRead);
}

fn check_arithmetic_probes(mut ctx: GpuContext) {
    let adapter = ctx.capabilities().adapter_name.clone();
    for (workgroups, rounds) in [(1, 0), (1, 1), (3, 5)] {
        let invocations = u64::from(workgroups) * 64;
        let fma = ctx.prepare_probe_fma(workgroups, rounds).unwrap();
        let dot4 = ctx.prepare_probe_dot4(workgroups, rounds).unwrap();
        for (name, probe, twin) in [
            ("FMA", &fma, fma_sums(invocations, rounds)),
            ("dot4", &dot4, dot4_sums(invocations, rounds)),
        ] {
            assert_eq!(
                probe.flops,
                invocations * u64::from(rounds) * 512,
                "{adapter}: {name}"
            );
            probe.forward.submit(&ctx).unwrap();
            ctx.finish().unwrap();
            let got = ctx.probe_output(probe).unwrap();
            assert_eq!(
                got, twin,
                "{adapter}: {name} probe, {workgroups} workgroups x {rounds} rounds"
            );
        }
    }
}

#[test]
fn arithmetic_probes_run_every_chain_and_step_on_lavapipe() {
    check_arithmetic_probes(gpu::vulkan());
}

#[test]
fn arithmetic_probes_run_every_chain_and_step_on_gl() {
    check_arithmetic_probes(gpu::gl());
}

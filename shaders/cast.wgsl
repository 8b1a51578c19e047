// SPDX-License-Identifier: MIT OR Apache-2.0
// Cast between f32, f16 and bf16 tensors, and Keras's Reshape (rows of
// `in_cols` values, padded to `in_stride`, read as rows of `out_cols`
// padded to `out_stride`: the values in row-major order are the same). The
// output format is the variant's storage helper; the input format is the
// IN_FORMAT override; RESHAPE = 0 reads each value where it is written (a
// plain cast, no index arithmetic). One invocation per pair of output
// values, padding written 0. A plain cast may read from value `in_offset`
// of x and write from value `out_offset` of y (whole rows: a row taken
// from a tensor, rows written into a KV cache). CPU twin: `cast` in
// src/cpu/cast.rs (a reshape moves no value on the host).

#import storage

// 0 f32, 1 f16, 2 bf16; stay in sync with `in_format_code` in src/gpu/cast.rs.
override IN_FORMAT: u32 = 0u;
override WORKGROUP_SIZE: u32 = 64u;
override RESHAPE: u32 = 0u;

struct CastDims {
    count: u32, // output values, padding included
    in_cols: u32,
    in_stride: u32,
    out_cols: u32,
    out_stride: u32,
    in_offset: u32,  // values (whole padded rows), plain casts only
    out_offset: u32, // values (whole padded rows), plain casts only
    _pad: u32,
}

@group(0) @binding(0) var<uniform> dims: CastDims;
@group(0) @binding(1) var<storage, read> in_buf: array<u32>;
@group(0) @binding(2) var<storage, read_write> out_buf: array<u32>;

fn load_value(i: u32) -> f32 {
    switch IN_FORMAT {
        case 1u: { return unpack2x16float(in_buf[i / 2u])[i % 2u]; }
        case 2u: {
            let word = in_buf[i / 2u];
            return bitcast<f32>(select(word << 16u, word & 0xffff0000u, i % 2u == 1u));
        }
        default: { return bitcast<f32>(in_buf[i]); }
    }
}

// Output value o: the input value at the same place in row-major order.
fn output_value(o: u32) -> f32 {
    if (RESHAPE == 0u) {
        return load_value(dims.in_offset + o);
    }
    let col = o % dims.out_stride;
    if (col >= dims.out_cols) {
        return 0.0;
    }
    let flat = o / dims.out_stride * dims.out_cols + col;
    return load_value(flat / dims.in_cols * dims.in_stride + flat % dims.in_cols);
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>,
        @builtin(num_workgroups) groups: vec3<u32>) {
    // Rows of workgroups when one row is not enough (src/gpu/tensor.rs `groups_2d`).
    let i0 = (gid.x + gid.y * groups.x * WORKGROUP_SIZE) * 2u;
    if (i0 >= dims.count) {
        return;
    }
    let has_b = i0 + 1u < dims.count;
    let b = select(0.0, output_value(min(i0 + 1u, dims.count - 1u)), has_b);
    let words = pack_out_pair(output_value(i0), b);
    let base = (dims.out_offset + i0) / 2u * OUT_WORDS_PER_PAIR;
    out_buf[base] = words.x;
    if (OUT_WORDS_PER_PAIR == 2u && has_b) {
        out_buf[base + 1u] = words.y;
    }
}

// SPDX-License-Identifier: MIT OR Apache-2.0
// Keras's Embedding: row r of y is the table's row ids[r], dequantized as
// Keras's Embedding does in the compute dtype, rounded to the storage
// format on store; padding columns written 0. One invocation per 16-byte
// chunk of y. MODE: 0 float table (f32 words); 1 int8 per row, q / scale;
// 2 int4 per row, q / scale; 3 int4 in groups of `block` columns,
// (q - zero) * scale. Scales arrive rounded to the compute dtype (Keras
// reads them autocast), so the f32 arithmetic here rounds once, on store,
// as Keras's compute-dtype arithmetic does (exact quotients and products
// rounded to f16 or bf16 through f32 round the same). Ids are float32
// values checked on the host (integers below the vocabulary); one out of
// range is clamped here, never read out of bounds. POSITIONS 1 is KerasHub's
// PositionEmbedding: no ids are read, row r of y is the table's row start +
// r % seq (a float table). Stay in sync with `Graph::embedding` and
// `Graph::positions` (src/gpu/embedding.rs). CPU twins:
// `cpu::embedding::embedding`, `cpu::embedding::positions`.

#import storage
#import elementwise

override MODE: u32 = 0u;
override POSITIONS: u32 = 0u;

struct EmbeddingDims {
    cols: u32,           // output_dim
    chunks_per_row: u32, // 16-byte chunks per padded row of y
    chunks: u32,         // chunks of y
    ids_cols: u32,       // ids per row of the ids tensor (POSITIONS: seq)
    ids_stride: u32,     // f32 values per padded row of the ids tensor (POSITIONS: start)
    vocab: u32,          // table rows (input_dim)
    row_words: u32,      // table words per table row
    block: u32,          // MODE 3: columns per group
}

@group(0) @binding(0) var<uniform> dims: EmbeddingDims;
@group(0) @binding(1) var<storage, read> ids: array<f32>;
@group(0) @binding(2) var<storage, read> table: array<u32>;
// Per row (MODE 1, 2) or per row and group (MODE 3), in f32.
@group(0) @binding(3) var<storage, read> scales: array<f32>;
// MODE 3's zero points, in f32.
@group(0) @binding(4) var<storage, read> zeros: array<f32>;
@group(0) @binding(5) var<storage, read_write> y_buf: array<OutWord>;

// The signed `bits`-bit field at `shift` (shifts, not extractBits, which
// naga cannot translate to every backend's shading language).
fn signed_field(word: u32, shift: u32, bits: u32) -> f32 {
    return f32(bitcast<i32>(word << (32u - shift - bits)) >> (32u - bits));
}

fn table_value(row: u32, j: u32) -> f32 {
    let base = row * dims.row_words;
    switch MODE {
        case 1u: {
            let word = table[base + j / 4u];
            return signed_field(word, (j % 4u) * 8u, 8u) / scales[row];
        }
        case 2u: {
            let word = table[base + j / 8u];
            return signed_field(word, (j % 8u) * 4u, 4u) / scales[row];
        }
        case 3u: {
            let word = table[base + j / 8u];
            let q = signed_field(word, (j % 8u) * 4u, 4u);
            let g = row * ((dims.cols + dims.block - 1u) / dims.block) + j / dims.block;
            return (q - zeros[g]) * scales[g];
        }
        default: {
            return bitcast<f32>(table[base + j]);
        }
    }
}

fn value(row: u32, c: u32, j: u32) -> Scalar {
    let col = (c % dims.chunks_per_row) * VALUES_PER_VEC + j;
    if (col >= dims.cols) {
        return Scalar(0.0);
    }
    return Scalar(table_value(row, col));
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>,
        @builtin(num_workgroups) groups: vec3<u32>) {
    let c = chunk_index(gid, groups);
    if (c >= dims.chunks) {
        return;
    }
    let r = c / dims.chunks_per_row;
    var row: u32;
    if (POSITIONS == 1u) {
        row = min(dims.ids_stride + r % dims.ids_cols, dims.vocab - 1u);
    } else {
        let id = ids[r / dims.ids_cols * dims.ids_stride + r % dims.ids_cols];
        row = u32(clamp(id, 0.0, f32(dims.vocab - 1u)));
    }
    for (var p = 0u; p < VALUES_PER_VEC / 2u; p++) {
        store_chunk_pair(c, p, value(row, c, 2u * p), value(row, c, 2u * p + 1u));
    }
}

// SPDX-License-Identifier: MIT OR Apache-2.0
//! Policy lookup cost: 10,000 layer paths against a map of 1,000 regex keys
//! and against a map of 1,000 exact keys. Criterion reports time per
//! iteration (10,000 lookups) and lookups per second; divide for per lookup.
//!
//! Run: `cargo bench --bench policy_lookup`

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dtype_policy::DTypePolicyMap;

const KEYS: usize = 1_000;
const PATHS: usize = 10_000;

/// A 1,000-key map like a quantized transformer's: one regex per block and
/// projection family, each path matching exactly one key.
fn regex_map() -> DTypePolicyMap {
    let mut map = DTypePolicyMap::with_default_name("mixed_bfloat16").unwrap();
    let families = [
        "attention/(query|key|value)",
        "attention/output",
        "mlp/.*",
        "norm_[0-9]+",
    ];
    let policies = [
        "int8_from_mixed_bfloat16",
        "bfloat16",
        "int4/128_from_mixed_bfloat16",
        "float32",
    ];
    for i in 0..KEYS {
        let f = i % families.len();
        map.insert(
            format!("transformer/block_{}/{}", i / families.len(), families[f]),
            policies[f],
        )
        .unwrap();
    }
    map
}

fn regex_paths() -> Vec<String> {
    let leaves = [
        "attention/query",
        "attention/output",
        "mlp/up_proj",
        "norm_1",
        "attention/key",
    ];
    (0..PATHS)
        .map(|i| {
            // Blocks 0..=279: 250 have keys, the rest fall through to the default.
            format!(
                "transformer/block_{}/{}",
                (i * 7) % 280,
                leaves[i % leaves.len()]
            )
        })
        .collect()
}

fn exact_map() -> DTypePolicyMap {
    let mut map = DTypePolicyMap::with_default_name("mixed_bfloat16").unwrap();
    for i in 0..KEYS {
        map.insert(format!("model/layer_{i}/dense"), "int8_from_mixed_bfloat16")
            .unwrap();
    }
    map
}

fn exact_paths() -> Vec<String> {
    (0..PATHS)
        .map(|i| format!("model/layer_{}/dense", (i * 13) % KEYS))
        .collect()
}

fn bench_lookup(c: &mut Criterion) {
    let mut group = c.benchmark_group("policy_lookup");
    group.throughput(Throughput::Elements(PATHS as u64));

    let map = regex_map();
    let paths = regex_paths();
    map.get(&paths[0]).unwrap(); // build the pattern set outside the timing
    group.bench_function("10k paths, 1000 regex keys", |b| {
        b.iter(|| {
            for p in &paths {
                black_box(map.get(black_box(p)).unwrap());
            }
        })
    });

    let map = exact_map();
    let paths = exact_paths();
    group.bench_function("10k paths, 1000 exact keys, all hits", |b| {
        b.iter(|| {
            for p in &paths {
                black_box(map.get(black_box(p)).unwrap());
            }
        })
    });
    group.finish();

    let mut group = c.benchmark_group("policy_map_build");
    group.sample_size(10);
    group.bench_function("insert 1000 regex keys, then the first lookup", |b| {
        b.iter(|| {
            let map = regex_map();
            black_box(map.get("transformer/block_0/mlp/x").unwrap().name().len())
        })
    });
    group.finish();
}

criterion_group!(benches, bench_lookup);
criterion_main!(benches);

//! Criterion benchmarks of the crypto core: `make bench` (figures in BENCHMARKS.md).
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use keyseal::{api_key_hash, decrypt, decrypt_bytes, derive_pool_key, encrypt, encrypt_bytes};
use keyseal::{DataKey, MasterKey};
use std::hint::black_box;

fn small(c: &mut Criterion) {
    let key = DataKey::generate().unwrap();
    let secret = "sk-proj-".to_string() + &"A".repeat(56); // 64 bytes
    let token = encrypt(&secret, &key).unwrap();
    let mut g = c.benchmark_group("secret_64B");
    g.throughput(Throughput::Elements(1));
    g.bench_function("encrypt", |b| {
        b.iter(|| encrypt(black_box(&secret), &key).unwrap());
    });
    g.bench_function("decrypt", |b| {
        b.iter(|| decrypt(black_box(&token), &key).unwrap());
    });
    g.finish();
}

fn large(c: &mut Criterion) {
    let key = DataKey::generate().unwrap();
    let data = vec![0x5au8; 1 << 20];
    let token = encrypt_bytes(&data, &key).unwrap();
    let mut g = c.benchmark_group("payload_1MiB");
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.sample_size(30);
    g.bench_with_input(BenchmarkId::new("encrypt_bytes", "1MiB"), &data, |b, d| {
        b.iter(|| encrypt_bytes(black_box(d), &key).unwrap());
    });
    g.bench_with_input(BenchmarkId::new("decrypt_bytes", "1MiB"), &token, |b, t| {
        b.iter(|| decrypt_bytes(black_box(t), &key).unwrap());
    });
    g.finish();
}

fn derivations(c: &mut Criterion) {
    let master = MasterKey::generate().unwrap();
    let mut g = c.benchmark_group("derive");
    g.sample_size(20);
    g.bench_function("derive_pool_key", |b| {
        b.iter(|| derive_pool_key(black_box(&master)));
    });
    g.finish();
    let api_key = "mhu_wZ4dBpC_LiIYg_nuq_EiC9QVF2A5FryiwRKe2U6uiVg";
    let mut g = c.benchmark_group("lookup_hash");
    g.throughput(Throughput::Elements(1));
    g.bench_function("api_key_hash", |b| {
        b.iter(|| api_key_hash(black_box(api_key)));
    });
    g.finish();
}

criterion_group!(benches, small, large, derivations);
criterion_main!(benches);

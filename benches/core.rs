//! Criterion benchmarks of the crypto core: `make bench` (figures in BENCHMARKS.md).
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use keyseal::{api_key_hash, decrypt, decrypt_bytes, derive_pool_key, encrypt, encrypt_bytes};
use keyseal::{decrypt_v3, encrypt_v3, token_format, Context, DataKey, MasterKey};
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
    // v3 beside v2, in the same run: no context, then a table/row/column context built once
    // (as a caller would per row), then the version read from the header before decrypting.
    let none = Context::none();
    let row = Context::new().part("users").part("4242").part("api_token");
    let t_none = encrypt_v3(&secret, &key, 2, &none).unwrap();
    let t_row = encrypt_v3(&secret, &key, 2, &row).unwrap();
    g.bench_function("encrypt_v3", |b| {
        b.iter(|| encrypt_v3(black_box(&secret), &key, 2, &none).unwrap());
    });
    g.bench_function("decrypt_v3", |b| {
        b.iter(|| decrypt_v3(black_box(&t_none), &key, &none).unwrap());
    });
    g.bench_function("encrypt_v3_row_context", |b| {
        b.iter(|| encrypt_v3(black_box(&secret), &key, 2, &row).unwrap());
    });
    g.bench_function("decrypt_v3_row_context", |b| {
        b.iter(|| decrypt_v3(black_box(&t_row), &key, &row).unwrap());
    });
    g.bench_function("token_format_then_decrypt_v3", |b| {
        b.iter(|| {
            let _version = token_format(black_box(&t_row)).unwrap();
            decrypt_v3(black_box(&t_row), &key, &row).unwrap()
        });
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

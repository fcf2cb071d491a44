//! Criterion benchmarks of the crypto core: `make bench` (figures in BENCHMARKS.md).
#![allow(missing_docs)]

use criterion::measurement::{Measurement, ValueFormatter};
use criterion::{
    criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput,
};
use keyseal::{api_key_hash, decrypt, decrypt_bytes, derive_pool_key, encrypt, encrypt_bytes};
use keyseal::{decrypt_v3, encrypt_v3, token_format, Context, DataKey, MasterKey};
use std::hint::black_box;
use std::time::Duration;

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

/// Time this thread spent on a CPU (Linux `/proc/thread-self/schedstat`, in ns, as of the last
/// scheduler tick), not wall time: on a machine shared with builds, the time spent waiting for a core is most of the
/// wall time and none of the cost, and it swung the v2/v3 figures by ±40 % between runs.
struct ThreadCpuTime;

fn thread_cpu_ns() -> u64 {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat")
        .expect("/proc/thread-self/schedstat (Linux) for the secret_64B_cpu benches");
    stat.split_whitespace()
        .next()
        .and_then(|ns| ns.parse().ok())
        .expect("schedstat starts with the thread's CPU time in ns")
}

impl Measurement for ThreadCpuTime {
    type Intermediate = u64;
    type Value = u64;
    fn start(&self) -> u64 {
        thread_cpu_ns()
    }
    fn end(&self, started: u64) -> u64 {
        thread_cpu_ns().saturating_sub(started)
    }
    fn add(&self, a: &u64, b: &u64) -> u64 {
        a + b
    }
    fn zero(&self) -> u64 {
        0
    }
    #[allow(clippy::cast_precision_loss)] // ns of one sample: far below 2^53
    fn to_f64(&self, v: &u64) -> f64 {
        *v as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        &Nanoseconds
    }
}

/// Shows CPU time in ns, unscaled.
struct Nanoseconds;

impl ValueFormatter for Nanoseconds {
    fn scale_values(&self, _typical: f64, _values: &mut [f64]) -> &'static str {
        "ns (CPU)"
    }
    fn scale_throughputs(
        &self,
        _typical: f64,
        _t: &Throughput,
        _values: &mut [f64],
    ) -> &'static str {
        "ns (CPU)"
    }
    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "ns"
    }
}

/// v2 and v3 (no context, row context) of a 64-byte secret in thread CPU time: what the
/// header and context cost, measurable on a loaded machine (`cargo bench --bench core --
/// secret_64B_cpu`).
fn small_cpu(c: &mut Criterion<ThreadCpuTime>) {
    let key = DataKey::generate().unwrap();
    let secret = "sk-proj-".to_string() + &"A".repeat(56); // 64 bytes
    let none = Context::none();
    let row = Context::new().part("users").part("4242").part("api_token");
    let t_v2 = encrypt(&secret, &key).unwrap();
    let t_none = encrypt_v3(&secret, &key, 2, &none).unwrap();
    let t_row = encrypt_v3(&secret, &key, 2, &row).unwrap();
    let mut g = c.benchmark_group("secret_64B_cpu");
    // The kernel updates a thread's CPU time at scheduler ticks (a few ms): samples of about
    // half a second each keep that error under 1 %.
    g.sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    g.bench_function("decrypt", |b| {
        b.iter(|| decrypt(black_box(&t_v2), &key).unwrap());
    });
    g.bench_function("decrypt_v3", |b| {
        b.iter(|| decrypt_v3(black_box(&t_none), &key, &none).unwrap());
    });
    g.bench_function("decrypt_v3_row_context", |b| {
        b.iter(|| decrypt_v3(black_box(&t_row), &key, &row).unwrap());
    });
    g.bench_function("encrypt", |b| {
        b.iter(|| encrypt(black_box(&secret), &key).unwrap());
    });
    g.bench_function("encrypt_v3", |b| {
        b.iter(|| encrypt_v3(black_box(&secret), &key, 2, &none).unwrap());
    });
    g.bench_function("encrypt_v3_row_context", |b| {
        b.iter(|| encrypt_v3(black_box(&secret), &key, 2, &row).unwrap());
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
criterion_group! {
    name = cpu;
    config = Criterion::default().with_measurement(ThreadCpuTime);
    targets = small_cpu
}
criterion_main!(benches, cpu);

//! tmp
#[path = "../fuzz/src/bodies/mod.rs"]
mod bodies;
fn rng(seed: &mut u64) -> u64 { *seed ^= *seed << 13; *seed ^= *seed >> 7; *seed ^= *seed << 17; *seed }
fn go(name: &str, run: fn(&[u8]), n: usize, len: usize) {
    let known = std::env::var("SMOKE_KNOWN").map_or(true, |v| v == "stop");
    bodies::util::stop_on_known(known);
    let mut s = 0x1234_5678_9abc_def1u64 ^ std::env::var("SMOKE_SEED").map_or(0, |v| v.parse().unwrap());
    for i in 0..n {
        let l = (rng(&mut s) as usize) % len;
        let data: Vec<u8> = (0..l).map(|_| rng(&mut s) as u8).collect();
        let r = std::panic::catch_unwind(|| run(&data));
        if r.is_err() { std::fs::write(format!("/tmp/h4-smoke-{name}-{i}"), &data).unwrap(); }
    }
}
#[test] fn api_keys() { go("api_keys_ops", bodies::api_keys_ops::run, 300, 600); }
#[test] fn keystore() { go("keystore_ops", bodies::keystore_ops::run, 200, 400); }
#[test] fn migrate() { go("migrate_value", bodies::migrate_value::run, 300, 400); }
#[test] fn format() { go("api_key_format", bodies::api_key_format::run, 20000, 100); }
#[test] fn decrypt() { go("decrypt", bodies::decrypt::run, 20000, 100); }

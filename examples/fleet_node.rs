//! One process of the fleet benchmarks on PostgreSQL (`make bench-fleet`, driven by the
//! Python scripts in `bench/fleet/`). The database URL comes from `KEYSEAL_FLEET_URL`, never
//! from the command line; keys travel over pipes, never argv. Modes:
//!
//! - `admin`: reads `create` / `revoke USER KEY_ID` / `quit` lines on stdin. `create` answers
//!   `key USER KEY_ID KEY`; `revoke` answers `revoked T_US CALL_US`, `T_US` being the
//!   wall clock (`CLOCK_REALTIME`, µs since the epoch) read right after the revoking call
//!   returned and `CALL_US` how long the call took.
//! - `verify`: once past its start-up (the notification listener's self-test), prints
//!   `config …` (its settings and feed mode), then for each `key KEY` line on stdin: verifies
//!   the key until it is valid (a key made by another process is seen once the feed has been
//!   read), prints `ready FEED_MODE`, then verifies the same (now cached) key in a loop, one
//!   call every `--pace-us` µs (default 1000; 0: back to back), until it is refused; prints
//!   `refused REASON T_US CALLS`, `T_US` read right after the refusing call returned.
//! - `compare --clients N --samples S`: on an empty database, creates N keys one after the
//!   other, then times valid keys cached and uncached (a fresh `ApiKeys` per pass, without
//!   and with a fast-verifier key), wrong keys with an unknown key id and wrong secrets of
//!   known key ids (without and with it); prints one JSON line.
//!
//! Options (every mode): `--cost C` (bcrypt cost of new keys, default 4).
#![allow(missing_docs, clippy::cast_precision_loss)]

use std::io::{BufRead, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use keyseal::testing::{assemble_api_key, parse_api_key};
use keyseal::{ApiKeys, ApiKeysConfig, Environment, NewKey, Refusal, Verification, VerifierKey};
use serde_json::json;
use zeroize::Zeroizing;

const URL_VAR: &str = "KEYSEAL_FLEET_URL";
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

struct Options {
    mode: String,
    cost: u32,
    pace: Duration,
    clients: usize,
    samples: usize,
}

fn parse_options() -> Result<Options, String> {
    let mut args = std::env::args().skip(1);
    let mode = args
        .next()
        .ok_or("usage: fleet_node admin|verify|compare [--cost C] [--pace-us P] [--clients N] [--samples S]")?;
    let mut o = Options {
        mode,
        cost: 4,
        pace: Duration::from_millis(1),
        clients: 10,
        samples: 1000,
    };
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        let number: u64 = value
            .parse()
            .map_err(|_| format!("{flag}: not a number: {value}"))?;
        let small = |v: u64| usize::try_from(v).map_err(|_| format!("{flag}: too large"));
        match flag.as_str() {
            "--cost" => o.cost = u32::try_from(number).map_err(|_| "--cost: too large")?,
            "--pace-us" => o.pace = Duration::from_micros(number),
            "--clients" => o.clients = small(number)?.max(1),
            "--samples" => o.samples = small(number)?.max(1),
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    Ok(o)
}

fn config(o: &Options) -> ApiKeysConfig {
    // Many keys per user in `admin` and `compare`: the per-user limit is not what is measured.
    ApiKeysConfig::default()
        .bcrypt_cost(o.cost)
        .max_active_keys(None)
}

fn open(cfg: ApiKeysConfig) -> Result<ApiKeys, String> {
    let url = Zeroizing::new(
        std::env::var(URL_VAR).map_err(|_| format!("{URL_VAR} is not set (the database URL)"))?,
    );
    ApiKeys::open_with(url.as_str(), cfg).map_err(|e| format!("open: {e}"))
}

/// `CLOCK_REALTIME` in µs: comparable between processes of one machine.
fn realtime_us() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros())
}

fn say(line: &str) -> Result<(), String> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .map_err(|e| format!("stdout: {e}"))
}

fn main() -> ExitCode {
    let result = parse_options().and_then(|o| match o.mode.as_str() {
        "admin" => admin(&o),
        "verify" => verifier(&o),
        "compare" => compare(&o),
        other => Err(format!("unknown mode {other}")),
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fleet_node: {e}");
            ExitCode::FAILURE
        }
    }
}

fn admin(o: &Options) -> Result<(), String> {
    let keys = open(config(o))?;
    let mut made = 0_u64;
    for line in std::io::stdin().lock().lines() {
        let line = line.map_err(|e| format!("stdin: {e}"))?;
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["create"] => {
                made += 1;
                let user = format!("fleet-{made}");
                let k = keys
                    .create(&NewKey::new(user.as_str(), "revocation latency"))
                    .map_err(|e| format!("create: {e}"))?;
                // The key goes to the coordinator's pipe only, wiped here once written.
                let line = Zeroizing::new(format!("key {user} {} {}", k.key_id, k.key));
                say(&line)?;
            }
            ["revoke", user, key_id] => {
                let t = Instant::now();
                keys.revoke(user, key_id)
                    .map_err(|e| format!("revoke: {e}"))?;
                let at = realtime_us();
                say(&format!("revoked {at} {}", t.elapsed().as_micros()))?;
            }
            ["quit"] => break,
            _ => return Err(format!("admin: unknown command {:?}", words.first())),
        }
    }
    Ok(())
}

/// Opens, then lets the notification listener finish its start-up self-test (when the
/// store has one): the figures are those of a long-lived process, past its start.
fn open_settled(cfg: ApiKeysConfig) -> Result<ApiKeys, String> {
    let keys = open(cfg)?;
    let started = Instant::now();
    while keys.status().feed_mode == "notify-down" && started.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(keys)
}

fn verifier(o: &Options) -> Result<(), String> {
    // The feed mode is reported either way.
    let keys = open_settled(config(o))?;
    say(&format!(
        "config {:?} pace_us={} feed_mode={}",
        config(o),
        o.pace.as_micros(),
        keys.status().feed_mode
    ))?;
    for line in std::io::stdin().lock().lines() {
        let line = Zeroizing::new(line.map_err(|e| format!("stdin: {e}"))?);
        let Some(key) = line.strip_prefix("key ") else {
            return Err("verify: expected `key KEY`".into());
        };
        // Until the change check has seen the new key, its id is not known here.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match keys.verify(key).map_err(|e| format!("verify: {e}"))? {
                Verification::Valid(_) => break,
                Verification::Refused(Refusal::Unknown) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(2));
                }
                other => return Err(format!("new key not valid: {other:?}")),
            }
        }
        say(&format!("ready {}", keys.status().feed_mode))?;
        let mut calls = 0_u64;
        loop {
            calls += 1;
            let v = keys.verify(key);
            let at = realtime_us();
            match v {
                Ok(Verification::Valid(_)) => {}
                Ok(Verification::Refused(r)) => {
                    say(&format!("refused {} {at} {calls}", r.reason()))?;
                    break;
                }
                // Printed as an answer, not fatal: the coordinator counts it as a failed run.
                Err(e) => {
                    say(&format!(
                        "refused error:{} {at} {calls}",
                        e.to_string().replace(' ', "_")
                    ))?;
                    break;
                }
                Ok(other) => return Err(format!("unexpected answer {other:?}")),
            }
            if !o.pace.is_zero() {
                std::thread::sleep(o.pace);
            }
        }
    }
    Ok(())
}

/// A small non-cryptographic generator: which key to verify next, wrong ids and secrets.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n as u64).unwrap_or(0)
    }
    fn base62(&mut self, len: usize) -> String {
        (0..len)
            .map(|_| char::from(BASE62[self.below(BASE62.len())]))
            .collect()
    }
}

/// Median, p99 (nearest rank) and count of per-call times, in µs.
fn summary(mut ns: Vec<u64>) -> serde_json::Value {
    ns.sort_unstable();
    // Nearest rank, in integers: the `pct`-th percentile is the ceil(pct·len/100)-th value.
    let rank =
        |pct: usize| ns[(pct * ns.len()).div_ceil(100).clamp(1, ns.len()) - 1] as f64 / 1000.0;
    json!({ "median_us": rank(50), "p99_us": rank(99), "samples": ns.len() })
}

fn timed(
    f: impl FnOnce() -> Result<Verification, keyseal::Error>,
) -> Result<(u64, Verification), String> {
    let t = Instant::now();
    let v = f().map_err(|e| format!("verify: {e}"))?;
    let ns = u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX);
    Ok((ns, v))
}

fn expect(v: &Verification, valid: bool, what: &str) -> Result<(), String> {
    if v.is_valid() == valid {
        Ok(())
    } else {
        Err(format!("{what}: unexpected answer {v:?}"))
    }
}

/// Valid keys verified by fresh managers opened with `cfg`, each key once per manager in a
/// random order, until `samples` are timed.
fn uncached_pass(
    cfg: &ApiKeysConfig,
    created: &[Zeroizing<String>],
    samples: usize,
    rng: &mut Rng,
) -> Result<Vec<u64>, String> {
    let mut times = Vec::with_capacity(samples);
    while times.len() < samples {
        let fresh = open(cfg.clone())?;
        let mut order: Vec<usize> = (0..created.len()).collect();
        for i in (1..order.len()).rev() {
            order.swap(i, rng.below(i + 1));
        }
        for &i in order.iter().take(samples - times.len()) {
            let (ns, v) = timed(|| fresh.verify(&created[i]))?;
            expect(&v, true, "uncached")?;
            times.push(ns);
        }
    }
    Ok(times)
}

/// Wrong secrets of real key ids, each new: at most 15 per id, under the default throttle
/// of 20 per id per minute (each manager counts its own).
fn wrong_secrets(
    keys: &ApiKeys,
    ids: &[String],
    env: Environment,
    samples: usize,
    rng: &mut Rng,
) -> Result<Vec<u64>, String> {
    let mut times = Vec::new();
    for i in 0..samples.min(15 * ids.len()) {
        let id = &ids[i % ids.len()];
        let k = Zeroizing::new(assemble_api_key(keys.format(), env, id, &rng.base62(43)));
        let (ns, v) = timed(|| keys.verify(&k))?;
        if v.refusal() != Some(Refusal::Unknown) {
            return Err(format!("wrong secret: unexpected answer {v:?}"));
        }
        times.push(ns);
    }
    Ok(times)
}

fn compare(o: &Options) -> Result<(), String> {
    // Keys are made by a manager holding a verifier key, so their rows carry its tag; the
    // bcrypt figures come from managers without it (as by default), the fast-verifier ones
    // from managers with it.
    let plain = config(o);
    let fast = config(o).verifier_key(VerifierKey::generate().map_err(|e| e.to_string())?);
    let keys = open_settled(fast.clone())?;
    let mut rng = Rng(u64::try_from(realtime_us() & u128::from(u64::MAX)).unwrap_or(1) | 1);
    // Creates, one after the other, as an admin endpoint would.
    let mut created: Vec<Zeroizing<String>> = Vec::with_capacity(o.clients);
    let mut ids = Vec::with_capacity(o.clients);
    let mut create_ns = Vec::with_capacity(o.clients);
    let t_all = Instant::now();
    for i in 0..o.clients {
        let t = Instant::now();
        let k = keys
            .create(&NewKey::new(format!("client-{i}"), "compare"))
            .map_err(|e| format!("create: {e}"))?;
        create_ns.push(u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX));
        created.push(Zeroizing::new(k.key.clone()));
        ids.push(k.key_id.clone());
    }
    let creates_per_s = o.clients as f64 / t_all.elapsed().as_secs_f64();
    let format = keys.format().clone();
    let env = parse_api_key(&format, &created[0]).map_or(Environment::Live, |p| p.0);

    // Valid, cached: every key verified once, then random keys.
    for k in &created {
        expect(&keys.verify(k).map_err(|e| e.to_string())?, true, "warm-up")?;
    }
    let mut cached = Vec::with_capacity(o.samples * 10);
    for _ in 0..o.samples * 10 {
        let k = &created[rng.below(created.len())];
        let (ns, v) = timed(|| keys.verify(k))?;
        expect(&v, true, "cached")?;
        cached.push(ns);
    }

    // Valid, uncached: fresh managers, one bcrypt each; then with the verifier key.
    let uncached = uncached_pass(&plain, &created, o.samples, &mut rng)?;
    let uncached_fast = uncached_pass(&fast, &created, o.samples, &mut rng)?;

    // Wrong keys, well formed: an id no key has (answered from memory), and wrong secrets of
    // real ids (one bcrypt each without the verifier key, one HMAC with it).
    let mut unknown = Vec::with_capacity(o.samples);
    for _ in 0..o.samples {
        let k = Zeroizing::new(assemble_api_key(
            &format,
            env,
            &rng.base62(12),
            &rng.base62(43),
        ));
        let (ns, v) = timed(|| keys.verify(&k))?;
        expect(&v, false, "unknown id")?;
        unknown.push(ns);
    }
    let wrong_secret = wrong_secrets(&open_settled(plain)?, &ids, env, o.samples, &mut rng)?;
    let wrong_secret_fast = wrong_secrets(&keys, &ids, env, o.samples, &mut rng)?;

    let report = json!({
        "clients": o.clients,
        "bcrypt_cost": o.cost,
        "feed_mode": keys.status().feed_mode,
        "creates_per_s": creates_per_s,
        "create": summary(create_ns),
        "valid_cached": summary(cached),
        "valid_uncached": summary(uncached),
        "valid_uncached_fast": summary(uncached_fast),
        "wrong_unknown_id": summary(unknown),
        "wrong_secret_known_id": summary(wrong_secret),
        "wrong_secret_fast": summary(wrong_secret_fast),
    });
    say(&report.to_string())
}

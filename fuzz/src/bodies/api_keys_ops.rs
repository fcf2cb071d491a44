//! `api_keys_ops`: `ApiKeys` driven by a sequence of operations, checked against a model of
//! what README.md and the API docs promise (see `model`).
//!
//! Operations: create (with or without an expiry a day ahead or already past, a rate limit
//! of 1 to 3 per hour, live or test), verify the exact key, a one-character variant, the
//! same key id with a wrong secret, or arbitrary text, revoke (also as the wrong user),
//! rotate (no grace, or an hour), `import_legacy` (real `$2a$`/`$2b$`/`$2y$` hashes,
//! arbitrary text as a hash, costs over 16; several prefixes, lookup lengths 1 to 64, given
//! or drawn key ids), `info`, reopen, and a second instance on the same file (with a change
//! check interval of zero, so each instance sees the other's writes at its next call).
//! bcrypt cost 4; at most 24 operations per input.
//!
//! A broken promise panics with `NEW FINDING: …`, or `KNOWN DEFECT (…): …` when it is an
//! instance of a defect already reported (see `util::broken`).

mod import;
mod model;

use std::time::Duration;

use arbitrary::{Arbitrary, Unstructured};
use keyseal::testing::assemble_api_key;
use keyseal::{
    ApiKeys, ApiKeysConfig, Environment, KeyFormat, KeyStatus, NewKey, RateLimit, Refusal,
    Timestamp, Verification,
};

use model::{Expect, Inst, MKey, Model};

use super::util::{broken, chars_from_seed, Scratch, Stop, BASE62, URL_SAFE};

/// When a key expires.
#[derive(Debug, Arbitrary, Clone, Copy)]
pub enum Expiry {
    /// Never.
    Never,
    /// A second ago.
    Past,
    /// In a day.
    Later,
}

/// The hash given to `import_legacy`.
#[derive(Debug, Arbitrary, Clone)]
pub enum HashKind {
    /// bcrypt (cost 4) of the key, `$2b$`.
    Real,
    /// The same written `$2a$`.
    Real2a,
    /// The same written `$2y$`.
    Real2y,
    /// Any text.
    Garbage(String),
    /// A well-formed hash of cost 17 + n % 15 (must be refused).
    Costly(u8),
}

/// The key id given to `import_legacy`.
#[derive(Debug, Arbitrary, Clone)]
pub enum KeyIdChoice {
    /// Drawn by keyseal.
    Drawn,
    /// `legacy-{n}`.
    Given(u16),
    /// The id of an existing key (must be refused).
    Existing(u8),
    /// An id with a space (must be refused).
    Bad,
}

/// One step; `on_b` picks the second instance (if open).
#[derive(Debug, Arbitrary)]
pub enum Op {
    Create {
        user: u8,
        expiry: Expiry,
        rate: Option<u8>,
        test_env: bool,
    },
    Verify {
        key: u8,
        on_b: bool,
    },
    Variant {
        key: u8,
        pos: u8,
        ch: u8,
        on_b: bool,
    },
    WrongSecret {
        key: u8,
        seed: u64,
        on_b: bool,
    },
    Raw {
        text: String,
        on_b: bool,
    },
    Revoke {
        key: u8,
        wrong_user: bool,
        on_b: bool,
    },
    Rotate {
        key: u8,
        grace: bool,
        on_b: bool,
    },
    Import {
        user: u8,
        prefix: u8,
        body_len: u8,
        lookup_len: u8,
        seed: u64,
        hash: HashKind,
        expiry: Expiry,
        key_id: KeyIdChoice,
        on_b: bool,
    },
    Info {
        key: u8,
    },
    Reopen,
    OpenSecond,
}

/// Settings drawn from the input's first bytes.
#[derive(Debug, Arbitrary)]
pub struct Setup {
    quota: u8,
    small_cache: bool,
}

const PREFIXES: &[&str] = &[
    "mhu_",
    "sk_",
    "mhu_x",
    "eg-",
    "an_old_and_rather_long_prefix_",
    "",
];
const GRACE: Duration = Duration::from_secs(3600);

struct Run {
    path: std::path::PathBuf,
    config: ApiKeysConfig,
    inst: [Option<ApiKeys>; 2],
    m: Model,
    small_cache: bool,
}

fn expiry_at(e: Expiry) -> Option<Timestamp> {
    let now = Timestamp::now().unix_millis();
    match e {
        Expiry::Never => None,
        Expiry::Past => Some(Timestamp::from_unix_millis(now - 1000)),
        Expiry::Later => Some(Timestamp::from_unix_millis(now + 86_400_000)),
    }
}

fn refusal_expect(r: &Verification) -> Expect {
    match r {
        Verification::Valid(_) => Expect::Valid,
        Verification::Refused(Refusal::Revoked) => Expect::Revoked,
        Verification::Refused(Refusal::Expired) => Expect::Expired,
        Verification::Refused(Refusal::RateLimited { .. }) => Expect::RateLimited,
        Verification::Refused(Refusal::Malformed) => Expect::Malformed,
        Verification::Refused(_) => Expect::Unknown,
        _ => panic!("NEW FINDING: a verification outcome the model does not know"),
    }
}

impl Run {
    fn open(&self) -> ApiKeys {
        ApiKeys::open_with(&self.path, self.config.clone()).expect("open ApiKeys")
    }

    fn pick(&self, on_b: bool) -> Inst {
        usize::from(on_b && self.inst[1].is_some())
    }

    fn api(&self, inst: Inst) -> &ApiKeys {
        self.inst[inst].as_ref().expect("open instance")
    }

    fn reset_instance(&mut self, inst: Inst) {
        self.inst[inst] = None;
        self.inst[inst] = Some(self.open());
        self.m.formats_seen[inst].clone_from(&self.m.formats);
    }

    /// Verifies the exact key `i` on `inst` and compares with the model.
    fn verify(&mut self, i: usize, inst: Inst) -> Result<(), Stop> {
        let Some(want) = self.m.expect(i, inst) else {
            return Ok(());
        };
        let k = self.m.keys[i].clone();
        let got = self.api(inst).verify(&k.key).expect("verify");
        let got_e = refusal_expect(&got);
        if let Verification::Valid(v) = &got {
            assert_eq!(&*v.user_id, k.user.as_str(), "valid for another user");
            assert_eq!(&*v.key_id, k.key_id.as_str(), "valid as another key");
            *self.m.used.entry(i).or_default() += 1;
        }
        if got_e == want {
            return Ok(());
        }
        let what = format!(
            "key #{i} ({}) on instance {inst}: want {want:?}, got {got_e:?}",
            if k.legacy.is_some() {
                "legacy"
            } else {
                "issued"
            }
        );
        match (want, got_e) {
            (Expect::RateLimited, Expect::Valid) if self.small_cache => Err(broken(
                Some("10: rate-limit bucket reset by cache eviction"),
                &what,
            )),
            (_, Expect::Malformed | Expect::Unknown) if self.m.legacy_lookup_defect(i, inst) => {
                Err(broken(Some("12: legacy lookups"), &what))
            }
            (w, g) if w != Expect::Valid && g != Expect::Valid && self.m.shared_lookup(i) => {
                Ok(()) // a refusal either way; the reason depends on the other rows
            }
            _ => Err(broken(None, &what)),
        }
    }

    /// A string that is not key `i` must not validate (except what bcrypt's 72-byte limit
    /// lets through for a legacy key that is itself valid now).
    fn verify_other(&mut self, text: &str, near: Option<usize>, inst: Inst) -> Result<(), Stop> {
        if let Some(j) = self.m.keys.iter().position(|k| k.key == text) {
            return self.verify(j, inst);
        }
        if near.is_some_and(|i| self.m.slow_lookup(i))
            || self.m.keys.iter().any(|k| {
                k.legacy.as_ref().is_some_and(|l| {
                    l.slow && text.starts_with(&format!("{}{}", l.prefix, l.lookup))
                })
            })
        {
            return Ok(());
        }
        let got = self.api(inst).verify(text).expect("verify");
        let Verification::Valid(v) = got else {
            return Ok(());
        };
        let Some(i) = near else {
            return Err(broken(None, "arbitrary text validated"));
        };
        let k = &self.m.keys[i];
        let same72 = k.legacy.is_some()
            && k.key.len() >= 72
            && text.len() == k.key.len()
            && text.as_bytes()[..72] == k.key.as_bytes()[..72];
        assert_eq!(
            &*v.key_id,
            k.key_id.as_str(),
            "a variant validated as another key"
        );
        if !same72 {
            return Err(broken(None, &format!("a variant of key #{i} validated")));
        }
        match self.m.expect(i, inst) {
            Some(Expect::Valid) => Ok(()),
            other => Err(broken(
                Some("8: legacy variants past byte 72 outlive revocation/expiry"),
                &format!("variant of legacy key #{i} valid while the key is {other:?}"),
            )),
        }
    }

    fn check_quota(&self, user: &str) -> Result<(), Stop> {
        // Keys in grace count, and a rotation may go one over: never more than quota + 1.
        let valid = self.m.valid_issued(user);
        if valid > self.m.quota + 1 {
            return Err(broken(
                None,
                &format!(
                    "{valid} issued keys of {user} validate, quota {}",
                    self.m.quota
                ),
            ));
        }
        Ok(())
    }

    #[allow(clippy::too_many_lines)]
    fn step(&mut self, op: Op) -> Result<(), Stop> {
        let n = self.m.keys.len();
        match op {
            Op::Create {
                user,
                expiry,
                rate,
                test_env,
            } => {
                let user = format!("u{}", user % 3);
                let env = if test_env {
                    Environment::Test
                } else {
                    Environment::Live
                };
                let mut new = NewKey::new(&user, "fuzz").scope("read").environment(env);
                if let Some(at) = expiry_at(expiry) {
                    new = new.expires_at(at);
                }
                let rate = rate.map(|r| u32::from(r % 3) + 1);
                if let Some(r) = rate {
                    new = new.rate_limit(RateLimit::new(r, Duration::from_secs(3600)));
                }
                // The quota counts every valid key: imported ones and ones in grace too.
                let valid = self.m.valid(&user);
                match self.api(0).create(&new) {
                    Ok(c) => {
                        if valid >= self.m.quota {
                            return Err(broken(
                                None,
                                &format!("create past the quota ({valid} valid)"),
                            ));
                        }
                        self.m.keys.push(MKey {
                            key: c.key.clone(),
                            key_id: c.key_id.clone(),
                            user: user.clone(),
                            legacy: None,
                            revoked: false,
                            expired: matches!(expiry, Expiry::Past),
                            rotated: false,
                            rate,
                            expires_later: matches!(expiry, Expiry::Later),
                            environment: env,
                        });
                        self.check_quota(&user)?;
                    }
                    Err(e) if e.code() == "quota_exceeded" => {
                        if valid < self.m.quota {
                            return Err(broken(
                                None,
                                &format!("quota refused with {valid} valid keys"),
                            ));
                        }
                    }
                    Err(e) => panic!("create failed: {e}"),
                }
            }
            Op::Verify { key, on_b } if n > 0 => {
                let inst = self.pick(on_b);
                self.verify(usize::from(key) % n, inst)?;
            }
            Op::Variant { key, pos, ch, on_b } if n > 0 => {
                let i = usize::from(key) % n;
                let inst = self.pick(on_b);
                let mut bytes = self.m.keys[i].key.clone().into_bytes();
                let p = usize::from(pos) % bytes.len();
                let alphabet: &[u8] = if self.m.keys[i].legacy.is_some() {
                    URL_SAFE
                } else {
                    BASE62
                };
                let mut c = alphabet[usize::from(ch) % alphabet.len()];
                if c == bytes[p] {
                    c = alphabet[(usize::from(ch) + 1) % alphabet.len()];
                }
                bytes[p] = c;
                let text = String::from_utf8(bytes).expect("ASCII");
                self.verify_other(&text, Some(i), inst)?;
            }
            Op::WrongSecret { key, seed, on_b } if n > 0 => {
                let i = usize::from(key) % n;
                let inst = self.pick(on_b);
                let k = &self.m.keys[i];
                let text = match &k.legacy {
                    None => assemble_api_key(
                        &KeyFormat::default(),
                        k.environment,
                        &k.key_id,
                        &chars_from_seed(seed, 43, BASE62),
                    ),
                    Some(l) => {
                        let head = format!("{}{}", l.prefix, l.lookup);
                        let tail = k.key.len() - head.len();
                        format!("{head}{}", chars_from_seed(seed, tail, URL_SAFE))
                    }
                };
                self.verify_other(&text, Some(i), inst)?;
            }
            Op::Raw { text, on_b } => {
                let inst = self.pick(on_b);
                self.verify_other(&text, None, inst)?;
            }
            Op::Revoke {
                key,
                wrong_user,
                on_b,
            } if n > 0 => {
                let i = usize::from(key) % n;
                let inst = self.pick(on_b);
                let k = self.m.keys[i].clone();
                let user = if wrong_user {
                    format!("{}-other", k.user)
                } else {
                    k.user.clone()
                };
                match self.api(inst).revoke(&user, &k.key_id) {
                    Ok(info) => {
                        assert!(!wrong_user, "revoked as another user");
                        assert_eq!(info.status, KeyStatus::Revoked);
                        self.m.keys[i].revoked = true;
                    }
                    Err(e) if wrong_user => assert_eq!(e.code(), "not_found"),
                    Err(e) => panic!("revoke failed: {e}"),
                }
            }
            Op::Rotate { key, grace, on_b } if n > 0 => {
                let i = usize::from(key) % n;
                let inst = self.pick(on_b);
                let k = self.m.keys[i].clone();
                let grace_d = if grace { GRACE } else { Duration::ZERO };
                // The old key in its grace and the new one: one over the quota at most.
                let quota_full = grace && self.m.valid(&k.user) > self.m.quota;
                match self.api(inst).rotate(&k.user, &k.key_id, grace_d) {
                    Ok(c) => {
                        if k.revoked || k.rotated || k.expired {
                            return Err(broken(None, &format!("rotated a dead key: {k:?}")));
                        }
                        if quota_full {
                            return Err(broken(None, "rotated with a grace past the quota"));
                        }
                        assert_eq!(c.user_id, k.user);
                        self.m.keys[i].rotated = true;
                        self.m.keys[i].expired = !grace;
                        self.m.keys.push(MKey {
                            key: c.key.clone(),
                            key_id: c.key_id.clone(),
                            user: k.user.clone(),
                            legacy: None,
                            revoked: false,
                            expired: false,
                            rotated: false,
                            rate: k.rate,
                            expires_later: k.expires_later,
                            environment: if k.legacy.is_some() {
                                Environment::Live
                            } else {
                                k.environment
                            },
                        });
                        self.check_quota(&k.user)?;
                    }
                    Err(e) if k.revoked || k.rotated || k.expired => {
                        assert_eq!(e.code(), "invalid_argument", "rotate of a dead key");
                    }
                    Err(e) if quota_full && e.code() == "quota_exceeded" => {}
                    Err(e) => {
                        return Err(broken(None, &format!("rotate of a live key failed: {e}")))
                    }
                }
            }
            Op::Import {
                user,
                prefix,
                body_len,
                lookup_len,
                seed,
                hash,
                expiry,
                key_id,
                on_b,
            } => self.import(
                &format!("u{}", user % 3),
                PREFIXES[usize::from(prefix) % PREFIXES.len()],
                usize::from(body_len % 85) + 16,
                usize::from(lookup_len % 64) + 1,
                seed,
                hash,
                expiry,
                key_id,
                self.pick(on_b),
            )?,
            Op::Info { key } if n > 0 => {
                let i = usize::from(key) % n;
                let k = &self.m.keys[i];
                let info = self.api(0).info(&k.user, &k.key_id).expect("info");
                let want = if k.revoked {
                    KeyStatus::Revoked
                } else if k.expired {
                    KeyStatus::Expired
                } else if k.rotated {
                    KeyStatus::Rotated
                } else {
                    KeyStatus::Active
                };
                assert_eq!(info.status, want, "info status of {k:?}");
                assert_eq!(info.legacy, k.legacy.is_some());
            }
            Op::Reopen => self.reset_instance(0),
            Op::OpenSecond => self.reset_instance(1),
            _ => {}
        }
        Ok(())
    }
}

/// Input: a [`Setup`] then up to 24 [`Op`]s, through `arbitrary`.
pub fn run(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(setup) = Setup::arbitrary(&mut u) else {
        return;
    };
    let Ok(ops) = Vec::<Op>::arbitrary_take_rest(u) else {
        return;
    };
    let dir = Scratch::new("apikeys");
    let quota = u32::from(setup.quota % 3) + 1;
    let config = ApiKeysConfig::default()
        .bcrypt_cost(4)
        .max_active_keys(Some(quota))
        .cache_capacity(if setup.small_cache { 2 } else { 10_000 })
        .change_check_interval(Duration::ZERO)
        .max_failures_per_key(1_000_000);
    let mut run = Run {
        path: dir.0.join("keys.db"),
        config,
        inst: [None, None],
        m: Model {
            quota,
            ..Model::default()
        },
        small_cache: setup.small_cache,
    };
    run.reset_instance(0);
    let trace = std::env::var_os("KEYSEAL_FUZZ_TRACE").is_some();
    if trace {
        eprintln!("{setup:?}");
    }
    for op in ops.into_iter().take(24) {
        if trace {
            eprintln!("{op:?}");
        }
        if run.step(op).is_err() {
            break;
        }
    }
}

//! `keystore_ops`: the key store driven by a sequence of operations, checked against a model.
//!
//! The model is what the key store's docs promise: a user gets one data key for ever (the
//! same bytes from every call, instance, reopen and master rotation); invalid user ids (empty,
//! over 1024 bytes, holding NUL) are refused with `invalid_argument` and write nothing; a
//! batch with one invalid id writes nothing; a wrong master key is refused at open; after a
//! rotation an instance still holding the old master key can never add a row (and may only
//! answer for users it already knows, with their unchanged key); `user_count` counts users.

use arbitrary::{Arbitrary, Unstructured};
use std::collections::HashMap;

use keyseal::{derive_pool_key, DataKey, KeyStore, MasterKey, MAX_USER_ID_LEN};

use super::util::Scratch;

/// A user id: mostly a few names, sometimes anything.
#[derive(Debug, Arbitrary, Clone)]
pub enum UserId {
    /// `user0`..`user5`.
    Small(u8),
    /// Any text.
    Raw(String),
    /// `n` copies of `x` (around the length limit).
    Long(u16),
}

impl UserId {
    fn text(&self) -> String {
        match self {
            UserId::Small(n) => format!("user{}", n % 6),
            UserId::Raw(s) => s.clone(),
            UserId::Long(n) => "x".repeat(usize::from(*n % 1100)),
        }
    }
}

/// One step.
#[derive(Debug, Arbitrary)]
pub enum Op {
    /// `get_or_create_user_key` on instance A (false) or B (true).
    GetOrCreate(UserId, bool),
    /// `get_user_key`.
    Get(UserId, bool),
    /// `get_or_create_user_keys`.
    GetOrCreateMany(Vec<UserId>),
    /// `rotate_master_key` on A to one of four master keys.
    RotateMaster(u8),
    /// Reopen A with the current master key, or a wrong one first.
    Reopen {
        /// Try a wrong key first (must be refused).
        wrong_first: Option<u8>,
    },
    /// (Re)open instance B with the current master key.
    OpenSecond,
    /// `user_count`.
    Count,
    /// `pool_key` equals `derive_pool_key` of the store's first master key (kept across rotations).
    Pool,
}

fn master(n: u8) -> MasterKey {
    MasterKey::from_bytes(&[0x40 + (n % 4); 32]).expect("key")
}

/// `derive_pool_key` of master key `n`, computed once (100 000 PBKDF2 iterations).
fn expected_pool(n: u8) -> [u8; 32] {
    static POOLS: [std::sync::OnceLock<[u8; 32]>; 4] = [const { std::sync::OnceLock::new() }; 4];
    *POOLS[usize::from(n % 4)].get_or_init(|| *derive_pool_key(&master(n)).expose_secret())
}

fn valid(u: &str) -> bool {
    !u.is_empty() && u.len() <= MAX_USER_ID_LEN && !u.contains('\0')
}

fn same(a: &DataKey, b: &[u8; 32]) {
    assert_eq!(a.expose_secret(), b, "a user's data key changed");
}

/// Input: up to 32 [`Op`]s through `arbitrary`.
#[allow(clippy::too_many_lines)]
pub fn run(data: &[u8]) {
    let Ok(ops) = Vec::<Op>::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    let dir = Scratch::new("keystore");
    let path = dir.0.join("keys.db");
    let mut current = 0u8;
    let mut a = KeyStore::open(&path, master(current)).expect("open");
    let mut b: Option<(KeyStore, u8)> = None;
    let mut model: HashMap<String, [u8; 32]> = HashMap::new();
    // Users whose key instance B has read (and may keep answering after a rotation).
    let mut b_knows: Vec<String> = Vec::new();
    let mut pool_checked: Option<u8> = None;

    let trace = std::env::var_os("KEYSEAL_FUZZ_TRACE").is_some();
    for op in ops.into_iter().take(32) {
        if trace {
            eprintln!("{op:?}");
        }
        match op {
            Op::GetOrCreate(_, true) | Op::Get(_, true) if b.is_none() => {}
            Op::GetOrCreate(u, on_b) => {
                let u = u.text();
                let (store, stale) = match (&b, on_b) {
                    (Some((s, m)), true) => (s, *m != current),
                    _ => (&a, false),
                };
                let got = store.get_or_create_user_key(&u);
                if !valid(&u) {
                    assert_eq!(got.expect_err("invalid id").code(), "invalid_argument");
                    continue;
                }
                match (got, model.get(&u)) {
                    (Ok(k), Some(want)) => {
                        if stale {
                            assert!(b_knows.contains(&u), "stale instance unwrapped a row");
                        }
                        same(&k, want);
                    }
                    (Ok(k), None) => {
                        assert!(!stale, "an instance with an old master key added a row");
                        model.insert(u.clone(), *k.expose_secret());
                    }
                    (Err(e), _) if stale => assert_eq!(e.code(), "wrong_master_key"),
                    (Err(e), _) => panic!("get_or_create_user_key failed: {e}"),
                }
                if on_b && !stale {
                    b_knows.push(u);
                }
            }
            Op::Get(u, on_b) => {
                let u = u.text();
                let (store, stale) = match (&b, on_b) {
                    (Some((s, m)), true) => (s, *m != current),
                    _ => (&a, false),
                };
                let got = store.get_user_key(&u);
                if !valid(&u) {
                    assert_eq!(got.expect_err("invalid id").code(), "invalid_argument");
                    continue;
                }
                match (got, model.get(&u)) {
                    (Ok(Some(k)), Some(want)) => same(&k, want),
                    (Ok(None), None) => {}
                    (Err(e), _) if stale => assert_eq!(e.code(), "wrong_master_key"),
                    (got, want) => panic!(
                        "get_user_key: got {:?}, model has a key: {}",
                        got.map(|k| k.is_some()),
                        want.is_some()
                    ),
                }
                if on_b && !stale {
                    b_knows.push(u);
                }
            }
            Op::GetOrCreateMany(users) => {
                let users: Vec<String> = users.iter().take(6).map(UserId::text).collect();
                let refs: Vec<&str> = users.iter().map(String::as_str).collect();
                let before = a.user_count().expect("count");
                let got = a.get_or_create_user_keys(&refs);
                if !users.iter().all(|u| valid(u)) {
                    assert_eq!(got.expect_err("invalid id").code(), "invalid_argument");
                    assert_eq!(a.user_count().expect("count"), before, "partial write");
                    continue;
                }
                let keys = got.expect("get_or_create_user_keys");
                assert_eq!(keys.len(), users.len());
                for (u, k) in users.iter().zip(&keys) {
                    match model.get(u) {
                        Some(want) => same(k, want),
                        None => {
                            model.insert(u.clone(), *k.expose_secret());
                        }
                    }
                }
            }
            Op::RotateMaster(n) => {
                let report = a.rotate_master_key(master(n)).expect("rotate");
                assert_eq!(report.rewrapped, model.len(), "rows rewrapped");
                current = n % 4;
            }
            Op::Reopen { wrong_first } => {
                pool_checked = None;
                drop(std::mem::replace(
                    &mut a,
                    KeyStore::open(&path, master(current)).expect("reopen"),
                ));
                if let Some(w) = wrong_first.filter(|w| w % 4 != current) {
                    let e = KeyStore::open(&path, master(w)).expect_err("wrong master key");
                    assert_eq!(e.code(), "wrong_master_key");
                }
            }
            Op::OpenSecond => {
                b = Some((
                    KeyStore::open(&path, master(current)).expect("second"),
                    current,
                ));
                b_knows.clear();
            }
            Op::Count => assert_eq!(a.user_count().expect("count"), model.len() as u64),
            // 100 000 PBKDF2 iterations a time: once per master key and instance is enough.
            Op::Pool if pool_checked != Some(current) => {
                assert_eq!(
                    a.pool_key().expect("pool key").expose_secret(),
                    &expected_pool(0),
                    "pool key of the store's first master key, kept across rotations"
                );
                pool_checked = Some(current);
            }
            Op::Pool => {}
        }
    }
    // Everything the model knows is there, unchanged, after a reopen.
    drop(b);
    drop(a);
    let a = KeyStore::open(&path, master(current)).expect("final reopen");
    assert_eq!(a.user_count().expect("count"), model.len() as u64);
    for (u, want) in &model {
        same(&a.get_user_key(u).expect("get").expect("present"), want);
    }
}

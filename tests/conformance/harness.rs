//! What every backend's API-key suite shares: the backend's openers, another client
//! of the same store, small helpers.

use std::path::Path;
use std::time::{Duration, Instant};

use keyseal::{ApiKeys, ApiKeysConfig, Error, LegacyKey, Verification};

/// Another client of the same store, outside any `ApiKeys`: it takes the write lock, runs
/// SQL, and commits.
pub(crate) trait Raw: Send {
    /// Starts a write transaction (takes the store's write lock).
    fn lock(&mut self);
    /// Runs one statement inside it.
    fn execute(&mut self, sql: &str);
    /// Commits (releases the lock).
    fn commit(&mut self);
}

/// One fresh, empty store for one test (a file, a database), removed when dropped.
pub(crate) trait Place {
    /// The location `ApiKeys::open` takes (a path, a URL).
    fn path(&self) -> &Path;
}

impl Place for crate::common::temp_db::TempDb {
    fn path(&self) -> &Path {
        crate::common::temp_db::TempDb::path(self)
    }
}

/// The statements another client runs, in the backend's SQL: each bumps the change
/// sequence as `ApiKeys` does.
pub(crate) struct Sql {
    /// Revokes the key with this key id.
    pub(crate) revoke: fn(&str) -> String,
    /// Damages the key's row so that it can no longer be read.
    pub(crate) damage: fn(&str) -> String,
    /// Repairs what `damage` did.
    pub(crate) repair: fn(&str) -> String,
    /// Run after [`Raw::lock`]: keeps rate-limit lease writes out too.
    pub(crate) lock_leases: &'static str,
}

/// A backend under test: a fresh store, how to open `ApiKeys` on it, another client of it.
pub(crate) struct Backend {
    /// Whether the backend can run here; when not, its tests are skipped (the function
    /// prints why) or, where the backend is required, it panics.
    pub(crate) available: fn() -> bool,
    /// A fresh store.
    pub(crate) fresh: fn() -> Box<dyn Place>,
    pub(crate) try_open: fn(&Path, ApiKeysConfig) -> Result<ApiKeys, Error>,
    pub(crate) open: fn(&Path, ApiKeysConfig) -> ApiKeys,
    pub(crate) raw: fn(&Path) -> Box<dyn Raw>,
    pub(crate) sql: Sql,
}

impl Backend {
    /// Whether this backend can run here (see [`Backend::available`]).
    pub(crate) fn available(&self) -> bool {
        (self.available)()
    }

    /// A fresh store.
    pub(crate) fn fresh(&self) -> Box<dyn Place> {
        (self.fresh)()
    }
}

/// Fast bcrypt for tests.
pub(crate) fn config() -> ApiKeysConfig {
    ApiKeysConfig::default().bcrypt_cost(4)
}

/// A legacy key of user `u` named `old`, no scopes, no id of its own, no expiry.
pub(crate) fn legacy_key(prefix: &str, lookup: &str, bcrypt_hash: String) -> LegacyKey {
    LegacyKey {
        prefix: prefix.into(),
        lookup: lookup.into(),
        key_id: None,
        user_id: "u".into(),
        name: "old".into(),
        scopes: vec![],
        bcrypt_hash,
        created_at: None,
        expires_at: None,
    }
}

/// The refusal's reason, `None` when valid.
pub(crate) fn refusal(v: &Verification) -> Option<&'static str> {
    v.refusal().map(|r| r.reason())
}

/// `SQLite`'s statements for [`Sql`]: the next `seq` is `MAX(seq) + 1` (one writer at a time).
pub(crate) const SQLITE_SQL: Sql = Sql {
    revoke: |key_id| {
        format!(
            "UPDATE api_keys SET revoked_at = 1, seq = (SELECT MAX(seq) + 1 FROM api_keys) \
             WHERE key_id = '{key_id}'"
        )
    },
    damage: |key_id| {
        format!(
            "UPDATE api_keys SET expires_at = 'next tuesday', \
             seq = (SELECT MAX(seq) + 1 FROM api_keys) WHERE key_id = '{key_id}'"
        )
    },
    repair: |key_id| {
        format!(
            "UPDATE api_keys SET expires_at = NULL, \
             seq = (SELECT MAX(seq) + 1 FROM api_keys) WHERE key_id = '{key_id}'"
        )
    },
    // The write lock keeps every write out already.
    lock_leases: "SELECT 1",
};

/// `valid`, the refusal's reason, or the error.
pub(crate) fn reason(v: &Result<Verification, Error>) -> String {
    match v {
        Ok(v) => v.refusal().map_or("valid", |r| r.reason()).into(),
        Err(e) => format!("error: {e}"),
    }
}

/// Verifies `key` every few ms until it is no longer valid; returns the first other answer,
/// how long that took and the slowest single call.
pub(crate) fn until_refused(
    keys: &ApiKeys,
    key: &str,
    limit: Duration,
) -> (String, Duration, Duration) {
    let t = Instant::now();
    let mut slowest = Duration::ZERO;
    loop {
        let one = Instant::now();
        let v = keys.verify(key);
        slowest = slowest.max(one.elapsed());
        if !matches!(v, Ok(Verification::Valid(_))) {
            return (reason(&v), t.elapsed(), slowest);
        }
        if t.elapsed() > limit {
            return ("still valid".into(), t.elapsed(), slowest);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// `key` with its last 6 characters replaced by a correct checksum.
pub(crate) fn fix_checksum(key: &str) -> String {
    keyseal::testing::with_checksum(&key[..key.len() - 6])
}

/// Same key id, a different secret, valid checksum.
pub(crate) fn wrong_secret(key: &str, n: usize) -> String {
    let mut b = key.as_bytes().to_vec();
    let secret_at = b.len() - 6 - 43;
    let i = secret_at + (n % 43);
    b[i] = if b[i] == b'x' { b'y' } else { b'x' };
    let j = secret_at + ((n / 43) % 43);
    if j != i {
        b[j] = if b[j] == b'q' { b'r' } else { b'q' };
    }
    fix_checksum(std::str::from_utf8(&b).unwrap())
}

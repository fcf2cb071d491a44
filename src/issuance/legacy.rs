//! Keys imported from older stores ("legacy" keys): their public description
//! [`LegacyKey`], the formats that imports register, and the checks an import passes.

use std::sync::{PoisonError, RwLock};

use super::prehash::{bcrypt_cost, valid_bcrypt_hash, MAX_IMPORTED_COST};
use super::rules::check_text;
use super::time::Timestamp;
#[cfg(doc)]
use super::ApiKeys;
use crate::Error;

/// A key from an older store, for [`ApiKeys::import_legacy`]: the key was
/// `prefix + random url-safe text`, its first `lookup.len()` characters after the prefix are
/// stored in clear, and the hash is bcrypt of the whole key as it is.
#[derive(Clone)]
pub struct LegacyKey {
    /// The literal prefix of such keys, e.g. `mhu_`.
    pub prefix: String,
    /// The stored lookup prefix (e.g. 8 characters after `mhu_`).
    pub lookup: String,
    /// The key's id in the old store ; `None` draws a new one.
    pub key_id: Option<String>,
    /// Owner.
    pub user_id: String,
    /// Name.
    pub name: String,
    /// Scopes (a store that keeps `"read write"` in one column: split it on whitespace).
    pub scopes: Vec<String>,
    /// `$2a$`, `$2b$` or `$2y$` bcrypt hash of the key.
    pub bcrypt_hash: String,
    /// Creation time; `None` is now.
    pub created_at: Option<Timestamp>,
    /// Expiry, if any.
    pub expires_at: Option<Timestamp>,
}

impl core::fmt::Debug for LegacyKey {
    /// Everything but the bcrypt hash, which is shown as `..`.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("LegacyKey")
            .field("prefix", &self.prefix)
            .field("lookup", &self.lookup)
            .field("key_id", &self.key_id)
            .field("user_id", &self.user_id)
            .field("name", &self.name)
            .field("scopes", &self.scopes)
            .field("bcrypt_hash", &"..")
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// A legacy key format: a literal prefix (e.g. `mhu_`), then url-safe base64
/// characters, of which the first `lookup_len` are stored in clear for lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LegacyFormat {
    pub prefix: String,
    pub lookup_len: usize,
}

impl LegacyFormat {
    /// The lookup prefix of `key` if it has this format's shape (never for a format of keys
    /// imported without a lookup, whose length is 0).
    pub(crate) fn lookup<'a>(&self, key: &'a str) -> Option<&'a str> {
        if self.lookup_len == 0 || !self.fits(key) {
            return None;
        }
        Some(&key[self.prefix.len()..self.prefix.len() + self.lookup_len])
    }

    /// Whether `key` has this format's shape: the prefix, then 16 to 128 url-safe base64
    /// characters (at least the lookup's length).
    fn fits(&self, key: &str) -> bool {
        key.strip_prefix(self.prefix.as_str()).is_some_and(|rest| {
            (self.lookup_len.max(16)..=128).contains(&rest.len())
                && rest
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        })
    }
}

/// The legacy formats known to this process: registered by imports here, or found by the
/// change check.
pub(crate) struct LegacyFormats(RwLock<Vec<LegacyFormat>>);

impl LegacyFormats {
    pub(crate) fn new() -> Self {
        LegacyFormats(RwLock::default())
    }

    /// Adds the formats not known yet.
    pub(crate) fn merge(&self, formats: impl IntoIterator<Item = (String, usize)>) {
        let mut known = self.0.write().unwrap_or_else(PoisonError::into_inner);
        for (prefix, lookup_len) in formats {
            let f = LegacyFormat { prefix, lookup_len };
            if !known.contains(&f) {
                known.push(f);
            }
        }
    }

    /// The lookup values `key` has under every known format (several formats may share a
    /// prefix), each once.
    pub(crate) fn lookups<'k>(&self, key: &'k str) -> Vec<&'k str> {
        let known = self.0.read().unwrap_or_else(PoisonError::into_inner);
        let mut out: Vec<&str> = Vec::new();
        for l in known.iter().filter_map(|f| f.lookup(key)) {
            if !out.contains(&l) {
                out.push(l);
            }
        }
        out
    }
}

impl LegacyFormats {
    /// The prefixes of formats without a lookup (keys imported without one) that `key` has
    /// the shape of.
    pub(crate) fn lookupless(&self, key: &str) -> Vec<String> {
        let known = self.0.read().unwrap_or_else(PoisonError::into_inner);
        known
            .iter()
            .filter(|f| f.lookup_len == 0 && f.fits(key))
            .map(|f| f.prefix.clone())
            .collect()
    }
}

impl LegacyKey {
    /// The checks of an import beyond the fields every key has.
    pub(crate) fn check(&self) -> Result<(), Error> {
        check_text("legacy prefix", &self.prefix, 32, false)?;
        let lookup_ok = (1..=64).contains(&self.lookup.len())
            && self
                .lookup
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_');
        if !lookup_ok {
            return Err(Error::InvalidArgument {
                what: "legacy lookup: 1 to 64 url-safe base64 characters".into(),
            });
        }
        if !valid_bcrypt_hash(&self.bcrypt_hash) {
            return Err(Error::InvalidArgument {
                what: "legacy hash: not a $2a$/$2b$/$2y$ bcrypt hash".into(),
            });
        }
        if bcrypt_cost(&self.bcrypt_hash).is_some_and(|c| c > MAX_IMPORTED_COST) {
            return Err(Error::InvalidArgument {
                what: format!(
                    "legacy hash: bcrypt cost above {MAX_IMPORTED_COST}, the most accepted"
                ),
            });
        }
        if let Some(id) = &self.key_id {
            check_text("key id", id, 128, false)?;
        }
        Ok(())
    }
}

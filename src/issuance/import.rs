//! Keys imported from the systems keyseal replaces, without reissuing them: [`ImportedKey`],
//! [`ApiKeys::import_keys`] and its [`ImportReport`].
//!
//! An imported key keeps its bcrypt hash (of the whole key, as the old system made it) and
//! validates unchanged. A key that came with a stored lookup (the clear prefix an old store
//! kept beside the hash) is found by it at once. A key without one waits under its tag's
//! pending marker until its first verification, which runs bcrypt over the pending keys of
//! its tag (as the old system did on every request) and then records a lookup derived from
//! the key, so every later verification, on every server, is one indexed read (see
//! `upgrade`).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Instant;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::backend::{is_pending, Inserted, Row, Scheme};
use super::format::Environment;
use super::legacy::LegacyKey;
use super::rate_limit::RateLimit;
use super::rules::{self, check_text, NEVER};
use super::time::Timestamp;
use super::upgrade::marker_of;
use super::ApiKeys;
use crate::Error;

/// One key from an older system, for [`ApiKeys::import_keys`]. The key itself was
/// `{tag}_{rest}`; `bcrypt_hash` is bcrypt of the whole key as it is.
#[derive(Clone)]
pub struct ImportedKey {
    /// The key's id in the old system; `None`: the key is identified by its hash (a
    /// re-import finds it again as long as the hash is the same).
    pub source_id: Option<String>,
    /// Owner.
    pub user_id: String,
    /// Name.
    pub name: String,
    /// Scopes.
    pub scopes: Vec<String>,
    /// What the key starts with, before its `_`: `mhu`, `eg`, `mcpkey_live`.
    pub tag: String,
    /// The lookup prefix the old system stored beside the hash (the characters right after
    /// `{tag}_`), if it kept one.
    pub lookup: Option<String>,
    /// `$2a$`, `$2b$` or `$2y$` bcrypt hash of the whole key.
    pub bcrypt_hash: String,
    /// Expiry, if any.
    pub expires_at: Option<Timestamp>,
    /// `false`: imported disabled (refused as `disabled` until enabled).
    pub enabled: bool,
    /// Creation time in the old system; `None` is now.
    pub created_at: Option<Timestamp>,
    /// Last use in the old system, if known.
    pub last_used_at: Option<Timestamp>,
    /// Per-key rate limit, if any.
    pub rate_limit: Option<RateLimit>,
}

impl core::fmt::Debug for ImportedKey {
    /// Everything but the bcrypt hash, which is shown as `..`.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ImportedKey")
            .field("source_id", &self.source_id)
            .field("user_id", &self.user_id)
            .field("name", &self.name)
            .field("scopes", &self.scopes)
            .field("tag", &self.tag)
            .field("lookup", &self.lookup)
            .field("bcrypt_hash", &"..")
            .field("expires_at", &self.expires_at)
            .field("enabled", &self.enabled)
            .field("created_at", &self.created_at)
            .field("last_used_at", &self.last_used_at)
            .field("rate_limit", &self.rate_limit)
            .finish()
    }
}

/// How [`ApiKeys::import_keys`] runs.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// The system the keys come from (e.g. `egregore`): a key is the same key on a re-import
    /// when its source and source id are. 1 to 64 characters, no whitespace.
    pub source: String,
    /// Count what would be done; change nothing.
    pub dry_run: bool,
    /// The keys given are every key of the source: keys imported from it earlier and now
    /// missing were deleted upstream, and are deleted here.
    pub complete: bool,
}

impl ImportOptions {
    /// A real import from `source` of some of its keys (nothing deleted).
    pub fn new(source: impl Into<String>) -> Self {
        ImportOptions {
            source: source.into(),
            dry_run: false,
            complete: false,
        }
    }
}

/// What an import did (or, for a dry run, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ImportReport {
    /// Keys not seen before, now stored.
    pub created: usize,
    /// Keys imported before whose owner, name, scopes, expiry, enabled state, rate limit,
    /// last use or hash changed upstream, now updated.
    pub updated: usize,
    /// Keys imported before and unchanged.
    pub unchanged: usize,
    /// Keys imported before from this source and missing now (only with
    /// [`ImportOptions::complete`]), now deleted.
    pub deleted: usize,
    /// Whether nothing was changed (a dry run).
    pub dry_run: bool,
}

/// The source id of a key imported without one: a digest of its hash, so that a re-import
/// finds it again and the stored id tells nothing about the hash.
fn id_from_hash(hash: &str) -> String {
    let digest = Sha256::new()
        .chain_update(b"keyseal/import-id/v1\0")
        .chain_update(hash.as_bytes())
        .finalize();
    let mut text = String::from("h:");
    for b in &digest[..16] {
        text.push(char::from_digit(u32::from(b >> 4), 16).unwrap_or('0'));
        text.push(char::from_digit(u32::from(b & 15), 16).unwrap_or('0'));
    }
    text
}

enum Plan {
    Create(Row),
    Update(Row, Row),
    Replace(Row, Row),
    Unchanged,
}

impl ImportedKey {
    fn check(&self, index: usize) -> Result<(), Error> {
        let at = |e: Error| match e {
            Error::InvalidArgument { what } => Error::InvalidArgument {
                what: format!("imported key {index}{}: {what}", self.source_label()),
            },
            other => other,
        };
        rules::check_key_fields(&self.user_id, &self.name, &self.scopes).map_err(at)?;
        let tag_ok = (1..=31).contains(&self.tag.len())
            && self
                .tag
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-');
        if !tag_ok {
            return Err(at(Error::InvalidArgument {
                what: "tag: 1 to 31 letters, digits, `_` or `-`".into(),
            }));
        }
        if let Some(id) = &self.source_id {
            check_text("source id", id, 128, false).map_err(at)?;
        }
        self.as_legacy(String::new()).check().map_err(at)
    }

    fn source_label(&self) -> String {
        self.source_id
            .as_ref()
            .map_or_else(String::new, |id| format!(" (source id {id})"))
    }

    /// The checks and lookup handling of [`LegacyKey`] apply to every imported key.
    fn as_legacy(&self, key_id: String) -> LegacyKey {
        LegacyKey {
            prefix: format!("{}_", self.tag),
            // A key without a lookup is checked with a placeholder; its row gets the marker.
            lookup: self.lookup.clone().unwrap_or_else(|| "x".into()),
            key_id: Some(key_id).filter(|k| !k.is_empty()),
            user_id: self.user_id.clone(),
            name: self.name.clone(),
            scopes: self.scopes.clone(),
            bcrypt_hash: self.bcrypt_hash.clone(),
            created_at: self.created_at,
            expires_at: self.expires_at,
        }
    }

    fn row(&self, source: &str, source_id: String) -> Row {
        let mut row = ApiKeys::new_row(&self.user_id, &self.name, &self.scopes, Environment::Live);
        row.lookup = self
            .lookup
            .clone()
            .unwrap_or_else(|| marker_of(&format!("{}_", self.tag)));
        row.scheme = Scheme::Plain;
        row.hash.clone_from(&self.bcrypt_hash);
        row.created_at = self.created_at.unwrap_or(row.created_at);
        row.expires_at = self.expires_at;
        row.enabled = self.enabled;
        row.rate_limit = self.rate_limit;
        row.last_used_at = self.last_used_at;
        row.source = Some(source.to_owned());
        row.source_id = Some(source_id);
        row
    }
}

/// The expiry a re-import gives `stored`: upstream's, but never past the end of the grace
/// period of a key rotated here (the earlier of the two).
fn merged_expiry(stored: &Row, upstream: Option<Timestamp>) -> Option<Timestamp> {
    if stored.rotated_to.is_none() {
        return upstream;
    }
    match (stored.expires_at, upstream) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// What a re-import changes in a stored row: `None` when nothing.
fn plan_for(old: &Row, mut new: Row) -> Plan {
    // A new hash is a new key (regenerated upstream); a new owner is another user's key:
    // both replace the row, so nothing of the old key's cache or lookup survives.
    if old.hash != new.hash || old.user_id != new.user_id {
        return Plan::Replace(old.clone(), new);
    }
    new.expires_at = merged_expiry(old, new.expires_at);
    let newer_use = match (old.last_used_at, new.last_used_at) {
        (Some(a), Some(b)) => b > a,
        (None, Some(_)) => true,
        _ => false,
    };
    if old.name != new.name
        || old.scopes != new.scopes
        || old.expires_at != new.expires_at
        || old.enabled != new.enabled
        || old.rate_limit != new.rate_limit
        || newer_use
    {
        Plan::Update(old.clone(), new)
    } else {
        Plan::Unchanged
    }
}

impl ApiKeys {
    /// Imports keys from a system keyseal replaces; they keep validating unchanged (see
    /// [`ImportedKey`]). Idempotent: a key already imported from the same source with the
    /// same source id is updated in place (owner, name, scopes, expiry, enabled state, rate
    /// limit, a newer last use; a key rotated here keeps the end of its grace period unless
    /// upstream's expiry is earlier) or, when its hash changed upstream (a regenerated key),
    /// replaced; never duplicated. With [`ImportOptions::complete`], keys imported from the
    /// source earlier and missing now are deleted. Imported keys do not count against the
    /// quota. Every key is checked before anything is written. Keys are written one by one:
    /// an import stopped half-way (a crash, a lost connection) is finished by running it
    /// again.
    ///
    /// ```
    /// use keyseal::{ApiKeys, ApiKeysConfig, ImportOptions, ImportedKey};
    /// # let dir = tempfile::tempdir().unwrap();
    /// let keys = ApiKeys::open_with(dir.path().join("keys.db"), ApiKeysConfig::default())?;
    /// // A client's key from the old system, and the bcrypt hash that system stored.
    /// let old_key = "eg_3f2a9c1d0b8e7f6a5c4d3e2f1a0b9c8d7e6f5a4b";
    /// # let bcrypt_hash = bcrypt::hash(old_key, 4).unwrap();
    /// let imported = ImportedKey {
    ///     source_id: Some("17".into()),
    ///     user_id: "acme-relay".into(),
    ///     name: "relay".into(),
    ///     scopes: vec!["chat".into()],
    ///     tag: "eg".into(),
    ///     lookup: None, // that system ran bcrypt over every row
    ///     bcrypt_hash,
    ///     expires_at: None,
    ///     enabled: true,
    ///     created_at: None,
    ///     last_used_at: None,
    ///     rate_limit: None,
    /// };
    /// let report = keys.import_keys(&[imported.clone()], &ImportOptions::new("egregore"))?;
    /// assert_eq!(report.created, 1);
    /// assert!(keys.verify(old_key)?.is_valid()); // the client keeps its key
    /// // Run again (a cutover re-runs it): nothing duplicated.
    /// let again = keys.import_keys(&[imported], &ImportOptions::new("egregore"))?;
    /// assert_eq!((again.created, again.unchanged), (0, 1));
    /// # Ok::<(), keyseal::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] (naming the key's position and source id; nothing written)
    /// for an empty or whitespace-containing source, a user id, name or scopes that
    /// [`ApiKeys::create`] would refuse, a tag that is not 1 to 31 letters, digits, `_` or
    /// `-`, a lookup that is not 1 to 64 url-safe characters, a hash that is not
    /// `$2a$`/`$2b$`/`$2y$` bcrypt or has a cost above 16, a source id over 128 characters
    /// or given twice, or a lookup that 16 imported keys already share; [`Error::Storage`].
    pub fn import_keys(
        &self,
        keys: &[ImportedKey],
        options: &ImportOptions,
    ) -> Result<ImportReport, Error> {
        check_text("import source", &options.source, 64, false)?;
        let mut seen = HashMap::new();
        let mut wanted = Vec::with_capacity(keys.len());
        for (index, key) in keys.iter().enumerate() {
            key.check(index)?;
            let source_id = key
                .source_id
                .clone()
                .unwrap_or_else(|| id_from_hash(&key.bcrypt_hash));
            if seen.insert(source_id.clone(), index).is_some() {
                return Err(Error::InvalidArgument {
                    what: format!("imported key {index}: source id {source_id} given twice"),
                });
            }
            wanted.push((key, source_id));
        }
        let mut stored: HashMap<String, Row> = self
            .backend
            .imported(&options.source)?
            .into_iter()
            .filter_map(|r| r.source_id.clone().map(|id| (id, r)))
            .collect();
        let mut report = ImportReport {
            dry_run: options.dry_run,
            ..ImportReport::default()
        };
        let mut plans = Vec::with_capacity(wanted.len());
        for (key, source_id) in wanted {
            let new = key.row(&options.source, source_id.clone());
            plans.push((
                key,
                match stored.remove(&source_id) {
                    Some(old) => plan_for(&old, new),
                    None => Plan::Create(new),
                },
            ));
        }
        if !options.dry_run {
            // Each format once, before its keys (a key stored before its format would not be
            // recognised by other processes until the format arrives).
            let mut formats: Vec<(String, usize)> = plans
                .iter()
                .filter(|(_, p)| matches!(p, Plan::Create(_) | Plan::Replace(..)))
                .map(|(k, _)| {
                    (
                        format!("{}_", k.tag),
                        k.lookup.as_ref().map_or(0, String::len),
                    )
                })
                .collect();
            formats.sort();
            formats.dedup();
            for (prefix, lookup_len) in &formats {
                self.backend.add_legacy_format(prefix, *lookup_len)?;
            }
            self.legacy.merge(formats);
        }
        let gone: Vec<Row> = if options.complete {
            stored.into_values().collect()
        } else {
            Vec::new()
        };
        for (_, plan) in plans {
            match plan {
                Plan::Unchanged => report.unchanged += 1,
                Plan::Create(row) => {
                    if !options.dry_run {
                        self.import_row(row)?;
                    }
                    report.created += 1;
                }
                Plan::Update(old, new) => {
                    if !options.dry_run {
                        self.update_imported(&old, &new)?;
                    }
                    report.updated += 1;
                }
                Plan::Replace(old, new) => {
                    if !options.dry_run {
                        self.delete(&old.user_id, &old.key_id)?;
                        self.import_row(new)?;
                    }
                    report.updated += 1;
                }
            }
        }
        for row in gone {
            if !options.dry_run {
                self.delete(&row.user_id, &row.key_id)?;
            }
            report.deleted += 1;
        }
        Ok(report)
    }

    /// Stores one new imported row (its format is registered already), drawing its key id.
    fn import_row(&self, mut row: Row) -> Result<(), Error> {
        let now = Timestamp::now();
        loop {
            row.key_id = super::random_base62(super::KEY_ID_LEN)?;
            let decide = |ctx: &_| rules::may_insert(&row, ctx, None, now);
            match self.backend.insert(&row, &decide)? {
                Inserted::Ok(_) => {
                    self.known_ids.extend([row.lookup.as_str()]);
                    if is_pending(&row.lookup) {
                        self.failures.pending_changed(Instant::now());
                    }
                    return Ok(());
                }
                Inserted::IdTaken => {
                    // A key id drawn twice, or the same source id imported at this moment
                    // by another process: the latter is done already.
                    let source = row.source.as_deref().unwrap_or_default();
                    if self
                        .backend
                        .imported(source)?
                        .iter()
                        .any(|r| r.source_id == row.source_id)
                    {
                        return Ok(());
                    }
                }
            }
        }
    }

    /// Writes what changed upstream into a stored imported row.
    fn update_imported(&self, old: &Row, new: &Row) -> Result<(), Error> {
        let decide = |stored: &Row, _: &[Row]| {
            let mut r = stored.clone();
            r.name.clone_from(&new.name);
            r.scopes.clone_from(&new.scopes);
            r.expires_at = merged_expiry(stored, new.expires_at);
            r.enabled = new.enabled;
            r.rate_limit = new.rate_limit;
            Ok(r)
        };
        let Some(row) = self.backend.update(&old.user_id, &old.key_id, &decide)? else {
            return Ok(()); // deleted meanwhile: the next import creates it again
        };
        if let Some(at) = new.last_used_at {
            if old.last_used_at.map_or(true, |o| at > o) {
                self.backend
                    .touch(&[(row.row_id, at)], self.config.busy_timeout)?;
            }
        }
        self.generation.fetch_add(1, Ordering::SeqCst);
        if is_pending(&row.lookup) {
            // E.g. an expiry lifted upstream: a key the scan skipped may pass now.
            self.failures.pending_changed(Instant::now());
        }
        if let Some(cached) = self.cache.by_row(row.row_id) {
            cached.apply_row_state(
                row.revoked_at.is_some(),
                !row.enabled,
                row.expires_at.map_or(NEVER, Timestamp::unix_millis),
            );
        }
        Ok(())
    }
}

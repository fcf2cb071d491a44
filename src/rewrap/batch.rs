//! The rewrap loop: batches read outside any write lock (keys fetched then), each written in
//! one transaction with compare-and-set updates; and the report.

use std::collections::HashMap;

use rusqlite::{params, Connection, TransactionBehavior};
use zeroize::Zeroizing;

use super::{rewrap_context, RewrapOptions};
use crate::migrate::sql::{storage, user_id, Raw, Shape};
use crate::migrate::{KeySource, Progress};
use crate::{
    decrypt, decrypt_v3, encrypt, encrypt_v3, token_format, Context, DataKey, Error, KeyOwner,
    KeyStore, TokenFormat,
};

/// How many refused rows a [`RewrapReport`] lists (all are counted).
pub const MAX_REFUSED_ROWS: usize = 100;

/// Why a row was left as it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RefuseReason {
    /// The value is not text, or not UTF-8.
    NotText,
    /// The value is not a `v2:` or `v3:` token (plaintext: see `keyseal migrate`).
    NotEncrypted,
    /// The user id is unusable, or the user has no key.
    NoUserId,
    /// The key version it names is disabled, destroyed or missing, or its master key is not
    /// held.
    KeyUnavailable,
    /// It does not decrypt: another owner's token, another context, damaged.
    Undecryptable,
    /// Another writer changed the value between reading and writing it.
    Changed,
}

impl core::fmt::Display for RefuseReason {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            RefuseReason::NotText => "value is not UTF-8 text",
            RefuseReason::NotEncrypted => "value is not a v2: or v3: token",
            RefuseReason::NoUserId => "no usable user id, or the user has no key",
            RefuseReason::KeyUnavailable => "its key version is disabled, destroyed or missing",
            RefuseReason::Undecryptable => "it does not decrypt (another owner or context?)",
            RefuseReason::Changed => "changed by another writer meanwhile",
        })
    }
}

/// A row left as it was.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RefusedRow {
    /// The row's id as shown to people (as the migration's reports show it).
    pub id: String,
    /// Why.
    pub reason: RefuseReason,
}

/// What [`super::rewrap_column`] did (or, in a dry run, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RewrapReport {
    /// Values re-encrypted (in a dry run: that would be).
    pub rewrapped: u64,
    /// Values already in their target form, and NULLs.
    pub skipped: u64,
    /// Values left as they were (see [`RewrapReport::refused_rows`]).
    pub refused: u64,
    /// The first [`MAX_REFUSED_ROWS`] refused rows.
    pub refused_rows: Vec<RefusedRow>,
}

impl RewrapReport {
    fn refuse(&mut self, id: &Raw, reason: RefuseReason) {
        self.refused += 1;
        if self.refused_rows.len() < MAX_REFUSED_ROWS {
            self.refused_rows.push(RefusedRow {
                id: id.describe(),
                reason,
            });
        }
    }
}

/// The keys of one owner, as far as this run needed them.
struct OwnerKeys {
    newest: u32,
    newest_key: DataKey,
    versions: HashMap<u32, Option<DataKey>>,
}

/// Keys per owner for one run; never creates a key.
struct KeyCache<'a> {
    store: &'a KeyStore,
    owners: HashMap<String, Option<OwnerKeys>>,
}

impl KeyCache<'_> {
    /// The owner's keys; `None` when the user has no key or none is active.
    fn owner(&mut self, owner: Option<&str>) -> Result<Option<&mut OwnerKeys>, Error> {
        let name = owner.unwrap_or("");
        if !self.owners.contains_key(name) {
            let found = match owner {
                Some(user) if self.store.get_user_key(user)?.is_none() => None,
                _ => {
                    let who = owner.map_or(KeyOwner::Pool, KeyOwner::User);
                    match self.store.newest_key(who) {
                        Ok((newest, newest_key)) => Some(OwnerKeys {
                            newest,
                            newest_key,
                            versions: HashMap::new(),
                        }),
                        Err(Error::KeyVersionUnavailable { .. }) => None,
                        Err(e) => return Err(e),
                    }
                }
            };
            self.owners.insert(name.to_owned(), found);
        }
        Ok(self.owners.get_mut(name).and_then(Option::as_mut))
    }

    /// The key of `version` (refused versions are `None`).
    fn version(
        store: &KeyStore,
        keys: &mut OwnerKeys,
        owner: Option<&str>,
        version: u32,
    ) -> Result<Option<DataKey>, Error> {
        if version == keys.newest {
            return Ok(Some(keys.newest_key.clone_key()));
        }
        if let Some(key) = keys.versions.get(&version) {
            return Ok(key.as_ref().map(DataKey::clone_key));
        }
        let who = owner.map_or(KeyOwner::Pool, KeyOwner::User);
        let key = match store.key_version(who, version) {
            Ok(key) => Some(key),
            Err(Error::KeyVersionUnavailable { .. } | Error::MissingMasterKey { .. }) => None,
            Err(e) => return Err(e),
        };
        keys.versions
            .insert(version, key.as_ref().map(DataKey::clone_key));
        Ok(key)
    }
}

/// Copies a key (data keys are not `Clone`, on purpose: this is the one place a run needs it).
trait CloneKey {
    fn clone_key(&self) -> DataKey;
}

impl CloneKey for DataKey {
    fn clone_key(&self) -> DataKey {
        DataKey::from_array(Zeroizing::new(*self.expose_secret()))
    }
}

/// A row's planned update: id, old token, new token.
type Planned = (Raw, String, String);

pub(super) fn run(
    conn: &mut Connection,
    store: &KeyStore,
    options: &RewrapOptions,
    shape: &Shape,
    context: Option<&[String]>,
    mut progress: impl FnMut(Progress),
) -> Result<RewrapReport, Error> {
    let Shape {
        table, column, id, ..
    } = shape;
    let user = shape.user_expr();
    let ctx_exprs = context.map_or(String::new(), |c| format!(", {}", c.join(", ")));
    let total: u64 = conn
        .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
        .map_err(|e| storage(&e))?;
    progress(Progress { done: 0, total });
    let select = format!(
        "SELECT {id}, {user}, {column}{ctx_exprs} FROM {table} \
         WHERE (?1 IS NULL OR {id} > ?1) ORDER BY {id} LIMIT ?2"
    );
    let update = format!("UPDATE {table} SET {column} = ?1 WHERE {id} = ?2 AND {column} = ?3");
    let batch = i64::try_from(options.batch).unwrap_or(i64::MAX);
    let parts = context.map_or(0, <[String]>::len);
    let mut cache = KeyCache {
        store,
        owners: HashMap::new(),
    };
    let mut report = RewrapReport::default();
    let mut done = 0u64;
    let mut last = Raw::Null;
    loop {
        let rows: Vec<(Raw, Raw, Raw, Vec<Raw>)> = {
            let mut stmt = conn.prepare_cached(&select).map_err(|e| storage(&e))?;
            stmt.query_map(params![last, batch], |row| {
                let ctx = (0..parts)
                    .map(|i| row.get(3 + i))
                    .collect::<rusqlite::Result<Vec<Raw>>>()?;
                Ok((row.get(0)?, row.get(1)?, row.get(2)?, ctx))
            })
            .and_then(Iterator::collect)
            .map_err(|e| storage(&e))?
        };
        let Some((last_id, ..)) = rows.last() else {
            break;
        };
        last = last_id.clone();
        done += rows.len() as u64;
        let mut planned: Vec<Planned> = Vec::with_capacity(rows.len());
        for (row_id, row_user, value, ctx) in rows {
            match plan(
                &mut cache,
                options,
                row_user,
                &value,
                context.map(|_| ctx.as_slice()),
            )? {
                Plan::Skip => report.skipped += 1,
                Plan::Refuse(reason) => report.refuse(&row_id, reason),
                Plan::Rewrap(old, new) => planned.push((row_id, old, new)),
            }
        }
        if options.dry_run {
            report.rewrapped += planned.len() as u64;
        } else if !planned.is_empty() {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(|e| storage(&e))?;
            {
                let mut stmt = tx.prepare_cached(&update).map_err(|e| storage(&e))?;
                for (row_id, old, new) in &planned {
                    let changed = stmt
                        .execute(params![new, row_id, old])
                        .map_err(|e| storage(&e))?;
                    if changed == 1 {
                        report.rewrapped += 1;
                    } else {
                        report.refuse(row_id, RefuseReason::Changed);
                    }
                }
            }
            tx.commit().map_err(|e| storage(&e))?;
        }
        progress(Progress { done, total });
    }
    Ok(report)
}

enum Plan {
    Skip,
    Refuse(RefuseReason),
    Rewrap(String, String),
}

/// What to do with one row.
fn plan(
    cache: &mut KeyCache<'_>,
    options: &RewrapOptions,
    row_user: Raw,
    value: &Raw,
    ctx: Option<&[Raw]>,
) -> Result<Plan, Error> {
    let token = match value {
        Raw::Null => return Ok(Plan::Skip),
        Raw::Text(bytes) => match std::str::from_utf8(bytes) {
            Ok(token) => token,
            Err(_) => return Ok(Plan::Refuse(RefuseReason::NotText)),
        },
        _ => return Ok(Plan::Refuse(RefuseReason::NotText)),
    };
    let Ok(format) = token_format(token) else {
        let damaged = token.starts_with("v3:");
        return Ok(Plan::Refuse(if damaged {
            RefuseReason::Undecryptable
        } else {
            RefuseReason::NotEncrypted
        }));
    };
    let owner = match options.keys {
        KeySource::Pool => None,
        _ => match user_id(row_user) {
            Ok(user) => Some(user),
            Err(_) => return Ok(Plan::Refuse(RefuseReason::NoUserId)),
        },
    };
    let store = cache.store;
    let Some(keys) = cache.owner(owner.as_deref())? else {
        return Ok(Plan::Refuse(match owner {
            Some(_) => RefuseReason::NoUserId,
            None => RefuseReason::KeyUnavailable,
        }));
    };
    let (version, is_v3) = match format {
        TokenFormat::V3 { key_version } => (key_version, true),
        _ => (1, false),
    };
    let want_v3 = ctx.is_some() || keys.newest > 1;
    let bind = ctx.is_some();
    if version == keys.newest && is_v3 == want_v3 && !bind {
        return Ok(Plan::Skip);
    }
    let ctx = match ctx {
        Some(values) => {
            let texts: Vec<String> = values.iter().map(context_text).collect();
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            rewrap_context(options, &refs)
        }
        None => Context::none(),
    };
    let Some(old_key) = KeyCache::version(store, keys, owner.as_deref(), version)? else {
        return Ok(Plan::Refuse(RefuseReason::KeyUnavailable));
    };
    let plaintext = match format {
        TokenFormat::V3 { .. } => match decrypt_v3(token, &old_key, &ctx) {
            // Already bound to this row, under the newest version: done.
            Ok(_) if version == keys.newest && bind => return Ok(Plan::Skip),
            // A `v3:` token bound to no context (say from `encrypt_value`) gets bound now.
            Err(Error::Authentication) if bind => decrypt_v3(token, &old_key, &Context::none()),
            other => other,
        },
        _ => decrypt(token, &old_key),
    };
    let Ok(plaintext) = plaintext.map(Zeroizing::new) else {
        return Ok(Plan::Refuse(RefuseReason::Undecryptable));
    };
    let new = if want_v3 {
        encrypt_v3(&plaintext, &keys.newest_key, keys.newest, &ctx)?
    } else {
        encrypt(&plaintext, &keys.newest_key)?
    };
    Ok(Plan::Rewrap(token.to_owned(), new))
}

/// A context column's value as a context part: text as it is, integers in decimal, anything
/// else as the migration's reports show it.
fn context_text(value: &Raw) -> String {
    match value {
        Raw::Text(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        Raw::Integer(n) => n.to_string(),
        other => other.describe(),
    }
}

/// What [`super::verify_rewrapped`] found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifyReport {
    /// Values that decrypt, in their target form.
    pub ok: u64,
    /// Values that decrypt but are not in their target form yet (run the rewrap again).
    pub stale: u64,
    /// Values that do not decrypt (or are not tokens).
    pub failed: u64,
    /// NULLs.
    pub null: u64,
}

pub(super) fn verify(
    conn: &Connection,
    store: &KeyStore,
    options: &RewrapOptions,
    shape: &Shape,
    context: Option<&[String]>,
) -> Result<VerifyReport, Error> {
    let Shape { table, column, .. } = shape;
    let user = shape.user_expr();
    let ctx_exprs = context.map_or(String::new(), |c| format!(", {}", c.join(", ")));
    let parts = context.map_or(0, <[String]>::len);
    let mut stmt = conn
        .prepare(&format!("SELECT {user}, {column}{ctx_exprs} FROM {table}"))
        .map_err(|e| storage(&e))?;
    let mut rows = stmt.query([]).map_err(|e| storage(&e))?;
    let mut report = VerifyReport::default();
    while let Some(row) = rows.next().map_err(|e| storage(&e))? {
        let row_user: Raw = row.get(0).map_err(|e| storage(&e))?;
        let value: Raw = row.get(1).map_err(|e| storage(&e))?;
        let ctx = match context {
            Some(_) => {
                let values = (0..parts)
                    .map(|i| row.get::<_, Raw>(2 + i))
                    .collect::<rusqlite::Result<Vec<_>>>()
                    .map_err(|e| storage(&e))?;
                let texts: Vec<String> = values.iter().map(context_text).collect();
                let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
                rewrap_context(options, &refs)
            }
            None => Context::none(),
        };
        let token = match &value {
            Raw::Null => {
                report.null += 1;
                continue;
            }
            Raw::Text(bytes) => std::str::from_utf8(bytes).ok(),
            _ => None,
        };
        let owner = match options.keys {
            KeySource::Pool => Some(KeyOwner::Pool),
            _ => None,
        };
        let user_text = match owner {
            Some(_) => None,
            None => user_id(row_user).ok(),
        };
        let owner = owner.or(user_text.as_deref().map(KeyOwner::User));
        match token
            .zip(owner)
            .map(|(t, o)| (t, store.decrypt_value(o, t, &ctx)))
        {
            Some((t, Ok(value))) => {
                let v3 = t.starts_with("v3:");
                if value.stale || (context.is_some() && !v3) {
                    report.stale += 1;
                } else {
                    report.ok += 1;
                }
            }
            _ => report.failed += 1,
        }
    }
    Ok(report)
}

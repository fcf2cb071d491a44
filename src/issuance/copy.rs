//! Copying every API key (hashes, state, metadata) and the registered legacy formats to
//! another location (another file, or PostgreSQL), verified after the copy.

use std::path::Path;

use super::backend::{Backend, Inserted, Row};
use super::{open_backend, ApiKeys};
use crate::{Error, StorageKind};

/// What [`ApiKeys::copy_to`] copied.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ApiKeysCopyReport {
    /// Keys copied (and verified), revoked and expired ones included.
    pub keys: u64,
    /// Legacy key formats copied.
    pub legacy_formats: u64,
}

/// Rows read per page.
const PAGE: usize = 1_000;

/// Every row of `backend`, oldest first.
fn all_rows(backend: &dyn Backend) -> Result<Vec<Row>, Error> {
    let mut rows = Vec::new();
    let mut before = None;
    loop {
        let page = backend.page(None, before, PAGE)?;
        let Some(last) = page.last() else { break };
        before = Some(last.row_id);
        let done = page.len() < PAGE;
        rows.extend(page);
        if done {
            break;
        }
    }
    rows.reverse();
    Ok(rows)
}

/// What a copy must keep of a row (the row id is the target's own).
fn kept(row: &Row) -> impl PartialEq + '_ {
    (
        (
            &row.key_id,
            &row.lookup,
            row.scheme,
            &row.hash,
            &row.user_id,
            &row.name,
        ),
        (&row.scopes, row.environment, row.created_at, row.expires_at),
        (
            row.revoked_at,
            &row.rotated_to,
            row.rate_limit,
            row.last_used_at,
        ),
        (row.enabled, &row.metadata),
    )
}

impl ApiKeys {
    /// Copies every key of this store (hashes, scopes, expiry, revocation, rotation, rate
    /// limit, last use, metadata) and the legacy formats registered by imports into the
    /// store at `target` (a SQLite path or a PostgreSQL URL, selected as [`ApiKeys::open`]
    /// does), which must hold no key; then reads the copy back and checks every key arrived
    /// unchanged. Queued last uses are written first. Rows are inserted one transaction
    /// each: a copy that fails half-way leaves a partial target, which a retry refuses as
    /// not empty (delete it, or use a fresh database).
    ///
    /// # Errors
    /// - [`Error::InvalidArgument`] when `target` already holds a key (nothing written);
    /// - [`Error::Storage`] when either store cannot be read or written, or (kind `corrupt`)
    ///   when the copy read back differs.
    ///
    /// # Security
    /// Only bcrypt hashes are copied (keys themselves are never stored); messages show a
    /// PostgreSQL URL without its password.
    pub fn copy_to(&self, target: impl AsRef<Path>) -> Result<ApiKeysCopyReport, Error> {
        // Best effort: a use that cannot be written now is not worth failing the copy.
        let _ = self.flush();
        let rows = all_rows(&*self.backend)?;
        let formats = self.backend.legacy_formats()?;
        let target = open_backend(target.as_ref(), self.config.busy_timeout)?;
        if !target.page(None, None, 1)?.is_empty() {
            return Err(Error::InvalidArgument {
                what: "the target already holds API keys: copy only into an empty store".into(),
            });
        }
        for (prefix, len) in &formats {
            target.add_legacy_format(prefix, *len)?;
        }
        for row in &rows {
            // The source's rules already held; a copy only stores.
            if let Inserted::IdTaken = target.insert(row, &|_| Ok(()))? {
                return Err(Error::InvalidArgument {
                    what: format!(
                        "key id {} is already in the target (written there during the copy?)",
                        row.key_id
                    ),
                });
            }
        }
        let copied = all_rows(&*target)?;
        let same =
            copied.len() == rows.len() && rows.iter().zip(&copied).all(|(a, b)| kept(a) == kept(b));
        if !same {
            return Err(Error::storage(
                StorageKind::Corrupt,
                "the API keys copied do not read back as written",
            ));
        }
        Ok(ApiKeysCopyReport {
            keys: u64::try_from(rows.len()).unwrap_or(u64::MAX),
            legacy_formats: u64::try_from(formats.len()).unwrap_or(u64::MAX),
        })
    }
}

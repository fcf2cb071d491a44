//! What a migration or a verification reports.

use super::sql::Raw;
#[cfg(doc)]
use super::{migrate_column, verify_column};

/// Counts at the end of [`migrate_column`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MigrateReport {
    /// Values encrypted by this run (in a dry run: that would be).
    pub migrated: u64,
    /// Values already encrypted, or NULL.
    pub skipped: u64,
    /// Values left as they were: see [`FailReason`].
    pub failed: u64,
    /// The first [`MAX_FAILED_ROWS`] failed rows, in id order, with why.
    pub failed_rows: Vec<FailedRow>,
}

/// How many failed rows a [`MigrateReport`] lists (all are counted).
pub const MAX_FAILED_ROWS: usize = 100;

/// Why a row was left as it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailReason {
    /// The value is INTEGER, REAL or BLOB, not text.
    ValueNotText,
    /// The value is TEXT whose bytes are not UTF-8.
    ValueNotUtf8,
    /// The user id is NULL, REAL, BLOB, empty, too long or holds NUL.
    NoUserId,
    /// The user id is TEXT whose bytes are not UTF-8.
    UserIdNotUtf8,
    /// Another writer changed the value between reading and writing it.
    Changed,
}

impl core::fmt::Display for FailReason {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            FailReason::ValueNotText => "value is not text",
            FailReason::ValueNotUtf8 => "value is not UTF-8 text",
            FailReason::NoUserId => "no usable user id",
            FailReason::UserIdNotUtf8 => "user id is not UTF-8 text",
            FailReason::Changed => "changed by another writer meanwhile",
        })
    }
}

/// A row [`migrate_column`] left as it was.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FailedRow {
    /// The row's id as shown to people: numbers as they are, text quoted (with U+FFFD for bytes
    /// that are not UTF-8), blobs as `X'hex'`.
    pub id: String,
    /// Why it was left.
    pub reason: FailReason,
}

impl MigrateReport {
    pub(super) fn fail(&mut self, id: &Raw, reason: FailReason) {
        self.failed += 1;
        if self.failed_rows.len() < MAX_FAILED_ROWS {
            self.failed_rows.push(FailedRow {
                id: id.describe(),
                reason,
            });
        }
    }
}

/// Progress of a running migration or verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Progress {
    /// Rows handled so far.
    pub done: u64,
    /// Rows to handle in all (counted at the start).
    pub total: u64,
}

/// Counts at the end of [`verify_column`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifyReport {
    /// Tokens that decrypt with their key.
    pub ok: u64,
    /// Values still in plaintext: TEXT without the `v2:` prefix (UTF-8 or not).
    pub plaintext: u64,
    /// NULL values.
    pub null: u64,
    /// Tokens that do not decrypt (wrong key, altered, not UTF-8), tokens of rows without a
    /// user id, and values that are not text.
    pub failed: u64,
}

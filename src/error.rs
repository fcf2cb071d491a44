//! The one error type of the crate.
//!
//! Every variant says what went wrong in words a person can act on, and none ever holds key
//! bytes, plaintext or a hash: only lengths, names of the thing that failed and, for the key
//! store, the user id of the row concerned (an identifier, not a secret).

use core::fmt;
use std::sync::Arc;

/// Everything that can go wrong in keyseal.
///
/// The enum is `#[non_exhaustive]`: match on the variants you handle and keep a `_` arm.
/// [`Error::code`] gives a short stable string for each kind, the same one the npm package puts
/// in a JavaScript error's `code`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The input is not in the expected shape: a token that is not base64, too short to hold a
    /// nonce and a tag, an API key with a bad checksum, and so on. `what` names the problem.
    Malformed {
        /// What was wrong, e.g. "token is not valid base64".
        what: &'static str,
    },
    /// AES-GCM refused the data: the key is not the one it was sealed with, or the token was
    /// altered. The two cannot be told apart, by design.
    Authentication,
    /// A key has the wrong length or encoding.
    BadKey {
        /// What was wrong, e.g. "a key must be 32 bytes".
        reason: &'static str,
    },
    /// The decrypted bytes are not UTF-8; `decrypt_bytes` returns them unchanged.
    NotUtf8,
    /// The operating system (or, in wasm, `crypto.getRandomValues`) gave no randomness.
    Randomness,
    /// The storage layer (`SQLite`) failed: I/O, locking, a full disk, a corrupt file.
    /// [`Error::storage_kind`] says which, and [`std::error::Error::source`] gives the
    /// driver's error when there is one. Match it as `Error::Storage { kind, .. }`.
    #[non_exhaustive]
    Storage {
        /// What a caller can do about it: wait and retry, check the disk, restore a backup.
        kind: StorageKind,
        /// What failed, in words; it never contains key material, hashes or stored values.
        message: String,
        /// The driver's error, kept only when it can hold no stored or bound value.
        source: Option<StorageSource>,
    },
    /// The master key given is not the one the store's rows are wrapped with. Nothing was
    /// changed.
    WrongMasterKey {
        /// The user row that could not be unwrapped, when a particular row was read.
        user_id: Option<String>,
    },
    // Key store only: kept out of the wasm build, whose size has a budget.
    #[cfg(not(target_arch = "wasm32"))]
    /// A stored key is wrapped under a master key this process was not given (a key store
    /// whose master key is being rotated across several servers). Nothing was changed.
    MissingMasterKey {
        /// The id (a public fingerprint, never the key) of the master key that is needed.
        id: String,
        /// The user row that needs it, when a particular row was read.
        user_id: Option<String>,
    },
    #[cfg(not(target_arch = "wasm32"))]
    /// A data key version is disabled or destroyed, so nothing is decrypted under it (or the
    /// version does not exist). A disabled version can be enabled again.
    KeyVersionUnavailable {
        /// The version asked for.
        version: u32,
        /// `disabled`, `destroyed` or `missing`.
        state: &'static str,
    },
    /// A stored wrapped key is shorter or longer than a wrapped 32-byte key can be.
    CorruptKey {
        /// The user row holding the damaged blob.
        user_id: String,
    },
    /// Something looked up by id does not exist (a user, an API key id).
    NotFound {
        /// What was looked for, e.g. "api key".
        what: &'static str,
    },
    /// A per-user limit was reached (e.g. the number of active API keys).
    QuotaExceeded {
        /// The limit in force.
        limit: u32,
    },
    /// An argument is out of range or otherwise unusable (an empty user id, a bad table name).
    InvalidArgument {
        /// Which argument and why.
        what: String,
    },
}

/// The kind of a storage failure, for a caller deciding what to do about it.
///
/// `#[non_exhaustive]`: keep a `_` arm, treated as [`StorageKind::Other`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StorageKind {
    /// Another connection or process held the database for longer than the configured busy
    /// timeout (or kept changing it): retrying later may succeed.
    Busy,
    /// The database cannot be reached or written: missing folder, permissions, full disk,
    /// I/O error, out of memory, a read-only file.
    Unavailable,
    /// The file is not a database, is damaged, or holds rows keyseal cannot read.
    Corrupt,
    /// A uniqueness or other constraint of the schema refused the write.
    Constraint,
    /// The database's schema is not one this keyseal can run against: missing while the
    /// role may not create it (run `keyseal db migrate` with a privileged role), or migrated
    /// by a newer keyseal that marked it incompatible with this one (upgrade keyseal).
    Schema,
    /// The connection to the database was lost after the commit was sent, so whether the
    /// change was stored is unknown: read it back before trying again (for a created API
    /// key: it is listed, and can be revoked, if it was stored; a data key stored twice is
    /// the same key). PostgreSQL only.
    OutcomeUnknown,
    /// Anything else (an internal failure, a refused setting).
    Other,
}

impl StorageKind {
    /// A short stable name: `busy`, `unavailable`, `corrupt`, `constraint`, `schema`,
    /// `outcome_unknown` or `other`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            StorageKind::Busy => "busy",
            StorageKind::Unavailable => "unavailable",
            StorageKind::Corrupt => "corrupt",
            StorageKind::Constraint => "constraint",
            StorageKind::Schema => "schema",
            StorageKind::OutcomeUnknown => "outcome_unknown",
            StorageKind::Other => "other",
        }
    }
}

impl fmt::Display for StorageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The driver's error behind an [`Error::Storage`], as returned by
/// [`std::error::Error::source`] (downcast it to the driver's type, e.g. `rusqlite::Error`).
/// Two are equal when they read the same.
#[derive(Clone)]
pub struct StorageSource(Arc<dyn std::error::Error + Send + Sync + 'static>);

// Built only by the storage layers.
#[cfg(all(
    any(feature = "keystore", feature = "issuance"),
    not(target_arch = "wasm32")
))]
impl StorageSource {
    pub(crate) fn new(e: impl std::error::Error + Send + Sync + 'static) -> StorageSource {
        StorageSource(Arc::new(e))
    }
}

impl fmt::Debug for StorageSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for StorageSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl PartialEq for StorageSource {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0.to_string() == other.0.to_string()
    }
}

impl Eq for StorageSource {}

impl Error {
    /// A storage failure of `kind` with no driver error behind it.
    #[cfg(all(
        any(feature = "keystore", feature = "issuance"),
        not(target_arch = "wasm32")
    ))]
    pub(crate) fn storage(kind: StorageKind, message: impl Into<String>) -> Error {
        Error::Storage {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// A storage failure of `kind` caused by `source`, which must hold no secret or stored
    /// value (an I/O error, a driver error without values).
    #[cfg(all(
        any(feature = "keystore", feature = "issuance"),
        not(target_arch = "wasm32")
    ))]
    pub(crate) fn storage_caused_by(
        kind: StorageKind,
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Error {
        Error::Storage {
            kind,
            message: message.into(),
            source: Some(StorageSource::new(source)),
        }
    }

    /// The error for a PostgreSQL location in a build without the `postgres` feature.
    #[cfg(all(
        any(feature = "keystore", feature = "issuance"),
        not(feature = "postgres"),
        not(target_arch = "wasm32")
    ))]
    pub(crate) fn postgres_not_built() -> Error {
        Error::InvalidArgument {
            what: "a PostgreSQL URL was given, but this keyseal was built without its \
                   `postgres` feature (build with --features postgres)"
                .into(),
        }
    }

    /// The kind of a storage failure ([`Error::Storage`]); `None` for every other error.
    #[must_use]
    pub fn storage_kind(&self) -> Option<StorageKind> {
        match self {
            Error::Storage { kind, .. } => Some(*kind),
            _ => None,
        }
    }

    /// A short, stable, machine-readable name for the kind of error.
    ///
    /// One of `malformed`, `authentication`, `bad_key`, `not_utf8`, `randomness`, `storage`,
    /// `wrong_master_key`, `missing_master_key`, `key_version_unavailable`, `corrupt_key`,
    /// `not_found`, `quota_exceeded`, `invalid_argument`.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Error::Malformed { .. } => "malformed",
            Error::Authentication => "authentication",
            Error::BadKey { .. } => "bad_key",
            Error::NotUtf8 => "not_utf8",
            Error::Randomness => "randomness",
            Error::Storage { .. } => "storage",
            Error::WrongMasterKey { .. } => "wrong_master_key",
            #[cfg(not(target_arch = "wasm32"))]
            Error::MissingMasterKey { .. } => "missing_master_key",
            #[cfg(not(target_arch = "wasm32"))]
            Error::KeyVersionUnavailable { .. } => "key_version_unavailable",
            Error::CorruptKey { .. } => "corrupt_key",
            Error::NotFound { .. } => "not_found",
            Error::QuotaExceeded { .. } => "quota_exceeded",
            Error::InvalidArgument { .. } => "invalid_argument",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Malformed { what } => write!(f, "malformed input: {what}"),
            Error::Authentication => f.write_str(
                "authentication failed: wrong key, or the token was altered or truncated",
            ),
            Error::BadKey { reason } => write!(f, "bad key: {reason}"),
            Error::NotUtf8 => f.write_str(
                "decrypted data is not UTF-8 text; use decrypt_bytes to get the raw bytes",
            ),
            Error::Randomness => f.write_str(
                "no randomness available from the operating system (or crypto.getRandomValues)",
            ),
            Error::Storage { message, .. } => write!(f, "storage error: {message}"),
            Error::WrongMasterKey {
                user_id: Some(user),
            } => write!(
                f,
                "wrong master key: the stored key of user {user:?} does not open with it"
            ),
            Error::WrongMasterKey { user_id: None } => f.write_str(
                "wrong master key: this store's keys are wrapped with a different master key",
            ),
            #[cfg(not(target_arch = "wasm32"))]
            Error::MissingMasterKey { id, user_id } => {
                write!(f, "missing master key {id}: ")?;
                match user_id {
                    Some(user) => write!(f, "the stored key of user {user:?} is wrapped under it"),
                    None => f.write_str("a stored key is wrapped under it"),
                }?;
                f.write_str("; give this process that key as a previous master key")
            }
            #[cfg(not(target_arch = "wasm32"))]
            Error::KeyVersionUnavailable { version, state } => {
                write!(
                    f,
                    "key version {version} is {state}: nothing is decrypted under it"
                )
            }
            Error::CorruptKey { user_id } => write!(
                f,
                "corrupt stored key for user {user_id:?}: the wrapped key has the wrong length"
            ),
            Error::NotFound { what } => write!(f, "{what} not found"),
            Error::QuotaExceeded { limit } => {
                write!(f, "quota exceeded: at most {limit} active keys per user")
            }
            Error::InvalidArgument { what } => write!(f, "invalid argument: {what}"),
        }
    }
}

impl std::error::Error for Error {
    /// The driver's error behind a storage failure, when it was kept.
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Storage {
                source: Some(source),
                ..
            } => Some(&*source.0),
            _ => None,
        }
    }
}

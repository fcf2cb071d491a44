//! The one error type of the crate.
//!
//! Every variant says what went wrong in words a person can act on, and none ever holds key
//! bytes, plaintext or a hash: only lengths, names of the thing that failed and, for the key
//! store, the user id of the row concerned (an identifier, not a secret).

use core::fmt;

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
    Storage {
        /// The storage engine's own message; it never contains key material.
        message: String,
    },
    /// The master key given is not the one the store's rows are wrapped with. Nothing was
    /// changed.
    WrongMasterKey {
        /// The user row that could not be unwrapped, when a particular row was read.
        user_id: Option<String>,
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

impl Error {
    /// A short, stable, machine-readable name for the kind of error.
    ///
    /// One of `malformed`, `authentication`, `bad_key`, `not_utf8`, `randomness`, `storage`,
    /// `wrong_master_key`, `corrupt_key`, `not_found`, `quota_exceeded`, `invalid_argument`.
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
            Error::Storage { message } => write!(f, "storage error: {message}"),
            Error::WrongMasterKey {
                user_id: Some(user),
            } => write!(
                f,
                "wrong master key: the stored key of user {user:?} does not open with it"
            ),
            Error::WrongMasterKey { user_id: None } => f.write_str(
                "wrong master key: this store's keys are wrapped with a different master key",
            ),
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

impl std::error::Error for Error {}

//! The master key from the environment (`API_KEY_MASTER_KEY`), native only.
//!
//! # Errors
//! [`parse_master_key`] returns [`Error::BadKey`] for blank text, text that Python's
//! `urlsafe_b64decode` refuses, or base64 that is not 32 bytes. [`resolve_master_key`] turns those into `None` with
//! a warning (through `tracing`) that names the problem and never the value.
//!
//! # Example
//! ```
//! let key = keyseal::parse_master_key("  u6_BhDxyRhUwOqTzrZM52kKm1eQDp4s_EBZ-PNryz0k=\n")?;
//! assert_eq!(key.to_base64(), "u6_BhDxyRhUwOqTzrZM52kKm1eQDp4s_EBZ-PNryz0k=");
//! # Ok::<(), keyseal::Error>(())
//! ```

use crate::{Error, MasterKey};

/// The environment variable that holds the master key, as in the Python module.
pub const MASTER_KEY_ENV: &str = "API_KEY_MASTER_KEY";

/// Parses a master key as the Python module reads `API_KEY_MASTER_KEY`: surrounding white
/// space trimmed, then base64 of 32 bytes read as `urlsafe_b64decode` reads it (either
/// alphabet, other ASCII characters skipped, anything after a complete padding ignored; see
/// [`MasterKey::from_base64`]). Use it for key files too.
///
/// # Errors
/// [`Error::BadKey`] when the text is blank, Python would refuse it (not ASCII, or the padding
/// missing), or it does not decode to 32 bytes.
pub fn parse_master_key(text: &str) -> Result<MasterKey, Error> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(Error::BadKey {
            reason: "the master key is empty",
        });
    }
    MasterKey::from_base64(trimmed)
}

/// The master key from `API_KEY_MASTER_KEY`, or `None` when it is missing, blank or invalid
/// (with a warning for an invalid one that never shows the value). Same rules as the Python
/// module's `resolve_master_key`; see [`parse_master_key`].
#[must_use]
pub fn resolve_master_key() -> Option<MasterKey> {
    let value = match std::env::var(MASTER_KEY_ENV) {
        Ok(value) => zeroize::Zeroizing::new(value),
        Err(std::env::VarError::NotPresent) => return None,
        Err(std::env::VarError::NotUnicode(_)) => {
            tracing::warn!("{MASTER_KEY_ENV} is not valid UTF-8, ignoring it");
            return None;
        }
    };
    if value.trim().is_empty() {
        return None;
    }
    match parse_master_key(&value) {
        Ok(key) => Some(key),
        Err(err) => {
            tracing::warn!("{MASTER_KEY_ENV} is set but unusable, ignoring it: {err}");
            None
        }
    }
}

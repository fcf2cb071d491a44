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
    let trimmed = python_strip(text);
    if trimmed.is_empty() {
        return Err(Error::BadKey {
            reason: "the master key is empty",
        });
    }
    MasterKey::from_base64(trimmed)
}

/// `text` without the characters Python's `str.strip()` removes: Rust's white space plus the
/// information separators U+001C to U+001F, which Python also counts as space.
fn python_strip(text: &str) -> &str {
    text.trim_matches(|c: char| c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c))
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
    if python_strip(&value).is_empty() {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Python's `str.strip()` also removes U+001C..U+001F; `str::trim` did not, so a key that
    /// started a Python service (say with a trailing `\x1c`) was refused here.
    #[test]
    fn surrounding_information_separators_are_trimmed_as_python_does() {
        let key = MasterKey::generate().unwrap();
        let b64 = key.to_base64();
        for text in [
            format!("{b64}\u{1c}"),
            format!("\u{1f}\u{2003}{b64}\u{3000}\u{1d}"),
            format!("\u{1e}\n{b64}\t"),
        ] {
            let parsed = parse_master_key(&text).unwrap();
            assert_eq!(parsed.expose_secret(), key.expose_secret());
        }
        assert!(parse_master_key("\u{1c}\u{1d} \u{1e}\u{1f}").is_err());
        // Not a space to Python either: kept, so refused.
        assert!(parse_master_key(&format!("{b64}\u{200b}")).is_err());
    }
}

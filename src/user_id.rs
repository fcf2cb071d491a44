//! The one rule for user ids, shared by everything that stores data per user.
//!
//! A user id is an identifier chosen by the application (a database id, an e-mail address, a
//! tenant name): 1 to [`MAX_USER_ID_LEN`] bytes of UTF-8, with no NUL character. Spaces and
//! other characters are allowed, so that every id an existing store holds stays usable.
//! (`keyseal::MAX_USER_ID_LEN` is this same bound.)

use crate::Error;

/// Longest user id accepted, in bytes.
pub(crate) const MAX_USER_ID_LEN: usize = 1024;

/// Checks a user id against the one rule.
///
/// # Errors
/// [`Error::InvalidArgument`] for an empty id, one longer than [`MAX_USER_ID_LEN`] bytes, or
/// one holding a NUL character (C-string APIs and some databases cut text there).
pub(crate) fn check_user_id(user_id: &str) -> Result<(), Error> {
    let problem = if user_id.is_empty() {
        "user id must not be empty".to_owned()
    } else if user_id.len() > MAX_USER_ID_LEN {
        format!("user id longer than {MAX_USER_ID_LEN} bytes")
    } else if user_id.contains('\0') {
        "user id must not contain NUL characters".to_owned()
    } else {
        return Ok(());
    };
    Err(Error::InvalidArgument { what: problem })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_rule_for_user_ids() {
        assert!(check_user_id("user 42@example.com").is_ok());
        assert!(check_user_id(&"x".repeat(MAX_USER_ID_LEN)).is_ok());
        assert!(check_user_id("").is_err());
        assert!(check_user_id(&"x".repeat(MAX_USER_ID_LEN + 1)).is_err());
        assert!(check_user_id("a\0b").is_err());
    }
}

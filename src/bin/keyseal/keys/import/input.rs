//! What the three import parsers share: where in the input a key came from, the typed error
//! that names that place (and never a hash or a key), and the checks every field passes.
//!
//! The parsers check everything before anything is written: one bad record refuses the whole
//! import, so a half-read file never leaves half of it imported.

use std::collections::HashMap;
use std::fmt;

use keyseal::{RateLimit, Timestamp};

use super::ImportedKey;

/// Where a record is in its input, as messages name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// A line of a JSONL file (from 1).
    Line(usize),
    /// A user of a Keycloak export (position from 1), and the key id when known.
    KeycloakUser {
        index: usize,
        username: Option<String>,
        key_id: Option<String>,
    },
    /// A row of egregore's `api_clients`, by its `id`.
    Row(String),
    /// The input as a whole (it could not be read or is not the expected shape).
    Input,
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Place::Line(n) => write!(f, "line {n}"),
            Place::KeycloakUser {
                index,
                username,
                key_id,
            } => {
                write!(f, "user {index}")?;
                if let Some(name) = username {
                    write!(f, " ({})", shown(name))?;
                }
                if let Some(id) = key_id {
                    write!(f, ", key {}", shown(id))?;
                }
                Ok(())
            }
            Place::Row(id) => write!(f, "row id {id}"),
            Place::Input => f.write_str("input"),
        }
    }
}

/// What is wrong with a record. Messages quote field names, never field values: a value may
/// be a hash (or, by mistake, a key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// Not JSON; the column where the parser stopped.
    NotJson { column: usize },
    /// JSON, but not the expected shape (e.g. not an object).
    Shape(&'static str),
    /// A field this format does not have.
    UnknownField(String),
    /// A required field is missing (or null).
    Missing(&'static str),
    /// A field holds the wrong kind of value.
    Invalid {
        field: String,
        expected: &'static str,
    },
    /// The same source id twice in one input.
    DuplicateSourceId { first: Place },
}

/// A refused input: where, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    pub at: Place,
    pub problem: Problem,
}

impl InputError {
    pub fn new(at: Place, problem: Problem) -> Self {
        InputError { at, problem }
    }

    pub fn invalid(at: &Place, field: impl Into<String>, expected: &'static str) -> Self {
        InputError::new(
            at.clone(),
            Problem::Invalid {
                field: field.into(),
                expected,
            },
        )
    }
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.at)?;
        match &self.problem {
            Problem::NotJson { column } => write!(f, "not JSON (at column {column})"),
            Problem::Shape(what) => f.write_str(what),
            Problem::UnknownField(name) => write!(f, "unknown field {}", shown(name)),
            Problem::Missing(field) => write!(f, "`{field}` is missing"),
            Problem::Invalid { field, expected } => {
                write!(f, "`{}` must be {expected}", field.escape_debug())
            }
            Problem::DuplicateSourceId { first } => {
                write!(f, "the same source id as {first}")
            }
        }
    }
}

/// A name from the input as a message quotes it: escaped, and cut short so that a long value
/// pasted in the wrong place is not echoed whole.
pub fn shown(text: &str) -> String {
    const MAX: usize = 40;
    if text.chars().count() <= MAX {
        format!("{text:?}")
    } else {
        let cut: String = text.chars().take(MAX).collect();
        format!("{cut:?}…")
    }
}

/// A bcrypt hash as the three systems store it: `$2a$`, `$2b$` or `$2y$`, a two-digit cost
/// from 04 to 31, then 53 characters of bcrypt's base64.
pub fn is_bcrypt_hash(hash: &str) -> bool {
    let b = hash.as_bytes();
    b.len() == 60
        && matches!(&b[..4], b"$2a$" | b"$2b$" | b"$2y$")
        && b[4].is_ascii_digit()
        && b[5].is_ascii_digit()
        && (4..=31).contains(&((b[4] - b'0') * 10 + (b[5] - b'0')))
        && b[6] == b'$'
        && b[7..]
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || c == b'.' || c == b'/')
}

/// The hash, checked.
///
/// # Errors
/// Not a bcrypt hash (the message does not show it).
pub fn bcrypt_hash(at: &Place, field: &str, hash: &str) -> Result<String, InputError> {
    if is_bcrypt_hash(hash) {
        Ok(hash.to_owned())
    } else {
        Err(InputError::invalid(
            at,
            field,
            "a bcrypt hash ($2a$, $2b$ or $2y$, cost 04-31, 60 characters)",
        ))
    }
}

/// An ISO-8601 time as Python's `isoformat()` writes it (no offset: UTC); `None` for an empty
/// text, which the Python systems treat as "not set".
///
/// # Errors
/// Any other text.
pub fn timestamp(at: &Place, field: &str, text: &str) -> Result<Option<Timestamp>, InputError> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    Timestamp::parse(text).map(Some).ok_or_else(|| {
        InputError::invalid(
            at,
            field,
            "an ISO-8601 time (e.g. 2025-01-31T12:00:00+00:00) or null",
        )
    })
}

/// `N/s`, `N/min` or `N/h`.
///
/// # Errors
/// Anything else.
pub fn rate_limit(at: &Place, field: &str, text: &str) -> Result<RateLimit, InputError> {
    RateLimit::parse(text)
        .map_err(|_| InputError::invalid(at, field, "N/s, N/min or N/h with N at least 1, or null"))
}

/// Whether `tag` can start a key (`tag + "_" + rest`): ASCII letters, digits and `_`, not at
/// either end, at most 32 characters.
pub fn is_tag(tag: &str) -> bool {
    (1..=32).contains(&tag.len())
        && !tag.starts_with('_')
        && !tag.ends_with('_')
        && tag.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// Whether `lookup` is a stored lookup prefix: 1 to 64 characters of url-safe base64 (what
/// follows the tag in keys made by `secrets.token_urlsafe`).
pub fn is_lookup(lookup: &str) -> bool {
    (1..=64).contains(&lookup.len())
        && lookup
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
}

/// The keys read from one input, each with the place it came from (for messages about it).
#[derive(Default)]
pub struct Parsed {
    pub keys: Vec<ImportedKey>,
    pub places: Vec<Place>,
}

impl Parsed {
    /// Adds `key` from `at`.
    pub fn push(&mut self, at: Place, key: ImportedKey) {
        self.keys.push(key);
        self.places.push(at);
    }

    /// Refuses an input where two keys have the same source id: a re-run would not know which
    /// one is meant.
    ///
    /// # Errors
    /// The second place, naming the first.
    pub fn check_unique_source_ids(&self) -> Result<(), InputError> {
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for (i, key) in self.keys.iter().enumerate() {
            if let Some(id) = key.source_id.as_deref() {
                if let Some(&first) = seen.get(id) {
                    return Err(InputError::new(
                        self.places[i].clone(),
                        Problem::DuplicateSourceId {
                            first: self.places[first].clone(),
                        },
                    ));
                }
                seen.insert(id, i);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "$2b$04$veJQMyqjjdomJgmcHmJoIOenKdyYRvxHOQsT0IZRcS8e1vRvtUpLC";

    #[test]
    fn bcrypt_hash_shapes() {
        assert!(is_bcrypt_hash(HASH));
        assert!(is_bcrypt_hash(&HASH.replace("$2b$", "$2a$")));
        assert!(is_bcrypt_hash(&HASH.replace("$2b$", "$2y$")));
        assert!(!is_bcrypt_hash(&HASH.replace("$2b$", "$2x$")));
        assert!(!is_bcrypt_hash(&HASH.replace("$04$", "$03$")));
        assert!(!is_bcrypt_hash(&HASH.replace("$04$", "$32$")));
        assert!(!is_bcrypt_hash(&HASH[..59]));
        assert!(!is_bcrypt_hash(&format!("{HASH}x")));
        assert!(!is_bcrypt_hash(&HASH.replace('v', "!")));
    }

    #[test]
    fn a_bad_hash_is_named_by_field_and_never_shown() {
        let bad = &HASH[..50];
        let err = bcrypt_hash(&Place::Line(3), "bcrypt_hash", bad).unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("line 3: `bcrypt_hash` must be a bcrypt hash"),
            "{text}"
        );
        assert!(!text.contains(bad), "{text}");
    }

    #[test]
    fn times_as_python_writes_them_and_empty_as_none() {
        let at = Place::Line(1);
        let t = timestamp(&at, "t", "2026-01-02T03:04:05.123456+00:00").unwrap();
        assert_eq!(t.unwrap().to_string(), "2026-01-02T03:04:05.123Z");
        // Naive times are UTC, as the Keycloak system reads them.
        let naive = timestamp(&at, "t", "2026-01-02T03:04:05").unwrap();
        assert_eq!(naive.unwrap().to_string(), "2026-01-02T03:04:05Z");
        assert_eq!(timestamp(&at, "t", "").unwrap(), None);
        let err = timestamp(&at, "expires_at", "tomorrow").unwrap_err();
        assert!(err
            .to_string()
            .contains("`expires_at` must be an ISO-8601 time"));
    }

    #[test]
    fn tags_and_lookups() {
        for tag in ["mhu", "eg", "mcpkey_live", "mcpkey_test", "sk2"] {
            assert!(is_tag(tag), "{tag}");
        }
        for tag in ["", "_x", "x_", "mhu-", "a b", &"a".repeat(33)] {
            assert!(!is_tag(tag), "{tag}");
        }
        assert!(is_lookup("AbC-_123"));
        assert!(!is_lookup(""));
        assert!(!is_lookup("abc=def"));
    }

    #[test]
    fn long_names_are_cut_in_messages() {
        let long = "x".repeat(100);
        let err = InputError::new(Place::Line(2), Problem::UnknownField(long.clone()));
        let text = err.to_string();
        assert!(!text.contains(&long));
        assert!(text.starts_with("line 2: unknown field \"xxxx"), "{text}");
    }
}

//! The API key format: generation and a parser that refuses garbage without the database.
//!
//! A key reads `{tag}_{live|test}_{key id}{secret}{checksum}`:
//!
//! | part      | length | content                                                        |
//! |-----------|--------|----------------------------------------------------------------|
//! | tag       | 1–32   | configurable, `[a-z][a-z0-9_]*`, default `ks`                  |
//! | marker    | 4      | `live` or `test`                                               |
//! | key id    | 12     | base62, random (71 bits), public: the database index           |
//! | secret    | 43     | base62, random, 256 bits (43 × log2 62 = 256.03)               |
//! | checksum  | 6      | base62 of the CRC-32 (IEEE, as GitHub's tokens) of all before  |
//!
//! For example `ks_live_0fQ3kV9xYb2Ae…` (the body after the second `_` is always 61 base62
//! characters). A regular expression for secret scanners, for the default tag:
//!
//! ```text
//! \bks_(?:live|test)_[0-9A-Za-z]{61}\b
//! ```
//!
//! and for any tag: `\b[a-z][a-z0-9_]{0,31}_(?:live|test)_[0-9A-Za-z]{61}\b`. A scanner can
//! then confirm a hit offline with the CRC-32, as [`KeyFormat::parse`] does.

use crate::Error;

/// Length of the public key id, in base62 characters.
pub const KEY_ID_LEN: usize = 12;
/// Length of the secret, in base62 characters (256 bits of randomness).
pub const SECRET_LEN: usize = 43;
/// Length of the checksum, in base62 characters (a CRC-32).
pub const CHECKSUM_LEN: usize = 6;
/// Length of the body after `{tag}_{marker}_`.
pub const BODY_LEN: usize = KEY_ID_LEN + SECRET_LEN + CHECKSUM_LEN;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// 0..62 for base62 characters, 0xff otherwise.
const BASE62_VALUE: [u8; 256] = {
    let mut t = [0xffu8; 256];
    let mut i = 0;
    while i < 62 {
        #[allow(clippy::cast_possible_truncation)] // i < 62
        let v = i as u8;
        t[BASE62[i] as usize] = v;
        i += 1;
    }
    t
};

/// Slicing-by-8 tables for CRC-32: `CRC_TABLES[0]` is the classic byte table.
const CRC_TABLES: [[u32; 256]; 8] = {
    let mut t = [[0u32; 256]; 8];
    let mut i = 0;
    while i < 256 {
        #[allow(clippy::cast_possible_truncation)] // i < 256
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 == 1 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        t[0][i] = c;
        i += 1;
    }
    let mut k = 1;
    while k < 8 {
        let mut i = 0;
        while i < 256 {
            let prev = t[k - 1][i];
            t[k][i] = (prev >> 8) ^ t[0][(prev & 0xff) as usize];
            i += 1;
        }
        k += 1;
    }
    t
};

/// CRC-32 (IEEE 802.3, the zlib / PNG / GitHub token one), eight bytes at a time.
pub(crate) fn crc32(data: &[u8]) -> u32 {
    let t = &CRC_TABLES;
    let mut c = !0u32;
    let mut chunks = data.chunks_exact(8);
    for ch in &mut chunks {
        let lo = u32::from_le_bytes([ch[0], ch[1], ch[2], ch[3]]) ^ c;
        let hi = u32::from_le_bytes([ch[4], ch[5], ch[6], ch[7]]);
        c = t[7][(lo & 0xff) as usize]
            ^ t[6][((lo >> 8) & 0xff) as usize]
            ^ t[5][((lo >> 16) & 0xff) as usize]
            ^ t[4][(lo >> 24) as usize]
            ^ t[3][(hi & 0xff) as usize]
            ^ t[2][((hi >> 8) & 0xff) as usize]
            ^ t[1][((hi >> 16) & 0xff) as usize]
            ^ t[0][(hi >> 24) as usize];
    }
    for &b in chunks.remainder() {
        c = t[0][((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8);
    }
    !c
}

fn checksum_chars(crc: u32) -> [u8; CHECKSUM_LEN] {
    let mut out = [b'0'; CHECKSUM_LEN];
    let mut v = crc;
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(v % 62) as usize];
        v /= 62;
    }
    out
}

/// `body` (a key's text up to its checksum) followed by the right checksum: for tests,
/// benchmarks and fuzzing that forge well-formed keys (say the same key id with another
/// secret). Not part of the stable API.
#[doc(hidden)]
pub fn with_checksum(body: &str) -> String {
    let sum = checksum_chars(crc32(body.as_bytes()));
    let mut key = String::with_capacity(body.len() + CHECKSUM_LEN);
    key.push_str(body);
    key.extend(sum.iter().map(|&c| char::from(c)));
    key
}

/// Whether a key is for production (`live`) or for tests and staging (`test`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    /// `…_live_…`: production keys.
    #[default]
    Live,
    /// `…_test_…`: keys for tests and staging.
    Test,
}

impl Environment {
    /// `live` or `test`, as written in the key.
    pub fn as_str(self) -> &'static str {
        match self {
            Environment::Live => "live",
            Environment::Test => "test",
        }
    }

    pub(crate) fn parse(text: &str) -> Option<Self> {
        match text {
            "live" => Some(Environment::Live),
            "test" => Some(Environment::Test),
            _ => None,
        }
    }
}

/// The key format of one deployment: its tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyFormat {
    tag: String,
}

impl Default for KeyFormat {
    fn default() -> Self {
        KeyFormat { tag: "ks".into() }
    }
}

/// A key that passed [`KeyFormat::parse`]: shape and checksum are right.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ParsedKey<'a> {
    pub environment: Environment,
    pub key_id: &'a str,
    /// Key id and secret (what the cache tag is computed over: 55 bytes, one SHA-256 block).
    pub id_and_secret: &'a str,
}

impl KeyFormat {
    /// A format with the given tag: 1 to 32 characters, a lowercase ASCII letter first, then
    /// lowercase letters, digits or `_`, not ending in `_`. (`mcpkey` gives the
    /// `mcpkey_live_…` / `mcpkey_test_…` prefixes.)
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for any other tag.
    pub fn new(tag: &str) -> Result<Self, Error> {
        let b = tag.as_bytes();
        let ok = !b.is_empty()
            && b.len() <= 32
            && b[0].is_ascii_lowercase()
            && b[b.len() - 1] != b'_'
            && b.iter()
                .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_');
        if ok {
            Ok(KeyFormat { tag: tag.into() })
        } else {
            Err(Error::InvalidArgument {
                what: format!(
                    "key tag {tag:?}: 1 to 32 of [a-z0-9_], a letter first, not ending in '_'"
                ),
            })
        }
    }

    /// The tag, e.g. `ks`.
    pub fn tag(&self) -> &str {
        &self.tag
    }

    /// The total length of a key in this format.
    pub fn key_len(&self) -> usize {
        self.tag.len() + 6 + BODY_LEN
    }

    /// A regular expression matching keys of this format, for secret scanners.
    pub fn scanner_regex(&self) -> String {
        format!(r"\b{}_(?:live|test)_[0-9A-Za-z]{{{BODY_LEN}}}\b", self.tag)
    }

    /// Builds a key from its random parts (`key_id`: 12, `secret`: 43 base62 characters).
    pub(crate) fn assemble(&self, env: Environment, key_id: &str, secret: &str) -> String {
        debug_assert_eq!(key_id.len(), KEY_ID_LEN);
        debug_assert_eq!(secret.len(), SECRET_LEN);
        let mut body = String::with_capacity(self.key_len());
        body.push_str(&self.tag);
        body.push('_');
        body.push_str(env.as_str());
        body.push('_');
        body.push_str(key_id);
        body.push_str(secret);
        with_checksum(&body)
    }

    /// Checks shape and checksum; never touches storage and never panics.
    pub(crate) fn parse<'a>(&self, key: &'a str) -> Option<ParsedKey<'a>> {
        let b = key.as_bytes();
        let t = self.tag.len();
        if b.len() != self.key_len()
            || !b.starts_with(self.tag.as_bytes())
            || b[t] != b'_'
            || b[t + 5] != b'_'
        {
            return None;
        }
        let environment = match &b[t + 1..t + 5] {
            b"live" => Environment::Live,
            b"test" => Environment::Test,
            _ => return None,
        };
        let body = &b[t + 6..];
        if body
            .iter()
            .fold(0u8, |acc, &c| acc | (BASE62_VALUE[usize::from(c)] & 0x80))
            != 0
        {
            return None;
        }
        let split = b.len() - CHECKSUM_LEN;
        if checksum_chars(crc32(&b[..split])) != b[split..] {
            return None;
        }
        // All ASCII from here on, so slicing on these indices is on char boundaries.
        Some(ParsedKey {
            environment,
            key_id: &key[t + 6..t + 6 + KEY_ID_LEN],
            id_and_secret: &key[t + 6..split],
        })
    }
}

/// `len` uniformly random base62 characters from the OS generator.
pub(crate) fn random_base62(len: usize) -> Result<String, Error> {
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        getrandom::getrandom(&mut buf).map_err(|_| Error::Randomness)?;
        // 248 = 4 × 62: rejecting 248..=255 keeps every character equally likely.
        for &byte in buf.iter().filter(|&&byte| byte < 248) {
            if out.len() == len {
                break;
            }
            out.push(char::from(BASE62[usize::from(byte % 62)]));
        }
    }
    buf.fill(0);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_reference() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
        let long: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        for n in 0..40 {
            let mut c = !0u32;
            for &b in &long[..n * 25] {
                c ^= u32::from(b);
                for _ in 0..8 {
                    c = if c & 1 == 1 {
                        0xEDB8_8320 ^ (c >> 1)
                    } else {
                        c >> 1
                    };
                }
            }
            assert_eq!(crc32(&long[..n * 25]), !c);
        }
    }

    #[test]
    fn with_checksum_makes_a_body_a_key() {
        let f = KeyFormat::default();
        let key = f.assemble(
            Environment::Test,
            &"a".repeat(KEY_ID_LEN),
            &"b".repeat(SECRET_LEN),
        );
        assert_eq!(with_checksum(&key[..key.len() - CHECKSUM_LEN]), key);
        assert_eq!(with_checksum("").len(), CHECKSUM_LEN);
    }

    #[test]
    fn round_trip_and_typos() {
        for tag in ["ks", "mhu", "eg", "mcpkey", "mcpkey_live"] {
            let f = KeyFormat::new(tag).unwrap();
            let id = random_base62(KEY_ID_LEN).unwrap();
            let secret = random_base62(SECRET_LEN).unwrap();
            for env in [Environment::Live, Environment::Test] {
                let key = f.assemble(env, &id, &secret);
                assert_eq!(key.len(), f.key_len());
                let p = f.parse(&key).unwrap();
                assert_eq!(p.key_id, id);
                assert_eq!(p.environment, env);
                // every single-character substitution is caught by the CRC
                let bytes = key.as_bytes();
                for i in tag.len() + 6..bytes.len() {
                    let mut k = bytes.to_vec();
                    k[i] = if k[i] == b'a' { b'b' } else { b'a' };
                    assert!(f.parse(std::str::from_utf8(&k).unwrap()).is_none());
                }
            }
        }
        assert_eq!(
            KeyFormat::default().scanner_regex(),
            r"\bks_(?:live|test)_[0-9A-Za-z]{61}\b"
        );
        assert!(KeyFormat::new("").is_err());
        assert!(KeyFormat::new("Ks").is_err());
        assert!(KeyFormat::new("ks_").is_err());
        assert!(KeyFormat::new("1ks").is_err());
    }
}

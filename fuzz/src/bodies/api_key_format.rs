//! `api_key_format`: the API-key parser and its CRC-32 checksum, without any storage.
//!
//! Two checks per input: (1) the parser's verdict on arbitrary text equals a reference
//! written from the documented format (`{tag}_{live|test}_{12 + 43 base62}{6 base62 of the
//! CRC-32 of all before}`), and the parts it returns are the right slices; (2) parse of
//! generate (key id and secret from the input) is the identity, and changing any one
//! character of a generated key makes it refused.

use keyseal::testing::{assemble_api_key, parse_api_key};
use keyseal::{Environment, KeyFormat};

use super::util::BASE62;

const TAGS: &[&str] = &["ks", "mhu", "eg", "mcpkey", "mcpkey_live", "a", "k9_x"];

/// Bitwise CRC-32 (IEEE), the textbook form, independent of the crate's table version.
fn crc32(data: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in data {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 == 1 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
    }
    !c
}

fn checksum(crc: u32) -> [u8; 6] {
    let mut out = [0u8; 6];
    let mut v = crc;
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(v % 62) as usize];
        v /= 62;
    }
    out
}

/// What the documented format says about `key`: environment and key id if valid.
fn reference(tag: &str, key: &str) -> Option<(Environment, String)> {
    let rest = key.strip_prefix(tag)?.strip_prefix('_')?;
    let (env, body) = if let Some(b) = rest.strip_prefix("live_") {
        (Environment::Live, b)
    } else {
        (Environment::Test, rest.strip_prefix("test_")?)
    };
    if body.len() != 61 || !body.bytes().all(|c| BASE62.contains(&c)) {
        return None;
    }
    let split = key.len() - 6;
    (checksum(crc32(&key.as_bytes()[..split])) == key.as_bytes()[split..])
        .then(|| (env, body[..12].to_owned()))
}

/// Input: byte 0 picks the tag and the environment, bytes 1..3 a position and a replacement
/// character, the rest is both the text parsed and the material of the generated key.
pub fn run(data: &[u8]) {
    if data.len() < 3 {
        return;
    }
    let tag = TAGS[usize::from(data[0] & 0x7f) % TAGS.len()];
    let env = if data[0] & 0x80 == 0 {
        Environment::Live
    } else {
        Environment::Test
    };
    let format = KeyFormat::new(tag).expect("listed tags are valid");
    let rest = &data[3..];

    // (1) arbitrary text
    let text = String::from_utf8_lossy(rest);
    let got = parse_api_key(&format, &text);
    let want = reference(tag, &text);
    assert_eq!(
        got.as_ref().map(|(e, id, _)| (*e, id.clone())),
        want,
        "parser and documented format disagree"
    );
    if let Some((_, id, id_and_secret)) = &got {
        let body = &text[tag.len() + 6..];
        assert_eq!(id_and_secret, &body[..55]);
        assert_eq!(id, &body[..12]);
    }

    // (2) parse ∘ generate
    let material: Vec<u8> = rest.iter().copied().cycle().take(55).collect();
    let chars: String = if material.is_empty() {
        "0".repeat(55)
    } else {
        material
            .iter()
            .map(|b| char::from(BASE62[usize::from(*b) % 62]))
            .collect()
    };
    let key = assemble_api_key(&format, env, &chars[..12], &chars[12..]);
    assert_eq!(key.len(), format.key_len());
    assert_eq!(
        parse_api_key(&format, &key),
        Some((env, chars[..12].to_owned(), chars.clone())),
        "a generated key does not parse back"
    );
    assert_eq!(reference(tag, &key).map(|(e, _)| e), Some(env));
    let pos = usize::from(u16::from_le_bytes([data[1], data[2]])) % key.len();
    let mut changed = key.clone().into_bytes();
    let replacement = BASE62[usize::from(data[2]) % 62];
    changed[pos] = if changed[pos] == replacement {
        b'_'
    } else {
        replacement
    };
    let changed = String::from_utf8(changed).expect("ASCII");
    assert_eq!(
        parse_api_key(&format, &changed),
        None,
        "a one-character change passed the checksum"
    );
}

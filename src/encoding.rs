//! Base64 and hex exactly as the Python systems write and read them.
//!
//! Python writes url-safe, padded base64 (`base64.urlsafe_b64encode`). It reads with
//! `base64.urlsafe_b64decode`: `-` and `_` are mapped to `+` and `/`, then `binascii.a2b_base64`
//! decodes without strict mode. [`decode`] reads exactly what that accepts (as Python 3.11
//! does), with the same bytes:
//! - the text must be ASCII (Python refuses any other `str` before decoding);
//! - both alphabets, even mixed in one text;
//! - any other ASCII character (white space, punctuation, control characters) is skipped;
//! - padding that completes a quantum (`xx==` or `xxx=`, counting only `=` since its last
//!   character) ends the data: whatever follows is ignored; any other `=` is skipped;
//! - an incomplete final quantum (the padding missing) is an error;
//! - non-zero trailing bits before the padding are ignored.
//!
//! Canonical text (what every encoder writes) takes a fast path through the `base64` crate;
//! anything else is read by a byte-by-byte port of Python's loop.

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;
use zeroize::Zeroize;

const CONFIG: GeneralPurposeConfig = GeneralPurposeConfig::new()
    .with_encode_padding(true)
    .with_decode_padding_mode(DecodePaddingMode::RequireCanonical)
    .with_decode_allow_trailing_bits(true);

/// Url-safe alphabet, padded, tolerant of trailing bits (as Python is).
const URL_SAFE: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, CONFIG);
/// Standard alphabet, for inputs written with `+` and `/`.
const STANDARD: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, CONFIG);

/// Url-safe padded base64 of `bytes`.
pub(crate) fn encode(bytes: &[u8]) -> String {
    URL_SAFE.encode(bytes)
}

/// Appends url-safe padded base64 of `bytes` to `out`.
pub(crate) fn encode_into(bytes: &[u8], out: &mut String) {
    URL_SAFE.encode_string(bytes, out);
}

/// Length of the padded base64 text for `len` bytes.
pub(crate) const fn encoded_len(len: usize) -> usize {
    len.div_ceil(3) * 4
}

/// The engine for canonical `text`: url-safe unless it holds `+` or `/`. Mixed text is read
/// with the standard engine after mapping, which is what Python's translate-then-decode does.
fn needs_standard(text: &str) -> bool {
    text.bytes().any(|b| b == b'+' || b == b'/')
}

fn to_standard(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            other => other,
        })
        .collect()
}

/// Decodes base64 as Python's `urlsafe_b64decode` does; `None` when Python raises.
pub(crate) fn decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    decode_into(text, &mut out).then_some(out)
}

/// Decodes base64 as Python's `urlsafe_b64decode` does, appending to `out`; `false` when Python
/// raises (then `out` may hold a partial result, which the caller discards).
pub(crate) fn decode_into(text: &str, out: &mut Vec<u8>) -> bool {
    let start = out.len();
    if decode_canonical_into(text, out) {
        return true;
    }
    // The fast path may have written part of a key: wipe it before reading the slow way.
    out[start..].zeroize();
    out.truncate(start);
    decode_python_into(text, out)
}

/// Canonical padded base64 (length a multiple of 4, padding only at the end, nothing but the
/// alphabet), either alphabet. Whatever this accepts, Python reads to the same bytes.
pub(crate) fn decode_canonical_into(text: &str, out: &mut Vec<u8>) -> bool {
    if needs_standard(text) {
        STANDARD.decode_vec(to_standard(text), out).is_ok()
    } else {
        URL_SAFE.decode_vec(text, out).is_ok()
    }
}

/// The value of a base64 character after Python's `-` to `+` and `_` to `/` mapping.
fn sextet(c: u8) -> Option<u8> {
    match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' | b'-' => Some(62),
        b'/' | b'_' => Some(63),
        _ => None,
    }
}

/// Python 3.11's `binascii.a2b_base64(strict_mode=False)` loop, after `urlsafe_b64decode`'s
/// ASCII check and alphabet mapping.
fn decode_python_into(text: &str, out: &mut Vec<u8>) -> bool {
    if !text.is_ascii() {
        return false;
    }
    // Position in the current quantum, bits carried to the next byte, `=` seen since the last
    // data character (counted only from the third character of a quantum on, as Python does).
    let (mut quad, mut left, mut pads) = (0u8, 0u8, 0u8);
    for &c in text.as_bytes() {
        if c == b'=' {
            if quad >= 2 {
                pads += 1;
                if quad + pads >= 4 {
                    // A complete padding: the data ends here, the rest is ignored.
                    return true;
                }
            }
            continue;
        }
        let Some(value) = sextet(c) else {
            continue;
        };
        pads = 0;
        match quad {
            0 => {
                left = value;
                quad = 1;
            }
            1 => {
                out.push((left << 2) | (value >> 4));
                left = value & 0x0f;
                quad = 2;
            }
            2 => {
                out.push((left << 4) | (value >> 2));
                left = value & 0x03;
                quad = 3;
            }
            _ => {
                out.push((left << 6) | value);
                quad = 0;
            }
        }
    }
    left.zeroize();
    quad == 0
}

/// Decodes exactly 16 canonical base64 characters (no padding) into 12 bytes.
pub(crate) fn decode_12(text: &str) -> Option<[u8; 12]> {
    let mut out = [0u8; 12];
    let written = if needs_standard(text) {
        STANDARD.decode_slice(to_standard(text), &mut out)
    } else {
        URL_SAFE.decode_slice(text, &mut out)
    };
    matches!(written, Ok(12)).then_some(out)
}

/// Lowercase hex of `bytes`.
pub(crate) fn hex_lower(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_alphabets_and_padding() {
        assert_eq!(decode("-_8=").unwrap(), vec![0xfb, 0xff]);
        assert_eq!(decode("+/8=").unwrap(), vec![0xfb, 0xff]);
        assert_eq!(decode("-/8=").unwrap(), vec![0xfb, 0xff]);
        assert!(decode("-_8").is_none(), "padding is required");
        assert_eq!(decode("").unwrap(), Vec::<u8>::new());
        // Python ignores non-zero trailing bits; so do we.
        assert_eq!(decode("-_9=").unwrap(), vec![0xfb, 0xff]);
    }

    /// Each answer is what Python 3.11's `base64.urlsafe_b64decode` gives.
    #[test]
    fn python_leniency_junk_extra_padding_and_data_after_padding() {
        let cases: &[(&str, Option<&[u8]>)] = &[
            ("-_8=\n", Some(&[0xfb, 0xff])),
            ("@@@@", Some(&[])),
            ("====", Some(&[])),
            ("QQ==junk", Some(b"A")),
            ("QUI==", Some(b"AB")),
            ("QUI=QUI=", Some(b"AB")),
            ("Q=Q==", Some(b"A")),
            ("=QQ==", Some(b"A")),
            ("QQ=x=", Some(b"A\x0c")),
            ("AB=CDEF=GH==", Some(b"\x00\x10\x83\x10Q\x87")),
            ("Q U\tJ\nD", Some(b"ABC")),
            ("QUJD\u{0}!", Some(b"ABC")),
            ("QUJDRA===A", Some(b"ABCD")),
            ("Q", None),
            ("QUI", None),
            ("AB=CDEF=", None),
            ("QUJD\u{e9}", None),
            ("\u{a0}QUJD", None),
        ];
        for (text, want) in cases {
            assert_eq!(decode(text).as_deref(), *want, "{text:?}");
        }
    }

    #[test]
    fn twelve_bytes() {
        let text = encode(&[9u8; 12]);
        assert_eq!(text.len(), 16);
        assert_eq!(decode_12(&text), Some([9u8; 12]));
        assert_eq!(decode_12("AAAAAAAAAAAAAA=="), None);
        assert_eq!(decode_12("short"), None);
    }

    #[test]
    fn hex() {
        assert_eq!(hex_lower(&[0x00, 0xab, 0xff]), "00abff");
        assert_eq!(encoded_len(0), 0);
        assert_eq!(encoded_len(1), 4);
        assert_eq!(encoded_len(3), 4);
        assert_eq!(encoded_len(4), 8);
    }
}

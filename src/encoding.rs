//! Base64 and hex exactly as the Python systems write and read them.
//!
//! Python writes url-safe, padded base64 (`base64.urlsafe_b64encode`). It reads with
//! `urlsafe_b64decode`, which also takes the standard alphabet (`+`, `/`), requires padding and
//! ignores non-zero trailing bits. We accept the same, except that characters outside both
//! alphabets are refused rather than silently dropped.

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;

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

/// The engine that reads `text`: url-safe unless it holds `+` or `/`. Mixed text is read with
/// the standard engine after mapping, which is what Python's translate-then-decode does.
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

/// Decodes padded base64 in either alphabet; `None` when it is not valid.
pub(crate) fn decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    decode_into(text, &mut out).then_some(out)
}

/// Decodes padded base64 in either alphabet, appending to `out`; `false` when it is not valid
/// (and `out` may then hold a partial result, which the caller discards).
pub(crate) fn decode_into(text: &str, out: &mut Vec<u8>) -> bool {
    if needs_standard(text) {
        STANDARD.decode_vec(to_standard(text), out).is_ok()
    } else {
        URL_SAFE.decode_vec(text, out).is_ok()
    }
}

/// Decodes exactly 16 base64 characters (no padding) into 12 bytes.
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
        assert!(decode("-_8=\n").is_none());
        assert!(decode("@@@@").is_none());
        assert_eq!(decode("").unwrap(), Vec::<u8>::new());
        // Python ignores non-zero trailing bits; so do we.
        assert_eq!(decode("-_9=").unwrap(), vec![0xfb, 0xff]);
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

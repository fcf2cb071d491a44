//! keyseal reads base64 exactly as the Python module does (`base64.urlsafe_b64decode`): every
//! text Python accepts works, with the same bytes, and every text Python refuses is refused.
//!
//! Thousands of generated texts (real tokens and keys with the other alphabet mixed in, white
//! space and other junk inserted, padding dropped, added or moved, data after the padding,
//! non-ASCII characters) are sent to real `python3` (`tests/python/b64_oracle.py`, the seed
//! module's `decrypt` and `resolve_master_key`) and compared with `decrypt`, `decrypt_bytes`,
//! `DataKey::from_base64` and `parse_master_key`.
//!
//! Runs when `python3` with `cryptography` is available (`make test` installs it). Without it
//! the test is skipped with a message, or fails if `KEYSEAL_REQUIRE_PYTHON=1`.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use common::base64_cases::{case_strategy, python_answers, std_b64, Case, Kind};
use common::process::python_ready;
use keyseal::{decrypt, decrypt_bytes, parse_master_key, DataKey};
use proptest::prelude::*;
use serde_json::json;

/// Whether `text` (less a `v2:` prefix and surrounding white space) is canonical padded
/// base64, the only form keyseal read before.
fn canonical(text: &str) -> bool {
    let body = text.trim();
    let body = body.strip_prefix("v2:").unwrap_or(body);
    let data = body.trim_end_matches('=');
    body.len() % 4 == 0
        && body.len() - data.len() <= 2
        && data
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_+/".contains(&b))
}

/// Compares keyseal with Python's answer for one case; `Err` describes the mismatch.
fn check(case: &Case, python: &serde_json::Value) -> Result<(), String> {
    let text = &case.text;
    match case.kind {
        Kind::Decode => {
            let bytes = python["bytes"].as_str();
            let len = python["len"].as_u64();
            // Keys: exactly the 32-byte texts Python decodes, with the same bytes.
            let key = DataKey::from_base64(text)
                .ok()
                .map(|k| std_b64(k.expose_secret()));
            let want_key = bytes.filter(|_| len == Some(32)).map(str::to_owned);
            if key != want_key {
                return Err(format!(
                    "DataKey::from_base64: {key:?}, Python {want_key:?}"
                ));
            }
            // Tokens: malformed exactly when Python cannot decode it or it is under 28 bytes.
            if !text.starts_with("v2:") {
                let malformed =
                    decrypt_bytes(text, &case.key()).is_err_and(|e| e.code() == "malformed");
                let python_malformed = len.map_or(true, |n| n < 28);
                if malformed != python_malformed {
                    return Err(format!(
                        "decrypt_bytes malformed: {malformed}, Python: {python_malformed}"
                    ));
                }
            }
        }
        Kind::Token => {
            let got = match decrypt(text, &case.key()) {
                Ok(plaintext) => json!({ "plaintext": plaintext }),
                Err(err) => json!({ "error": err.code() }),
            };
            if &got != python {
                return Err(format!("decrypt: {got}, Python {python}"));
            }
        }
        Kind::Master => {
            let got = parse_master_key(text)
                .ok()
                .map(|k| std_b64(k.expose_secret()));
            let want = python["key"].as_str().map(str::to_owned);
            if got != want {
                return Err(format!("parse_master_key: {got:?}, Python {want:?}"));
            }
        }
    }
    Ok(())
}

proptest! {
    // 12 batches of 400 texts: 4 800 texts, one python3 process per batch.
    #![proptest_config(ProptestConfig::with_cases(12))]

    /// Before the fix, a token or key with an extra `=`, white space, or data after the padding
    /// was refused while Python accepted it.
    #[test]
    fn base64_is_read_exactly_as_python_reads_it(
        cases in proptest::collection::vec(case_strategy(), 400)
    ) {
        if !python_ready() {
            return Ok(());
        }
        let answers = python_answers(&cases);
        let mut lenient = 0;
        for (case, python) in cases.iter().zip(&answers) {
            if let Err(mismatch) = check(case, python) {
                prop_assert!(false, "{:?} {:?}: {}", case.kind, case.text, mismatch);
            }
            let accepted = python.get("bytes").is_some()
                || python.get("plaintext").is_some()
                || !python["key"].is_null() && python.get("key").is_some();
            lenient += usize::from(accepted && !canonical(&case.text));
        }
        // The batch must exercise the lenient forms, not only canonical text and refusals.
        prop_assert!(lenient >= 40, "only {} accepted texts were not canonical", lenient);
    }
}

/// Cases found by hand, each once, so that they run even when generation misses them.
#[test]
fn known_lenient_forms_match_python() {
    if !python_ready() {
        return;
    }
    let key = DataKey::from_bytes(&[7u8; 32]).unwrap();
    // 38 bytes: the token ends in one `=`.
    let token = keyseal::encrypt("sk-live-12", &key).unwrap();
    assert!(token.ends_with('=') && !token.ends_with("=="));
    let body = &token[3..];
    let key_text = key.to_base64();
    let mut cases = Vec::new();
    for text in [
        format!("{token}="),
        format!("{token}\n"),
        format!(" {token} "),
        format!("{token}AAAA"),
        format!("{token}==junk"),
        body.replace('-', "+").replace('_', "/"),
        format!("v2:{}", &body[..body.len() - 1]),
        format!("v2:\u{e9}{body}"),
    ] {
        cases.push(Case::token(text, 7));
    }
    for text in [
        format!("{key_text}="),
        format!("{key_text}trailing"),
        format!("{key_text}=="),
        format!("\t{key_text}\r\n"),
        key_text.trim_end_matches('=').to_owned(),
        format!("{key_text}\u{a0}"),
    ] {
        cases.push(Case::master(text));
    }
    let answers = python_answers(&cases);
    let mut accepted = 0;
    for (case, python) in cases.iter().zip(&answers) {
        if let Err(mismatch) = check(case, python) {
            panic!("{:?} {:?}: {mismatch}", case.kind, case.text);
        }
        accepted += usize::from(python.get("plaintext").is_some() || !python["key"].is_null());
    }
    // Most of these are accepted by Python, so they must work here too.
    assert!(accepted >= 10, "only {accepted} accepted");
}

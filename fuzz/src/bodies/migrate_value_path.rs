//! `migrate_value_path`: what a migration does with one row's value and user id, without a
//! database (`keyseal::migrate::value_path`), so it runs millions of times where
//! `migrate_value` (a real table per input) runs dozens.
//!
//! Promises checked: never a panic, whatever the SQLite types and bytes; NULL and text already
//! starting with `v2:` are skipped; only UTF-8 text is encrypted, byte for byte, and for the
//! user the user column names (text as it is, integers in decimal, within the key store's
//! user-id rule); every other row gets the reason a migration reports; a row's description is
//! at most 80 characters and an ellipsis; what would be encrypted round-trips through a token.

use std::sync::OnceLock;

use keyseal::migrate::{value_path, FailReason};
use keyseal::{decrypt, encrypt, is_encrypted, DataKey, MAX_USER_ID_LEN};

fn key() -> &'static DataKey {
    static KEY: OnceLock<DataKey> = OnceLock::new();
    KEY.get_or_init(|| DataKey::from_bytes(&[7; 32]).expect("key"))
}

/// SQLite type of a kind byte, as `value_path` reads it.
fn kind(k: u8) -> u8 {
    k % 5
}

/// Input: the value's kind, the user's kind, where the bytes split, then the bytes (value
/// first, then user).
pub fn run(data: &[u8]) {
    let [vk, uk, split, rest @ ..] = data else {
        return;
    };
    let split = usize::from(*split).min(rest.len());
    let (vb, ub) = rest.split_at(split);
    let (vk, uk) = (kind(*vk), kind(*uk));
    let (described, result) = value_path((vk, vb), (uk, ub));
    assert!(
        described.chars().count() <= 83,
        "description too long: {} characters",
        described.chars().count()
    );
    let skipped = vk == 0 || (vk == 3 && vb.starts_with(b"v2:"));
    match result {
        Ok(None) => assert!(skipped, "skipped a row that needs encrypting"),
        Ok(Some((user, plaintext))) => {
            assert!(!skipped, "encrypting a row that is skipped");
            assert_eq!(vk, 3, "encrypting a value that is not text");
            assert_eq!(
                plaintext.as_bytes(),
                vb,
                "plaintext is not the stored bytes"
            );
            match uk {
                3 => assert_eq!(user.as_bytes(), ub, "user id is not the stored text"),
                1 => {
                    let mut le = [0u8; 8];
                    let n = ub.len().min(8);
                    le[..n].copy_from_slice(&ub[..n]);
                    assert_eq!(user, i64::from_le_bytes(le).to_string());
                }
                _ => panic!("user id from a NULL, REAL or BLOB"),
            }
            assert!(!user.is_empty() && user.len() <= MAX_USER_ID_LEN && !user.contains('\0'));
            let token = encrypt(&plaintext, key()).expect("encrypt");
            assert!(is_encrypted(&token) && token.starts_with("v2:"));
            assert_eq!(decrypt(&token, key()).expect("decrypt"), plaintext);
        }
        Err(reason) => {
            assert!(!skipped, "a skipped row failed: {reason}");
            let want_value = match vk {
                3 if std::str::from_utf8(vb).is_err() => Some(FailReason::ValueNotUtf8),
                3 => None,
                _ => Some(FailReason::ValueNotText),
            };
            match want_value {
                Some(w) => assert_eq!(reason, w, "value reason"),
                None => match uk {
                    3 if std::str::from_utf8(ub).is_err() => {
                        assert_eq!(reason, FailReason::UserIdNotUtf8);
                    }
                    _ => assert_eq!(reason, FailReason::NoUserId, "user reason"),
                },
            }
        }
    }
}

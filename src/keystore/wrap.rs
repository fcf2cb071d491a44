//! Wrapping data keys under the master key, the master key check value, and timestamps.
//!
//! A wrapped key is `nonce[12] || AES-256-GCM(master, data key[32], no AAD) || tag[16]`,
//! 60 bytes, exactly as the Python module writes `encryption_keys.encrypted_key`.
//!
//! The check value that records which master key wraps the rows is
//! `nonce[12] || AES-256-GCM(master, CHECK_LABEL, aad = CHECK_AAD) || tag[16]`: a fixed, public
//! label sealed like any other message. It does not weaken the wrap: AES-GCM with a fresh random
//! nonce is secure against known and chosen plaintexts (IND-CPA and ciphertext integrity), so a
//! sealed public label tells an attacker nothing about the key and costs one nonce out of the
//! 2^32 that NIST SP 800-38D allows per key. Unlike an unsalted hash or a raw block encryption
//! of a constant, it is not a fingerprint that links stores sharing a master key (the nonce is
//! random), and it cannot be mistaken for a wrapped key: it is 57 bytes, not 60, and its AAD
//! differs. Only the holder of the master key can verify it, which is all we need: a wrong key
//! is diagnosed at open, before any row is read or written.

use crate::civil::civil_from_days;
use zeroize::Zeroizing;

use crate::seal::{open_in_place, seal_in_place, NONCE_LEN, TAG_LEN};
use crate::{Error, MasterKey, KEY_LEN};

/// Length of a wrapped 32-byte data key.
pub(crate) const WRAPPED_LEN: usize = NONCE_LEN + KEY_LEN + TAG_LEN;

/// The public plaintext of the check value.
const CHECK_LABEL: &[u8] = b"keyseal key store master check v1";
/// Associated data of the check value: keeps it apart from wrapped keys (which have none).
const CHECK_AAD: &[u8] = b"keyseal_keystore_meta";

/// Raw key bytes at a fixed heap address, zeroized on drop; moves only move the pointer.
pub(crate) type KeyBytes = Box<Zeroizing<[u8; KEY_LEN]>>;

/// Fresh random key bytes.
pub(crate) fn random_key() -> Result<KeyBytes, Error> {
    let mut key: KeyBytes = Box::new(Zeroizing::new([0u8; KEY_LEN]));
    getrandom::getrandom(&mut key[..]).map_err(|_| Error::Randomness)?;
    Ok(key)
}

/// `nonce || AES-256-GCM(master, plaintext, aad) || tag`.
fn seal(master: &MasterKey, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, Error> {
    let mut out = Vec::with_capacity(NONCE_LEN + plaintext.len() + TAG_LEN);
    out.extend_from_slice(&[0u8; NONCE_LEN]);
    out.extend_from_slice(plaintext);
    let nonce = seal_in_place(master.cipher(), aad, &mut out, NONCE_LEN)?;
    out[..NONCE_LEN].copy_from_slice(&nonce);
    Ok(out)
}

/// Splits `nonce || body || tag` (the caller has checked the length).
fn split(blob: &[u8], body_len: usize) -> ([u8; NONCE_LEN], &[u8], [u8; TAG_LEN]) {
    let (nonce, rest) = blob.split_at(NONCE_LEN);
    let (body, tag) = rest.split_at(body_len);
    let mut n = [0u8; NONCE_LEN];
    n.copy_from_slice(nonce);
    let mut t = [0u8; TAG_LEN];
    t.copy_from_slice(tag);
    (n, body, t)
}

/// Wraps a data key under the master key (Python's format: no AAD).
pub(crate) fn wrap(master: &MasterKey, key: &[u8; KEY_LEN]) -> Result<Vec<u8>, Error> {
    seal(master, key, b"")
}

/// Unwraps a stored blob. A wrong length is [`Error::CorruptKey`]; a failed tag is
/// [`Error::WrongMasterKey`] naming the row.
pub(crate) fn unwrap(master: &MasterKey, user_id: &str, blob: &[u8]) -> Result<KeyBytes, Error> {
    if blob.len() != WRAPPED_LEN {
        return Err(Error::CorruptKey {
            user_id: user_id.to_owned(),
        });
    }
    let (nonce, ciphertext, tag) = split(blob, KEY_LEN);
    let mut key: KeyBytes = Box::new(Zeroizing::new([0u8; KEY_LEN]));
    key.copy_from_slice(ciphertext);
    if !open_in_place(master.cipher(), &nonce, b"", &mut key[..], &tag) {
        return Err(Error::WrongMasterKey {
            user_id: Some(user_id.to_owned()),
        });
    }
    Ok(key)
}

/// A new check value for `master`.
pub(crate) fn make_check(master: &MasterKey) -> Result<Vec<u8>, Error> {
    seal(master, CHECK_LABEL, CHECK_AAD)
}

/// Whether `blob` is a check value made with `master`.
pub(crate) fn verify_check(master: &MasterKey, blob: &[u8]) -> bool {
    if blob.len() != NONCE_LEN + CHECK_LABEL.len() + TAG_LEN {
        return false;
    }
    let (nonce, ciphertext, tag) = split(blob, CHECK_LABEL.len());
    let mut buf = ciphertext.to_vec();
    open_in_place(master.cipher(), &nonce, CHECK_AAD, &mut buf, &tag) && buf == CHECK_LABEL
}

/// The current time as Python's `datetime.now(timezone.utc).isoformat()` writes it,
/// e.g. `2024-05-01T12:34:56.123456+00:00`.
pub(crate) fn now_iso8601() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = i64::try_from(now.as_secs()).unwrap_or(0);
    let micros = now.subsec_micros();
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}+00:00",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        let now = now_iso8601();
        assert_eq!(now.len(), 32, "{now}");
        assert!(now.ends_with("+00:00"));
    }

    #[test]
    fn wrap_round_trip_and_check() {
        let master = MasterKey::generate().unwrap();
        let other = MasterKey::generate().unwrap();
        let key = random_key().unwrap();
        let blob = wrap(&master, &key).unwrap();
        assert_eq!(blob.len(), WRAPPED_LEN);
        assert_eq!(**unwrap(&master, "u", &blob).unwrap(), **key);
        assert_eq!(
            unwrap(&other, "u", &blob).unwrap_err().code(),
            "wrong_master_key"
        );
        assert_eq!(
            unwrap(&master, "u", &blob[..59]).unwrap_err().code(),
            "corrupt_key"
        );
        let check = make_check(&master).unwrap();
        assert!(verify_check(&master, &check));
        assert!(!verify_check(&other, &check));
        assert!(!verify_check(&master, &blob));
        assert_ne!(check.len(), WRAPPED_LEN);
    }
}

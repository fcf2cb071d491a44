//! AES-256-GCM sealing, the one primitive behind `v2:` tokens and wrapped data keys: a fresh
//! nonce per message from [`crate::nonce`], the 16-byte tag after the ciphertext.

use aes_gcm::aead::AeadInPlace;
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use zeroize::Zeroize;

use crate::nonce::fill_nonce;
pub(crate) use crate::nonce::NONCE_LEN;
use crate::Error;

/// Length of an AES-GCM authentication tag.
pub(crate) const TAG_LEN: usize = 16;

/// Encrypts `buf[from..]` in place under a fresh nonce, appends the tag, and returns the nonce
/// (the caller decides where it goes: before the ciphertext in both formats).
///
/// # Errors
/// [`Error::Randomness`] when no nonce can be drawn; [`Error::InvalidArgument`] for a
/// plaintext over AES-GCM's limit of 64 GiB (then `buf` is wiped: no plaintext is left).
pub(crate) fn seal_in_place(
    cipher: &Aes256Gcm,
    aad: &[u8],
    buf: &mut Vec<u8>,
    from: usize,
) -> Result<[u8; NONCE_LEN], Error> {
    let mut nonce = [0u8; NONCE_LEN];
    fill_nonce(&mut nonce)?;
    let Ok(tag) =
        cipher.encrypt_in_place_detached(Nonce::from_slice(&nonce), aad, &mut buf[from..])
    else {
        buf.zeroize();
        return Err(Error::InvalidArgument {
            what: "plaintext longer than AES-GCM allows (64 GiB)".into(),
        });
    };
    buf.extend_from_slice(&tag);
    Ok(nonce)
}

/// Decrypts `buf` in place, checking `tag`; `false` (and `buf` unchanged in meaning: still
/// ciphertext) when the key, nonce, AAD or any byte is wrong.
pub(crate) fn open_in_place(
    cipher: &Aes256Gcm,
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    buf: &mut [u8],
    tag: &[u8; TAG_LEN],
) -> bool {
    cipher
        .decrypt_in_place_detached(Nonce::from_slice(nonce), aad, buf, Tag::from_slice(tag))
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use aes_gcm::KeyInit;

    #[test]
    fn sealed_bytes_open_only_with_the_same_aad() {
        let cipher = Aes256Gcm::new(&[7u8; 32].into());
        let mut buf = b"..secret".to_vec();
        let nonce = seal_in_place(&cipher, b"aad", &mut buf, 2).unwrap();
        assert_eq!(buf.len(), 8 + TAG_LEN);
        assert_eq!(&buf[..2], b"..", "bytes before `from` are left alone");
        let (body, tag) = buf.split_at(buf.len() - TAG_LEN);
        let tag: [u8; TAG_LEN] = tag.try_into().unwrap();
        let mut wrong = body[2..].to_vec();
        assert!(!open_in_place(&cipher, &nonce, b"other", &mut wrong, &tag));
        let mut right = body[2..].to_vec();
        assert!(open_in_place(&cipher, &nonce, b"aad", &mut right, &tag));
        assert_eq!(right, b"secret");
    }
}

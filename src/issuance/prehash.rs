//! The hash at rest: bcrypt of a pre-hash of the key (keyseal keys), or of the key as it is
//! (imported legacy keys).

use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use super::backend::Scheme;
use crate::Error;

/// The fixed HMAC key of the pre-hash: separates it from the plain SHA-256 of
/// [`crate::api_key_hash`], so a stored SHA-256 of a key can never be fed to bcrypt in its place.
const PREHASH_KEY: &[u8] = b"keyseal/api-key/bcrypt-prehash/v1";

/// Highest bcrypt cost accepted from an imported hash: each step doubles the work, and one
/// row at cost 31 would hold a bcrypt slot for days.
pub(crate) const MAX_IMPORTED_COST: u32 = 16;

/// `base64url(HMAC-SHA256(PREHASH_KEY, key))`: 44 ASCII characters that depend on every byte
/// of the key, where bcrypt would read only the first 72.
pub(crate) fn prehash(key: &str) -> Zeroizing<String> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(PREHASH_KEY)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(key.as_bytes());
    let digest = Zeroizing::new(<[u8; 32]>::from(mac.finalize().into_bytes()));
    Zeroizing::new(crate::encoding::encode(&*digest))
}

/// The stored hash of a new keyseal key.
///
/// # Errors
/// [`Error::InvalidArgument`] when bcrypt refuses the cost.
pub(crate) fn hash_new_key(key: &str, cost: u32) -> Result<String, Error> {
    bcrypt::hash(prehash(key).as_bytes(), cost).map_err(|e| Error::InvalidArgument {
        what: format!("bcrypt: {e}"),
    })
}

/// Whether `key` matches a stored hash made with `scheme`.
pub(crate) fn bcrypt_ok(scheme: Scheme, key: &str, hash: &str) -> bool {
    match scheme {
        Scheme::Prehashed => bcrypt::verify(prehash(key).as_bytes(), hash).unwrap_or(false),
        Scheme::Plain => bcrypt::verify(key.as_bytes(), hash).unwrap_or(false),
    }
}

/// The cost of a bcrypt hash (`$2?$NN$...`), if it has that shape there.
pub(crate) fn bcrypt_cost(h: &str) -> Option<u32> {
    h.get(4..6)?.parse().ok()
}

/// Whether `h` is a `$2a$`/`$2b$`/`$2y$` bcrypt hash with a cost of 4 to 31.
pub(crate) fn valid_bcrypt_hash(h: &str) -> bool {
    let b = h.as_bytes();
    b.len() == 60
        && matches!(&b[..4], b"$2a$" | b"$2b$" | b"$2y$")
        && b[6] == b'$'
        && bcrypt_cost(h).is_some_and(|c| (4..=31).contains(&c))
        && b[7..]
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || c == b'.' || c == b'/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prehash_covers_the_whole_key() {
        let a = "ks_live_".to_string() + &"a".repeat(100);
        let mut b = a.clone();
        b.push('b');
        assert_ne!(*prehash(&a), *prehash(&b));
        assert_eq!(prehash(&a).len(), 44);
    }

    #[test]
    fn bcrypt_hash_shapes() {
        let h = "$2b$04$veJQMyqjjdomJgmcHmJoIOenKdyYRvxHOQsT0IZRcS8e1vRvtUpLC";
        assert!(valid_bcrypt_hash(h));
        assert!(valid_bcrypt_hash(&h.replace("$2b$", "$2y$")));
        assert!(!valid_bcrypt_hash(&h.replace("$2b$", "$2x$")));
        assert!(!valid_bcrypt_hash(&h[..59]));
        assert!(!valid_bcrypt_hash(
            "$2b$03$veJQMyqjjdomJgmcHmJoIOenKdyYRvxHOQsT0IZRcS8e1vRvtUpLC"
        ));
    }
}

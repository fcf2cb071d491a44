//! The keyed fast verifier: a secret [`VerifierKey`], held by the application servers and
//! never by the database, and the per-row tag it makes, so that a new process verifies a key
//! it has not cached with one indexed read and one HMAC instead of one bcrypt.
//!
//! # What is stored, and why a database leak gives nothing
//! A row may carry `v1:{key id}:{tag}`, where the key id names the verifier key (16 hex
//! characters derived from it, revealing nothing of it) and
//! `tag = HMAC-SHA256(verifier key, label, scheme, key id of the API key, presented key)`.
//! Without the verifier key the tag cannot be computed, so it does not help guess a key
//! offline: the bcrypt hash stays the at-rest hash and the only offline attack, as before.
//! A tag is written only for a key that bcrypt accepted (or at creation), so a tag mismatch
//! means a wrong key and is refused without bcrypt.
//!
//! For imported keys (scheme `bcrypt`) the tag covers the bytes bcrypt reads, the first 72:
//! keys that differ only after them are one key, as they are to bcrypt.
//!
//! # Another key, or none
//! A process without a verifier key never reads or writes tags: it behaves exactly as before.
//! A process with another key (a lost or changed key) sees a key id that is not its own and
//! falls back to bcrypt, then writes its own tag: each key costs one bcrypt once after a key
//! change, and servers holding different keys keep overwriting each other's tags (each such
//! overwrite costs the other side one bcrypt), so a fleet should change the key everywhere at
//! once.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use std::sync::atomic::Ordering;
use std::sync::PoisonError;
use std::time::Duration;

use super::backend::Scheme;
use super::Core;
use crate::{Error, MasterKey};

/// Tags queued beyond this are dropped (each costs one more bcrypt later, nothing else).
const MAX_PENDING_TAGS: usize = 100_000;

/// Domain label of the tag.
const TAG_LABEL: &[u8] = b"keyseal/api-key/verifier-tag/v1";
/// Domain label of the key id.
const ID_LABEL: &[u8] = b"keyseal/api-key/verifier-id/v1";
/// HKDF salt and info of [`VerifierKey::derive_from`].
const HKDF_SALT: &[u8] = b"keyseal/api-key/verifier-key/v1";
const HKDF_INFO: &[u8] = b"keyseal api-key verifier key from master key";
/// What bcrypt reads of a plain (imported) key.
const BCRYPT_MAX_BYTES: usize = 72;
/// The version marker of a stored tag.
const TAG_VERSION: &str = "v1";

/// The secret key of the fast verifier (32 bytes): give it to
/// [`ApiKeysConfig::verifier_key`](super::ApiKeysConfig::verifier_key). Keep it where the
/// master key is kept, never in the database. Zeroized on drop; `Debug` shows
/// `VerifierKey(..)`; no `Display`; no `Clone` (a copy is made only on purpose, from
/// [`VerifierKey::to_base64`]).
///
/// ```
/// use keyseal::{ApiKeys, ApiKeysConfig, MasterKey, NewKey, VerifierKey};
/// # let dir = tempfile::tempdir().unwrap();
/// let master = MasterKey::generate()?;
/// // Derived from the master key: an app with a key store needs nothing new.
/// let verifier = VerifierKey::derive_from(&master);
/// let config = ApiKeysConfig::default().bcrypt_cost(4).verifier_key(verifier);
/// let keys = ApiKeys::open_with(dir.path().join("keys.db"), config)?;
/// let made = keys.create(&NewKey::new("user-42", "CI"))?; // tagged at creation
/// assert!(keys.verify(&made.key)?.is_valid());
/// # Ok::<(), keyseal::Error>(())
/// ```
pub struct VerifierKey {
    bytes: Zeroizing<[u8; 32]>,
    /// Names the key in stored tags; not secret.
    id: String,
}

impl VerifierKey {
    fn from_array(bytes: Zeroizing<[u8; 32]>) -> Self {
        let mut mac = new_mac(&*bytes);
        mac.update(ID_LABEL);
        let digest = Zeroizing::new(<[u8; 32]>::from(mac.finalize().into_bytes()));
        let id = crate::encoding::hex_lower(&digest[..8]);
        VerifierKey { bytes, id }
    }

    /// A new key from the operating system's randomness.
    ///
    /// # Errors
    /// [`Error::Randomness`] when no randomness is available.
    pub fn generate() -> Result<Self, Error> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        getrandom::getrandom(&mut *bytes).map_err(|_| Error::Randomness)?;
        Ok(Self::from_array(bytes))
    }

    /// A key from exactly 32 bytes. The caller keeps (and should zeroize) its copy.
    ///
    /// # Errors
    /// [`Error::BadKey`] when `bytes` is not 32 bytes long.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        let array: [u8; 32] = bytes.try_into().map_err(|_| Error::BadKey {
            reason: "a verifier key must be exactly 32 bytes",
        })?;
        Ok(Self::from_array(Zeroizing::new(array)))
    }

    /// A key from base64 (either alphabet, padded), as [`VerifierKey::to_base64`] writes it.
    ///
    /// # Errors
    /// [`Error::BadKey`] when the text is not base64 or does not decode to 32 bytes.
    pub fn from_base64(text: &str) -> Result<Self, Error> {
        let bytes = Zeroizing::new(crate::encoding::decode(text.trim()).ok_or(Error::BadKey {
            reason: "a verifier key must be base64",
        })?);
        Self::from_bytes(&bytes)
    }

    /// The key as url-safe, padded base64 (44 characters). The result is a secret.
    #[must_use]
    pub fn to_base64(&self) -> String {
        crate::encoding::encode(&*self.bytes)
    }

    /// The verifier key derived from a master key: HKDF-SHA256 with a label of its own, so
    /// it reveals nothing of the master key and is the same in every process holding it.
    /// Changing the master key changes this key (each key then costs one bcrypt once).
    #[must_use]
    pub fn derive_from(master: &MasterKey) -> Self {
        // HKDF (RFC 5869) for one 32-byte block: PRK = HMAC(salt, IKM); OKM = HMAC(PRK, info || 1).
        let mut extract = new_mac(HKDF_SALT);
        extract.update(master.expose_secret());
        let prk = Zeroizing::new(<[u8; 32]>::from(extract.finalize().into_bytes()));
        let mut expand = new_mac(&*prk);
        expand.update(HKDF_INFO);
        expand.update(&[1]);
        Self::from_array(Zeroizing::new(expand.finalize().into_bytes().into()))
    }

    /// The key's public id (16 hex characters), stored beside each tag it made. Not secret:
    /// derived one-way from the key.
    #[must_use]
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The raw tag of `key` for the row with key id `key_id` and `scheme`.
    fn raw_tag(&self, scheme: Scheme, key_id: &str, key: &str) -> Zeroizing<[u8; 32]> {
        let material = match scheme {
            Scheme::Prehashed => key.as_bytes(),
            // What bcrypt reads: keys that differ after byte 72 are the same key to it.
            Scheme::Plain => &key.as_bytes()[..key.len().min(BCRYPT_MAX_BYTES)],
        };
        let mut mac = new_mac(&*self.bytes);
        mac.update(TAG_LABEL);
        mac.update(&[0]);
        mac.update(scheme.as_str().as_bytes());
        mac.update(&[0]);
        // Binds the tag to its row: a tag copied to another row matches nothing there.
        mac.update(key_id.as_bytes());
        mac.update(&[0]);
        mac.update(material);
        Zeroizing::new(mac.finalize().into_bytes().into())
    }

    /// The stored form of the tag of `key` (which bcrypt accepted) for a row.
    pub(crate) fn tag(&self, scheme: Scheme, key_id: &str, key: &str) -> String {
        let raw = self.raw_tag(scheme, key_id, key);
        format!(
            "{TAG_VERSION}:{}:{}",
            self.id,
            crate::encoding::encode(&*raw)
        )
    }

    /// What a row's stored tag says about `key`: [`TagCheck::Unusable`] when there is none,
    /// it is another key's or cannot be read (then bcrypt decides); otherwise whether `key`
    /// is the row's key, compared in constant time.
    pub(crate) fn check(
        &self,
        stored: Option<&str>,
        scheme: Scheme,
        key_id: &str,
        key: &str,
    ) -> TagCheck {
        let Some(stored) = stored else {
            return TagCheck::Unusable;
        };
        let mut parts = stored.splitn(3, ':');
        let (Some(TAG_VERSION), Some(id), Some(tag)) = (parts.next(), parts.next(), parts.next())
        else {
            return TagCheck::Unusable;
        };
        if id != self.id {
            return TagCheck::Unusable;
        }
        let Some(tag) = crate::encoding::decode(tag).filter(|t| t.len() == 32) else {
            return TagCheck::Unusable;
        };
        let expected = self.raw_tag(scheme, key_id, key);
        if bool::from(expected.ct_eq(&tag[..])) {
            TagCheck::Match
        } else {
            TagCheck::Mismatch
        }
    }
}

/// See [`VerifierKey::check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TagCheck {
    /// No tag this process can use: bcrypt decides.
    Unusable,
    /// The key is the row's key.
    Match,
    /// A wrong key.
    Mismatch,
}

impl core::fmt::Debug for VerifierKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("VerifierKey(..)")
    }
}

impl Core {
    /// Queues a tag to write with the next last-use write: never written by the verify
    /// that made it, so a verification never waits for a write.
    pub(crate) fn queue_tag(&self, row_id: i64, tag: String) {
        let mut pending = self
            .pending_tags
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if pending.len() < MAX_PENDING_TAGS {
            pending.push((row_id, tag));
        }
    }

    pub(crate) fn tags_pending(&self) -> bool {
        !self
            .pending_tags
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_empty()
    }

    /// Writes the queued tags, waiting at most `wait`; kept queued when that fails.
    pub(crate) fn flush_tags(&self, wait: Duration) -> Result<(), Error> {
        let tags = std::mem::take(
            &mut *self
                .pending_tags
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        if tags.is_empty() {
            return Ok(());
        }
        let result = self.backend.set_verifier_tags(&tags, wait);
        if result.is_err() {
            let mut pending = self
                .pending_tags
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if pending.len() < MAX_PENDING_TAGS {
                pending.extend(tags);
            }
        }
        result
    }

    /// For the cold-start benchmark only: writes the tags of keyseal keys `keys` (which the
    /// caller made, so knows to be right) with `verifier`, without the bcrypt a process
    /// would run before writing one: the tags a warm fleet would have, without paying
    /// 10 000 bcrypts to get them. Returns how many rows were tagged.
    pub(crate) fn tag_known_keys(
        &self,
        verifier: &VerifierKey,
        keys: &[&str],
    ) -> Result<usize, Error> {
        let mut tagged = 0;
        for chunk in keys.chunks(1000) {
            let mut tags = Vec::with_capacity(chunk.len());
            for key in chunk {
                let Some(p) = self.config.format.parse(key) else {
                    continue;
                };
                for row in self.backend.find(p.key_id)? {
                    if row.key_id == p.key_id {
                        tags.push((row.row_id, verifier.tag(row.scheme, &row.key_id, key)));
                    }
                }
            }
            tagged += tags.len();
            self.backend
                .set_verifier_tags(&tags, Duration::from_secs(30))?;
        }
        Ok(tagged)
    }

    /// bcrypt verifications this manager ran in `verify` (for tests and benchmarks).
    pub(crate) fn bcrypt_runs(&self) -> u64 {
        self.bcrypt_runs.load(Ordering::Relaxed)
    }
}

fn new_mac(key: &[u8]) -> Hmac<Sha256> {
    <Hmac<Sha256> as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> VerifierKey {
        VerifierKey::from_bytes(&[b; 32]).unwrap()
    }

    #[test]
    fn tag_matches_its_key_only_and_other_verifier_keys_are_unusable() {
        let k = key(1);
        let t = k.tag(Scheme::Prehashed, "id1", "ks_live_abc");
        assert!(t.starts_with(&format!("v1:{}:", k.id())));
        let check = |vk: &VerifierKey, id: &str, presented: &str| {
            vk.check(Some(&t), Scheme::Prehashed, id, presented)
        };
        assert_eq!(check(&k, "id1", "ks_live_abc"), TagCheck::Match);
        assert_eq!(check(&k, "id1", "ks_live_abd"), TagCheck::Mismatch);
        // Bound to the row's key id and scheme.
        assert_eq!(check(&k, "id2", "ks_live_abc"), TagCheck::Mismatch);
        assert_eq!(
            k.check(Some(&t), Scheme::Plain, "id1", "ks_live_abc"),
            TagCheck::Mismatch
        );
        assert_eq!(check(&key(2), "id1", "ks_live_abc"), TagCheck::Unusable);
        for bad in [
            "",
            "v1",
            "v2:x:y",
            &t[..t.len() - 4],
            &t.replace("v1:", "v0:"),
        ] {
            assert_eq!(
                k.check(Some(bad), Scheme::Prehashed, "id1", "ks_live_abc"),
                TagCheck::Unusable,
                "{bad}"
            );
        }
        assert_eq!(
            k.check(None, Scheme::Prehashed, "id1", "ks_live_abc"),
            TagCheck::Unusable
        );
    }

    #[test]
    fn plain_keys_are_tagged_as_bcrypt_reads_them_first_72_bytes() {
        let k = key(3);
        let long = "mhu_".to_owned() + &"a".repeat(80);
        let variant = long[..72].to_owned() + "zzz";
        let t = k.tag(Scheme::Plain, "id", &long);
        assert_eq!(
            k.check(Some(&t), Scheme::Plain, "id", &variant),
            TagCheck::Match
        );
        let t = k.tag(Scheme::Prehashed, "id", &long);
        assert_eq!(
            k.check(Some(&t), Scheme::Prehashed, "id", &variant),
            TagCheck::Mismatch
        );
    }

    #[test]
    fn derived_key_is_stable_labelled_and_redacted() {
        let master = MasterKey::from_bytes(&[7; 32]).unwrap();
        let a = VerifierKey::derive_from(&master);
        let b = VerifierKey::derive_from(&master);
        assert_eq!(a.to_base64(), b.to_base64());
        assert_ne!(&*a.bytes, master.expose_secret());
        assert_ne!(a.id(), key(7).id());
        assert_eq!(format!("{a:?}"), "VerifierKey(..)");
        assert_eq!(a.id().len(), 16);
        let again = VerifierKey::from_base64(&a.to_base64()).unwrap();
        assert_eq!(again.id(), a.id());
        assert!(VerifierKey::from_base64("not base64!").is_err());
        assert!(VerifierKey::from_bytes(&[0; 31]).is_err());
    }
}

//! The master keyring: the master key a process wraps new rows with (current) and the others
//! it can still unwrap with, each known by a public id.
//!
//! # Ids
//! A master key's id is the first 8 bytes of `HMAC-SHA256(master, "keyseal master key id")`,
//! in lowercase hex (16 characters). It names the key in rows, errors and logs without
//! revealing it: HMAC is a PRF, so the id tells nothing about the key beyond letting its holder
//! recognise it. Two different keys share an id with probability 2^-64 per pair; the store
//! also keeps a check value per id (see `wrap.rs`), so a collision would be caught at open.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::{Error, MasterKey};

/// The HMAC message that makes an id.
const ID_LABEL: &[u8] = b"keyseal master key id";

/// The public id of a master key: 16 lowercase hex characters.
///
/// # Example
/// ```
/// use keyseal::{MasterKey, MasterKeyId};
/// let key = MasterKey::generate()?;
/// let id = MasterKeyId::of(&key);
/// assert_eq!(id.as_str().len(), 16);
/// assert_eq!(id, MasterKeyId::of(&MasterKey::from_bytes(key.expose_secret())?));
/// # Ok::<(), keyseal::Error>(())
/// ```
///
/// # Errors
/// None.
///
/// # Security
/// Public: safe to print, log and store. It does not reveal the key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MasterKeyId(String);

impl MasterKeyId {
    /// The id of `master`.
    ///
    /// # Errors
    /// None.
    #[must_use]
    pub fn of(master: &MasterKey) -> MasterKeyId {
        // HMAC accepts keys of any length: this cannot fail for 32 bytes.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(master.expose_secret())
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(ID_LABEL);
        let tag = mac.finalize().into_bytes();
        let mut id = String::with_capacity(16);
        for b in &tag[..8] {
            id.push(char::from_digit(u32::from(b >> 4), 16).unwrap_or('0'));
            id.push(char::from_digit(u32::from(b & 15), 16).unwrap_or('0'));
        }
        MasterKeyId(id)
    }

    /// The id as text.
    ///
    /// # Errors
    /// None.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// An id read from a database row (no check beyond being text).
    pub(crate) fn from_stored(text: String) -> MasterKeyId {
        MasterKeyId(text)
    }
}

impl core::fmt::Display for MasterKeyId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The master keys a process holds: the current one, which wraps every new or rewrapped row,
/// and previous ones, which only unwrap rows still wrapped under them.
///
/// A key store opened with a keyring unwraps each row with the key the row names (its
/// `master_key_id`) and wraps with the current key. See `KeyStore::open_keyring` and the
/// README's "Rotating keys" for the rolling rotation of a fleet.
///
/// # Example
/// ```
/// use keyseal::{MasterKey, MasterKeyId, MasterKeyring};
/// let old = MasterKey::generate()?;
/// let old_id = MasterKeyId::of(&old);
/// let ring = MasterKeyring::new(MasterKey::generate()?).with_previous(old);
/// assert_eq!(ring.ids().len(), 2);
/// assert!(ring.get(&old_id).is_some());
/// # Ok::<(), keyseal::Error>(())
/// ```
///
/// # Errors
/// None.
///
/// # Security
/// Holds the keys (each zeroized on drop); its `Debug` shows ids only.
pub struct MasterKeyring {
    keys: Vec<(MasterKeyId, MasterKey)>,
}

impl core::fmt::Debug for MasterKeyring {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("MasterKeyring")
            .field("ids", &self.ids())
            .finish()
    }
}

impl From<MasterKey> for MasterKeyring {
    fn from(current: MasterKey) -> Self {
        MasterKeyring::new(current)
    }
}

impl MasterKeyring {
    /// A keyring of one key, the current one.
    ///
    /// # Errors
    /// None.
    #[must_use]
    pub fn new(current: MasterKey) -> MasterKeyring {
        MasterKeyring {
            keys: vec![(MasterKeyId::of(&current), current)],
        }
    }

    /// Adds a previous key (used only to unwrap). A key already in the ring is ignored.
    ///
    /// # Errors
    /// None.
    #[must_use]
    pub fn with_previous(mut self, previous: MasterKey) -> MasterKeyring {
        let id = MasterKeyId::of(&previous);
        if self.get(&id).is_none() {
            self.keys.push((id, previous));
        }
        self
    }

    /// The current key.
    ///
    /// # Errors
    /// None.
    #[must_use]
    pub fn current(&self) -> &MasterKey {
        &self.keys[0].1
    }

    /// The current key's id.
    ///
    /// # Errors
    /// None.
    #[must_use]
    pub fn current_id(&self) -> &MasterKeyId {
        &self.keys[0].0
    }

    /// The key with this id, if held.
    ///
    /// # Errors
    /// None.
    #[must_use]
    pub fn get(&self, id: &MasterKeyId) -> Option<&MasterKey> {
        self.keys.iter().find(|(i, _)| i == id).map(|(_, k)| k)
    }

    /// Every id held, current first.
    ///
    /// # Errors
    /// None.
    #[must_use]
    pub fn ids(&self) -> Vec<MasterKeyId> {
        self.keys.iter().map(|(i, _)| i.clone()).collect()
    }

    /// Every key held, current first.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &(MasterKeyId, MasterKey)> {
        self.keys.iter()
    }

    /// The key with this id, or [`Error::MissingMasterKey`] naming it (and the row's user).
    pub(crate) fn need(
        &self,
        id: &MasterKeyId,
        user_id: Option<&str>,
    ) -> Result<&MasterKey, Error> {
        self.get(id).ok_or_else(|| Error::MissingMasterKey {
            id: id.to_string(),
            user_id: user_id.map(str::to_owned),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_distinct_and_hex() {
        let a = MasterKey::from_bytes(&[7; 32]).unwrap();
        let b = MasterKey::from_bytes(&[8; 32]).unwrap();
        let id = MasterKeyId::of(&a);
        assert_eq!(
            id,
            MasterKeyId::of(&MasterKey::from_bytes(&[7; 32]).unwrap())
        );
        assert_ne!(id, MasterKeyId::of(&b));
        assert!(id
            .as_str()
            .bytes()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        // Pinned, so that an id written by one version is read by the next.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&[7; 32]).unwrap();
        mac.update(b"keyseal master key id");
        let tag = mac.finalize().into_bytes();
        let hex: String = tag[..8]
            .iter()
            .flat_map(|b| [b >> 4, b & 15])
            .map(|n| char::from(b"0123456789abcdef"[usize::from(n)]))
            .collect();
        assert_eq!(id.as_str(), hex);
    }

    #[test]
    fn ring_keeps_current_first_and_ignores_duplicates() {
        let ring = MasterKeyring::new(MasterKey::from_bytes(&[1; 32]).unwrap())
            .with_previous(MasterKey::from_bytes(&[2; 32]).unwrap())
            .with_previous(MasterKey::from_bytes(&[1; 32]).unwrap());
        assert_eq!(ring.ids().len(), 2);
        assert_eq!(ring.current().expose_secret(), &[1; 32]);
        let missing = MasterKeyId::of(&MasterKey::from_bytes(&[3; 32]).unwrap());
        let err = ring.need(&missing, Some("u")).unwrap_err();
        assert_eq!(err.code(), "missing_master_key");
        assert!(err.to_string().contains(missing.as_str()));
    }
}

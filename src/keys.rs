//! The two key types: [`DataKey`] (encrypts secrets) and [`MasterKey`] (wraps data keys).
//!
//! # Security
//! Both hold 32 bytes and the AES-256 key schedule expanded from them, so that encrypting and
//! decrypting never expand the key again. Both are zeroized when dropped (the bytes, the key
//! schedule and the GHASH key), print as `DataKey(..)` / `MasterKey(..)` in `Debug`, compare in
//! constant time, and have no `Clone`: a copy of a secret is made only on purpose, with
//! [`DataKey::from_bytes`] and [`DataKey::expose_secret`], whose name says what it does.
//!
//! # Errors
//! [`Error::BadKey`] for a slice that is not 32 bytes, or text that Python's `urlsafe_b64decode`
//! refuses or that does not decode to 32 bytes;
//! [`Error::Randomness`] when `generate` finds no randomness.
//!
//! # Example
//! ```
//! use keyseal::DataKey;
//! let key = DataKey::generate()?;
//! let text = key.to_base64();
//! let again = DataKey::from_base64(&text)?;
//! assert_eq!(key, again);
//! assert_eq!(format!("{key:?}"), "DataKey(..)");
//! # Ok::<(), keyseal::Error>(())
//! ```

use aes_gcm::{Aes256Gcm, KeyInit};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::encoding;
use crate::Error;

/// Length in bytes of every key keyseal uses (AES-256).
pub const KEY_LEN: usize = 32;

/// 32 key bytes plus their expanded cipher; shared by both public key types.
struct KeyMaterial {
    bytes: Zeroizing<[u8; KEY_LEN]>,
    // Zeroized on drop through the `zeroize` features of `aes` and `ghash`.
    cipher: Aes256Gcm,
}

impl KeyMaterial {
    fn from_array(bytes: Zeroizing<[u8; KEY_LEN]>) -> Self {
        let cipher = Aes256Gcm::new((&*bytes).into());
        KeyMaterial { bytes, cipher }
    }

    fn from_slice(bytes: &[u8]) -> Result<Self, Error> {
        let array: [u8; KEY_LEN] = bytes.try_into().map_err(|_| Error::BadKey {
            reason: "a key must be exactly 32 bytes",
        })?;
        Ok(Self::from_array(Zeroizing::new(array)))
    }

    fn generate() -> Result<Self, Error> {
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        getrandom::getrandom(&mut *bytes).map_err(|_| Error::Randomness)?;
        Ok(Self::from_array(bytes))
    }

    fn from_base64(text: &str) -> Result<Self, Error> {
        let bytes = Zeroizing::new(encoding::decode(text).ok_or(Error::BadKey {
            reason: "not base64 (as Python's urlsafe_b64decode reads it)",
        })?);
        if bytes.len() != KEY_LEN {
            return Err(Error::BadKey {
                reason: "base64 must decode to exactly 32 bytes",
            });
        }
        Self::from_slice(&bytes)
    }

    fn ct_eq(&self, other: &Self) -> bool {
        self.bytes.ct_eq(&*other.bytes).into()
    }
}

macro_rules! key_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        pub struct $name(KeyMaterial);

        impl $name {
            /// A new key from the operating system's randomness (`crypto.getRandomValues` in
            /// wasm).
            ///
            /// # Errors
            /// [`Error::Randomness`] when no randomness is available.
            pub fn generate() -> Result<Self, Error> {
                KeyMaterial::generate().map($name)
            }

            /// A key from exactly 32 bytes. The caller keeps (and should zeroize) its copy.
            ///
            /// # Errors
            /// [`Error::BadKey`] when `bytes` is not 32 bytes long.
            pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
                KeyMaterial::from_slice(bytes).map($name)
            }

            /// A key from base64, read exactly as the Python module's `urlsafe_b64decode`
            /// reads it: either alphabet, other ASCII characters skipped, anything after a
            /// complete padding ignored.
            ///
            /// # Errors
            /// [`Error::BadKey`] when Python would refuse the text (not ASCII, or the padding
            /// missing) or it does not decode to exactly 32 bytes.
            pub fn from_base64(text: &str) -> Result<Self, Error> {
                KeyMaterial::from_base64(text).map($name)
            }

            /// The key as url-safe, padded base64 (44 characters). The result is a secret:
            /// store it as one.
            #[must_use]
            pub fn to_base64(&self) -> String {
                encoding::encode(&*self.0.bytes)
            }

            /// A key that takes ownership of (already zeroizing) bytes, without a copy.
            #[allow(dead_code)] // Not every key type has a caller on every feature set.
            pub(crate) fn from_array(bytes: Zeroizing<[u8; KEY_LEN]>) -> Self {
                $name(KeyMaterial::from_array(bytes))
            }

            /// The raw key bytes. Named so that every use stands out in review: do not log,
            /// print or persist them unwrapped.
            #[must_use]
            pub fn expose_secret(&self) -> &[u8; KEY_LEN] {
                &self.0.bytes
            }

            // MasterKey's cipher is used only by the native key store.
            #[allow(dead_code)]
            pub(crate) fn cipher(&self) -> &Aes256Gcm {
                &self.0.cipher
            }
        }

        impl PartialEq for $name {
            /// Constant time in the key bytes.
            fn eq(&self, other: &Self) -> bool {
                self.0.ct_eq(&other.0)
            }
        }

        impl Eq for $name {}

        impl core::fmt::Debug for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str(concat!(stringify!($name), "(..)"))
            }
        }
    };
}

key_type!(
    /// A 32-byte AES-256 key that encrypts secrets into `v2:` tokens.
    ///
    /// One per user (from the key store) or the shared pool key ([`crate::derive_pool_key`]).
    /// Zeroized on drop; `Debug` shows `DataKey(..)`; `==` runs in constant time.
    DataKey
);

key_type!(
    /// A 32-byte key-encryption key: it wraps the per-user [`DataKey`]s in the key store and
    /// derives the pool key. Never encrypts secrets directly.
    ///
    /// Zeroized on drop; `Debug` shows `MasterKey(..)`; `==` runs in constant time.
    MasterKey
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrong_lengths_are_bad_key() {
        for len in [0, 1, 16, 31, 33, 64] {
            let err = DataKey::from_bytes(&vec![7u8; len]).unwrap_err();
            assert_eq!(err.code(), "bad_key", "length {len}");
        }
        assert_eq!(
            MasterKey::from_base64("0Ke_lvfG_9J1Mz8My3qwng==")
                .unwrap_err()
                .code(),
            "bad_key"
        );
        assert_eq!(
            MasterKey::from_base64("not base64!").unwrap_err().code(),
            "bad_key"
        );
    }

    #[test]
    fn equality_and_debug() {
        let a = DataKey::from_bytes(&[1u8; 32]).unwrap();
        let b = DataKey::from_bytes(&[1u8; 32]).unwrap();
        let c = DataKey::from_bytes(&[2u8; 32]).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(format!("{a:?}"), "DataKey(..)");
        assert!(!format!("{a:?}").contains("1, 1"));
    }

    #[test]
    fn generated_keys_differ_and_round_trip() {
        let a = MasterKey::generate().unwrap();
        let b = MasterKey::generate().unwrap();
        assert_ne!(a, b);
        let text = a.to_base64();
        assert_eq!(text.len(), 44);
        assert_eq!(MasterKey::from_base64(&text).unwrap(), a);
    }
}

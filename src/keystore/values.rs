//! Encrypting and decrypting values with the key store's versioned keys, with the signal for
//! lazy re-encryption.
//!
//! A value is written under the newest active version of its owner's key: as a `v2:` token
//! (which the Python module reads) while that is version 1 and no context is given, else as a
//! `v3:` token naming the version and bound to the context. Reading picks the version from the
//! token and says whether the value is stale: under an older version than the newest active
//! one, or a `v2:` token where a context (so `v3:`) is now asked for. An application that keeps
//! values outside SQL (say in Redis) re-encrypts a stale value when it reads it.

use zeroize::Zeroizing;

use super::versions::KeyOwner;
use super::KeyStore;
use crate::{decrypt, decrypt_v3, encrypt, encrypt_v3, token_format, Context, Error, TokenFormat};

/// A value decrypted by [`KeyStore::decrypt_value`].
///
/// # Errors
/// None.
///
/// # Security
/// The plaintext is zeroized on drop; `Debug` does not show it.
#[non_exhaustive]
pub struct Decrypted {
    /// The plaintext.
    pub plaintext: Zeroizing<String>,
    /// The key version it was encrypted under (1 for a `v2:` token).
    pub version: u32,
    /// Whether it should be re-encrypted ([`KeyStore::encrypt_value`]): its version is older
    /// than the newest active one, or it is a `v2:` token read with a context.
    pub stale: bool,
}

impl core::fmt::Debug for Decrypted {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Decrypted")
            .field("version", &self.version)
            .field("stale", &self.stale)
            .finish_non_exhaustive()
    }
}

impl KeyStore {
    /// Encrypts `plaintext` for `owner` under the newest active version of its key: a `v2:`
    /// token while that is version 1 and `ctx` is empty (the Python module reads it), else a
    /// `v3:` token naming the version, bound to `ctx`. A user without a key gets one.
    ///
    /// # Errors
    /// As [`KeyStore::newest_key`]; [`Error::InvalidArgument`] for a context too large;
    /// [`Error::Randomness`].
    ///
    /// # Security
    /// A fresh nonce per call. Bind values to where they live (table, row, column) with `ctx`,
    /// so that a token copied elsewhere fails to decrypt.
    ///
    /// # Example
    /// ```
    /// use keyseal::{Context, KeyOwner, KeyStore, MasterKey};
    /// # let dir = tempfile::tempdir().unwrap();
    /// let store = KeyStore::open(dir.path().join("keys.db"), MasterKey::generate()?)?;
    /// let alice = KeyOwner::User("alice");
    /// let row = Context::new().part("creds").part("7").part("api_key");
    /// let token = store.encrypt_value(alice, "sk-1", &row)?;
    /// assert!(token.starts_with("v3:"));
    /// let value = store.decrypt_value(alice, &token, &row)?;
    /// assert_eq!((value.plaintext.as_str(), value.version, value.stale), ("sk-1", 1, false));
    /// let elsewhere = Context::new().part("creds").part("8").part("api_key");
    /// assert!(store.decrypt_value(alice, &token, &elsewhere).is_err());
    /// # Ok::<(), keyseal::Error>(())
    /// ```
    pub fn encrypt_value(
        &self,
        owner: KeyOwner<'_>,
        plaintext: &str,
        ctx: &Context,
    ) -> Result<String, Error> {
        let (version, key) = self.newest_key(owner)?;
        if version == 1 && ctx.is_empty() {
            encrypt(plaintext, &key)
        } else {
            encrypt_v3(plaintext, &key, version, ctx)
        }
    }

    /// Decrypts a `v2:` or `v3:` token of `owner` with the key version the token names, and
    /// says whether it is stale (see [`Decrypted::stale`]). A `v2:` token carries no context:
    /// it is read whatever `ctx` is (and then reported stale when `ctx` is not empty).
    ///
    /// # Errors
    /// - [`Error::Malformed`]: neither `v2:` nor `v3:`, or damaged;
    /// - [`Error::Authentication`]: another owner's token, another context, altered;
    /// - [`Error::KeyVersionUnavailable`]: its version is disabled (counted in
    ///   [`KeyStore::refused_decrypts`]), destroyed or missing;
    /// - [`Error::NotUtf8`]; as [`KeyStore::key_version`] otherwise.
    ///
    /// # Security
    /// Never tries several keys: the token's version names the key.
    ///
    /// # Example
    /// See [`KeyStore::encrypt_value`].
    pub fn decrypt_value(
        &self,
        owner: KeyOwner<'_>,
        token: &str,
        ctx: &Context,
    ) -> Result<Decrypted, Error> {
        let format = match token_format(token) {
            Ok(format) => format,
            // A `v2:` body without its prefix, as older Python code wrote: `decrypt` reads it.
            Err(_) if !token.starts_with("v3:") => TokenFormat::V2,
            Err(e) => return Err(e),
        };
        let version = match format {
            TokenFormat::V3 { key_version } => key_version,
            _ => 1,
        };
        let key = self.key_version(owner, version)?;
        let plaintext = Zeroizing::new(match format {
            TokenFormat::V3 { .. } => decrypt_v3(token, &key, ctx)?,
            _ => decrypt(token, &key)?,
        });
        let newest = self.newest_key(owner)?.0;
        let stale = version < newest || (format == TokenFormat::V2 && !ctx.is_empty());
        Ok(Decrypted {
            plaintext,
            version,
            stale,
        })
    }
}

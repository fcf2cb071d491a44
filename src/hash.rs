//! Deterministic derivations: the lookup hash of an API key and the pool key.
//!
//! # Security
//! [`api_key_hash`] is a plain SHA-256, fit for looking up high-entropy API keys (as the
//! Python module does), not for storing passwords or low-entropy secrets: those need bcrypt
//! (see the `issuance` feature). [`derive_pool_key`] is PBKDF2 over the master key, which is
//! already 256 random bits, so its 100 000 iterations exist only for compatibility.
//!
//! # Example
//! ```
//! use keyseal::{api_key_hash, derive_pool_key, MasterKey};
//! assert_eq!(
//!     api_key_hash(""),
//!     "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
//! );
//! let master = MasterKey::from_bytes(&[1u8; 32])?;
//! let pool = derive_pool_key(&master);
//! assert_eq!(pool, derive_pool_key(&master));
//! # Ok::<(), keyseal::Error>(())
//! ```

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::encoding;
use crate::keys::KEY_LEN;
use crate::{DataKey, MasterKey};

/// PBKDF2 salt of the pool key, fixed by the Python module.
pub const POOL_KEY_SALT: &[u8] = b"stargazer:api_key_pool";
/// PBKDF2 iteration count of the pool key, fixed by the Python module.
pub const POOL_KEY_ITERATIONS: u32 = 100_000;

/// Lowercase hex SHA-256 of the UTF-8 bytes of `api_key`: the lookup hash of the Python
/// module's key pool. Accepts any string; never fails.
#[must_use]
pub fn api_key_hash(api_key: &str) -> String {
    encoding::hex_lower(&Sha256::digest(api_key.as_bytes()))
}

/// The shared pool key: PBKDF2-HMAC-SHA256(master key, `stargazer:api_key_pool`, 100 000
/// iterations, 32 bytes), byte for byte the Python module's `get_pool_key`. Never fails.
#[must_use]
pub fn derive_pool_key(master: &MasterKey) -> DataKey {
    let mut out = Zeroizing::new([0u8; KEY_LEN]);
    pbkdf2::pbkdf2_hmac::<Sha256>(
        master.expose_secret(),
        POOL_KEY_SALT,
        POOL_KEY_ITERATIONS,
        &mut *out,
    );
    DataKey::from_array(out)
}

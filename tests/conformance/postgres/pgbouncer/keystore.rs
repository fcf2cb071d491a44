//! The key store suite through PgBouncer.

use keyseal::{Error, KeyStore, KeyStoreOptions, MasterKeyring};

use crate::keystore::Harness;
use crate::postgres::PgDb;

pub struct ThroughPgBouncer(PgDb);

impl Harness for ThroughPgBouncer {
    fn available() -> bool {
        super::available()
    }

    fn fresh() -> Self {
        ThroughPgBouncer(super::fresh())
    }

    fn open_keyring(
        &self,
        ring: MasterKeyring,
        options: KeyStoreOptions,
    ) -> Result<KeyStore, Error> {
        KeyStore::open_keyring(&self.0.url, ring, options)
    }
}

crate::keystore_conformance!(ThroughPgBouncer);

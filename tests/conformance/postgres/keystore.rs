//! The PostgreSQL backend under the key store suite: a database of its own per test, used
//! through the app role.

use keyseal::{Error, KeyStore, KeyStoreOptions, MasterKeyring};

use super::PgDb;
use crate::keystore::Harness;

pub struct Postgres(PgDb);

impl Harness for Postgres {
    fn available() -> bool {
        super::available()
    }

    fn fresh() -> Self {
        Postgres(PgDb::new())
    }

    fn open_keyring(
        &self,
        ring: MasterKeyring,
        options: KeyStoreOptions,
    ) -> Result<KeyStore, Error> {
        KeyStore::open_keyring(&self.0.url, ring, options)
    }
}

crate::keystore_conformance!(Postgres);

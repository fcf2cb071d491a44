//! The `SQLite` backend under the key store suite: a fresh file in a temporary folder.

use keyseal::{Error, KeyStore, KeyStoreOptions, MasterKeyring};

use crate::common::temp_db::TempDb;
use crate::keystore::Harness;

pub struct Sqlite(TempDb);

impl Harness for Sqlite {
    fn fresh() -> Self {
        Sqlite(TempDb::new())
    }

    fn open_keyring(
        &self,
        ring: MasterKeyring,
        options: KeyStoreOptions,
    ) -> Result<KeyStore, Error> {
        KeyStore::open_keyring(self.0.path(), ring, options)
    }
}

crate::keystore_conformance!(Sqlite);

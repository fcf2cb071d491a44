//! The `SQLite` backend under the key store suite: a fresh file in a temporary folder.

use keyseal::{Error, KeyStore, KeyStoreOptions, MasterKey};

use crate::common::temp_db::TempDb;
use crate::keystore::Harness;

pub struct Sqlite(TempDb);

impl Harness for Sqlite {
    fn fresh() -> Self {
        Sqlite(TempDb::new())
    }

    fn open_with(&self, master: MasterKey, options: KeyStoreOptions) -> Result<KeyStore, Error> {
        KeyStore::open_with(self.0.path(), master, options)
    }
}

crate::keystore_conformance!(Sqlite);

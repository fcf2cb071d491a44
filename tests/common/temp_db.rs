//! One temporary database file per test, removed (with its folder and `-wal`/`-shm`) on drop.

use std::path::{Path, PathBuf};

/// A path to a database file that does not exist yet, in a fresh temporary folder.
pub struct TempDb {
    // Dropped last: removes the folder and everything SQLite put in it.
    dir: tempfile::TempDir,
    path: PathBuf,
}

impl TempDb {
    /// A fresh folder holding (not yet) `keys.db`.
    pub fn new() -> TempDb {
        TempDb::named("keys.db")
    }

    /// A fresh folder holding (not yet) a database file called `name`.
    pub fn named(name: &str) -> TempDb {
        let dir = tempfile::tempdir().expect("temporary folder");
        let path = dir.path().join(name);
        TempDb { dir, path }
    }

    /// A fresh folder inside `parent` holding (not yet) a database file called `name`: for
    /// benchmarks that must measure a given disk rather than the system's temporary folder.
    pub fn named_in(parent: &Path, name: &str) -> TempDb {
        let dir = tempfile::tempdir_in(parent).expect("temporary folder");
        let path = dir.path().join(name);
        TempDb { dir, path }
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The folder holding it.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Default for TempDb {
    fn default() -> Self {
        TempDb::new()
    }
}

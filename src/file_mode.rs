//! Database files hold wrapped data keys, API key hashes and user ids: they are created
//! readable and writable by their owner only (mode 0600), whatever the process umask.
//!
//! SQLite creates a missing database with mode 0644 (less the umask), and gives its `-wal`,
//! `-shm` and `-journal` files the mode of the database file. So [`prepare_private_db`]
//! creates the file empty with mode 0600 before SQLite opens it (an empty file is an empty
//! database), and SQLite's side files then follow at 0600. An existing file is left as it is,
//! with a warning when others can read it.
//!
//! # Errors
//! [`prepare_private_db`] returns [`Error::Storage`] when the file cannot be created.

use std::path::Path;

use crate::db_path;
use crate::Error;
#[cfg(unix)]
use crate::StorageKind;

/// Creates the database file of `path` with mode 0600 when it does not exist yet, or warns
/// (through `tracing`, naming the file and its mode, never its content) when an existing one,
/// or its `-wal` or `-shm`, is readable or writable by group or others. Temporary databases
/// (`:memory:` and the like) are left alone. The file's folder must exist.
///
/// # Errors
/// [`Error::Storage`] when the file cannot be created (other than because it already exists).
pub(crate) fn prepare_private_db(path: &Path) -> Result<(), Error> {
    let Some(file) = db_path::file_of(path) else {
        return Ok(());
    };
    create_private(&file)?;
    for side in ["", "-wal", "-shm"] {
        let mut name = file.clone().into_os_string();
        name.push(side);
        warn_if_shared(Path::new(&name));
    }
    Ok(())
}

#[cfg(unix)]
fn create_private(file: &Path) -> Result<(), Error> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true).mode(0o600);
    match options.open(file) {
        // The umask can only remove bits from 0600; set it again in case it is unusual.
        Ok(created) => created
            .set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(|e| {
                Error::storage_caused_by(
                    StorageKind::Unavailable,
                    format!("cannot restrict {} to mode 0600: {e}", file.display()),
                    e,
                )
            }),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(Error::storage_caused_by(
            StorageKind::Unavailable,
            format!("cannot create {}: {e}", file.display()),
            e,
        )),
    }
}

#[cfg(not(unix))]
fn create_private(_file: &Path) -> Result<(), Error> {
    // No Unix modes here: the folder's access rules apply.
    Ok(())
}

#[cfg(unix)]
fn warn_if_shared(file: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(file) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(
                "{} has mode {mode:04o}: other users can read the wrapped keys, hashes and user \
                 ids it holds; restrict it with `chmod 600`",
                file.display()
            );
        }
    }
}

#[cfg(not(unix))]
fn warn_if_shared(_file: &Path) {}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn creates_0600_and_leaves_existing_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.db");
        prepare_private_db(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::write(&path, b"kept").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        prepare_private_db(&path).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"kept");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o644, "an existing file is only warned about");
        prepare_private_db(Path::new(":memory:")).unwrap();
        // A path that is not UTF-8 is still a file to create privately.
        let odd = dir.path().join(std::ffi::OsStr::from_bytes(b"k\xff.db"));
        prepare_private_db(&odd).unwrap();
        assert_eq!(
            std::fs::metadata(&odd).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(prepare_private_db(&dir.path().join("no/such/folder/k.db")).is_err());
    }
}

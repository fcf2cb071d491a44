//! Opening `ApiKeys` on a file it refuses leaves the file untouched: same bytes, no `-wal` or
//! `-shm` created (it used to switch the file to WAL before looking at it).
#![cfg(all(feature = "issuance", not(target_arch = "wasm32")))]
#![allow(missing_docs)]

use std::path::Path;

use keyseal::ApiKeys;

fn assert_refused_untouched(path: &Path) {
    let before = std::fs::read(path).unwrap();
    let err = ApiKeys::open(path).expect_err("the file is refused");
    assert_eq!(err.code(), "storage");
    assert_eq!(std::fs::read(path).unwrap(), before, "the file was changed");
    for suffix in ["-wal", "-shm", "-journal"] {
        let mut side = path.as_os_str().to_owned();
        side.push(suffix);
        assert!(!Path::new(&side).exists(), "{suffix} was created");
    }
}

#[test]
fn refused_open_of_a_file_that_is_not_sqlite_leaves_it_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.db");
    std::fs::write(
        &path,
        b"not a database, just some text that must stay as it is\n".repeat(64),
    )
    .unwrap();
    assert_refused_untouched(&path);
}

#[test]
fn refused_open_of_a_database_with_a_foreign_api_keys_table_leaves_it_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.db");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        // An unrelated table of the same name: `lookup` exists, `user_id` does not, so part of
        // the schema would apply before the rest is refused.
        conn.execute_batch(
            "CREATE TABLE api_keys (lookup TEXT, owner TEXT, seq INTEGER);
             INSERT INTO api_keys VALUES ('a', 'b', 1);",
        )
        .unwrap();
    }
    assert_refused_untouched(&path);
}

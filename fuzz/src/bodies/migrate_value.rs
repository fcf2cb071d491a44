//! `migrate_value`: the migrate path over arbitrary column values of every SQLite type.
//!
//! Each input is a small table (id, owner, secret), owners and secrets of any SQLite type
//! (NULL, integer, real, text, blob, and text holding bytes that are not UTF-8), written to a
//! real SQLite file, then `migrate_column` (per-user keys or the pool key, any batch size,
//! maybe a dry run) and `verify_column` run over it. Checked, row by row, against the
//! module's documented rules: NULLs and `v2:` text are skipped and untouched; other text with
//! a usable owner (text or integer, 1 to 1024 bytes, no NUL) becomes a token that decrypts to
//! it with the owner's key; everything else is counted as failed and left as it was; a dry
//! run changes nothing; the counts add up; never a panic.

use std::sync::{Mutex, OnceLock};

use arbitrary::{Arbitrary, Unstructured};
use keyseal::migrate::{migrate_column, verify_column, KeySource, MigrateOptions};
use keyseal::{decrypt, DataKey, KeyStore, MasterKey, MAX_USER_ID_LEN};
use rusqlite::types::Value;
use rusqlite::Connection;

use super::util::{stopping_at_known, Scratch};

/// A value as stored in a column.
#[derive(Debug, Arbitrary, Clone)]
pub enum SqlValue {
    /// NULL.
    Null,
    /// INTEGER.
    Integer(i64),
    /// REAL.
    Real(f64),
    /// TEXT (valid UTF-8).
    Text(String),
    /// TEXT that looks like a token.
    Token(String),
    /// BLOB.
    Blob(Vec<u8>),
    /// TEXT holding arbitrary bytes (`CAST(blob AS TEXT)`): not always UTF-8.
    RawText(Vec<u8>),
}

/// One fuzz input.
#[derive(Debug, Arbitrary)]
pub struct Input {
    rows: Vec<(SqlValue, SqlValue)>,
    pool: bool,
    dry_run: bool,
    batch: u8,
    /// Declared types: none (values kept as given) or TEXT affinity.
    text_affinity: bool,
}

struct Fixture {
    _dir: Scratch,
    store: KeyStore,
    db: std::path::PathBuf,
    conn: Connection,
}

fn fixture() -> &'static Mutex<Fixture> {
    static F: OnceLock<Mutex<Fixture>> = OnceLock::new();
    F.get_or_init(|| {
        let dir = Scratch::new("migrate");
        let master = MasterKey::from_bytes(&[7u8; 32]).expect("key");
        let store = KeyStore::open(dir.0.join("keys.db"), master).expect("key store");
        let db = dir.0.join("app.db");
        let conn = Connection::open(&db).expect("app db");
        conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF;")
            .expect("pragmas");
        Mutex::new(Fixture {
            _dir: dir,
            store,
            db,
            conn,
        })
    })
}

fn insert(conn: &Connection, id: i64, owner: &SqlValue, secret: &SqlValue) {
    fn bind(v: &SqlValue) -> (Value, bool) {
        match v {
            SqlValue::Null => (Value::Null, false),
            SqlValue::Integer(n) => (Value::Integer(*n), false),
            SqlValue::Real(r) => (Value::Real(*r), false),
            SqlValue::Text(s) => (Value::Text(s.clone()), false),
            SqlValue::Token(s) => (Value::Text(format!("v2:{s}")), false),
            SqlValue::Blob(b) => (Value::Blob(b.clone()), false),
            SqlValue::RawText(b) => (Value::Blob(b.clone()), true),
        }
    }
    let (o, o_cast) = bind(owner);
    let (s, s_cast) = bind(secret);
    let sql = format!(
        "INSERT INTO t(id, owner, secret) VALUES (?1, {}, {})",
        if o_cast { "CAST(?2 AS TEXT)" } else { "?2" },
        if s_cast { "CAST(?3 AS TEXT)" } else { "?3" },
    );
    conn.execute(&sql, rusqlite::params![id, o, s])
        .expect("insert");
}

/// A stored value read without assuming UTF-8: (type, bytes or number).
#[derive(Debug, Clone, PartialEq)]
enum Stored {
    Null,
    Integer(i64),
    Real(u64),
    Text(Vec<u8>),
    Blob(Vec<u8>),
}

fn read_all(conn: &Connection) -> Vec<(Stored, Stored)> {
    let mut stmt = conn
        .prepare("SELECT owner, secret FROM t ORDER BY id")
        .expect("select");
    let rows = stmt
        .query_map([], |r| Ok((stored(r.get_ref(0)?), stored(r.get_ref(1)?))))
        .expect("query");
    rows.collect::<Result<_, _>>().expect("rows")
}

fn stored(v: rusqlite::types::ValueRef<'_>) -> Stored {
    use rusqlite::types::ValueRef;
    match v {
        ValueRef::Null => Stored::Null,
        ValueRef::Integer(n) => Stored::Integer(n),
        ValueRef::Real(r) => Stored::Real(r.to_bits()),
        ValueRef::Text(t) => Stored::Text(t.to_vec()),
        ValueRef::Blob(b) => Stored::Blob(b.to_vec()),
    }
}

/// The owner's user id under the documented rule, or `None`.
fn owner_id(owner: &Stored) -> Option<String> {
    let text = match owner {
        Stored::Text(t) => String::from_utf8(t.clone()).ok()?,
        Stored::Integer(n) => n.to_string(),
        _ => return None,
    };
    (!text.is_empty() && text.len() <= MAX_USER_ID_LEN && !text.contains('\0')).then_some(text)
}

/// Input: an [`Input`] through `arbitrary`.
pub fn run(data: &[u8]) {
    // The pool key costs 100 000 PBKDF2 iterations: derive it once per process.
    static POOL: OnceLock<[u8; 32]> = OnceLock::new();
    let Ok(input) = Input::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    let fixture = fixture()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let Fixture {
        store, db, conn, ..
    } = &*fixture;
    let ty = if input.text_affinity { " TEXT" } else { "" };
    conn.execute_batch(&format!(
        "DROP TABLE IF EXISTS t; CREATE TABLE t(id INTEGER PRIMARY KEY, owner{ty}, secret{ty});"
    ))
    .expect("table");
    for (i, (owner, secret)) in input.rows.iter().take(12).enumerate() {
        insert(conn, i64::try_from(i).expect("small"), owner, secret);
    }
    let before = read_all(conn);

    let keys = if input.pool {
        KeySource::Pool
    } else {
        KeySource::UserColumn("owner".into())
    };
    let options = MigrateOptions::new("t", "secret", "id", keys.clone())
        .batch(usize::from(input.batch % 5) + 1)
        .dry_run(input.dry_run);
    // Text that is not UTF-8 cannot be a plaintext: a typed error is an acceptable answer.
    let not_utf8 = before.iter().any(|(o, v)| {
        [o, v]
            .iter()
            .any(|x| matches!(x, Stored::Text(t) if std::str::from_utf8(t).is_err()))
    });
    if not_utf8 && stopping_at_known() {
        // Found by this target: migrate_column and verify_column panic (inside rusqlite's
        // `Value` conversion) on TEXT that is not UTF-8. Reported; skipped while exploring.
        return;
    }
    let report = match migrate_column(db, store, &options, |_| {}) {
        Ok(r) => r,
        Err(_) if not_utf8 => return,
        Err(e) => panic!("migrate failed on a valid table: {e}"),
    };
    let after = read_all(conn);
    assert_eq!(before.len(), after.len());
    let pool: Option<DataKey> = input.pool.then(|| {
        let bytes = POOL.get_or_init(|| *store.pool_key().expect("pool key").expose_secret());
        DataKey::from_bytes(bytes).expect("key")
    });
    let (mut migrated, mut skipped, mut failed) = (0u64, 0u64, 0u64);
    for ((owner, old), (owner_after, new)) in before.iter().zip(&after) {
        assert_eq!(owner, owner_after, "migrate changed the owner column");
        match old {
            Stored::Null => {
                skipped += 1;
                assert_eq!(old, new);
            }
            Stored::Text(t) if t.starts_with(b"v2:") => {
                skipped += 1;
                assert_eq!(old, new, "an encrypted value was touched");
            }
            Stored::Text(t) if std::str::from_utf8(t).is_ok() => {
                let user = owner_id(owner);
                if !input.pool && user.is_none() {
                    failed += 1;
                    assert_eq!(old, new, "a row without a usable owner was changed");
                } else if input.dry_run {
                    migrated += 1;
                    assert_eq!(old, new, "a dry run changed a value");
                } else {
                    migrated += 1;
                    let Stored::Text(token) = new else {
                        panic!("migrated value is not text: {new:?}")
                    };
                    let token = std::str::from_utf8(token).expect("tokens are ASCII");
                    let key = match &pool {
                        Some(k) => DataKey::from_bytes(k.expose_secret()).expect("key"),
                        None => store
                            .get_user_key(user.as_deref().expect("checked"))
                            .expect("key store")
                            .expect("the owner got a key"),
                    };
                    let plain = decrypt(token, &key).expect("migrated token decrypts");
                    assert_eq!(plain.as_bytes(), t.as_slice(), "migrated to other text");
                }
            }
            _ => {
                failed += 1;
                assert_eq!(old, new, "a non-text value was changed");
            }
        }
    }
    assert_eq!(
        (report.migrated, report.skipped, report.failed),
        (migrated, skipped, failed),
        "counts"
    );

    if input.pool {
        // verify_column would derive the pool key again; the rows were decrypted above.
        return;
    }
    let check = match verify_column(
        db,
        store,
        MigrateOptions::new("t", "secret", "id", keys),
        |_| {},
    ) {
        Ok(c) => c,
        Err(_) if not_utf8 => return,
        Err(e) => panic!("verify_column failed on a valid table: {e}"),
    };
    let nulls = after.iter().filter(|(_, v)| *v == Stored::Null).count() as u64;
    assert_eq!(check.null, nulls);
    assert_eq!(
        check.ok + check.plaintext + check.null + check.failed,
        after.len() as u64
    );
    if !input.dry_run {
        assert!(check.ok >= migrated, "a migrated value does not verify");
    }
}

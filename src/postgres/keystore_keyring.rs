//! The master keys, key versions, rewraps and retirement of the PostgreSQL key store backend.
//!
//! Every write guarded by a master key reads the legacy check value `FOR SHARE` (so a
//! rotation, which locks it `FOR UPDATE`, excludes it) and then that key's row `FOR SHARE`
//! (so a retirement, which updates the row, waits for it or is seen by it).

use super::errors::TxError;
use super::keystore::{read_check, stored_row, PgKeyStore, ROTATION_BATCH};
use super::pool::{write_tx, Conn};
use super::query::p;
use super::runtime::block;
use crate::keystore::backend::{
    Guard, KeyState, Keyring, MasterKeyRow, Retired, Rewrapped, Slot, StateChange, StoredRow,
    VersionRow, Written,
};
use crate::keystore::now_iso8601;
use crate::Error;

const LEGACY_NAME: &str = "legacy_master_id";
const SHARED_NAME: &str = "shared_with_python";
const VERSION_COLUMNS: &str = "owner, version, wrapped, master_key_id, state";

fn master_key_row(r: &tokio_postgres::Row) -> MasterKeyRow {
    MasterKeyRow {
        id: r.get(0),
        check: r.get(1),
        retired: r.get(2),
    }
}

fn version_row(r: &tokio_postgres::Row) -> VersionRow {
    VersionRow {
        owner: r.get(0),
        version: u32::try_from(r.get::<_, i32>(1)).unwrap_or(0),
        wrapped: r.get(2),
        master_id: r.get(3),
        state: KeyState::parse(r.get(4)),
    }
}

fn version_i32(version: u32) -> i32 {
    i32::try_from(version).unwrap_or(i32::MAX)
}

/// `Ok(())` when `guard` holds; else `Err` with its key's row, if any.
pub(super) async fn check_guard(
    conn: &Conn,
    guard: Guard<'_>,
) -> Result<Result<(), Option<MasterKeyRow>>, TxError> {
    read_check(conn, " FOR SHARE").await?;
    let row = conn
        .query_opt(
            "SELECT id, check_value, retired FROM keyseal_master_keys WHERE id = $1 FOR SHARE",
            &[p(&guard.master_id)],
        )
        .await?
        .as_ref()
        .map(master_key_row);
    Ok(match row {
        Some(row) if !row.retired && row.check == guard.check => Ok(()),
        other => Err(other),
    })
}

pub(super) async fn read_keyring(conn: &Conn) -> Result<Keyring, TxError> {
    let keys = conn
        .query(
            "SELECT id, check_value, retired FROM keyseal_master_keys ORDER BY id",
            &[],
        )
        .await?
        .iter()
        .map(master_key_row)
        .collect();
    let legacy_id = conn
        .query_opt(
            "SELECT value FROM keyseal_keystore_meta WHERE name = $1",
            &[p(&LEGACY_NAME)],
        )
        .await?
        .map(|r| String::from_utf8_lossy(&r.get::<_, Vec<u8>>(0)).into_owned());
    Ok(Keyring { keys, legacy_id })
}

pub(super) async fn read_versions(
    conn: &Conn,
    owner: Option<&str>,
) -> Result<Vec<VersionRow>, TxError> {
    Ok(conn
        .query(
            &format!(
                "SELECT {VERSION_COLUMNS} FROM keyseal_key_versions \
                 WHERE $1::text IS NULL OR owner = $1 ORDER BY owner, version"
            ),
            &[p(&owner)],
        )
        .await?
        .iter()
        .map(version_row)
        .collect())
}

/// Stores each rewrapped key (where it still holds `previous`, when `compare`); how many.
pub(super) async fn update_slots(
    conn: &Conn,
    rows: &[Rewrapped],
    compare: bool,
) -> Result<u64, TxError> {
    let (mut ids, mut blobs, mut masters, mut previous) = (vec![], vec![], vec![], vec![]);
    let (mut owners, mut versions, mut vblobs, mut vmasters, mut vprevious) =
        (vec![], vec![], vec![], vec![], vec![]);
    for row in rows {
        match &row.slot {
            Slot::User(user) => {
                ids.push(user.as_str());
                blobs.push(row.wrapped.as_slice());
                masters.push(row.master_id.as_str());
                previous.push(row.previous.as_slice());
            }
            Slot::Version { owner, version } => {
                owners.push(owner.as_str());
                versions.push(version_i32(*version));
                vblobs.push(row.wrapped.as_slice());
                vmasters.push(row.master_id.as_str());
                vprevious.push(row.previous.as_slice());
            }
        }
    }
    let users = conn
        .execute(
            "UPDATE encryption_keys AS k SET encrypted_key = v.blob, master_key_id = v.master \
             FROM unnest($1::text[], $2::bytea[], $3::text[], $4::bytea[]) \
             AS v(user_id, blob, master, previous) \
             WHERE k.user_id = v.user_id AND (NOT $5 OR k.encrypted_key = v.previous)",
            &[p(&ids), p(&blobs), p(&masters), p(&previous), p(&compare)],
        )
        .await?;
    let versions = conn
        .execute(
            "UPDATE keyseal_key_versions AS k SET wrapped = v.blob, master_key_id = v.master \
             FROM unnest($1::text[], $2::int4[], $3::bytea[], $4::text[], $5::bytea[]) \
             AS v(owner, version, blob, master, previous) \
             WHERE k.owner = v.owner AND k.version = v.version AND k.wrapped IS NOT NULL \
             AND (NOT $6 OR k.wrapped = v.previous)",
            &[
                p(&owners),
                p(&versions),
                p(&vblobs),
                p(&vmasters),
                p(&vprevious),
                p(&compare),
            ],
        )
        .await?;
    Ok(users + versions)
}

/// Makes `new` the only active master key and the legacy one (inside a rotation).
pub(super) async fn make_sole_key(conn: &Conn, new: &MasterKeyRow) -> Result<(), TxError> {
    conn.execute(
        "UPDATE keyseal_master_keys SET retired = TRUE WHERE id <> $1",
        &[p(&new.id)],
    )
    .await?;
    conn.execute(
        "INSERT INTO keyseal_master_keys (id, check_value, retired, added_at) \
             VALUES ($1, $2, FALSE, $3) ON CONFLICT (id) DO UPDATE \
             SET check_value = EXCLUDED.check_value, retired = FALSE",
        &[p(&new.id), p(&new.check), p(&now_iso8601())],
    )
    .await?;
    set_legacy(conn, new).await
}

async fn set_legacy(conn: &Conn, key: &MasterKeyRow) -> Result<(), TxError> {
    let set = "INSERT INTO keyseal_keystore_meta (name, value) VALUES ($1, $2) \
               ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value";
    conn.execute(set, &[p(&LEGACY_NAME), p(&key.id.as_bytes())])
        .await?;
    conn.execute(set, &[p(&"master_check"), p(&key.check)])
        .await?;
    Ok(())
}

/// Runs `$body` (an async block's body: `?` on driver errors, ending in `Ok(value)`) with
/// `$conn` a pooled connection outside any transaction.
macro_rules! read {
    ($store:expr, |$conn:ident| $body:expr) => {{
        let store: &PgKeyStore = $store;
        let db = store.db();
        block(async {
            let owned = store.shared().conn(store.busy_timeout()).await?;
            let $conn = &owned;
            let value: Result<_, TxError> = async { $body }.await;
            value.map_err(&db)
        })?
    }};
}

pub(super) fn keyring(store: &PgKeyStore) -> Result<Keyring, Error> {
    read!(store, |conn| read_keyring(conn).await)
}

pub(super) fn versions(store: &PgKeyStore, owner: &str) -> Result<Vec<VersionRow>, Error> {
    read!(store, |conn| read_versions(conn, Some(owner)).await)
}

pub(super) fn add_master_key(
    store: &PgKeyStore,
    key: &MasterKeyRow,
    legacy: bool,
) -> Result<MasterKeyRow, Error> {
    block(async {
        write_tx!(store.shared(), store.busy_timeout(), |conn| {
            conn.execute(
                "INSERT INTO keyseal_master_keys (id, check_value, retired, added_at) \
                     VALUES ($1, $2, FALSE, $3) ON CONFLICT (id) DO NOTHING",
                &[p(&key.id), p(&key.check), p(&now_iso8601())],
            )
            .await?;
            if legacy {
                conn.execute(
                    "INSERT INTO keyseal_keystore_meta (name, value) VALUES ($1, $2) \
                         ON CONFLICT (name) DO NOTHING",
                    &[p(&LEGACY_NAME), p(&key.id.as_bytes())],
                )
                .await?;
            }
            let row = conn
                .query_one(
                    "SELECT id, check_value, retired FROM keyseal_master_keys WHERE id = $1",
                    &[p(&key.id)],
                )
                .await?;
            master_key_row(&row)
        })
    })?
}

async fn select_version(
    conn: &Conn,
    owner: &str,
    version: u32,
) -> Result<Option<VersionRow>, TxError> {
    Ok(conn
        .query_opt(
            &format!(
                "SELECT {VERSION_COLUMNS} FROM keyseal_key_versions \
                 WHERE owner = $1 AND version = $2"
            ),
            &[p(&owner), p(&version_i32(version))],
        )
        .await?
        .as_ref()
        .map(version_row))
}

async fn insert_version_in(
    conn: &Conn,
    guard: Guard<'_>,
    row: &VersionRow,
) -> Result<Written<VersionRow>, TxError> {
    if let Err(stored) = check_guard(conn, guard).await? {
        return Ok(Written::CheckChanged(stored));
    }
    let master = row.wrapped.as_ref().map(|_| guard.master_id);
    conn.execute(
        "INSERT INTO keyseal_key_versions \
             (owner, version, wrapped, master_key_id, state, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (owner, version) DO NOTHING",
        &[
            p(&row.owner),
            p(&version_i32(row.version)),
            p(&row.wrapped),
            p(&master),
            p(&row.state.as_str()),
            p(&now_iso8601()),
        ],
    )
    .await?;
    let stored = select_version(conn, &row.owner, row.version).await?;
    stored.map(Written::Done).ok_or_else(|| {
        TxError::App(Error::storage(
            crate::StorageKind::Other,
            "a key version inserted in this transaction could not be read back",
        ))
    })
}

pub(super) fn insert_version(
    store: &PgKeyStore,
    guard: Guard<'_>,
    row: &VersionRow,
) -> Result<Written<VersionRow>, Error> {
    block(async {
        write_tx!(store.shared(), store.busy_timeout(), |conn| {
            insert_version_in(conn, guard, row).await?
        })
    })?
}

pub(super) fn add_version(
    store: &PgKeyStore,
    guard: Guard<'_>,
    owner: &str,
    first: u32,
    wrapped: &[u8],
) -> Result<Written<VersionRow>, Error> {
    block(async {
        write_tx!(store.shared(), store.busy_timeout(), |conn| {
            // Serialises version numbers per owner among concurrent rotations.
            conn.execute(
                "SELECT pg_advisory_xact_lock(hashtext('keyseal key versions ' || $1))",
                &[p(&owner)],
            )
            .await?;
            let highest: Option<i32> = conn
                .query_one(
                    "SELECT MAX(version) FROM keyseal_key_versions WHERE owner = $1",
                    &[p(&owner)],
                )
                .await?
                .get(0);
            let version = highest.map_or(first, |h| {
                u32::try_from(h).unwrap_or(0).saturating_add(1).max(first)
            });
            let row = VersionRow::new(owner, version, Some(wrapped.to_vec()), None);
            insert_version_in(conn, guard, &row).await?
        })
    })?
}

pub(super) fn change_state(
    store: &PgKeyStore,
    owner: &str,
    version: u32,
    from: KeyState,
    to: KeyState,
) -> Result<StateChange, Error> {
    block(async {
        write_tx!(store.shared(), store.busy_timeout(), |conn| {
            let row = conn
                .query_opt(
                    &format!(
                        "SELECT {VERSION_COLUMNS} FROM keyseal_key_versions \
                         WHERE owner = $1 AND version = $2 FOR UPDATE"
                    ),
                    &[p(&owner), p(&version_i32(version))],
                )
                .await?
                .as_ref()
                .map(version_row);
            match row {
                None => StateChange::Missing,
                Some(row) if row.state != from => StateChange::Was(row.state),
                Some(_) => {
                    let sql = if to == KeyState::Destroyed {
                        "UPDATE keyseal_key_versions SET state = $3, wrapped = NULL, \
                         master_key_id = NULL WHERE owner = $1 AND version = $2"
                    } else {
                        "UPDATE keyseal_key_versions SET state = $3 \
                         WHERE owner = $1 AND version = $2"
                    };
                    conn.execute(sql, &[p(&owner), p(&version_i32(version)), p(&to.as_str())])
                        .await?;
                    StateChange::Done
                }
            }
        })
    })?
}

pub(super) fn stale_rows(
    store: &PgKeyStore,
    master_id: &str,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<StoredRow>, Error> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    read!(store, |conn| {
        Ok(conn
            .query(
                "SELECT user_id, encrypted_key, master_key_id FROM encryption_keys \
                     WHERE (master_key_id IS NULL OR master_key_id <> $1) \
                     AND ($2::text IS NULL OR user_id > $2) ORDER BY user_id LIMIT $3",
                &[p(&master_id), p(&after), p(&limit)],
            )
            .await?
            .iter()
            .map(stored_row)
            .collect())
    })
}

pub(super) fn stale_versions(
    store: &PgKeyStore,
    master_id: &str,
    after: Option<(&str, u32)>,
    limit: usize,
) -> Result<Vec<VersionRow>, Error> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let (after_owner, after_version) = after.map_or((None, 0), |(o, v)| (Some(o), version_i32(v)));
    read!(store, |conn| {
        Ok(conn
            .query(
                &format!(
                    "SELECT {VERSION_COLUMNS} FROM keyseal_key_versions \
                         WHERE wrapped IS NOT NULL \
                         AND (master_key_id IS NULL OR master_key_id <> $1) \
                         AND ($2::text IS NULL OR (owner, version) > ($2, $3)) \
                         ORDER BY owner, version LIMIT $4"
                ),
                &[p(&master_id), p(&after_owner), p(&after_version), p(&limit)],
            )
            .await?
            .iter()
            .map(version_row)
            .collect())
    })
}

pub(super) fn store_rewrapped(
    store: &PgKeyStore,
    guard: Guard<'_>,
    rows: &[Rewrapped],
) -> Result<Written<u64>, Error> {
    block(async {
        write_tx!(store.shared(), store.busy_timeout(), |conn| {
            if let Err(stored) = check_guard(conn, guard).await? {
                Written::CheckChanged(stored)
            } else {
                let mut n = 0;
                for chunk in rows.chunks(ROTATION_BATCH) {
                    n += update_slots(conn, chunk, true).await?;
                }
                Written::Done(n)
            }
        })
    })?
}

pub(super) fn usage(store: &PgKeyStore) -> Result<Vec<(Option<String>, u64)>, Error> {
    read!(store, |conn| {
        let rows = conn
            .query(
                "SELECT id, SUM(n)::int8 FROM ( \
                     SELECT master_key_id AS id, COUNT(*) AS n FROM encryption_keys \
                     GROUP BY master_key_id \
                     UNION ALL SELECT master_key_id, COUNT(*) FROM keyseal_key_versions \
                     WHERE wrapped IS NOT NULL GROUP BY master_key_id) AS c \
                     GROUP BY id ORDER BY id NULLS FIRST",
                &[],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| {
                let n: i64 = r.get(1);
                (r.get(0), u64::try_from(n).unwrap_or(0))
            })
            .collect())
    })
}

pub(super) fn retire(
    store: &PgKeyStore,
    id: &str,
    untagged_rows_need_it: bool,
    new_legacy: Option<&MasterKeyRow>,
) -> Result<Retired, Error> {
    block(async {
        write_tx!(store.shared(), store.busy_timeout(), |conn| {
            // Excludes writes guarded by this key (they read the check value, then its row,
            // FOR SHARE: locked here in the same order, so never a deadlock).
            read_check(conn, " FOR UPDATE").await?;
            let known = conn
                .query_opt(
                    "SELECT id FROM keyseal_master_keys WHERE id = $1 FOR UPDATE",
                    &[p(&id)],
                )
                .await?;
            if known.is_none() {
                Retired::Unknown
            } else {
                let in_use: i64 = conn
                    .query_one(
                        "SELECT (SELECT COUNT(*) FROM encryption_keys WHERE master_key_id = $1 \
                         OR ($2 AND master_key_id IS NULL)) + (SELECT COUNT(*) FROM \
                         keyseal_key_versions WHERE master_key_id = $1 AND wrapped IS NOT NULL)",
                        &[p(&id), p(&untagged_rows_need_it)],
                    )
                    .await?
                    .get(0);
                if in_use > 0 {
                    Retired::InUse(u64::try_from(in_use).unwrap_or(0))
                } else {
                    conn.execute(
                        "UPDATE keyseal_master_keys SET retired = TRUE WHERE id = $1",
                        &[p(&id)],
                    )
                    .await?;
                    if let Some(legacy) = new_legacy {
                        set_legacy(conn, legacy).await?;
                    }
                    Retired::Done
                }
            }
        })
    })?
}

pub(super) fn shared_with_python(store: &PgKeyStore) -> Result<Option<bool>, Error> {
    read!(store, |conn| {
        Ok(conn
            .query_opt(
                "SELECT value FROM keyseal_keystore_meta WHERE name = $1",
                &[p(&SHARED_NAME)],
            )
            .await?
            .map(|r| r.get::<_, Vec<u8>>(0) != b"no"))
    })
}

pub(super) fn set_shared_with_python(store: &PgKeyStore, shared: bool) -> Result<(), Error> {
    let value: &[u8] = if shared { b"yes" } else { b"no" };
    block(async {
        write_tx!(store.shared(), store.busy_timeout(), |conn| {
            conn.execute(
                "INSERT INTO keyseal_keystore_meta (name, value) VALUES ($1, $2) \
                     ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value",
                &[p(&SHARED_NAME), p(&value)],
            )
            .await?;
        })
    })?
}

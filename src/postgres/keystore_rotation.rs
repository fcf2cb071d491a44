//! A rotation's transaction on the PostgreSQL key store backend: every row and key version
//! rewritten, the new master key made the only active one, then one commit.

use super::errors::TxError;
use super::keystore::{read_check, stored_row, PgKeyStore, ROTATION_BATCH};
use super::keystore_keyring as keyring;
use super::pool::Conn;
use super::runtime::block;
use crate::keystore::backend::{MasterKeyRow, Rewrapped, Rotation, RotationState};
use crate::{Error, StorageKind};

/// An open rotation transaction on its own connection.
pub(super) struct PgRotation<'a> {
    pub(super) store: &'a PgKeyStore,
    pub(super) conn: Option<Conn>,
}

impl Drop for PgRotation<'_> {
    fn drop(&mut self) {
        if let Some(mut conn) = self.conn.take() {
            // Rolled back; if even that fails, dropping the connection closes it.
            let _ = block(async move { conn.rollback().await });
        }
    }
}

impl Rotation for PgRotation<'_> {
    fn state(&mut self) -> Result<RotationState, Error> {
        let conn = self.conn.as_ref().ok_or_else(closed)?;
        let db = self.store.db();
        block(async {
            let legacy_check = read_check(conn, "").await.map_err(&db)?;
            let rows = conn
                .query(
                    "SELECT user_id, encrypted_key, master_key_id FROM encryption_keys",
                    &[],
                )
                .await
                .map_err(&db)?
                .iter()
                .map(stored_row)
                .collect();
            let keyring = keyring::read_keyring(conn).await.map_err(&db)?;
            let versions = keyring::read_versions(conn, None)
                .await
                .map_err(&db)?
                .into_iter()
                .filter(|v| v.wrapped.is_some())
                .collect();
            Ok(RotationState {
                legacy_check,
                keyring,
                rows,
                versions,
            })
        })?
    }

    fn commit(
        mut self: Box<Self>,
        new: &MasterKeyRow,
        rows: &[Rewrapped],
        written: &mut dyn FnMut(usize),
    ) -> Result<(), Error> {
        let mut conn = self.conn.take().ok_or_else(closed)?;
        let db = self.store.db();
        // One statement per batch; progress is reported between them, outside the driver.
        let mut run = |conn: &mut Conn| -> Result<Result<(), TxError>, Error> {
            let mut done = 0;
            for chunk in rows.chunks(ROTATION_BATCH) {
                if let Err(e) = block(keyring::update_slots(conn, chunk, false))? {
                    return Ok(Err(e));
                }
                done += chunk.len();
                if done % ROTATION_BATCH == 0 {
                    written(done);
                }
            }
            written(rows.len());
            block(async {
                keyring::make_sole_key(conn, new).await?;
                conn.commit().await
            })
        };
        match run(&mut conn) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                let _ = block(conn.rollback());
                Err(db(e))
            }
            Err(e) => {
                let _ = block(conn.rollback());
                Err(e)
            }
        }
    }
}

fn closed() -> Error {
    Error::storage(StorageKind::Other, "the rotation's transaction is closed")
}

//! The change feed's reads on PostgreSQL: the counter and the store's epoch, the changes
//! since a position, every lookup, and the notification listener's wiring. Reads only, on the
//! read pool (they never wait for a connection a write holds).

use std::sync::atomic::Ordering;
use std::sync::PoisonError;

use sha2::{Digest, Sha256};

use super::rows::{read_change, COLUMNS};
use super::{listen, PgApiKeys, READ_WAIT};
use crate::issuance::backend::{Change, FeedMode, Wake};
use crate::postgres::query::p;
use crate::postgres::runtime::block;
use crate::Error;

/// The feed's counter and what makes up the store's epoch: the server's start time (a
/// restart, a failover or a restored cluster changes it) and the table's identity (a
/// database dropped and restored under the same name changes it).
const FEED_PROBE: &str = "SELECT seq, \
     (EXTRACT(EPOCH FROM pg_postmaster_start_time()) * 1000000)::int8, \
     'api_keys'::regclass::oid::int8 FROM keyseal_feed WHERE id = 1";

fn epoch_of(started_us: i64, table: i64) -> u64 {
    let digest = Sha256::new()
        .chain_update(started_us.to_le_bytes())
        .chain_update(table.to_le_bytes())
        .finalize();
    u64::from_le_bytes(digest[..8].try_into().unwrap_or([1; 8])) | 1
}

impl PgApiKeys {
    pub(super) fn feed_all_lookups(&self) -> Result<(Vec<String>, i64), Error> {
        block(
            self.shared
                .read(self.busy_timeout, false, |mut conn| async move {
                    // One snapshot for the lookups and the counter.
                    conn.set_in_tx(true);
                    conn.batch("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                        .await?;
                    let lookups = conn
                        .query("SELECT lookup FROM api_keys", &[])
                        .await?
                        .iter()
                        .map(|r| r.get::<_, String>(0))
                        .collect::<Vec<_>>();
                    let seq: i64 = conn
                        .query_opt("SELECT seq FROM keyseal_feed WHERE id = 1", &[])
                        .await?
                        .map_or(0, |r| r.get(0));
                    conn.batch("COMMIT").await?;
                    conn.set_in_tx(false);
                    Ok((lookups, seq))
                }),
        )?
    }

    pub(super) fn feed_changes_since(&self, seq: i64) -> Result<(Vec<Change>, i64), Error> {
        block(async {
            let select_rows = format!("SELECT {COLUMNS}, seq FROM api_keys WHERE seq > $1");
            let select_rows = select_rows.as_str();
            let (rows, gone) = self
                .shared
                .read(READ_WAIT, true, |mut conn| async move {
                    // One snapshot for rows and tombstones: read apart, a tombstone committed
                    // between the two reads could carry the highest `seq` past a row change
                    // the first missed.
                    conn.set_in_tx(true);
                    conn.batch("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                        .await?;
                    let rows = conn.query(select_rows, &[p(&seq)]).await?;
                    let gone = conn
                        .query(
                            "SELECT row_id, lookup, seq FROM api_key_tombstones WHERE seq > $1",
                            &[p(&seq)],
                        )
                        .await?;
                    conn.batch("COMMIT").await?;
                    conn.set_in_tx(false);
                    Ok((rows, gone))
                })
                .await?;
            let mut max = seq;
            let mut changes = Vec::new();
            for r in rows {
                let (change, row_seq) = read_change(&r);
                if let Some(s) = row_seq {
                    max = max.max(s);
                }
                changes.push(change);
            }
            for t in gone {
                let row_seq: i64 = t.get(2);
                max = max.max(row_seq);
                changes.push(Change {
                    row_id: t.get(0),
                    lookup: Some(t.get(1)),
                    expires_at: None,
                    revoked: false,
                    disabled: false,
                    deleted: true,
                    unreadable: None,
                });
            }
            Ok((changes, max))
        })?
    }

    pub(super) fn feed_changed_elsewhere(&self) -> Result<bool, Error> {
        let (now, epoch): (i64, u64) =
            block(self.shared.read(READ_WAIT, true, |conn| async move {
                Ok(conn
                    .query_opt(FEED_PROBE, &[])
                    .await?
                    .map_or((0, 0), |r| (r.get(0), epoch_of(r.get(1), r.get(2)))))
            }))??;
        let mut last = self.last_seq.lock().unwrap_or_else(PoisonError::into_inner);
        let changed = last.is_some_and(|l| l != now);
        *last = Some(now);
        self.epoch.store(epoch, Ordering::Release);
        Ok(changed)
    }

    pub(super) fn feed_epoch(&self) -> Option<u64> {
        Some(self.epoch.load(Ordering::Acquire)).filter(|&e| e != 0)
    }

    pub(super) fn feed_store_seq(&self) -> Option<i64> {
        *self.last_seq.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn feed_watch(&self, wake: Wake, listen_url: Option<&str>) {
        let url = listen_url.unwrap_or(&self.url);
        match listen::Listener::start(url, self.shared.clone(), wake) {
            Ok(listener) => {
                *self.listener.lock().unwrap_or_else(PoisonError::into_inner) = Some(listener);
            }
            Err(e) => {
                tracing::warn!(error = %e, "keyseal api keys: cannot listen for notifications; the change feed is polled only");
            }
        }
    }

    pub(super) fn feed_mode_now(&self) -> FeedMode {
        self.listener
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map_or(FeedMode::Poll, listen::Listener::mode)
    }
}

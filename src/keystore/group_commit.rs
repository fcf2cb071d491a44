//! Group commit: concurrent creators of new users share durable transactions. A waiting
//! caller leads, committing everything queued (its own requests and those that arrived during
//! the commits in flight) in one transaction; the others sleep until their results are in.
//! One leader at a time, or as many as the backend's `concurrent_writers` (a server that
//! merges concurrent commits' flushes gains throughput from several batches in flight).
//!
//! The race rule lives here too: when another caller (thread or process) created a user
//! first, every caller gets that first key, never a second one.

use std::mem;
use std::sync::{Arc, Condvar, Mutex, PoisonError};

use super::backend::{Guard, NewRow, Written};
use super::keyring::MasterKeyring;
use super::rules::{kept_changing, lock, Inner, MAX_ATTEMPTS};
use super::wrap::{self, KeyBytes};
use crate::{DataKey, Error, StorageKind};

/// Where the group commit leader puts a request's result.
type Slot = Arc<Mutex<Option<Result<KeyBytes, Error>>>>;

/// A request waiting for the next group commit.
struct Pending {
    user_id: String,
    key: KeyBytes,
    done: Slot,
}

#[derive(Default)]
struct Queue {
    waiting: Vec<Pending>,
    /// Batches being committed.
    leaders: usize,
}

/// The queue of requests and the signal that a batch is in.
#[derive(Default)]
pub(super) struct GroupCommit {
    queue: Mutex<Queue>,
    /// Signalled after each batch (results are in) and when leadership is free.
    batch_done: Condvar,
}

/// Gives up leadership (even if the commit panicked) and wakes the waiters.
struct Leadership<'a>(&'a GroupCommit);

impl Drop for Leadership<'_> {
    fn drop(&mut self) {
        lock(&self.0.queue).leaders -= 1;
        self.0.batch_done.notify_all();
    }
}

pub(super) fn lost_request() -> Error {
    Error::storage(
        StorageKind::Other,
        "internal error: group commit lost a request",
    )
}

impl Inner {
    /// Creates (or, if another caller won, reads) the keys of `user_ids` through group commit.
    pub(super) fn create(&self, user_ids: &[&str]) -> Result<Vec<DataKey>, Error> {
        let mut slots: Vec<Slot> = Vec::with_capacity(user_ids.len());
        let mut pending = Vec::with_capacity(user_ids.len());
        for user_id in user_ids {
            let slot: Slot = Arc::default();
            pending.push(Pending {
                user_id: (*user_id).to_owned(),
                key: wrap::random_key()?,
                done: Arc::clone(&slot),
            });
            slots.push(slot);
        }
        let commits = &self.group_commit;
        let max_leaders = self.backend.concurrent_writers().max(1);
        let mut queue = lock(&commits.queue);
        queue.waiting.append(&mut pending);
        while !slots.iter().all(|slot| lock(slot).is_some()) {
            // Wait while the leaders are all busy, or while ours are in a batch in flight.
            if queue.leaders >= max_leaders || (queue.waiting.is_empty() && queue.leaders > 0) {
                queue = commits
                    .batch_done
                    .wait(queue)
                    .unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            queue.leaders += 1;
            let batch = mem::take(&mut queue.waiting);
            drop(queue);
            let lost = batch.is_empty();
            {
                let _leadership = Leadership(commits);
                let _write = self
                    .write_lock
                    .read()
                    .unwrap_or_else(PoisonError::into_inner);
                self.commit_batch(batch);
            }
            if lost {
                // Only after a panicking leader dropped our requests.
                break;
            }
            queue = lock(&commits.queue);
        }
        user_ids
            .iter()
            .zip(slots)
            .map(|(user_id, slot)| {
                let key = lock(&slot).take().ok_or_else(lost_request)??;
                Ok(self.cache.insert(user_id, key))
            })
            .collect()
    }

    /// Commits a batch of requests in one durable transaction and hands each its result.
    /// Call with the write lock held (shared).
    fn commit_batch(&self, batch: Vec<Pending>) {
        if batch.is_empty() {
            return;
        }
        // The keyring cannot change while the write lock is held.
        let ring = self.ring();
        match self.insert_wrapped(&ring, &batch) {
            Ok(winners) => {
                for (p, winner) in batch.into_iter().zip(winners) {
                    *lock(&p.done) = Some(winner.unwrap_or(Ok(p.key)));
                }
            }
            Err(e) => {
                for p in batch {
                    *lock(&p.done) = Some(Err(e.clone()));
                }
            }
        }
    }

    /// Wraps and inserts the batch under the current master key. For each request: `None` when
    /// its own key was stored, else the key another caller stored first (or why it does not
    /// open).
    fn insert_wrapped(
        &self,
        ring: &MasterKeyring,
        batch: &[Pending],
    ) -> Result<Vec<Option<Result<KeyBytes, Error>>>, Error> {
        let master = ring.current();
        let master_id = ring.current_id().as_str();
        let created_at = wrap::now_iso8601();
        let rows = batch
            .iter()
            .map(|p| {
                Ok(NewRow {
                    user_id: &p.user_id,
                    wrapped: wrap::wrap(master, &p.key)?,
                    created_at: &created_at,
                })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        for _ in 0..MAX_ATTEMPTS {
            let expected = self.known_check();
            let guard = Guard::new(master_id, &expected);
            let stored = match self.backend.insert_if_absent(guard, &rows)? {
                Written::Done(stored) => stored,
                Written::CheckChanged(now) => {
                    self.accept_check(ring, now.as_ref())?;
                    continue;
                }
            };
            return Ok(batch
                .iter()
                .zip(&rows)
                .zip(stored)
                .map(|((_, mine), stored)| {
                    // Otherwise another caller (thread or process) created this user first.
                    (stored.wrapped != mine.wrapped).then(|| self.unwrap_row(ring, &stored))
                })
                .collect());
        }
        Err(kept_changing())
    }
}

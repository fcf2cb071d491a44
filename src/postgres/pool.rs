//! One connection pool per URL per process, and the connection handle every query uses.
//!
//! [`shared`] keeps a registry of weak references keyed by a hash of the URL (the URL itself,
//! password included, is not kept): a [`crate::KeyStore`] and an [`crate::ApiKeys`] opened on
//! the same URL share one pool, and the pool closes when the last of them is dropped.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Timeouts};
use sha2::{Digest, Sha256};

use super::errors::{is_connection_lost, outcome_unknown, pool_error, storage_error, TxError};
use super::url::PgUrl;
use super::{runtime, schema, tls};
use crate::Error;

/// Connections per pool: enough for group commit, last-use writes and the rotation's
/// transaction at once.
const POOL_SIZE: usize = 16;
/// Connections of the read pool, which serves only the API keys' change checks: they never
/// wait for a connection held by a write (this process's own included).
const READ_POOL_SIZE: usize = 4;
/// What a round trip with the server may take beyond the busy timeout (a statement waiting
/// for a lock gives up after the busy timeout by itself): past it the server counts as
/// silent and the connection is dropped.
pub(crate) const ROUND_TRIP_GRACE: Duration = Duration::from_secs(2);
/// What one round trip of a bulk operation (a master key rotation, a copy of the whole
/// store) may take: reading or writing every row of a large store in one statement takes
/// longer than a busy timeout.
pub(crate) const BULK_ROUND_TRIP: Duration = Duration::from_secs(600);

/// A pool and what is said about where it points.
pub(crate) struct Shared {
    pool: Pool,
    read_pool: Pool,
    /// `user@host:port/database`, for messages.
    pub(crate) target: Arc<str>,
    /// The URL without its password.
    pub(crate) display: String,
    /// Whether statements are prepared (named) and cached per connection.
    statement_cache: bool,
    /// Whether the schema was found current (or made so) by an earlier open.
    schema_ready: Mutex<bool>,
}

impl core::fmt::Debug for Shared {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Shared")
            .field("url", &self.display)
            .finish_non_exhaustive()
    }
}

fn registry() -> &'static Mutex<HashMap<[u8; 32], Weak<Shared>>> {
    static REGISTRY: std::sync::OnceLock<Mutex<HashMap<[u8; 32], Weak<Shared>>>> =
        std::sync::OnceLock::new();
    REGISTRY.get_or_init(Mutex::default)
}

/// The pool for `url`, created on first use (no connection is made until one is needed).
///
/// # Errors
/// [`Error::InvalidArgument`] for a URL that cannot be read; [`Error::Storage`] when TLS
/// cannot be set up or the driver's threads cannot start.
pub(crate) fn shared(url: &str) -> Result<Arc<Shared>, Error> {
    let key: [u8; 32] = Sha256::digest(url.as_bytes()).into();
    let mut map = registry().lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(found) = map.get(&key).and_then(Weak::upgrade) {
        return Ok(found);
    }
    map.retain(|_, weak| weak.strong_count() > 0);
    let mut parsed = PgUrl::parse(url)?;
    let connector = tls::connector(&mut parsed)?;
    // Building a pool spawns nothing; its connections' tasks run on keyseal's runtime.
    let _enter = runtime::runtime()?.enter();
    let build = |size: usize| {
        let manager = Manager::from_config(
            parsed.config.clone(),
            connector.clone(),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        Pool::builder(manager)
            .max_size(size)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .map_err(|e| {
                Error::storage(
                    crate::StorageKind::Other,
                    format!("PostgreSQL {}: cannot build the pool: {e}", parsed.target()),
                )
            })
    };
    let (pool, read_pool) = (build(POOL_SIZE)?, build(READ_POOL_SIZE)?);
    let shared = Arc::new(Shared {
        pool,
        read_pool,
        target: parsed.target().into(),
        statement_cache: parsed.statement_cache,
        display: parsed.display.clone(),
        schema_ready: Mutex::new(false),
    });
    map.insert(key, Arc::downgrade(&shared));
    Ok(shared)
}

impl Shared {
    /// A connection, waiting at most `wait` for a free one.
    ///
    /// # Errors
    /// [`Error::Storage`]: the server cannot be reached, refuses the login, or no connection
    /// came free in time.
    pub(crate) async fn conn(&self, wait: Duration) -> Result<Conn, Error> {
        self.from(&self.pool, wait).await
    }

    async fn from(&self, pool: &Pool, wait: Duration) -> Result<Conn, Error> {
        let limit = wait + ROUND_TRIP_GRACE;
        let timeouts = Timeouts {
            wait: Some(wait),
            // Connecting (TCP, TLS, login) is a few round trips: a silent server ends it.
            create: Some(limit),
            recycle: Some(limit),
        };
        let obj = pool
            .timeout_get(&timeouts)
            .await
            .map_err(|e| pool_error(&self.target, e))?;
        Ok(Conn {
            obj: Some(obj),
            in_tx: false,
            pending: AtomicUsize::new(0),
            limit,
            target: Arc::clone(&self.target),
            cache: self.statement_cache,
        })
    }

    /// The driver error `e` as keyseal reports it.
    pub(crate) fn error(&self, e: &tokio_postgres::Error) -> Error {
        storage_error(&self.target, e)
    }

    /// `e` as keyseal reports it.
    pub(crate) fn tx_error(&self, e: TxError) -> Error {
        e.into_error(&self.target)
    }

    /// Runs `read` (statements outside any transaction, or a read-only one it opens and
    /// closes) on a connection of `pool`; when the connection turns out to be lost (a server
    /// restart left it dead in the pool), once more on a fresh one. Reads only: nothing is
    /// written twice.
    ///
    /// # Errors
    /// [`Error::Storage`] as [`Shared::conn`], or what `read` returns.
    pub(crate) async fn read<T, F, Fut>(
        &self,
        wait: Duration,
        read_pool: bool,
        read: F,
    ) -> Result<T, Error>
    where
        F: Fn(Conn) -> Fut,
        Fut: std::future::Future<Output = Result<T, TxError>>,
    {
        let pool = if read_pool {
            &self.read_pool
        } else {
            &self.pool
        };
        let mut tries = 0;
        loop {
            let conn = self.from(pool, wait).await?;
            match read(conn).await {
                Err(TxError::Db(e)) if tries == 0 && is_connection_lost(&e) => tries += 1,
                other => return other.map_err(|e| self.tx_error(e)),
            }
        }
    }

    /// Makes sure the schema is one this keyseal runs against, once per pool: migrates when
    /// the role may (see [`schema::ensure`]).
    ///
    /// # Errors
    /// As [`schema::ensure`].
    pub(crate) async fn ensure_schema(&self, wait: Duration) -> Result<(), Error> {
        if *self
            .schema_ready
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
        {
            return Ok(());
        }
        let mut conn = self.conn(wait).await?;
        schema::ensure(self, &mut conn).await?;
        *self
            .schema_ready
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = true;
        Ok(())
    }
}

/// `BEGIN` with each lock waited for at most `lock_wait` (as SQL). `SET LOCAL` ends with the
/// transaction, so nothing outlives it on a server connection a pooler shares.
pub(crate) fn begin_sql(lock_wait: Duration) -> String {
    // lock_timeout 0 means "wait forever": the shortest real bound is 1 ms.
    let ms = lock_wait.as_millis().clamp(1, i32::MAX as u128);
    format!("BEGIN; SET LOCAL lock_timeout = '{ms}ms'")
}

/// A pooled connection. One left inside a transaction (an error or a panic between `BEGIN`
/// and `COMMIT`/`ROLLBACK`), or with a round trip that did not end (a timeout, a cancelled
/// call), is closed rather than handed to the next user, so the server rolls it back.
pub(crate) struct Conn {
    obj: Option<Object>,
    in_tx: bool,
    /// Round trips started and not ended.
    pub(super) pending: AtomicUsize,
    /// How long one round trip may take.
    pub(super) limit: Duration,
    pub(super) target: Arc<str>,
    /// Named statements, prepared once per connection (`statement_cache=on`).
    pub(super) cache: bool,
}

impl Conn {
    /// The driver's client. Statements go through [`Conn::query`] and its siblings (unnamed
    /// statements, bounded round trips), never through the client's prepared statements.
    pub(crate) fn client(&self) -> &deadpool_postgres::ClientWrapper {
        self.obj
            .as_ref()
            .expect("a Conn holds its connection until dropped")
    }

    /// `BEGIN`, waiting at most `lock_wait` for each row or table lock in the transaction.
    ///
    /// # Errors
    /// The driver's error, or a timeout.
    pub(crate) async fn begin(&mut self, lock_wait: Duration) -> Result<(), TxError> {
        self.in_tx = true;
        self.batch(&begin_sql(lock_wait)).await
    }

    /// Records whether a transaction is open (for a caller that sends `BEGIN` and `COMMIT`
    /// itself, pipelined): a connection dropped inside one is closed, not reused.
    pub(crate) fn set_in_tx(&mut self, open: bool) {
        self.in_tx = open;
    }

    /// `COMMIT`.
    ///
    /// # Errors
    /// - [`TxError::Db`]: the server refused the commit (the transaction was rolled back);
    /// - [`TxError::App`] with [`crate::StorageKind::OutcomeUnknown`]: the connection was lost
    ///   or went silent after `COMMIT` was sent.
    pub(crate) async fn commit(&mut self) -> Result<(), TxError> {
        let done = self.batch("COMMIT").await;
        self.committed(done)
    }

    /// The outcome of a `COMMIT` sent on this connection (by [`Conn::commit`] or in a
    /// pipeline): as [`Conn::commit`] returns it.
    ///
    /// # Errors
    /// As [`Conn::commit`].
    pub(crate) fn committed(&mut self, done: Result<(), TxError>) -> Result<(), TxError> {
        match done {
            Ok(()) => {
                self.in_tx = false;
                Ok(())
            }
            Err(TxError::Db(e)) if !is_connection_lost(&e) => Err(TxError::Db(e)),
            Err(_) => Err(TxError::App(outcome_unknown(&self.target))),
        }
    }

    /// `ROLLBACK`, best effort: a connection that cannot roll back is closed on drop.
    pub(crate) async fn rollback(&mut self) {
        if !self.is_broken() && self.batch("ROLLBACK").await.is_ok() {
            self.in_tx = false;
        }
    }

    /// Lets each later round trip take up to `limit` (bulk operations, migrations).
    pub(crate) fn set_limit(&mut self, limit: Duration) {
        self.limit = limit;
    }

    /// Whether a round trip did not end (the connection is then closed on drop), or the
    /// connection is closed.
    pub(crate) fn is_broken(&self) -> bool {
        self.pending.load(Ordering::Relaxed) > 0 || self.client().is_closed()
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        if self.in_tx || self.pending.load(Ordering::Relaxed) > 0 {
            if let Some(obj) = self.obj.take() {
                // Detached from the pool and closed: the server rolls the transaction back.
                drop(Object::take(obj));
            }
        }
    }
}

/// Runs `$body` in one write transaction on a pooled connection of `$shared`, bound to
/// `$conn: &mut Conn`: `BEGIN` (each lock waited for at most `$wait`), the body (an
/// expression of type `Result<T, TxError>` that may `.await` and use `?`), `COMMIT`. A
/// serialization failure or deadlock retries the whole transaction until `$wait` has passed,
/// and so does a connection lost before `COMMIT` was sent (on a fresh connection: nothing
/// was stored); any failure rolls back. A connection lost after `COMMIT` was sent gives
/// [`crate::StorageKind::OutcomeUnknown`]. Evaluates to `Result<T, Error>`.
///
/// A macro rather than a function taking a closure: the body borrows the caller's
/// arguments and the connection at once, which a closure returning a future cannot express
/// on this crate's minimum Rust.
macro_rules! write_tx {
    ($shared:expr, $wait:expr, |$conn:ident| $body:expr) => {
        $crate::postgres::pool::write_tx!($shared, $wait, limit = None, |$conn| $body)
    };
    // `$limit`: `Some(d)` lets each round trip take up to `d` (bulk operations).
    ($shared:expr, $wait:expr, limit = $limit:expr, |$conn:ident| $body:expr) => {{
        let wait: std::time::Duration = $wait;
        let limit: Option<std::time::Duration> = $limit;
        let deadline = std::time::Instant::now() + wait;
        let mut fresh = true;
        'conn: loop {
            // A new connection each time the last one was lost.
            let mut owned = match $shared.conn(wait).await {
                Err(e) => break 'conn Err(e),
                Ok(c) => c,
            };
            if let Some(limit) = limit {
                owned.set_limit(limit);
            }
            if !fresh {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            fresh = false;
            loop {
                let attempt: Result<_, $crate::postgres::errors::TxError> = {
                    let $conn = &mut owned;
                    async move {
                        $conn.begin(wait).await?;
                        let value = $body;
                        $conn.commit().await?;
                        Ok(value)
                    }
                    .await
                };
                match attempt {
                    Ok(v) => break 'conn Ok(v),
                    Err(e) => {
                        owned.rollback().await;
                        match e {
                            $crate::postgres::errors::TxError::Db(e)
                                if $crate::postgres::errors::is_transient(&e)
                                    && std::time::Instant::now() < deadline =>
                            {
                                tokio::time::sleep(std::time::Duration::from_millis(2)).await;
                            }
                            $crate::postgres::errors::TxError::Db(e)
                                if $crate::postgres::errors::is_connection_lost(&e)
                                    && std::time::Instant::now() < deadline =>
                            {
                                continue 'conn;
                            }
                            e => break 'conn Err($shared.tx_error(e)),
                        }
                    }
                }
            }
        }
    }};
}
pub(crate) use write_tx;

#[cfg(test)]
mod tests {
    use super::*;

    /// One pool per URL while any user holds it; a new one after the last is dropped.
    /// (Building a pool connects to nothing, so no server is needed.)
    #[test]
    fn one_pool_per_url_while_it_is_used() {
        let url = "postgres://app:secret@127.0.0.1:1/pool_registry_test";
        let a = shared(url).unwrap();
        let b = shared(url).unwrap();
        assert!(Arc::ptr_eq(&a, &b), "the same URL shares one pool");
        let other = shared("postgres://app:secret@127.0.0.1:1/another_db").unwrap();
        assert!(!Arc::ptr_eq(&a, &other));
        assert!(!format!("{a:?}").contains("secret"));
        let weak = Arc::downgrade(&a);
        drop((a, b));
        assert!(
            weak.upgrade().is_none(),
            "the pool closes with its last user"
        );
        let again = shared(url).unwrap();
        assert!(weak.upgrade().is_none());
        drop(again);
    }
}

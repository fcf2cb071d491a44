//! How every statement is sent: unnamed, parsed and run in one round trip with each
//! parameter's type taken from its Rust type, and each round trip bounded in time.
//!
//! Unnamed statements keep no state on the server connection past the statement, so the
//! backend works behind a transaction-mode pooler (PgBouncer hands each transaction any
//! server connection; a named prepared statement made on one is unknown on the next, and
//! names collide across clients). Statements sent without waiting for the previous answer
//! still share one round trip (pipelining). The server parses and plans each one again,
//! though: a URL with `statement_cache=on` (a direct connection, no such pooler) prepares
//! each statement once per connection instead, as named statements.

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::Ordering;
use std::sync::OnceLock;
use std::task::Poll;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::Row;

use super::errors::{timed_out, TxError};
use super::pool::Conn;

/// The PostgreSQL type of a Rust parameter type, as the server must read it.
pub(crate) trait PgType {
    const TYPE: Type;
}

macro_rules! pg_types {
    ($($rust:ty => $pg:ident),* $(,)?) => {
        $(impl PgType for $rust {
            const TYPE: Type = Type::$pg;
        })*
    };
}

pg_types!(
    bool => BOOL,
    i32 => INT4,
    i64 => INT8,
    str => TEXT,
    String => TEXT,
    [u8] => BYTEA,
    Vec<u8> => BYTEA,
    [i32] => INT4_ARRAY,
    Vec<i32> => INT4_ARRAY,
    [i64] => INT8_ARRAY,
    Vec<i64> => INT8_ARRAY,
    [&str] => TEXT_ARRAY,
    Vec<&str> => TEXT_ARRAY,
    [String] => TEXT_ARRAY,
    Vec<String> => TEXT_ARRAY,
    [Option<&str>] => TEXT_ARRAY,
    Vec<Option<&str>> => TEXT_ARRAY,
    [&[u8]] => BYTEA_ARRAY,
    Vec<&[u8]> => BYTEA_ARRAY,
    Vec<Vec<u8>> => BYTEA_ARRAY,
);

impl<T: PgType + ?Sized> PgType for &T {
    const TYPE: Type = T::TYPE;
}

impl<T: PgType> PgType for Option<T> {
    const TYPE: Type = T::TYPE;
}

/// A parameter with its type.
pub(crate) type Param<'a> = (&'a (dyn ToSql + Sync), Type);

/// `v` as a parameter of the type its Rust type maps to.
pub(crate) fn p<T: ToSql + Sync + PgType>(v: &T) -> Param<'_> {
    (v, T::TYPE)
}

/// The values of `params`, without their types.
fn values<'a>(params: &[Param<'a>]) -> Vec<&'a (dyn ToSql + Sync)> {
    params.iter().map(|(v, _)| *v).collect()
}

/// How often round trips look at their deadline.
const TICK: Duration = Duration::from_millis(250);

/// Notified every [`TICK`] by a task on keyseal's runtime. Waiting for it costs a place in a
/// list; a timer per round trip would cost a wake-up of the runtime's timer thread (a
/// quarter of an uncached read's time here).
fn ticker() -> Option<&'static Notify> {
    static TICKER: OnceLock<Option<&'static Notify>> = OnceLock::new();
    *TICKER.get_or_init(|| {
        let rt = super::runtime::runtime().ok()?;
        let notify: &'static Notify = Box::leak(Box::new(Notify::new()));
        rt.spawn(async move {
            let mut every = tokio::time::interval(TICK);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                every.tick().await;
                notify.notify_waiters();
            }
        });
        Some(notify)
    })
}

/// `f`'s output, or `None` once `limit` has passed (seen within a [`TICK`]).
async fn within<F: Future>(limit: Duration, f: F) -> Option<F::Output> {
    let Some(ticker) = ticker() else {
        return tokio::time::timeout(limit, f).await.ok();
    };
    let deadline = Instant::now() + limit;
    let mut f = pin!(f);
    let mut tick = Box::pin(ticker.notified());
    std::future::poll_fn(|cx| {
        if let Poll::Ready(out) = f.as_mut().poll(cx) {
            return Poll::Ready(Some(out));
        }
        while tick.as_mut().poll(cx).is_ready() {
            if Instant::now() >= deadline {
                return Poll::Ready(None);
            }
            tick = Box::pin(ticker.notified());
        }
        Poll::Pending
    })
    .await
}

impl Conn {
    /// Awaits one round trip `f`, at most [`Conn::limit`]. A round trip that does not end
    /// leaves the connection marked as in use, so it is closed rather than reused.
    async fn bounded<T>(
        &self,
        f: impl Future<Output = Result<T, tokio_postgres::Error>>,
    ) -> Result<T, TxError> {
        self.pending.fetch_add(1, Ordering::Relaxed);
        match within(self.limit, f).await {
            Some(done) => {
                self.pending.fetch_sub(1, Ordering::Relaxed);
                done.map_err(TxError::Db)
            }
            None => Err(TxError::App(timed_out(&self.target, self.limit))),
        }
    }

    /// `sql` prepared (named, cached on this connection) for `params`' types.
    async fn prepared(
        &self,
        sql: &str,
        params: &[Param<'_>],
    ) -> Result<tokio_postgres::Statement, tokio_postgres::Error> {
        let types: Vec<Type> = params.iter().map(|(_, t)| t.clone()).collect();
        self.client().prepare_typed_cached(sql, &types).await
    }

    /// With `statement_cache=on`, prepares `sql` for `params`' types now, so that a pipeline
    /// that runs it later sends its statements in order without waiting; else nothing.
    ///
    /// # Errors
    /// The driver's error, or a timeout.
    pub(crate) async fn prepare_ahead(
        &self,
        sql: &str,
        params: &[Param<'_>],
    ) -> Result<(), TxError> {
        if self.cache {
            self.bounded(self.prepared(sql, params)).await?;
        }
        Ok(())
    }

    /// The rows of `sql`.
    ///
    /// # Errors
    /// The driver's error, or a timeout.
    pub(crate) async fn query(&self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>, TxError> {
        if self.cache {
            return self
                .bounded(async {
                    let stmt = self.prepared(sql, params).await?;
                    self.client().query(&stmt, &values(params)).await
                })
                .await;
        }
        self.bounded(self.client().query_typed(sql, params)).await
    }

    /// The row of `sql`, if any.
    ///
    /// # Errors
    /// The driver's error (more than one row included), or a timeout.
    pub(crate) async fn query_opt(
        &self,
        sql: &str,
        params: &[Param<'_>],
    ) -> Result<Option<Row>, TxError> {
        if self.cache {
            return self
                .bounded(async {
                    let stmt = self.prepared(sql, params).await?;
                    self.client().query_opt(&stmt, &values(params)).await
                })
                .await;
        }
        self.bounded(self.client().query_typed_opt(sql, params))
            .await
    }

    /// The one row of `sql`.
    ///
    /// # Errors
    /// The driver's error (not exactly one row included), or a timeout.
    pub(crate) async fn query_one(&self, sql: &str, params: &[Param<'_>]) -> Result<Row, TxError> {
        if self.cache {
            return self
                .bounded(async {
                    let stmt = self.prepared(sql, params).await?;
                    self.client().query_one(&stmt, &values(params)).await
                })
                .await;
        }
        self.bounded(self.client().query_typed_one(sql, params))
            .await
    }

    /// Runs `sql`: the number of rows it changed.
    ///
    /// # Errors
    /// The driver's error, or a timeout.
    pub(crate) async fn execute(&self, sql: &str, params: &[Param<'_>]) -> Result<u64, TxError> {
        if self.cache {
            return self
                .bounded(async {
                    let stmt = self.prepared(sql, params).await?;
                    self.client().execute(&stmt, &values(params)).await
                })
                .await;
        }
        self.bounded(self.client().execute_typed(sql, params)).await
    }

    /// Runs `sql` (statements without parameters, the simple protocol).
    ///
    /// # Errors
    /// The driver's error, or a timeout.
    pub(crate) async fn batch(&self, sql: &str) -> Result<(), TxError> {
        self.bounded(self.client().batch_execute(sql)).await
    }
}

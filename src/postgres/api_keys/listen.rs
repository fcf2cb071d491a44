//! `LISTEN`/`NOTIFY` wake-ups for the change feed.
//!
//! Every feed-writing transaction sends a notification on [`CHANNEL`] (delivered by the
//! server at its commit, never for a rolled-back one). A [`Listener`] keeps one dedicated
//! connection (not a pooled one: a pooler in transaction mode hands session state such as
//! `LISTEN` to whoever comes next) listening on it and wakes the feed thread of its
//! [`ApiKeys`](crate::ApiKeys) for each. Notifications are lost while that connection is
//! down, so they are only ever a wake-up: the feed is still read on its interval, and after
//! every reconnection.
//!
//! At start a self-test proves that notifications arrive: it listens, sends one on a
//! channel of its own through the store's pool (another session), and waits for it. Behind
//! a pooler in transaction mode it does not arrive; the listener then says so once and the
//! feed is polled only (give `ApiKeysConfig::listen_url` a direct URL to have both).

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, Notify};
use tokio_postgres::AsyncMessage;

use crate::issuance::backend::{FeedMode, Wake};
use crate::postgres::errors::TxError;
use crate::postgres::pool::Shared;
use crate::postgres::url::PgUrl;
use crate::postgres::{runtime, tls};
use crate::Error;

/// The channel every feed-writing transaction notifies.
pub(crate) const CHANNEL: &str = "keyseal_feed";
/// The self-test's channel: no one else listens on it.
const SELF_TEST_CHANNEL: &str = "keyseal_feed_self_test";
/// How long the self-test waits for its own notification.
const SELF_TEST_WAIT: Duration = Duration::from_secs(3);
/// How often an idle listening connection is checked (a peer that vanished without closing
/// the connection would otherwise be found only by TCP, much later).
const PING_EVERY: Duration = Duration::from_secs(10);
/// Longest wait for a connection or a ping.
const CONNECT_WAIT: Duration = Duration::from_secs(10);
/// Backoff between reconnections.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

const DOWN: u8 = 0;
const LISTENING: u8 = 1;
const UNAVAILABLE: u8 = 2;

/// A running listener; dropping it stops it.
pub(crate) struct Listener {
    state: Arc<AtomicU8>,
    stop: Arc<Notify>,
}

impl Listener {
    /// Starts listening at `url` in the background; `pool` sends the self-test notification.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a URL that cannot be read; [`Error::Storage`] when TLS
    /// cannot be set up or the driver's threads cannot start.
    pub(crate) fn start(url: &str, pool: Arc<Shared>, wake: Wake) -> Result<Self, Error> {
        let mut parsed = PgUrl::parse(url)?;
        let connector = tls::connector(&mut parsed)?;
        let state = Arc::new(AtomicU8::new(DOWN));
        let stop = Arc::new(Notify::new());
        let task = Task {
            config: parsed.config,
            target: parsed.display,
            connector,
            pool,
            wake,
            state: state.clone(),
            stop: stop.clone(),
        };
        runtime::runtime()?.spawn(task.run());
        Ok(Listener { state, stop })
    }

    /// What the listener gives now.
    pub(crate) fn mode(&self) -> FeedMode {
        match self.state.load(Ordering::Acquire) {
            LISTENING => FeedMode::Notify,
            UNAVAILABLE => FeedMode::NotifyUnavailable,
            _ => FeedMode::NotifyDown,
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop.notify_one();
    }
}

/// How one listening session ended.
enum Ended {
    Stopped,
    /// Notifications do not arrive here.
    Unavailable,
    Lost(String),
}

struct Task {
    config: tokio_postgres::Config,
    /// The URL without its password, for messages.
    target: String,
    connector: tls::Connector,
    pool: Arc<Shared>,
    wake: Wake,
    state: Arc<AtomicU8>,
    stop: Arc<Notify>,
}

impl Task {
    async fn run(self) {
        let mut backoff = BACKOFF_MIN;
        let mut was_listening = false;
        loop {
            let ended = tokio::select! {
                ended = self.session() => ended,
                () = self.stop.notified() => Ended::Stopped,
            };
            match ended {
                Ended::Stopped => return,
                Ended::Unavailable => {
                    self.state.store(UNAVAILABLE, Ordering::Release);
                    tracing::warn!(
                        url = %self.target,
                        "keyseal api keys: notifications do not arrive through this URL (a \
                         pooler in transaction mode?); the change feed is polled only. Give \
                         ApiKeysConfig::listen_url a direct URL for fast revocations"
                    );
                    return;
                }
                Ended::Lost(why) => {
                    self.state.store(DOWN, Ordering::Release);
                    (self.wake)();
                    if was_listening {
                        tracing::warn!(url = %self.target, error = %why, "keyseal api keys: the notification connection was lost; polling the change feed until it is back");
                    } else {
                        tracing::debug!(url = %self.target, error = %why, "keyseal api keys: cannot listen for notifications yet");
                    }
                    was_listening = false;
                }
            }
            tokio::select! {
                () = tokio::time::sleep(backoff) => {}
                () = self.stop.notified() => return,
            }
            backoff = (backoff * 2).min(BACKOFF_MAX);
            if self.state.load(Ordering::Acquire) == LISTENING {
                backoff = BACKOFF_MIN;
                was_listening = true;
            }
        }
    }

    /// Connects, listens, self-tests, then wakes the feed thread for each notification
    /// until the connection fails.
    async fn session(&self) -> Ended {
        let connect = self.config.connect(self.connector.clone());
        let (client, mut connection) = match tokio::time::timeout(CONNECT_WAIT, connect).await {
            Ok(Ok(pair)) => pair,
            Ok(Err(e)) => return Ended::Lost(e.to_string()),
            Err(_) => return Ended::Lost("no answer in time".into()),
        };
        // The connection delivers notifications only while polled, and polling it also
        // carries the client's queries.
        let (tx, mut rx) = mpsc::unbounded_channel::<Result<String, String>>();
        let driver = tokio::spawn(async move {
            loop {
                match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                    Some(Ok(AsyncMessage::Notification(n))) => {
                        if tx.send(Ok(n.channel().to_owned())).is_err() {
                            return;
                        }
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => {
                        let _ = tx.send(Err(e.to_string()));
                        return;
                    }
                    None => {
                        let _ = tx.send(Err("connection closed".into()));
                        return;
                    }
                }
            }
        });
        let _stop_driver = AbortOnDrop(driver);
        let listen = format!("LISTEN {CHANNEL}; LISTEN {SELF_TEST_CHANNEL}");
        match tokio::time::timeout(CONNECT_WAIT, client.batch_execute(&listen)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Ended::Lost(e.to_string()),
            Err(_) => return Ended::Lost("no answer to LISTEN in time".into()),
        }
        match self.self_test(&mut rx).await {
            Ok(true) => {}
            Ok(false) => return Ended::Unavailable,
            Err(why) => return Ended::Lost(why),
        }
        self.state.store(LISTENING, Ordering::Release);
        // Anything committed while no one listened: read the feed now.
        (self.wake)();
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.tick().await;
        loop {
            tokio::select! {
                msg = rx.recv() => match msg {
                    Some(Ok(channel)) => {
                        if channel == CHANNEL {
                            (self.wake)();
                        }
                    }
                    Some(Err(why)) => return Ended::Lost(why),
                    None => return Ended::Lost("connection closed".into()),
                },
                _ = ping.tick() => {
                    match tokio::time::timeout(CONNECT_WAIT, client.simple_query("")).await {
                        Ok(Ok(_)) => {}
                        Ok(Err(e)) => return Ended::Lost(e.to_string()),
                        Err(_) => return Ended::Lost("no answer to a ping in time".into()),
                    }
                }
            }
        }
    }

    /// Sends a notification from another session (a pooled connection) and waits for it:
    /// `Ok(false)` when it does not arrive, `Err` when it cannot be sent.
    async fn self_test(
        &self,
        rx: &mut mpsc::UnboundedReceiver<Result<String, String>>,
    ) -> Result<bool, String> {
        let conn = self
            .pool
            .conn(CONNECT_WAIT)
            .await
            .map_err(|e| e.to_string())?;
        // Bounded like every pooled round trip.
        conn.batch(&format!("NOTIFY {SELF_TEST_CHANNEL}"))
            .await
            .map_err(|e| match e {
                TxError::Db(e) => e.to_string(),
                TxError::App(e) => e.to_string(),
            })?;
        drop(conn);
        let deadline = tokio::time::Instant::now() + SELF_TEST_WAIT;
        loop {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Err(_) => return Ok(false),
                Ok(Some(Ok(channel))) if channel == SELF_TEST_CHANNEL => return Ok(true),
                Ok(Some(Ok(_))) => (self.wake)(),
                Ok(Some(Err(why))) => return Err(why),
                Ok(None) => return Err("connection closed".into()),
            }
        }
    }
}

/// Stops the connection's task when the session ends.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

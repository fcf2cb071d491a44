//! Async API keys, whatever the backend: the same answers as the blocking calls under a
//! real runtime (tokio, one thread) and a plain `block_on`, and a cached verification that
//! is complete when returned (no thread hop).

use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use keyseal::{ApiKeys, Error, KeyStatus, KeyUpdate, ListFilter, NewKey, Requirement};

use crate::common::temp_db::TempDb;
use crate::harness::{config, reason, Backend};

/// The simplest executor: parks the thread until woken.
fn block_on<F: Future>(f: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut f = std::pin::pin!(f);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}

/// Every async operation once, checked against the store; `run` awaits a future.
async fn lifecycle(keys: Arc<ApiKeys>) {
    let made = keys
        .create_async(NewKey::new("u", "async").scope("read"))
        .await
        .unwrap();
    assert!(keys.verify_async(&made.key).await.unwrap().is_valid());
    let admin = Requirement::any(["admin"]);
    let v = keys.verify_with_async(&made.key, &admin).await;
    assert_eq!(reason(&v), "forbidden");
    let info = keys
        .update_async("u", &made.key_id, KeyUpdate::new().scopes(["admin"]))
        .await
        .unwrap();
    assert_eq!(info.scopes, ["admin"]);
    assert_eq!(
        reason(&keys.verify_with_async(&made.key, &admin).await),
        "valid"
    );
    keys.disable_async("u", &made.key_id).await.unwrap();
    assert_eq!(reason(&keys.verify_async(&made.key).await), "disabled");
    keys.enable_async("u", &made.key_id).await.unwrap();
    assert_eq!(
        keys.info_async("u", &made.key_id).await.unwrap().name,
        "async"
    );
    let page = keys
        .list_page_async(ListFilter::user("u").status(KeyStatus::Active))
        .await
        .unwrap();
    assert_eq!(page.keys.len(), 1);
    let next = keys
        .rotate_async("u", &made.key_id, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(reason(&keys.verify_async(&made.key).await), "expired");
    keys.revoke_async("u", &next.key_id).await.unwrap();
    assert_eq!(reason(&keys.verify_async(&next.key).await), "revoked");
    keys.delete_async("u", &next.key_id).await.unwrap();
    assert_eq!(reason(&keys.verify_async(&next.key).await), "unknown");
    // errors come through the future, typed
    assert_eq!(
        keys.delete_async("u", &next.key_id).await.unwrap_err(),
        Error::NotFound { what: "api key" }
    );
    assert!(matches!(
        keys.create_async(NewKey::new("", "x")).await,
        Err(Error::InvalidArgument { .. })
    ));
}

pub(crate) fn async_api_under_tokio_current_thread_and_block_on(backend: &Backend) {
    let db = TempDb::new();
    let keys = Arc::new((backend.open)(db.path(), config()));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    rt.block_on(lifecycle(keys.clone()));
    // other tasks keep running on the one thread while a bcrypt runs elsewhere
    rt.block_on(async {
        let ticks = tokio::spawn(async {
            for _ in 0..3 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        });
        let made = keys
            .create_async(NewKey::new("v", "t").scope("read"))
            .await
            .unwrap();
        ticks.await.unwrap();
        assert!(keys.verify_async(&made.key).await.unwrap().is_valid());
    });
    keys.delete("v", &keys.list("v").unwrap()[0].key_id)
        .unwrap();
    block_on(lifecycle(keys));
}

pub(crate) fn cached_async_verify_is_ready_at_once(backend: &Backend) {
    let db = TempDb::new();
    let keys = Arc::new((backend.open)(
        db.path(),
        config().change_check_interval(Duration::from_secs(3600)),
    ));
    let made = keys.create(&NewKey::new("u", "x").scope("read")).unwrap();
    // not cached yet: bcrypt runs on another thread
    let first = keys.verify_async(&made.key);
    assert!(block_on(first).unwrap().is_valid());
    for required in [
        Requirement::none(),
        Requirement::all(["read"]),
        Requirement::all(["admin"]),
    ] {
        let f = keys.verify_with_async(&made.key, &required);
        assert!(f.is_ready(), "a cached verification went to another thread");
        let want = reason(&keys.verify_with(&made.key, &required));
        assert_eq!(reason(&block_on(f)), want);
    }
    // malformed keys and a key after its row changed take the full path, answered right
    assert_eq!(
        reason(&block_on(keys.verify_async("ks_live_nope"))),
        "malformed"
    );
    keys.disable("u", &made.key_id).unwrap();
    assert_eq!(reason(&block_on(keys.verify_async(&made.key))), "disabled");
}

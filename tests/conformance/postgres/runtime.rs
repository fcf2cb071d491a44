//! The synchronous API works from inside a caller's tokio runtime (both flavours) without
//! panicking, and the async API does not need one.

use std::future::Future;

use keyseal::{ApiKeys, KeyStore, MasterKey, NewKey};

use super::{available, PgDb};
use crate::harness::config;

/// Opens both stores and uses every kind of call, synchronously, from `rt`'s async context.
fn whole_flow_inside(rt: &tokio::runtime::Runtime) {
    let db = PgDb::new();
    let url = db.app_url().to_owned();
    rt.block_on(async move {
        let store = KeyStore::open(&url, MasterKey::generate().unwrap()).unwrap();
        let key = store.get_or_create_user_key("alice").unwrap();
        assert_eq!(store.get_user_key("alice").unwrap().as_ref(), Some(&key));
        // The async API, awaited on the caller's executor.
        assert_eq!(
            store.get_or_create_user_key_async("alice").await.unwrap(),
            key
        );
        store
            .rotate_master_key(MasterKey::generate().unwrap())
            .unwrap();
        let keys = ApiKeys::open_with(&url, config()).unwrap();
        let made = keys.create(&NewKey::new("alice", "ci")).unwrap();
        assert!(keys.verify(&made.key).unwrap().is_valid());
        keys.revoke("alice", &made.key_id).unwrap();
        // Dropped here, inside the runtime: must not panic either.
        drop((store, keys));
        tokio::task::yield_now().await;
    });
}

#[test]
fn sync_calls_inside_a_current_thread_runtime_do_not_panic() {
    if !available() {
        return;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    whole_flow_inside(&rt);
}

#[test]
fn sync_calls_inside_a_multi_thread_runtime_do_not_panic() {
    if !available() {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    whole_flow_inside(&rt);
}

/// The async API completes under a plain executor with no runtime at all.
#[test]
fn the_async_api_needs_no_runtime() {
    if !available() {
        return;
    }
    let db = PgDb::new();
    let store = KeyStore::open(db.app_url(), MasterKey::generate().unwrap()).unwrap();
    let key = block_on(store.get_or_create_user_key_async("bob")).unwrap();
    assert_eq!(store.get_user_key("bob").unwrap(), Some(key));
}

fn block_on<F: Future>(f: F) -> F::Output {
    struct W(std::thread::Thread);
    impl std::task::Wake for W {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = std::sync::Arc::new(W(std::thread::current())).into();
    let mut cx = std::task::Context::from_waker(&waker);
    let mut f = std::pin::pin!(f);
    loop {
        if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}

//! The bridge from keyseal's synchronous API to the async driver.
//!
//! The pools and their connections live on one small tokio runtime of keyseal's own (two
//! worker threads named `keyseal-pg-*`), created on first use and kept for the life of the
//! process: a runtime that could be dropped would panic when its last owner is dropped inside
//! a caller's async context. A synchronous call waits for its future with [`block`]:
//! - on a thread outside any tokio runtime (the common case, and keyseal's own async-API
//!   threads), it drives the future there with this runtime's `block_on`, so no thread hop
//!   is paid per query;
//! - on a thread inside a caller's runtime (where `block_on` would panic), it runs the future
//!   on a helper thread and waits for it, never touching the caller's runtime.

use std::future::Future;
use std::sync::OnceLock;

use crate::{Error, StorageKind};

/// The runtime every PostgreSQL pool of the process runs on.
pub(crate) fn runtime() -> Result<&'static tokio::runtime::Runtime, Error> {
    static RUNTIME: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("keyseal-pg")
                .enable_io()
                .enable_time()
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| {
            Error::storage(
                StorageKind::Unavailable,
                format!("cannot start the PostgreSQL driver's threads: {e}"),
            )
        })
}

/// Runs `f` to completion on keyseal's runtime and returns its output, from any thread.
///
/// # Errors
/// [`Error::Storage`] when the runtime cannot start; a panic inside `f` is resumed.
pub(crate) fn block<F>(f: F) -> Result<F::Output, Error>
where
    F: Future + Send,
    F::Output: Send,
{
    let rt = runtime()?;
    if tokio::runtime::Handle::try_current().is_err() {
        return Ok(rt.block_on(f));
    }
    // Inside a caller's runtime: its threads must not block on ours, so a helper does.
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .name("keyseal-pg-call".into())
            .spawn_scoped(s, || rt.block_on(f))
            .map_err(|e| {
                Error::storage(
                    StorageKind::Unavailable,
                    format!("cannot start a thread for a PostgreSQL call: {e}"),
                )
            })?
            .join()
            .map_err(|panic| std::panic::resume_unwind(panic))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_works_outside_and_inside_a_callers_runtime() {
        assert_eq!(block(async { 1 }).unwrap(), 1);
        let current = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        assert_eq!(current.block_on(async { block(async { 2 }).unwrap() }), 2);
        let multi = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        assert_eq!(multi.block_on(async { block(async { 3 }).unwrap() }), 3);
    }
}

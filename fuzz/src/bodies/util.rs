//! Helpers shared by the target bodies.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

/// A fresh folder for one run's database files: in /dev/shm when there is one (the stateful
/// targets commit with fsync, which tmpfs makes cheap), else the system temp folder.
pub fn scratch_dir(name: &str) -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let base = std::env::var_os("KEYSEAL_FUZZ_TMP")
        .map(PathBuf::from)
        .or_else(|| {
            let shm = PathBuf::from("/dev/shm");
            shm.is_dir().then_some(shm)
        })
        .unwrap_or_else(std::env::temp_dir);
    let dir = base.join(format!(
        "keyseal-fuzz-{name}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch folder");
    dir
}

/// Removes the folder on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    /// A new scratch folder.
    pub fn new(name: &str) -> Self {
        Scratch(scratch_dir(name))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A broken promise. `known` names the already reported defect it is an instance of (the
/// fuzz runs may then be told to stop the sequence there and explore on, with
/// `KEYSEAL_FUZZ_KNOWN=stop`); `None` is a new finding and always panics.
pub fn broken(known: Option<&str>, what: &str) -> Stop {
    if let Some(defect) = known {
        if stopping_at_known() {
            return Stop;
        }
        panic!("KNOWN DEFECT ({defect}): {what}");
    }
    panic!("NEW FINDING: {what}");
}

thread_local! {
    static STOP_ON_KNOWN: std::cell::Cell<Option<bool>> = const { std::cell::Cell::new(None) };
}

/// Overrides `KEYSEAL_FUZZ_KNOWN` on this thread: `true` stops a sequence at a known defect,
/// `false` panics there (the replay tests choose per test, without touching the environment).
pub fn stop_on_known(stop: bool) {
    STOP_ON_KNOWN.with(|c| c.set(Some(stop)));
}

/// Whether sequences stop at known defects (`KEYSEAL_FUZZ_KNOWN=stop` or [`stop_on_known`]).
pub fn stopping_at_known() -> bool {
    STOP_ON_KNOWN
        .with(std::cell::Cell::get)
        .unwrap_or_else(|| std::env::var_os("KEYSEAL_FUZZ_KNOWN").is_some_and(|v| v == "stop"))
}

/// Ends a sequence early (after a known defect, when asked to explore past them).
#[derive(Debug)]
pub struct Stop;

/// Url-safe base64 characters (legacy key bodies).
pub const URL_SAFE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
/// Base62 characters (issued key bodies).
pub const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// `len` characters of `alphabet` derived from `seed` (xorshift): deterministic, so a
/// replayed input builds the same keys.
pub fn chars_from_seed(seed: u64, len: usize, alphabet: &[u8]) -> String {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            #[allow(clippy::cast_possible_truncation)]
            char::from(alphabet[(x % alphabet.len() as u64) as usize])
        })
        .collect()
}

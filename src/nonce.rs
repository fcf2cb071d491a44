//! Where nonces come from.
//!
//! Natively, straight from the operating system on every call (`getrandom`): a pool in process
//! memory would be duplicated by `fork()`, and two processes could then hand out the same
//! nonce. In wasm32 in a browser, Node or a worker, from a pool of `crypto.getRandomValues`
//! output (drawn by the npm bindings themselves, else through getrandom's `js` feature): one
//! call into the host costs more than a whole encryption of a short secret, and wasm memory is
//! never forked.

use crate::Error;

/// Length of an AES-GCM nonce.
pub(crate) const NONCE_LEN: usize = 12;

cfg_if::cfg_if! {
    if #[cfg(all(target_arch = "wasm32", target_os = "unknown"))] {
        use core::cell::{Cell, RefCell};

        /// Random bytes drawn from the host per `crypto.getRandomValues` call, handed out as nonces.
        const NONCE_POOL: usize = 4096;

        /// Fills a buffer with random bytes from the host, or fails.
        pub(crate) type RandomSource = fn(&mut [u8]) -> Result<(), Error>;

        struct NoncePool {
            bytes: [u8; NONCE_POOL],
            used: usize,
        }

        std::thread_local! {
            static NONCES: RefCell<NoncePool> = const {
                RefCell::new(NoncePool { bytes: [0; NONCE_POOL], used: NONCE_POOL })
            };
            /// Set while the pool is being refilled, to refuse calls that re-enter from the host's
            /// randomness function (a patched `crypto.getRandomValues` that encrypts).
            static REFILLING: Cell<bool> = const { Cell::new(false) };
            static SOURCE: Cell<RandomSource> = const { Cell::new(getrandom_source) };
        }

        fn getrandom_source(buf: &mut [u8]) -> Result<(), Error> {
            getrandom::getrandom(buf).map_err(|_| Error::Randomness)
        }

        /// Replaces where the pool's bytes come from (getrandom's `js` backend by default). The
        /// JS bindings install one that never lets a JS exception unwind through wasm.
        pub(crate) fn set_random_source(source: RandomSource) {
            SOURCE.with(|s| s.set(source));
        }

        /// Fills a nonce from a pool of host randomness, refilled 4 KiB at a time: one call into
        /// `crypto.getRandomValues` costs more than encrypting a short secret. Every pool byte is
        /// used once and then overwritten with zeros; nonces are public, so the pool holds nothing
        /// secret, and wasm memory is never forked, so no two copies of it can hand out the same
        /// nonce.
        ///
        /// No borrow of the pool is held while the host runs (a JS exception there would skip
        /// its release), and a call made from inside the refill fails with
        /// [`Error::Randomness`] rather than panicking (a panic is a trap in wasm).
        pub(crate) fn fill_nonce(nonce: &mut [u8; NONCE_LEN]) -> Result<(), Error> {
            if take(nonce)? {
                return Ok(());
            }
            refill()?;
            if take(nonce)? {
                Ok(())
            } else {
                Err(Error::Randomness)
            }
        }

        /// Takes the next nonce from the pool; `false` when the pool is used up.
        fn take(nonce: &mut [u8; NONCE_LEN]) -> Result<bool, Error> {
            NONCES.with(|pool| {
                let mut pool = pool.try_borrow_mut().map_err(|_| Error::Randomness)?;
                let start = pool.used;
                let Some(taken) = pool.bytes.get_mut(start..start + NONCE_LEN) else {
                    return Ok(false);
                };
                nonce.copy_from_slice(taken);
                taken.fill(0);
                pool.used = start + NONCE_LEN;
                Ok(true)
            })
        }

        fn refill() -> Result<(), Error> {
            if REFILLING.with(Cell::get) {
                return Err(Error::Randomness);
            }
            REFILLING.with(|r| r.set(true));
            let mut fresh = [0u8; NONCE_POOL];
            let drawn = SOURCE.with(Cell::get)(&mut fresh);
            REFILLING.with(|r| r.set(false));
            drawn?;
            // A host function that returned without writing (a broken polyfill) would make
            // every nonce zero: refuse it. Real randomness is all zeros with probability 2^-32768.
            if fresh.iter().all(|&b| b == 0) {
                return Err(Error::Randomness);
            }
            NONCES.with(|pool| {
                let mut pool = pool.try_borrow_mut().map_err(|_| Error::Randomness)?;
                pool.bytes = fresh;
                pool.used = 0;
                Ok(())
            })
        }
    } else {
        /// Fills a nonce from the operating system.
        pub(crate) fn fill_nonce(nonce: &mut [u8; NONCE_LEN]) -> Result<(), Error> {
            getrandom::getrandom(nonce).map_err(|_| Error::Randomness)
        }
    }
}

//! Where nonces come from.
//!
//! Natively, straight from the operating system on every call (`getrandom`): a pool in process
//! memory would be duplicated by `fork()`, and two processes could then hand out the same
//! nonce. In wasm32 in a browser, Node or a worker, from a pool of `crypto.getRandomValues`
//! output (through getrandom's `js` feature): one call into the host costs more than a whole
//! encryption of a short secret, and wasm memory is never forked.

use crate::Error;

/// Length of an AES-GCM nonce.
pub(crate) const NONCE_LEN: usize = 12;

cfg_if::cfg_if! {
    if #[cfg(all(target_arch = "wasm32", target_os = "unknown"))] {
        /// Random bytes drawn from the host per `crypto.getRandomValues` call, handed out as nonces.
        const NONCE_POOL: usize = 4096;

        struct NoncePool {
            bytes: [u8; NONCE_POOL],
            used: usize,
        }

        std::thread_local! {
            static NONCES: core::cell::RefCell<NoncePool> = const {
                core::cell::RefCell::new(NoncePool { bytes: [0; NONCE_POOL], used: NONCE_POOL })
            };
        }

        /// Fills a nonce from a pool of host randomness, refilled 4 KiB at a time: one call into
        /// `crypto.getRandomValues` costs more than encrypting a short secret. Every pool byte is used
        /// once and then overwritten with zeros; nonces are public, so the pool holds nothing secret,
        /// and wasm memory is never forked, so no two copies of it can hand out the same nonce.
        pub(crate) fn fill_nonce(nonce: &mut [u8; NONCE_LEN]) -> Result<(), Error> {
            NONCES.with(|pool| {
                let mut pool = pool.borrow_mut();
                if pool.used + nonce.len() > NONCE_POOL {
                    getrandom::getrandom(&mut pool.bytes).map_err(|_| Error::Randomness)?;
                    pool.used = 0;
                }
                let start = pool.used;
                let taken = &mut pool.bytes[start..start + nonce.len()];
                nonce.copy_from_slice(taken);
                taken.fill(0);
                pool.used = start + nonce.len();
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

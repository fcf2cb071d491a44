//! A TCP proxy in front of the server that can go silent or cut a connection after its
//! `COMMIT` was sent.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A TCP proxy to `upstream` that forwards until frozen, then holds every byte: a server
/// gone silent on connections that stay open. With `cut_after_commit` set, the next write
/// transaction's `COMMIT` (one opened with keyseal's `SET LOCAL lock_timeout`) reaches the
/// server, and the connection is cut before its answer comes back (once).
pub(crate) struct Proxy {
    pub(crate) port: u16,
    pub(crate) frozen: Arc<AtomicBool>,
    pub(crate) cut_after_commit: Arc<AtomicBool>,
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

impl Proxy {
    pub(crate) fn start(upstream: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let frozen = Arc::new(AtomicBool::new(false));
        let cut_after_commit = Arc::new(AtomicBool::new(false));
        let hold = Arc::new(AtomicBool::new(false));
        let (flag, cut) = (Arc::clone(&frozen), Arc::clone(&cut_after_commit));
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = TcpStream::connect(&upstream) else {
                    continue;
                };
                for (mut from, mut to, upward) in [
                    (
                        client.try_clone().unwrap(),
                        server.try_clone().unwrap(),
                        true,
                    ),
                    (server, client, false),
                ] {
                    let (flag, cut, hold) =
                        (Arc::clone(&flag), Arc::clone(&cut), Arc::clone(&hold));
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 16384];
                        let mut writing = false;
                        loop {
                            let n = match from.read(&mut buf) {
                                Ok(0) | Err(_) => return,
                                Ok(n) => n,
                            };
                            let chunk = &buf[..n];
                            while flag.load(Ordering::Relaxed)
                                || (!upward && hold.load(Ordering::Relaxed))
                            {
                                std::thread::sleep(Duration::from_millis(20));
                            }
                            if upward {
                                writing |= contains(chunk, b"SET LOCAL lock_timeout");
                                if writing && contains(chunk, b"COMMIT") {
                                    writing = false;
                                    if cut.swap(false, Ordering::SeqCst) {
                                        // The answer is held, the COMMIT sent, the
                                        // connection cut once the server has committed.
                                        hold.store(true, Ordering::SeqCst);
                                        let _ = to.write_all(chunk);
                                        std::thread::sleep(Duration::from_millis(300));
                                        let _ = to.shutdown(std::net::Shutdown::Both);
                                        let _ = from.shutdown(std::net::Shutdown::Both);
                                        hold.store(false, Ordering::SeqCst);
                                        return;
                                    }
                                }
                            }
                            if to.write_all(chunk).is_err() {
                                return;
                            }
                        }
                    });
                }
            }
        });
        Proxy {
            port,
            frozen,
            cut_after_commit,
        }
    }
}

//! What several commands share: the secret read from standard input, the master key, and the
//! store opened from `--db`.

use std::io::{IsTerminal, Read};
use std::path::Path;

use keyseal::{
    parse_master_key, ApiKeys, ApiKeysConfig, KeyStore, KeyStoreOptions, MasterKey, MasterKeyring,
    VerifierKey, MASTER_KEY_ENV,
};
use zeroize::{Zeroize, Zeroizing};

use crate::args::Cli;
use crate::db_path;
use crate::output::{error_line, unbuffered, Failure};
use crate::urls::shown;

/// Room up front, so that a usual secret is read without ever moving.
const FIRST_CAPACITY: usize = 64 * 1024;

/// Standard input as UTF-8, without one trailing newline (what `echo` adds).
pub fn read_stdin_line() -> Result<Zeroizing<String>, Failure> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        error_line("reading the secret from standard input (end with Ctrl-D)");
    }
    // Straight from the descriptor: `Stdin`'s own buffer is never wiped, so a secret read
    // through it would stay in memory until keyseal exits.
    match unbuffered(&stdin) {
        Some(file) => read_line(file),
        None => read_line(stdin),
    }
    .map_err(|e| Failure(format!("cannot read standard input as UTF-8 text: {e}")))
}

/// All of `input` as UTF-8 text, one trailing `\n` or `\r\n` dropped. Every byte read is wiped
/// when dropped, also on error: the buffer grows by hand, because `Vec`'s own growth would free
/// the old buffer with the secret still in it.
fn read_line(mut input: impl Read) -> std::io::Result<Zeroizing<String>> {
    // `bytes` is always fully initialised; `filled` says how much of it was read.
    let mut bytes = Zeroizing::new(vec![0_u8; FIRST_CAPACITY]);
    let mut filled = 0;
    loop {
        if filled == bytes.len() {
            let mut bigger = Zeroizing::new(vec![0_u8; 2 * bytes.len()]);
            bigger[..filled].copy_from_slice(&bytes[..filled]);
            bytes = bigger;
        }
        match input.read(&mut bytes[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    bytes.truncate(filled);
    let mut text = match String::from_utf8(std::mem::take(&mut *bytes)) {
        Ok(text) => Zeroizing::new(text),
        Err(err) => {
            err.into_bytes().zeroize();
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "stream did not contain valid UTF-8",
            ));
        }
    };
    let end = text
        .strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .map(str::len);
    if let Some(end) = end {
        text.truncate(end);
    }
    Ok(text)
}

/// The master key from `--master-key-file`, else from `API_KEY_MASTER_KEY`.
pub fn master_key(cli: &Cli) -> Result<MasterKey, Failure> {
    if let Some(path) = &cli.master_key_file {
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
            Failure(format!(
                "cannot read master key file {}: {e}",
                path.display()
            ))
        })?);
        return parse_master_key(&text)
            .map_err(|e| Failure(format!("master key file {}: {e}", path.display())));
    }
    match std::env::var(MASTER_KEY_ENV) {
        Ok(text) => {
            let text = Zeroizing::new(text);
            parse_master_key(&text).map_err(|e| Failure(format!("{MASTER_KEY_ENV}: {e}")))
        }
        Err(_) => Err(Failure(format!(
            "no master key: set {MASTER_KEY_ENV} or pass --master-key-file PATH \
             (make one with `keyseal master-key generate --out PATH`)"
        ))),
    }
}

/// Where previous master keys come from besides `--previous-master-key-file`.
pub const PREVIOUS_KEYS_ENV: &str = "KEYSEAL_PREVIOUS_MASTER_KEYS";

/// The master key (current) and the previous ones from `--previous-master-key-file` and
/// `KEYSEAL_PREVIOUS_MASTER_KEYS` (comma or newline separated); never from arguments.
pub fn master_keyring(cli: &Cli) -> Result<MasterKeyring, Failure> {
    let mut ring = MasterKeyring::new(master_key(cli)?);
    for path in &cli.previous_master_key_file {
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
            Failure(format!(
                "cannot read previous master key file {}: {e}",
                path.display()
            ))
        })?);
        let key = parse_master_key(&text)
            .map_err(|e| Failure(format!("previous master key file {}: {e}", path.display())))?;
        ring = ring.with_previous(key);
    }
    if let Ok(text) = std::env::var(PREVIOUS_KEYS_ENV) {
        let text = Zeroizing::new(text);
        for (i, part) in text
            .split([',', '\n'])
            .filter(|p| !p.trim().is_empty())
            .enumerate()
        {
            let key = parse_master_key(part)
                .map_err(|e| Failure(format!("{PREVIOUS_KEYS_ENV}, key {}: {e}", i + 1)))?;
            ring = ring.with_previous(key);
        }
    }
    Ok(ring)
}

/// The `--db` store, refused when SQLite would keep it in memory only: a key created there
/// (shown once) would be lost when keyseal exits.
pub fn store_path(cli: &Cli) -> Result<&Path, Failure> {
    if db_path::is_temporary(&cli.db) {
        return Err(Failure(format!(
            "--db {:?} is not a file: SQLite would keep that database in memory (or in a \
             temporary file) and nothing would be kept after keyseal exits; give a file path",
            cli.db.display().to_string()
        )));
    }
    Ok(&cli.db)
}

/// The key store at `--db`, opened with the master keyring (checked against the store first).
pub fn open_store(cli: &Cli) -> Result<KeyStore, Failure> {
    let path = store_path(cli)?;
    let ring = master_keyring(cli)?;
    KeyStore::open_keyring(path, ring, KeyStoreOptions::default())
        .map_err(|e| Failure(format!("{}: {e}", shown(path))))
}

/// Where the fast-verifier key itself (base64) may be given, besides a file.
pub const VERIFIER_KEY_ENV: &str = "KEYSEAL_VERIFIER_KEY";

/// The fast-verifier key from `--verifier-key-file` / `KEYSEAL_VERIFIER_KEY_FILE`, else from
/// `KEYSEAL_VERIFIER_KEY`; `None` when neither is set. Never from arguments.
pub fn verifier_key(cli: &Cli) -> Result<Option<VerifierKey>, Failure> {
    if let Some(path) = &cli.verifier_key_file {
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
            Failure(format!(
                "cannot read verifier key file {}: {e}",
                path.display()
            ))
        })?);
        return VerifierKey::from_base64(&text)
            .map(Some)
            .map_err(|e| Failure(format!("verifier key file {}: {e}", path.display())));
    }
    match std::env::var(VERIFIER_KEY_ENV) {
        Ok(text) => {
            let text = Zeroizing::new(text);
            VerifierKey::from_base64(&text)
                .map(Some)
                .map_err(|e| Failure(format!("{VERIFIER_KEY_ENV}: {e}")))
        }
        Err(_) => Ok(None),
    }
}

/// The API keys at `--db`, new ones hashed at `--bcrypt-cost`, with the fast verifier when
/// its key is given.
pub fn open_api_keys(cli: &Cli) -> Result<ApiKeys, Failure> {
    let path = store_path(cli)?;
    let mut config = ApiKeysConfig::default().bcrypt_cost(cli.bcrypt_cost);
    if let Some(key) = verifier_key(cli)? {
        config = config.verifier_key(key);
    }
    ApiKeys::open_with(path, config).map_err(|e| Failure(format!("{}: {e}", shown(path))))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hands out its bytes a few at a time, as a pipe does.
    struct Trickle<'a>(&'a [u8]);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = buf.len().min(self.0.len()).min(7);
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn input_longer_than_the_first_buffer_is_read_whole() {
        let long: String = (b'a'..=b'z')
            .cycle()
            .take(3 * FIRST_CAPACITY + 5)
            .map(char::from)
            .collect();
        let text = read_line(format!("{long}\n").as_bytes()).unwrap();
        assert_eq!(*text, long);
        let text = read_line(Trickle(long.as_bytes())).unwrap();
        assert_eq!(*text, long);
    }

    #[test]
    fn one_trailing_newline_is_dropped() {
        assert_eq!(*read_line(&b"sk-1\n"[..]).unwrap(), "sk-1");
        assert_eq!(*read_line(&b"sk-1\r\n"[..]).unwrap(), "sk-1");
        assert_eq!(*read_line(&b"sk-1\n\n"[..]).unwrap(), "sk-1\n");
        assert_eq!(*read_line(&b""[..]).unwrap(), "");
    }

    #[test]
    fn input_that_is_not_utf8_is_refused() {
        let err = read_line(&b"sk-\xff"[..]).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
        assert_eq!(err.to_string(), "stream did not contain valid UTF-8");
    }
}

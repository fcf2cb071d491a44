//! `keyseal master-key generate`: a new master key, to a private file or to stdout.

use std::io::Write;
use std::path::Path;

use keyseal::MasterKey;
use serde_json::json;
use zeroize::Zeroizing;

use crate::args::Cli;
use crate::output::{print, print_secret, Failure, Outcome};

pub fn generate(cli: &Cli, out: Option<&Path>) -> Outcome {
    let key = MasterKey::generate()?;
    let text = Zeroizing::new(key.to_base64());
    let Some(path) = out else {
        return print_secret(cli, json!({ "master_key": *text }), &text);
    };
    write_new_secret_file(path, &text)?;
    Ok(print(
        cli,
        &json!({ "path": path.display().to_string() }),
        &format!("wrote a new master key to {} (mode 0600)", path.display()),
    ))
}

/// Creates `path` (refusing to overwrite) readable by its owner only, and writes `text`.
fn write_new_secret_file(path: &Path, text: &str) -> Result<(), Failure> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .map_err(|e| Failure(format!("cannot create {}: {e}", path.display())))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.write_all(b"\n"))
        .and_then(|()| file.sync_all())
        .map_err(|e| Failure(format!("cannot write {}: {e}", path.display())))
}

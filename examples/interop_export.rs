//! Writes tokens, pool keys and lookup hashes made by keyseal as JSON on stdout, for
//! `tests/python/check_interop.py` to verify with Python's `cryptography` (`make test` runs it).
#![allow(missing_docs)]

use keyseal::{api_key_hash, derive_pool_key, encrypt, DataKey, MasterKey};
use serde_json::json;

fn main() -> Result<(), keyseal::Error> {
    let big = "x".repeat(100_000); // multi-block GCM
    let plaintexts = [
        "",
        "a",
        "sk-proj-AAAAAAAAAAAAAAAAAAAA",
        "héllo wörld",
        "密钥 🔑 ключ",
        "line\nbreak\t\"q\"",
        &big,
    ];
    let mut tokens = Vec::new();
    for text in plaintexts {
        let key = DataKey::generate()?;
        tokens.push(json!({
            "key_b64": key.to_base64(),
            "plaintext": text,
            "token": encrypt(text, &key)?,
        }));
    }
    let mut pool_keys = Vec::new();
    for _ in 0..3 {
        let master = MasterKey::generate()?;
        pool_keys.push(json!({
            "master_key_b64": master.to_base64(),
            "pool_key_b64": derive_pool_key(&master).to_base64(),
        }));
    }
    let api_key_hashes: Vec<_> = ["", "mhu_abc", "ks_live_密钥"]
        .iter()
        .map(|k| json!({"api_key": k, "sha256_hex": api_key_hash(k)}))
        .collect();
    println!(
        "{}",
        json!({"tokens": tokens, "pool_keys": pool_keys, "api_key_hashes": api_key_hashes})
    );
    Ok(())
}

//! Generated base64 texts and real Python's verdict on them (`tests/python/b64_oracle.py`).
//! Shared by the base64 property tests (tokens, keys, `API_KEY_MASTER_KEY`, key files).
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

use keyseal::DataKey;
use proptest::prelude::*;
use serde_json::{json, Value};

use super::process::run_with_stdin;

/// What Python is asked about a text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `urlsafe_b64decode(text)`.
    Decode,
    /// The seed module's `decrypt(text, key)`.
    Token,
    /// The seed module's `resolve_master_key()` with the variable set to `text`.
    Master,
}

#[derive(Debug, Clone)]
pub struct Case {
    pub kind: Kind,
    pub text: String,
    /// The data key's byte (all 32 bytes equal), for tokens.
    pub key_seed: u8,
}

impl Case {
    pub fn token(text: String, key_seed: u8) -> Case {
        Case {
            kind: Kind::Token,
            text,
            key_seed,
        }
    }

    pub fn master(text: String) -> Case {
        Case {
            kind: Kind::Master,
            text,
            key_seed: 0,
        }
    }

    pub fn key(&self) -> DataKey {
        DataKey::from_bytes(&[self.key_seed; 32]).unwrap()
    }

    fn request(&self) -> Value {
        match self.kind {
            Kind::Decode => json!({ "kind": "decode", "text": self.text }),
            Kind::Token => {
                json!({ "kind": "token", "text": self.text, "key": self.key().to_base64() })
            }
            Kind::Master => json!({ "kind": "master", "text": self.text }),
        }
    }
}

/// Standard padded base64, independent of the crate under test.
pub fn std_b64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Characters inserted as junk: white space (ASCII and not), punctuation, controls, padding,
/// and non-ASCII text.
const JUNK: &[&str] = &[
    " ", "\t", "\n", "\r\n", "!", "*", ".", ":", "@", "\u{1}", "\u{1c}", "\u{7f}", "=", "==",
    "===", "\u{e9}", "\u{a0}", "\u{2003}", "\u{3000}", "\u{85}", "\u{feff}", "v2:", "\\",
];
/// Characters appended after the padding.
const TAIL: &[&str] = &["A", "QQ==", "AAAA", "x", "=", "-_", "+/", "abc=", " ", "é"];
/// White space around a master key (the module strips it).
const AROUND: &[&str] = &[
    "", "", " ", "\n", "\t", "\r\n", "\u{a0}", "\u{2003}", "\u{1c}", "\u{b}",
];

/// One text: a real token, key or random base64, then up to 6 edits.
pub fn case_strategy() -> impl Strategy<Value = Case> {
    (
        0u8..3,
        proptest::collection::vec(any::<u8>(), 0..48),
        any::<u8>(),
        any::<bool>(),
        proptest::collection::vec((0u8..8, any::<usize>(), any::<u8>()), 0..6),
        (0..AROUND.len(), 0..AROUND.len()),
    )
        .prop_map(|(kind, bytes, key_seed, prefix, edits, (left, right))| {
            let kind = [Kind::Decode, Kind::Token, Kind::Master][usize::from(kind)];
            let key = DataKey::from_bytes(&[key_seed; 32]).unwrap();
            let mut text = match kind {
                Kind::Token => {
                    let token = keyseal::encrypt_bytes(&bytes, &key).unwrap();
                    if prefix {
                        token
                    } else {
                        token[3..].to_owned()
                    }
                }
                // Mostly 32 bytes (a key), sometimes any length.
                Kind::Master | Kind::Decode if bytes.len() % 3 != 0 => {
                    let mut key_bytes = bytes.clone();
                    key_bytes.resize(32, key_seed);
                    key_b64(&key_bytes)
                }
                _ => key_b64(&bytes),
            };
            for (op, at, pick) in edits {
                edit(&mut text, op, at, pick);
            }
            if kind == Kind::Master {
                text = format!("{}{text}{}", AROUND[left], AROUND[right]);
            }
            Case {
                kind,
                text,
                key_seed,
            }
        })
}

/// Url-safe padded base64 (what keyseal writes).
fn key_b64(bytes: &[u8]) -> String {
    std_b64(bytes).replace('+', "-").replace('/', "_")
}

/// Applies one edit to `text` at a position derived from `at`.
fn edit(text: &mut String, op: u8, at: usize, pick: u8) {
    let positions: Vec<usize> = text
        .char_indices()
        .map(|(i, _)| i)
        .chain([text.len()])
        .collect();
    let pos = positions[at % positions.len()];
    let pick = usize::from(pick);
    match op {
        // The other alphabet, everywhere or from one point on.
        0 => {
            let (head, tail) = text.split_at(pos);
            *text = format!("{head}{}", tail.replace('-', "+").replace('_', "/"));
        }
        1 | 2 => text.insert_str(pos, JUNK[pick % JUNK.len()]),
        // Data after the padding.
        3 => text.push_str(TAIL[pick % TAIL.len()]),
        // Padding dropped.
        4 => *text = text.trim_end_matches('=').to_owned(),
        // Padding added.
        5 => text.push_str(&"=".repeat(1 + pick % 3)),
        // A character removed.
        6 => {
            if pos < text.len() {
                text.remove(pos);
            }
        }
        // A padding character moved inside.
        _ => {
            if text.ends_with('=') {
                text.pop();
                let pos = pos.min(text.len());
                let pos = if text.is_char_boundary(pos) { pos } else { 0 };
                text.insert(pos, '=');
            }
        }
    }
}

/// Python's answer for each case, in order (one `python3` process for all of them).
pub fn python_answers(cases: &[Case]) -> Vec<Value> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/b64_oracle.py");
    let mut input = String::new();
    for case in cases {
        input.push_str(&case.request().to_string());
        input.push('\n');
    }
    let output = run_with_stdin(Command::new("python3").arg(script), input.as_bytes());
    assert!(
        output.status.success(),
        "the Python oracle failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let answers: Vec<Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(answers.len(), cases.len());
    answers
}

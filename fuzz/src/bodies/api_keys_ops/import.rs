//! `import_legacy` steps of `api_keys_ops`: the hash, prefix, lookup and key id choices and
//! what the docs say each must give.

use keyseal::{Environment, LegacyKey};

use super::model::{Inst, Legacy, MKey};
use super::{expiry_at, Expiry, HashKind, KeyIdChoice, Run};
use crate::bodies::util::{broken, chars_from_seed, Stop, URL_SAFE};

/// A well-formed bcrypt hash of cost `cost` with characters from `seed` (never the hash of
/// anything we present).
fn fake_hash(cost: u32, seed: u64) -> String {
    let alphabet = b"./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    format!("$2b${cost:02}${}", chars_from_seed(seed, 53, alphabet))
}

/// `Some(cost)` when `h` is shaped as the docs accept (`$2a$`/`$2b$`/`$2y$`, cost 4..=31).
fn hash_cost(h: &str) -> Option<u32> {
    let b = h.as_bytes();
    let ok = b.len() == 60
        && matches!(&b[..4], b"$2a$" | b"$2b$" | b"$2y$")
        && b[6] == b'$'
        && b[7..]
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || c == b'.' || c == b'/');
    let cost = std::str::from_utf8(b.get(4..6)?)
        .ok()?
        .parse::<u32>()
        .ok()?;
    (ok && (4..=31).contains(&cost)).then_some(cost)
}

impl Run {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn import(
        &mut self,
        user: &str,
        prefix: &str,
        body_len: usize,
        lookup_len: usize,
        seed: u64,
        hash: HashKind,
        expiry: Expiry,
        key_id: KeyIdChoice,
        inst: Inst,
    ) -> Result<(), Stop> {
        let lookup_len = lookup_len.min(body_len);
        let key = format!("{prefix}{}", chars_from_seed(seed, body_len, URL_SAFE));
        let lookup = key[prefix.len()..prefix.len() + lookup_len].to_owned();
        let real = || bcrypt::hash(&key, 4).expect("bcrypt");
        let bcrypt_hash = match &hash {
            HashKind::Real => real(),
            HashKind::Real2a => real().replacen("$2b$", "$2a$", 1),
            HashKind::Real2y => real().replacen("$2b$", "$2y$", 1),
            HashKind::Garbage(s) => s.clone(),
            HashKind::Costly(c) => fake_hash(17 + u32::from(*c % 15), seed),
        };
        let hash_ok = matches!(hash, HashKind::Real | HashKind::Real2a | HashKind::Real2y);
        let cost = hash_cost(&bcrypt_hash);
        let given_taken = matches!(key_id, KeyIdChoice::Existing(_) | KeyIdChoice::Given(_));
        let (given_id, id_ok) = match key_id {
            KeyIdChoice::Drawn => (None, true),
            KeyIdChoice::Given(n) => {
                let id = format!("legacy-{n}");
                let free = !self.m.keys.iter().any(|k| k.key_id == id);
                (Some(id), free)
            }
            KeyIdChoice::Existing(i) if !self.m.keys.is_empty() => {
                let i = usize::from(i) % self.m.keys.len();
                (Some(self.m.keys[i].key_id.clone()), false)
            }
            KeyIdChoice::Existing(_) => (None, true),
            KeyIdChoice::Bad => (Some("has space".into()), false),
        };
        let legacy = LegacyKey {
            prefix: prefix.to_owned(),
            lookup: lookup.clone(),
            key_id: given_id,
            user_id: user.to_owned(),
            name: "legacy".into(),
            scopes: vec!["read".into(), "write".into()],
            bcrypt_hash,
            created_at: None,
            expires_at: expiry_at(expiry),
        };
        let shape_ok = !prefix.is_empty() && cost.is_some() && id_ok;
        match self.api(inst).import_legacy(&legacy) {
            Ok(info) => {
                if !shape_ok {
                    return Err(broken(None, &format!("import accepted {legacy:?}")));
                }
                let cost = cost.expect("checked");
                let slow = cost > 6;
                self.m.keys.push(MKey {
                    key,
                    key_id: info.key_id.clone(),
                    user: user.to_owned(),
                    legacy: Some(Legacy {
                        prefix: prefix.to_owned(),
                        lookup,
                        hash_ok,
                        slow,
                        imported_by: inst,
                    }),
                    revoked: false,
                    expired: matches!(expiry, Expiry::Past),
                    rotated: false,
                    rate: None,
                    expires_later: matches!(expiry, Expiry::Later),
                    environment: Environment::Live,
                });
                let f = (prefix.to_owned(), lookup_len);
                if !self.m.formats.contains(&f) {
                    self.m.formats.push(f.clone());
                }
                if !self.m.formats_seen[inst].contains(&f) {
                    self.m.formats_seen[inst].push(f);
                }
                if cost > 16 {
                    return Err(broken(
                        Some("11: import of bcrypt cost over 16"),
                        &format!("import accepted a hash of cost {cost}"),
                    ));
                }
            }
            Err(e) => {
                if shape_ok && cost.is_some_and(|c| c <= 16) {
                    return Err(broken(None, &format!("import refused {legacy:?}: {e}")));
                }
                assert_eq!(e.code(), "invalid_argument", "import error");
                // A key id already in use is found at the insert, after the format was
                // registered: the format stays (and may shadow others' lookups).
                if !prefix.is_empty() && cost.is_some() && given_taken {
                    let f = (prefix.to_owned(), lookup_len);
                    if !self.m.formats.contains(&f) {
                        self.m.formats.push(f);
                    }
                }
            }
        }
        Ok(())
    }
}

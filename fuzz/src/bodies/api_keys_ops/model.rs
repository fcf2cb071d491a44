//! The model of `ApiKeys`: what README.md and the API docs promise about each key.

use std::collections::HashMap;

/// Which instance: A (reopened by `Reopen`) or B (a second `ApiKeys` on the same file).
pub type Inst = usize;

/// What is known about one key.
#[derive(Debug, Clone)]
pub struct MKey {
    pub key: String,
    pub key_id: String,
    pub user: String,
    /// Imported with `import_legacy` (plain bcrypt of the key).
    pub legacy: Option<Legacy>,
    pub revoked: bool,
    /// Past its expiry (created already expired, or rotated with no grace).
    pub expired: bool,
    /// Replaced by a rotation (valid in its grace period unless `expired`).
    pub rotated: bool,
    /// Requests per hour, if rate limited.
    pub rate: Option<u32>,
    /// The expiry is a day ahead (carried over by rotation).
    pub expires_later: bool,
    pub environment: keyseal::Environment,
}

/// A legacy key's import details.
#[derive(Debug, Clone)]
pub struct Legacy {
    pub prefix: String,
    pub lookup: String,
    /// Its hash is the key's own bcrypt (else an arbitrary, well-formed hash: never valid).
    pub hash_ok: bool,
    /// Its hash has a cost over 6: too slow to verify in a fuzz loop.
    pub slow: bool,
    /// The instance that imported it.
    pub imported_by: Inst,
}

/// What `verify` must answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    Valid,
    Revoked,
    Expired,
    RateLimited,
    Unknown,
    /// Only ever an answer: no key of the model is malformed.
    Malformed,
}

/// The whole model.
#[derive(Debug, Default)]
pub struct Model {
    pub keys: Vec<MKey>,
    pub quota: u32,
    /// Successful verifications per key index, by every instance since the run began: a rate
    /// limit holds across every process sharing the store, and its window (an hour here)
    /// outlives a reopened instance.
    pub used: HashMap<usize, u32>,
    /// Legacy formats (prefix, lookup length) each instance has loaded or imported itself.
    pub formats_seen: [Vec<(String, usize)>; 2],
    /// All registered legacy formats, in order of registration.
    pub formats: Vec<(String, usize)>,
}

impl Model {
    /// What verifying key `i` on instance `inst` must give now (`None`: not to be verified,
    /// its hash is too slow).
    pub fn expect(&self, i: usize, _inst: Inst) -> Option<Expect> {
        let k = &self.keys[i];
        if self.slow_lookup(i) {
            return None;
        }
        Some(if k.revoked {
            Expect::Revoked
        } else if k.expired {
            Expect::Expired
        } else if k.legacy.as_ref().is_some_and(|l| !l.hash_ok) {
            Expect::Unknown
        } else if k
            .rate
            .is_some_and(|n| self.used.get(&i).copied().unwrap_or(0) >= n)
        {
            Expect::RateLimited
        } else {
            Expect::Valid
        })
    }

    /// Whether a key sharing key `i`'s lookup has a slow hash (verifying would run it).
    pub fn slow_lookup(&self, i: usize) -> bool {
        let Some(l) = &self.keys[i].legacy else {
            return false;
        };
        self.keys.iter().any(|o| {
            o.legacy
                .as_ref()
                .is_some_and(|ol| ol.slow && ol.lookup == l.lookup)
        })
    }

    /// Whether any slow legacy hash is stored under `lookup`.
    pub fn slow_for_lookup(&self, lookup: &str) -> bool {
        self.keys.iter().any(|o| {
            o.legacy
                .as_ref()
                .is_some_and(|ol| ol.slow && ol.lookup == lookup)
        })
    }

    /// Another legacy row shares key `i`'s lookup (then a refusal's reason may differ).
    pub fn shared_lookup(&self, i: usize) -> bool {
        let Some(l) = &self.keys[i].legacy else {
            return false;
        };
        self.keys
            .iter()
            .enumerate()
            .any(|(j, o)| j != i && o.legacy.as_ref().is_some_and(|ol| ol.lookup == l.lookup))
    }

    /// Keys of `user` that validate now, imported ones and ones in a rotation's grace
    /// included: what the quota counts.
    pub fn valid(&self, user: &str) -> u32 {
        self.count(user, |k| !k.revoked && !k.expired)
    }

    /// Issued (not legacy) keys of `user` that validate now.
    pub fn valid_issued(&self, user: &str) -> u32 {
        self.count(user, |k| k.legacy.is_none() && !k.revoked && !k.expired)
    }

    fn count(&self, user: &str, f: impl Fn(&MKey) -> bool) -> u32 {
        let n = self.keys.iter().filter(|k| k.user == user && f(k)).count();
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    /// Which known defect a legacy key that should validate but does not may hit: its
    /// format is shadowed by another registered format (a shared prefix), or it was
    /// registered by the other instance, or more than 16 rows share its lookup.
    pub fn legacy_lookup_defect(&self, i: usize, inst: Inst) -> bool {
        let Some(l) = &self.keys[i].legacy else {
            return false;
        };
        let own = (l.prefix.clone(), l.lookup.len());
        let key = &self.keys[i].key;
        let shadowed = self
            .formats
            .iter()
            .any(|f| *f != own && key.starts_with(f.0.as_str()));
        let unseen = !self.formats_seen[inst].contains(&own);
        let crowded = self
            .keys
            .iter()
            .filter(|o| o.legacy.as_ref().is_some_and(|ol| ol.lookup == l.lookup))
            .count()
            > 16;
        shadowed || unseen || crowded
    }
}

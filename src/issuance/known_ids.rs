//! The in-memory filter of every lookup value in storage: a key whose id is not in it is
//! refused as unknown without a database read.

use std::collections::HashSet;
use std::hash::{BuildHasher, BuildHasherDefault, RandomState};
use std::sync::{PoisonError, RwLock};

use super::cache::UniformHasher;

/// Keyed 64-bit hashes of lookup values (keyed per process, so an attacker cannot aim
/// collisions at it).
pub(crate) struct KnownIds {
    hashes: RwLock<HashSet<u64, BuildHasherDefault<UniformHasher>>>,
    hasher: RandomState,
}

impl KnownIds {
    pub(crate) fn new<'a>(lookups: impl ExactSizeIterator<Item = &'a str>) -> Self {
        let keyed = RandomState::new();
        let mut set =
            HashSet::with_capacity_and_hasher(lookups.len(), BuildHasherDefault::default());
        set.extend(lookups.map(|l| keyed.hash_one(l)));
        KnownIds {
            hashes: RwLock::new(set),
            hasher: keyed,
        }
    }

    pub(crate) fn contains(&self, lookup: &str) -> bool {
        let h = self.hasher.hash_one(lookup);
        self.hashes
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(&h)
    }

    /// Adds lookup values (one write lock for all of them).
    pub(crate) fn extend<'a>(&self, lookups: impl IntoIterator<Item = &'a str>) {
        let mut lookups = lookups.into_iter().peekable();
        if lookups.peek().is_none() {
            return;
        }
        let mut hashes = self.hashes.write().unwrap_or_else(PoisonError::into_inner);
        hashes.extend(lookups.map(|l| self.hasher.hash_one(l)));
    }
}

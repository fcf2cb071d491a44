//! An in-memory cache of unwrapped data keys, sharded to scale with threads.
//!
//! # Security
//! Each key lives in its own heap box that is zeroized when evicted or dropped; growing a
//! shard's table moves only the pointers, never the key bytes. The cache holds data keys, not
//! wrapped blobs, so it stays correct across master key rotation (rotation never changes a
//! data key).

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{PoisonError, RwLock};

use zeroize::Zeroizing;

use super::wrap::KeyBytes;
use crate::{DataKey, KEY_LEN};

const SHARDS: usize = 16;

pub(crate) struct KeyCache {
    shards: Vec<RwLock<HashMap<Box<str>, KeyBytes>>>,
    hasher: RandomState,
    per_shard: usize,
}

impl KeyCache {
    /// A cache holding about `capacity` keys (0 disables it).
    pub(crate) fn new(capacity: usize) -> Self {
        KeyCache {
            shards: (0..SHARDS).map(|_| RwLock::new(HashMap::new())).collect(),
            hasher: RandomState::new(),
            per_shard: capacity.div_ceil(SHARDS),
        }
    }

    fn shard(&self, user_id: &str) -> &RwLock<HashMap<Box<str>, KeyBytes>> {
        // Truncation is fine: only the low bits pick the shard.
        #[allow(clippy::cast_possible_truncation)]
        let h = self.hasher.hash_one(user_id) as usize;
        &self.shards[h % SHARDS]
    }

    /// A fresh `DataKey` for a cached user.
    pub(crate) fn get(&self, user_id: &str) -> Option<DataKey> {
        if self.per_shard == 0 {
            return None;
        }
        let shard = self
            .shard(user_id)
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        shard.get(user_id).map(|k| to_data_key(k))
    }

    /// Remembers a user's key and returns a `DataKey` for it.
    pub(crate) fn insert(&self, user_id: &str, key: KeyBytes) -> DataKey {
        let data_key = to_data_key(&key);
        if self.per_shard > 0 {
            let mut shard = self
                .shard(user_id)
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            if shard.len() >= self.per_shard && !shard.contains_key(user_id) {
                // Simple bounded memory: start the shard over (keys are zeroized on drop).
                shard.clear();
            }
            shard.insert(user_id.into(), key);
        }
        data_key
    }
}

fn to_data_key(key: &[u8; KEY_LEN]) -> DataKey {
    DataKey::from_array(Zeroizing::new(*key))
}

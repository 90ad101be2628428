//! The in-memory cache of issued key sets, keyed by (certificate, identity, period). Entries are
//! `Arc<KeySet>`; a key set's secret parts zeroize when the last reference drops, so eviction
//! (LRU, bounded) wipes them as soon as no response is still being rendered from them.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use lru::LruCache;

use crate::kms::provision::KeySet;

type Key = (String, String, u64);

pub struct KeySetCache(Mutex<LruCache<Key, Arc<KeySet>>>);

impl KeySetCache {
    pub fn new(entries: usize) -> Self {
        let cap = NonZeroUsize::new(entries.max(1)).unwrap_or(NonZeroUsize::MIN);
        Self(Mutex::new(LruCache::new(cap)))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LruCache<Key, Arc<KeySet>>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn get(&self, cert_uri: &str, identity: &str, period: u64) -> Option<Arc<KeySet>> {
        self.lock()
            .get(&(cert_uri.to_owned(), identity.to_owned(), period))
            .cloned()
    }

    pub fn insert(&self, set: Arc<KeySet>) {
        let key = (set.cert_uri.clone(), set.user_uri.clone(), set.period_no);
        self.lock().put(key, set);
    }

    /// Drops every entry of an identity (revocation) or of a certificate (revocation).
    pub fn purge(&self, pred: impl Fn(&KeySet) -> bool) {
        let mut c = self.lock();
        let keys: Vec<Key> = c
            .iter()
            .filter(|(_, v)| pred(v))
            .map(|(k, _)| k.clone())
            .collect();
        for k in keys {
            c.pop(&k);
        }
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

//! [`CachedStore`]: a store with the recently read and written entries of another in memory,
//! for the point lookups of joins, which otherwise pay RocksDB's index and block search for
//! every stream record.

use std::collections::HashMap;
use std::sync::{Arc, RwLock, RwLockReadGuard};

use eddy_topic::Payloads;

use crate::error::StateError;
use crate::store::KeyValueStore;

/// Bytes an entry costs beyond its key and value (map slot, boxes, allocator).
const ENTRY_OVERHEAD: usize = 64;

/// A write-through cache in front of a store: reads are answered from memory where it holds
/// the key (also a known absence), writes go to both. Every write to the store must go
/// through this handle. When the entries exceed the budget the cache starts over, so hot
/// keys come back at once and memory stays bounded.
///
/// A cache that starts with every entry of its store (see [`CachedStore::complete`]) knows
/// that a key it does not hold is absent, and answers without asking the store, until it
/// first outgrows its budget.
pub struct CachedStore {
    inner: Arc<dyn KeyValueStore>,
    budget_bytes: usize,
    cache: RwLock<Cache>,
}

/// Key → value, `None` for a key known to be absent.
type Entries = HashMap<Box<[u8]>, Option<Box<[u8]>>, foldhash::fast::RandomState>;

#[derive(Default)]
struct Cache {
    entries: Entries,
    bytes: usize,
    /// Counts writes, so a read does not cache what a write replaced meanwhile.
    writes: u64,
    /// Holds every entry of the store: a key not held is absent.
    complete: bool,
}

impl Cache {
    fn put(&mut self, key: &[u8], value: Option<&[u8]>, budget: usize) {
        if value.is_none() && self.complete {
            // A complete cache knows absence without an entry.
            if let Some(old) = self.entries.remove(key) {
                self.bytes -= key.len() + old.map_or(0, |v| v.len()) + ENTRY_OVERHEAD;
            }
            return;
        }
        let size = key.len() + value.map_or(0, <[u8]>::len) + ENTRY_OVERHEAD;
        if let Some(old) = self.entries.insert(key.into(), value.map(Into::into)) {
            self.bytes -= key.len() + old.map_or(0, |v| v.len()) + ENTRY_OVERHEAD;
        }
        self.bytes += size;
        if self.bytes > budget {
            self.forget();
        }
    }

    fn forget(&mut self) {
        self.entries.clear();
        self.bytes = 0;
        self.complete = false;
    }
}

impl CachedStore {
    /// Caches `inner`'s entries within about `budget_bytes` of memory.
    pub fn new(inner: Arc<dyn KeyValueStore>, budget_bytes: usize) -> Self {
        Self {
            inner,
            budget_bytes,
            cache: RwLock::new(Cache::default()),
        }
    }

    /// Like [`CachedStore::new`], but first reads every entry of `inner` if they fit in the
    /// budget: then lookups of absent keys (an aggregation's new groups, a join's unmatched
    /// keys) never reach the store while the cache stays within its budget.
    pub fn complete(
        inner: Arc<dyn KeyValueStore>,
        budget_bytes: usize,
    ) -> Result<Self, StateError> {
        let mut cache = Cache {
            complete: true,
            ..Cache::default()
        };
        inner.scan(&mut |k, v| {
            cache.put(k, Some(v), budget_bytes);
            cache.complete
        })?;
        Ok(Self {
            inner,
            budget_bytes,
            cache: RwLock::new(cache),
        })
    }

    fn read(&self) -> RwLockReadGuard<'_, Cache> {
        self.cache.read().unwrap_or_else(|p| p.into_inner())
    }
}

impl KeyValueStore for CachedStore {
    fn get_many(&self, keys: &Payloads, out: &mut Payloads) -> Result<(), StateError> {
        let cache = self.read();
        let mut cached: Vec<Option<Option<&[u8]>>> = Vec::with_capacity(keys.len());
        let mut misses = Payloads::new();
        for key in keys.iter() {
            let hit = key.and_then(|k| match cache.entries.get(k) {
                Some(v) => Some(v.as_deref()),
                None if cache.complete => Some(None),
                None => None,
            });
            if hit.is_none() && key.is_some() {
                misses.push(key);
            }
            cached.push(hit);
        }
        let mut found = Payloads::new();
        if !misses.is_empty() {
            // Under the read lock: no write lands between this read and what it answers.
            self.inner.get_many(&misses, &mut found)?;
        }
        let mut next_miss = 0;
        for (key, hit) in keys.iter().zip(&cached) {
            match (key, hit) {
                (None, _) => out.push(None),
                (Some(_), Some(value)) => out.push(*value),
                (Some(_), None) => {
                    out.push(found.get(next_miss));
                    next_miss += 1;
                }
            }
        }
        let writes = cache.writes;
        drop(cache);
        if !misses.is_empty() {
            let mut cache = self.cache.write().unwrap_or_else(|p| p.into_inner());
            if cache.writes == writes {
                for (i, key) in misses.iter().enumerate() {
                    if let Some(k) = key {
                        cache.put(k, found.get(i), self.budget_bytes);
                    }
                }
            }
        }
        Ok(())
    }

    fn write(&self, keys: &Payloads, values: &Payloads) -> Result<(), StateError> {
        let mut cache = self.cache.write().unwrap_or_else(|p| p.into_inner());
        cache.writes += 1;
        if let Err(e) = self.inner.write(keys, values) {
            // Part of a failed write may have landed: forget rather than guess.
            cache.forget();
            return Err(e);
        }
        for (key, value) in keys.iter().zip(values.iter()) {
            if let Some(k) = key {
                cache.put(k, value, self.budget_bytes);
            }
        }
        Ok(())
    }

    fn scan_range(
        &self,
        start: &[u8],
        end: Option<&[u8]>,
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), StateError> {
        self.inner.scan_range(start, end, visit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{lookup, payloads, scan_all};
    use crate::{MemoryBackend, StateBackend};

    #[test]
    fn reads_writes_and_deletes_go_through_the_cache_consistently() {
        let backend = MemoryBackend::new();
        let inner = backend.open_store("t").expect("open");
        inner
            .write(&payloads(&[Some(b"a")]), &payloads(&[Some(b"1")]))
            .expect("write");
        let store = CachedStore::new(inner, 1 << 20);
        let keys: [Option<&[u8]>; 4] = [Some(b"a"), None, Some(b"b"), Some(b"a")];
        let expected = vec![Some(b"1".to_vec()), None, None, Some(b"1".to_vec())];
        assert_eq!(
            lookup(&store, &keys),
            expected,
            "first read, from the store"
        );
        assert_eq!(
            lookup(&store, &keys),
            expected,
            "second read, from the cache"
        );
        store
            .write(
                &payloads(&[Some(b"b"), Some(b"a")]),
                &payloads(&[Some(b"2"), None]),
            )
            .expect("write");
        assert_eq!(
            lookup(&store, &keys),
            vec![None, None, Some(b"2".to_vec()), None],
            "a write replaces cached values and known absences"
        );
        assert_eq!(scan_all(&store), vec![(b"b".to_vec(), b"2".to_vec())]);
    }

    #[test]
    fn a_complete_cache_answers_absent_keys_itself_until_it_outgrows_its_budget() {
        let backend = MemoryBackend::new();
        let inner = backend.open_store("t").expect("open");
        inner
            .write(&payloads(&[Some(b"a")]), &payloads(&[Some(b"1")]))
            .expect("write");
        let store = CachedStore::complete(Arc::clone(&inner), 1_000).expect("complete");
        assert!(store.read().complete);
        // Written behind the cache's back: a complete cache does not see it (which is why
        // every write must go through the cache).
        inner
            .write(&payloads(&[Some(b"b")]), &payloads(&[Some(b"2")]))
            .expect("write");
        assert_eq!(
            lookup(&store, &[Some(b"a"), Some(b"b")]),
            vec![Some(b"1".to_vec()), None]
        );
        store
            .write(
                &payloads(&[Some(b"c"), Some(b"a")]),
                &payloads(&[Some(b"3"), None]),
            )
            .expect("write");
        assert_eq!(
            lookup(&store, &[Some(b"a"), Some(b"c")]),
            vec![None, Some(b"3".to_vec())]
        );
        let big = vec![0u8; 2_000];
        store
            .write(&payloads(&[Some(b"d")]), &payloads(&[Some(&big[..])]))
            .expect("write");
        assert!(!store.read().complete, "over budget: no longer complete");
        assert_eq!(
            lookup(&store, &[Some(b"b"), Some(b"d")]),
            vec![Some(b"2".to_vec()), Some(big.clone())],
            "the store answers again"
        );
        let store = CachedStore::complete(inner, 1_000).expect("too big to load");
        assert!(!store.read().complete);
    }

    #[test]
    fn over_its_budget_the_cache_starts_over_and_still_answers() {
        let backend = MemoryBackend::new();
        let store = CachedStore::new(backend.open_store("t").expect("open"), 200);
        for i in 0..20u8 {
            store
                .write(&payloads(&[Some(&[i])]), &payloads(&[Some(&[i, i])]))
                .expect("write");
        }
        let cache = store.read();
        assert!(cache.bytes <= 200, "{} bytes cached", cache.bytes);
        drop(cache);
        for i in 0..20u8 {
            assert_eq!(lookup(&store, &[Some(&[i])]), vec![Some(vec![i, i])]);
        }
    }
}

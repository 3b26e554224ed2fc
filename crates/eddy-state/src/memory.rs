//! [`MemoryBackend`]: stores in `BTreeMap`s, for `eddy test` and unit tests.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use eddy_topic::Payloads;

use crate::error::StateError;
use crate::store::{KeyValueStore, StateBackend, check_name, check_write};

/// Stores that live in memory and vanish with the process; same semantics as
/// [`RocksBackend`](crate::RocksBackend).
#[derive(Debug, Default)]
pub struct MemoryBackend {
    stores: Mutex<HashMap<String, Arc<MemoryStore>>>,
}

impl MemoryBackend {
    /// A backend with no stores.
    pub fn new() -> Self {
        Self::default()
    }
}

impl StateBackend for MemoryBackend {
    fn open_store(&self, name: &str) -> Result<Arc<dyn KeyValueStore>, StateError> {
        check_name(name)?;
        let mut stores = self.stores.lock().unwrap_or_else(PoisonError::into_inner);
        let store = stores
            .entry(name.to_owned())
            .or_insert_with(|| Arc::new(MemoryStore::new(name)));
        Ok(store.clone())
    }

    fn drop_store(&self, name: &str) -> Result<(), StateError> {
        let mut stores = self.stores.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(store) = stores.remove(name) {
            store.dropped.store(true, Ordering::Release);
            store.entries().clear();
        }
        Ok(())
    }

    fn store_names(&self) -> Result<Vec<String>, StateError> {
        let stores = self.stores.lock().unwrap_or_else(PoisonError::into_inner);
        let mut names: Vec<String> = stores.keys().cloned().collect();
        names.sort();
        Ok(names)
    }
}

/// One in-memory store.
#[derive(Debug)]
struct MemoryStore {
    name: String,
    dropped: AtomicBool,
    entries: RwLock<BTreeMap<Vec<u8>, Vec<u8>>>,
}

impl MemoryStore {
    fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            dropped: AtomicBool::new(false),
            entries: RwLock::new(BTreeMap::new()),
        }
    }

    fn check_live(&self) -> Result<(), StateError> {
        if self.dropped.load(Ordering::Acquire) {
            return Err(StateError::StoreDropped(self.name.clone()));
        }
        Ok(())
    }

    /// Writable entries. A panic while the lock was held cannot leave a half-applied write
    /// visible in a way RocksDB would not, so a poisoned lock is simply taken over.
    fn entries(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<Vec<u8>, Vec<u8>>> {
        self.entries.write().unwrap_or_else(PoisonError::into_inner)
    }
}

impl KeyValueStore for MemoryStore {
    fn get_many(&self, keys: &Payloads, out: &mut Payloads) -> Result<(), StateError> {
        self.check_live()?;
        let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
        for key in keys.iter() {
            out.push(key.and_then(|k| entries.get(k)).map(Vec::as_slice));
        }
        Ok(())
    }

    fn write(&self, keys: &Payloads, values: &Payloads) -> Result<(), StateError> {
        self.check_live()?;
        check_write(&self.name, keys, values)?;
        // One lock for the whole write: readers see all of it or none of it.
        let mut entries = self.entries();
        for (key, value) in keys.iter().flatten().zip(values.iter()) {
            match value {
                Some(value) => {
                    entries.insert(key.to_vec(), value.to_vec());
                }
                None => {
                    entries.remove(key);
                }
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
        self.check_live()?;
        let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
        let upper = end.map_or(Bound::Unbounded, Bound::Excluded);
        if end.is_some_and(|end| end <= start) {
            return Ok(());
        }
        for (key, value) in entries.range::<[u8], _>((Bound::Included(start), upper)) {
            if !visit(key, value) {
                break;
            }
        }
        Ok(())
    }
}

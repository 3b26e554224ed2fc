//! The store traits every backend implements.

use std::sync::Arc;

use eddy_topic::Payloads;

use crate::error::StateError;

/// One named key-value store: the materialised state of a table or an aggregate.
///
/// Keys and values are opaque bytes, ordered by unsigned bytewise comparison. Calls block
/// (RocksDB reads and writes disk), so they belong on a query's own thread, never on the
/// async executor. A scan's `visit` must not write to the store it scans (the in-memory
/// store holds its lock while visiting).
pub trait KeyValueStore: Send + Sync {
    /// Looks up every key of `keys`; appends one entry per key to `out` (None for a miss or a null key).
    fn get_many(&self, keys: &Payloads, out: &mut Payloads) -> Result<(), StateError>;

    /// Applies puts (Some value) and deletes (None value) atomically, in order; a null key fails the whole write.
    fn write(&self, keys: &Payloads, values: &Payloads) -> Result<(), StateError>;

    /// Visits entries with `start <= key < end` (no `end`: to the last key) in key order, until `visit` returns false.
    fn scan_range(
        &self,
        start: &[u8],
        end: Option<&[u8]>,
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), StateError>;

    /// Visits every entry in key order, until `visit` returns false (for pull-query scans).
    fn scan(&self, visit: &mut dyn FnMut(&[u8], &[u8]) -> bool) -> Result<(), StateError> {
        self.scan_range(&[], None, visit)
    }

    /// Visits the entries whose key starts with `prefix` in key order, until `visit` returns false.
    fn scan_prefix(
        &self,
        prefix: &[u8],
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), StateError> {
        self.scan_range(prefix, prefix_end(prefix).as_deref(), visit)
    }

    /// Makes every write so far reach the store's own storage, for a store that holds writes
    /// in memory (see [`KeyValueStore::holds_writes`]); nothing for the others.
    fn persist(&self) -> Result<(), StateError> {
        Ok(())
    }

    /// Whether writes may stay in memory until [`KeyValueStore::persist`] (and be lost with
    /// the process before it).
    fn holds_writes(&self) -> bool {
        false
    }

    /// Bytes of entries held in memory in front of the store's own storage (0 for a store
    /// that holds none).
    fn held_bytes(&self) -> usize {
        0
    }

    /// The value stored under one key (for pull queries by key; batch lookups use `get_many`).
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        let mut keys = Payloads::with_capacity(1, key.len());
        keys.push(Some(key));
        let mut out = Payloads::new();
        self.get_many(&keys, &mut out)?;
        Ok(out.get(0).map(<[u8]>::to_vec))
    }
}

/// A place where named stores live: RocksDB on disk or memory.
pub trait StateBackend: Send + Sync {
    /// Opens store `name`, creating it empty if needed; every handle of a name sees the same data.
    fn open_store(&self, name: &str) -> Result<Arc<dyn KeyValueStore>, StateError>;

    /// Deletes store `name` and its data (nothing if it does not exist); its open handles fail afterwards.
    fn drop_store(&self, name: &str) -> Result<(), StateError>;

    /// The names of the existing stores, including those kept from an earlier run.
    fn store_names(&self) -> Result<Vec<String>, StateError>;

    /// Each store's estimated size on its storage, in bytes, for metrics; none where the
    /// backend cannot tell.
    fn store_sizes(&self) -> Result<Vec<(String, u64)>, StateError> {
        Ok(Vec::new())
    }
}

/// The smallest key greater than every key starting with `prefix`, or `None` if there is none
/// (an empty or all-0xFF prefix).
pub(crate) fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let last = prefix.iter().rposition(|&b| b != 0xFF)?;
    let mut end = prefix[..=last].to_vec();
    end[last] += 1;
    Some(end)
}

/// Checks a write's shape before anything is applied, so a bad write changes nothing.
pub(crate) fn check_write(
    store: &str,
    keys: &Payloads,
    values: &Payloads,
) -> Result<(), StateError> {
    if keys.len() != values.len() {
        return Err(StateError::LengthMismatch {
            store: store.to_owned(),
            keys: keys.len(),
            values: values.len(),
        });
    }
    match keys.iter().position(|key| key.is_none()) {
        Some(index) => Err(StateError::NullKey {
            store: store.to_owned(),
            index,
        }),
        None => Ok(()),
    }
}

/// Checks a store name is usable by every backend.
pub(crate) fn check_name(name: &str) -> Result<(), StateError> {
    // RocksDB's default column family must not double as a store.
    if name.is_empty() || name == "default" {
        return Err(StateError::InvalidName(name.to_owned()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::prefix_end;

    #[test]
    fn prefix_end_is_the_next_prefix() {
        assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_end(&[1, 0xFF]), Some(vec![2]));
        assert_eq!(prefix_end(&[0xFF, 0xFF]), None);
        assert_eq!(prefix_end(b""), None);
    }
}

//! Helpers for the stores' unit tests.

use eddy_topic::Payloads;

use crate::store::KeyValueStore;

/// A column of keys or values.
pub(crate) fn payloads(entries: &[Option<&[u8]>]) -> Payloads {
    entries.iter().copied().collect()
}

/// What `store` answers for `keys`.
pub(crate) fn lookup(store: &dyn KeyValueStore, keys: &[Option<&[u8]>]) -> Vec<Option<Vec<u8>>> {
    let mut out = Payloads::new();
    store.get_many(&payloads(keys), &mut out).expect("get_many");
    out.iter().map(|v| v.map(<[u8]>::to_vec)).collect()
}

/// Every entry of `store`, in key order.
pub(crate) fn scan_all(store: &dyn KeyValueStore) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut entries = Vec::new();
    store
        .scan(&mut |k, v| {
            entries.push((k.to_vec(), v.to_vec()));
            true
        })
        .expect("scan");
    entries
}

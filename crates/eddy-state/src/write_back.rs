//! [`WriteBackStore`]: a store whose entries live in memory, and reach the store behind it
//! (RocksDB) only when persisted, as the caching layer in front of Kafka Streams' stores
//! does.
//!
//! An aggregation reads and writes the state of every group its batch touches. Through
//! RocksDB each of those is a memtable search and a skip-list insert; here it is one hash
//! lookup and, for a state of unchanged size (a count, a sum), an overwrite in place. The
//! entries sit back to back in one arena, indexed by a hash table of entry numbers, so a
//! new group costs no allocation of its own.
//!
//! The store knows which keys the store behind has that it does not hold (a Bloom filter
//! of them), so most lookups of a key that exists nowhere (an aggregation's new group or
//! window) are answered without asking it.
//!
//! Durability is the caller's: what is not yet persisted must be recoverable from
//! elsewhere (an aggregation's changelog), and the caller records how far the persisted
//! state goes only after [`KeyValueStore::persist`].

use std::hash::BuildHasher;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use eddy_topic::Payloads;
use hashbrown::HashTable;

use crate::error::StateError;
use crate::store::{KeyValueStore, check_write};

/// The value length of a deleted entry.
const DELETED: u32 = u32::MAX;
/// No entry, in [`Held::looked_up`].
const NOT_FOUND: u32 = u32::MAX;
/// Bytes an entry costs beyond its key and value: its record, its index slot (a number, a
/// hash and a control byte) and its place in the dirty list.
const ENTRY_OVERHEAD: usize = std::mem::size_of::<Entry>() + std::mem::size_of::<Slot>() + 8;
/// Entries persisted per write to the store behind, so a persist of the whole budget
/// does not copy all of it at once.
const PERSIST_CHUNK: usize = 16 * 1024;
/// The arena addresses entries with `u32` offsets.
const MAX_ARENA: usize = (u32::MAX / 2) as usize;

/// A store held in memory in front of `inner`. Every write to `inner` must go through it.
///
/// Writes stay in memory until [`persist`](KeyValueStore::persist), or until the entries
/// outgrow the budget: then the written ones are persisted, and the least recently used
/// half is forgotten (and read back from `inner` if needed again).
pub struct WriteBackStore {
    name: String,
    inner: Arc<dyn KeyValueStore>,
    budget_bytes: usize,
    held: Mutex<Held>,
}

/// Where an entry's key and value are in the arena.
#[derive(Debug, Clone, Copy)]
struct Entry {
    key_at: u32,
    key_len: u32,
    value_at: u32,
    /// [`DELETED`] for a deleted key (or, read from `inner`, an absent one).
    value_len: u32,
    /// The write that last used it, for choosing what to forget.
    used: u32,
    /// Written since the last persist.
    dirty: bool,
}

/// An entry number in [`Held::index`], with the bits of its key's hash the index is built
/// from: growing the index then reads neither the entries nor the keys again.
#[derive(Debug, Clone, Copy)]
struct Slot {
    entry: u32,
    hash: u32,
}

impl Slot {
    /// The index's hash of a key whose 64-bit hash has `low` as its low 32 bits: spread
    /// over 64 bits, since the index takes a bucket from the low bits and a tag from the
    /// high ones.
    fn index_hash(low: u32) -> u64 {
        u64::from(low).wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }
}

#[derive(Default)]
struct Held {
    /// Entry numbers, by the hash of their keys.
    index: HashTable<Slot>,
    entries: Vec<Entry>,
    arena: Vec<u8>,
    /// Arena bytes no entry refers to any more, and entries that only record a deletion.
    garbage: usize,
    /// The entries written since the last persist.
    dirty: Vec<u32>,
    /// The keys of `inner` not held: a key neither held nor in it is absent.
    forgotten: Forgotten,
    /// Counts writes (see [`Entry::used`]).
    clock: u32,
    /// The entry each key of the last `get_many` found (or [`NOT_FOUND`]): a write of the
    /// same keys, as an aggregation's read-modify-write makes, then finds them without
    /// hashing again. Entry numbers hold until a rebuild, which clears this.
    looked_up: Vec<u32>,
    hasher: foldhash::fast::RandomState,
}

/// A Bloom filter of key hashes: no false negatives, about 1% false positives while it
/// holds at most its capacity.
#[derive(Default)]
struct Forgotten {
    bits: Vec<u64>,
    keys: usize,
    capacity: usize,
}

impl Forgotten {
    /// Bits per key of capacity, and probes per key: about 1% false positives.
    const BITS_PER_KEY: usize = 10;
    const PROBES: u64 = 4;

    fn with_capacity(keys: usize) -> Self {
        let words = (keys * Self::BITS_PER_KEY).div_ceil(64).next_power_of_two();
        Self {
            bits: vec![0; words],
            keys: 0,
            capacity: keys,
        }
    }

    fn is_empty(&self) -> bool {
        self.keys == 0
    }

    /// The bits of `hash`, by double hashing.
    fn probes(&self, hash: u64) -> impl Iterator<Item = (usize, u64)> + use<> {
        let mask = (self.bits.len() as u64 * 64).wrapping_sub(1);
        let step = hash.rotate_left(32) | 1;
        (0..Self::PROBES).map(move |i| {
            let bit = hash.wrapping_add(i.wrapping_mul(step)) & mask;
            ((bit / 64) as usize, 1u64 << (bit % 64))
        })
    }

    /// Adds `hash`. Beyond its capacity the filter answers worse: its owner rebuilds it
    /// (without bits at all, it answers "maybe" to everything).
    fn insert(&mut self, hash: u64) {
        if !self.bits.is_empty() {
            for (word, bit) in self.probes(hash) {
                self.bits[word] |= bit;
            }
        }
        self.keys += 1;
    }

    fn may_contain(&self, hash: u64) -> bool {
        !self.is_empty()
            && (self.bits.is_empty()
                || self
                    .probes(hash)
                    .all(|(word, bit)| self.bits[word] & bit != 0))
    }
}

impl Held {
    fn key(&self, e: Entry) -> &[u8] {
        &self.arena[e.key_at as usize..][..e.key_len as usize]
    }

    fn value(&self, e: Entry) -> Option<&[u8]> {
        (e.value_len != DELETED).then(|| &self.arena[e.value_at as usize..][..e.value_len as usize])
    }

    fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    fn find(&self, hash: u64, key: &[u8]) -> Option<Entry> {
        self.find_number(hash, key)
            .map(|i| self.entries[i as usize])
    }

    /// The entry number of `key`, whose hash is `hash`.
    fn find_number(&self, hash: u64, key: &[u8]) -> Option<u32> {
        let low = hash as u32;
        self.index
            .find(Slot::index_hash(low), |s| {
                s.hash == low && self.key(self.entries[s.entry as usize]) == key
            })
            .map(|s| s.entry)
    }

    /// Memory the entries take (the allocations can be up to twice that: they grow by
    /// doubling, and are kept for reuse when entries are forgotten).
    /// The filter of forgotten keys is not counted: it takes about 2.5 bytes per key of
    /// the store behind.
    fn bytes(&self) -> usize {
        self.arena.len() + self.entries.len() * ENTRY_OVERHEAD
    }

    /// Sets `key` to `value`. A `written` entry is persisted later; one that is not (read
    /// from `inner`) only fills a gap and never replaces what is held.
    fn put(&mut self, key: &[u8], value: Option<&[u8]>, written: bool) {
        let low = self.hash(key) as u32;
        let clock = self.clock;
        let Held {
            index,
            entries,
            arena,
            ..
        } = self;
        let found = index.find(Slot::index_hash(low), |s| {
            let e = entries[s.entry as usize];
            s.hash == low && &arena[e.key_at as usize..][..e.key_len as usize] == key
        });
        let number = match found.map(|s| s.entry) {
            Some(_) if !written => return,
            Some(i) => {
                self.update(i, value, written);
                return;
            }
            None => {
                let key_at = arena.len() as u32;
                arena.extend_from_slice(key);
                let number = entries.len() as u32;
                entries.push(Entry {
                    key_at,
                    key_len: key.len() as u32,
                    value_at: 0,
                    value_len: DELETED,
                    used: clock,
                    dirty: false,
                });
                let slot = Slot {
                    entry: number,
                    hash: low,
                };
                index.insert_unique(Slot::index_hash(low), slot, |s| Slot::index_hash(s.hash));
                number
            }
        };
        self.update(number, value, written);
    }

    /// Sets entry `i`'s value, as [`Held::put`] does.
    fn update(&mut self, i: u32, value: Option<&[u8]>, written: bool) {
        self.set_value(i, value);
        let entry = &mut self.entries[i as usize];
        entry.used = self.clock;
        if written && !entry.dirty {
            entry.dirty = true;
            self.dirty.push(i);
        }
    }

    /// Whether entry `i` holds `key`.
    fn is_entry(&self, i: u32, key: &[u8]) -> bool {
        self.entries
            .get(i as usize)
            .is_some_and(|&e| self.key(e) == key)
    }

    /// Replaces entry `i`'s value: in place when the size is unchanged.
    fn set_value(&mut self, i: u32, value: Option<&[u8]>) {
        let e = &mut self.entries[i as usize];
        let old = if e.value_len == DELETED {
            0
        } else {
            e.value_len as usize
        };
        match value {
            Some(v) if e.value_len != DELETED && v.len() == old => {
                self.arena[e.value_at as usize..][..old].copy_from_slice(v);
            }
            Some(v) => {
                e.value_at = self.arena.len() as u32;
                e.value_len = v.len() as u32;
                self.arena.extend_from_slice(v);
                self.garbage += old;
            }
            None => {
                e.value_len = DELETED;
                self.garbage += old;
            }
        }
    }

    /// Puts the written entries in key order, the order the store behind takes them
    /// fastest.
    fn sort_written(&mut self) {
        let mut dirty = std::mem::take(&mut self.dirty);
        dirty.sort_unstable_by(|&a, &b| {
            self.key(self.entries[a as usize])
                .cmp(self.key(self.entries[b as usize]))
        });
        self.dirty = dirty;
    }

    /// Fills `keys` and `values` with the written entries `dirty[from..to]`.
    fn written(&self, from: usize, to: usize, keys: &mut Payloads, values: &mut Payloads) {
        keys.clear();
        values.clear();
        for &i in &self.dirty[from..to] {
            let e = self.entries[i as usize];
            keys.push(Some(self.key(e)));
            values.push(self.value(e));
        }
    }

    /// Marks the written entries persisted.
    fn persisted(&mut self) {
        for i in std::mem::take(&mut self.dirty) {
            let e = &mut self.entries[i as usize];
            e.dirty = false;
            if e.value_len == DELETED {
                self.garbage += e.key_len as usize + ENTRY_OVERHEAD;
            }
        }
    }

    /// Rebuilds the entries with those `keep` says, without replaced values or persisted
    /// deletions; the others (all persisted) are forgotten.
    fn rebuild(&mut self, keep: impl Fn(&Entry) -> bool) {
        let old_entries = std::mem::take(&mut self.entries);
        let old_arena = std::mem::take(&mut self.arena);
        self.index.clear();
        self.looked_up.clear();
        self.dirty.clear();
        self.garbage = 0;
        let key = |e: &Entry| &old_arena[e.key_at as usize..][..e.key_len as usize];
        for e in &old_entries {
            let deleted = e.value_len == DELETED;
            if !e.dirty && (deleted || !keep(e)) {
                if !deleted {
                    let hash = self.hash(key(e));
                    self.forgotten.insert(hash);
                }
                continue;
            }
            let value =
                (!deleted).then(|| &old_arena[e.value_at as usize..][..e.value_len as usize]);
            self.put(key(e), value, e.dirty);
            if let Some(last) = self.entries.last_mut() {
                last.used = e.used;
            }
        }
    }

    /// Rebuilds the arena without replaced values and persisted deletions.
    fn compact(&mut self) {
        self.rebuild(|_| true);
    }

    /// The `used` mark from which the most recently used entries take about `bytes`.
    fn recent_since(&self, bytes: usize) -> u32 {
        let mut uses: Vec<(u32, usize)> = self
            .entries
            .iter()
            .map(|e| {
                let value = if e.value_len == DELETED {
                    0
                } else {
                    e.value_len
                };
                (e.used, (e.key_len + value) as usize + ENTRY_OVERHEAD)
            })
            .collect();
        uses.sort_unstable_by_key(|&(used, _)| std::cmp::Reverse(used));
        let mut total = 0;
        for (used, size) in uses {
            total += size;
            if total > bytes {
                return used.saturating_add(1);
            }
        }
        0
    }
}

/// Visits the held entries `mine[*next..]` (in key order) with keys before `until` (all for
/// `None`) that have a value; returns whether `visit` wants more.
fn visit_held(
    held: &Held,
    mine: &[Entry],
    next: &mut usize,
    until: Option<&[u8]>,
    visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
) -> bool {
    while let Some(&e) = mine.get(*next) {
        if until.is_some_and(|u| held.key(e) >= u) {
            break;
        }
        *next += 1;
        if let Some(v) = held.value(e)
            && !visit(held.key(e), v)
        {
            return false;
        }
    }
    true
}

impl WriteBackStore {
    /// Holds `inner`'s entries within about `budget_bytes`: all of them if they fit, else
    /// none, with a filter of their keys.
    pub fn open(
        name: &str,
        inner: Arc<dyn KeyValueStore>,
        budget_bytes: usize,
    ) -> Result<Self, StateError> {
        let budget_bytes = budget_bytes.min(MAX_ARENA / 2);
        let mut held = Held::default();
        let mut keys = 0usize;
        inner.scan(&mut |k, v| {
            keys += 1;
            if held.bytes() <= budget_bytes {
                held.put(k, Some(v), false);
            }
            true
        })?;
        let store = Self {
            name: name.to_owned(),
            inner,
            budget_bytes,
            held: Mutex::new(Held::default()),
        };
        if held.entries.len() < keys || held.bytes() > budget_bytes {
            held = Held::default();
            store.remember_forgotten(&mut held, keys)?;
        }
        *store.lock() = held;
        Ok(store)
    }

    fn lock(&self) -> MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes the filter of forgotten keys hold every key of `inner` (about `keys`), with
    /// room for as many again.
    fn remember_forgotten(&self, held: &mut Held, keys: usize) -> Result<(), StateError> {
        held.forgotten = Forgotten::with_capacity(2 * keys.max(1024));
        let hasher = held.hasher.clone();
        let forgotten = &mut held.forgotten;
        self.inner.scan(&mut |k, _| {
            forgotten.insert(hasher.hash_one(k));
            true
        })
    }

    /// Writes the written entries to `inner`; they stay held.
    fn persist_held(&self, held: &mut Held) -> Result<(), StateError> {
        if held.dirty.is_empty() {
            return Ok(());
        }
        held.sort_written();
        let (mut keys, mut values) = (Payloads::new(), Payloads::new());
        for from in (0..held.dirty.len()).step_by(PERSIST_CHUNK) {
            let to = (from + PERSIST_CHUNK).min(held.dirty.len());
            held.written(from, to, &mut keys, &mut values);
            // A failure leaves every entry marked: the chunks written are written again.
            self.inner.write(&keys, &values)?;
        }
        held.persisted();
        Ok(())
    }

    /// Keeps the entries within the budget: over it, they are persisted and the least
    /// recently used half is forgotten.
    fn within_budget(&self, held: &mut Held) -> Result<(), StateError> {
        if held.bytes() > self.budget_bytes || held.arena.len() > MAX_ARENA / 2 {
            self.persist_held(held)?;
            if held.forgotten.bits.is_empty() {
                // Nothing forgotten yet, so every key of `inner` is held: the filter starts
                // empty, with room for what is forgotten now and as much again.
                held.forgotten = Forgotten::with_capacity((2 * held.entries.len()).max(1 << 16));
            }
            let since = held.recent_since(self.budget_bytes / 2);
            let before = held.entries.len();
            held.rebuild(|e| e.used >= since);
            tracing::debug!(
                store = %self.name,
                forgotten = before - held.entries.len(),
                held = held.entries.len(),
                "state over its memory budget: persisted, least recently used forgotten"
            );
            if held.forgotten.keys > held.forgotten.capacity {
                // Every key of `inner` is held or was counted when forgotten: no scan is
                // needed to size the new filter, only to fill it.
                let keys = held.forgotten.keys + held.entries.len();
                self.remember_forgotten(held, keys)?;
            }
        } else if held.garbage > held.bytes() / 2 && held.garbage > 1 << 20 {
            held.compact();
        }
        Ok(())
    }
}

impl KeyValueStore for WriteBackStore {
    fn get_many(&self, keys: &Payloads, out: &mut Payloads) -> Result<(), StateError> {
        let mut held = self.lock();
        if !held.forgotten.is_empty() {
            let mut misses = Payloads::new();
            for key in keys.iter().flatten() {
                let hash = held.hash(key);
                if held.find(hash, key).is_none() && held.forgotten.may_contain(hash) {
                    misses.push(Some(key));
                }
            }
            if !misses.is_empty() {
                let mut found = Payloads::with_capacity(misses.len(), 0);
                self.inner.get_many(&misses, &mut found)?;
                for (key, value) in misses.iter().zip(found.iter()) {
                    if let Some(key) = key {
                        held.put(key, value, false);
                    }
                }
            }
        }
        let mut looked_up = std::mem::take(&mut held.looked_up);
        looked_up.clear();
        for key in keys.iter() {
            let found = key.and_then(|k| held.find_number(held.hash(k), k));
            looked_up.push(found.unwrap_or(NOT_FOUND));
            out.push(found.and_then(|i| held.value(held.entries[i as usize])));
        }
        held.looked_up = looked_up;
        self.within_budget(&mut held)
    }

    fn write(&self, keys: &Payloads, values: &Payloads) -> Result<(), StateError> {
        check_write(&self.name, keys, values)?;
        let mut held = self.lock();
        held.clock = held.clock.wrapping_add(1);
        let looked_up = std::mem::take(&mut held.looked_up);
        for (i, (key, value)) in keys.iter().zip(values.iter()).enumerate() {
            let Some(key) = key else { continue };
            match looked_up.get(i) {
                Some(&n) if held.is_entry(n, key) => held.update(n, value, true),
                _ => held.put(key, value, true),
            }
        }
        self.within_budget(&mut held)
    }

    fn scan_range(
        &self,
        start: &[u8],
        end: Option<&[u8]>,
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), StateError> {
        let held = self.lock();
        let in_range = |k: &[u8]| k >= start && end.is_none_or(|end| k < end);
        let mut mine: Vec<Entry> = held
            .entries
            .iter()
            .copied()
            .filter(|&e| in_range(held.key(e)))
            .collect();
        mine.sort_unstable_by(|&a, &b| held.key(a).cmp(held.key(b)));
        let mut next = 0;
        if !held.forgotten.is_empty() {
            let held = &held;
            let mut going = true;
            self.inner.scan_range(start, end, &mut |k, v| {
                going = visit_held(held, &mine, &mut next, Some(k), visit);
                if !going {
                    return false;
                }
                if next < mine.len() && held.key(mine[next]) == k {
                    // The held version is the newer one.
                    next += 1;
                    if let Some(v) = held.value(mine[next - 1]) {
                        going = visit(k, v);
                    }
                } else {
                    going = visit(k, v);
                }
                going
            })?;
            if !going {
                return Ok(());
            }
        }
        visit_held(&held, &mine, &mut next, None, visit);
        Ok(())
    }

    fn persist(&self) -> Result<(), StateError> {
        let mut held = self.lock();
        self.persist_held(&mut held)
    }

    fn holds_writes(&self) -> bool {
        true
    }

    fn held_bytes(&self) -> usize {
        self.lock().bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{lookup, payloads};
    use crate::{MemoryBackend, StateBackend};

    fn put(store: &dyn KeyValueStore, key: &[u8], value: Option<&[u8]>) {
        put_all(store, &[Some(key)], &[value]);
    }

    fn put_all(store: &dyn KeyValueStore, keys: &[Option<&[u8]>], values: &[Option<&[u8]>]) {
        store
            .write(&payloads(keys), &payloads(values))
            .expect("write");
    }

    fn entries(store: &dyn KeyValueStore, start: &[u8], end: Option<&[u8]>) -> Vec<String> {
        let mut seen = Vec::new();
        store
            .scan_range(start, end, &mut |k, v| {
                seen.push(format!(
                    "{}={}",
                    String::from_utf8_lossy(k),
                    String::from_utf8_lossy(v)
                ));
                true
            })
            .expect("scan");
        seen
    }

    #[test]
    fn writes_reach_the_store_behind_only_when_persisted() {
        let backend = MemoryBackend::new();
        let inner = backend.open_store("t").expect("open");
        put(inner.as_ref(), b"a", Some(b"1"));
        put(inner.as_ref(), b"gone", Some(b"0"));
        let store = WriteBackStore::open("t", Arc::clone(&inner), 1 << 20).expect("open");
        assert!(store.lock().forgotten.is_empty(), "both entries fit");
        put(&store, b"b", Some(b"2"));
        put(&store, b"a", Some(b"3"));
        put(&store, b"gone", None);
        let keys: [Option<&[u8]>; 5] = [Some(b"a"), None, Some(b"b"), Some(b"gone"), Some(b"x")];
        let expected = vec![Some(b"3".to_vec()), None, Some(b"2".to_vec()), None, None];
        assert_eq!(lookup(&store, &keys), expected);
        assert_eq!(
            lookup(inner.as_ref(), &keys),
            vec![Some(b"1".to_vec()), None, None, Some(b"0".to_vec()), None],
            "nothing persisted yet"
        );
        assert_eq!(entries(&store, b"", None), ["a=3", "b=2"]);
        store.persist().expect("persist");
        assert_eq!(lookup(inner.as_ref(), &keys), expected, "persisted");
        assert_eq!(entries(inner.as_ref(), b"", None), ["a=3", "b=2"]);
        assert!(store.lock().dirty.is_empty());
        // A value of another size goes elsewhere in the arena.
        put(&store, b"a", Some(b"longer"));
        assert_eq!(
            lookup(&store, &[Some(b"a")]),
            vec![Some(b"longer".to_vec())]
        );
    }

    #[test]
    fn an_incomplete_store_reads_what_it_does_not_hold_from_the_store_behind() {
        let backend = MemoryBackend::new();
        let inner = backend.open_store("t").expect("open");
        let big = vec![7u8; 300];
        put(inner.as_ref(), b"a", Some(&big));
        put(inner.as_ref(), b"c", Some(b"1"));
        put(inner.as_ref(), b"e", Some(b"2"));
        let store = WriteBackStore::open("t", Arc::clone(&inner), 200).expect("open");
        assert!(!store.lock().forgotten.is_empty(), "too big to hold");
        assert!(store.lock().entries.is_empty());
        put(&store, b"b", Some(b"held"));
        put(&store, b"c", Some(b"newer"));
        put(&store, b"e", None);
        assert_eq!(
            lookup(&store, &[Some(b"a"), Some(b"c"), Some(b"d"), Some(b"e")]),
            vec![Some(big.clone()), Some(b"newer".to_vec()), None, None]
        );
        // The scan merges both, the held versions winning, deletions included.
        let mut scanned = entries(&store, b"b", None);
        assert_eq!(scanned, ["b=held", "c=newer"]);
        scanned = entries(&store, b"", Some(b"c"));
        assert_eq!(scanned.len(), 2);
        assert_eq!(scanned[1], "b=held");
        let mut first = Vec::new();
        store
            .scan(&mut |k, _| {
                first.push(k.to_vec());
                false
            })
            .expect("scan");
        assert_eq!(first, [b"a".to_vec()], "a scan stops when asked");
    }

    #[test]
    fn a_write_after_a_read_updates_the_entries_the_read_found() {
        let backend = MemoryBackend::new();
        let inner = backend.open_store("t").expect("open");
        let store = WriteBackStore::open("t", Arc::clone(&inner), 1 << 20).expect("open");
        put(&store, b"a", Some(b"1"));
        put(&store, b"b", Some(b"2"));
        // Read a, b and a missing c; write them back in the same order, then in another.
        let read: [Option<&[u8]>; 3] = [Some(b"a"), Some(b"b"), Some(b"c")];
        assert_eq!(lookup(&store, &read).len(), 3);
        assert_eq!(store.lock().looked_up.len(), 3);
        let values: [Option<&[u8]>; 3] = [Some(b"10"), None, Some(b"30")];
        put_all(&store, &read, &values);
        assert!(store.lock().looked_up.is_empty(), "used once");
        assert_eq!(entries(&store, b"", None), ["a=10", "c=30"]);
        lookup(&store, &read);
        let swapped: [Option<&[u8]>; 3] = [Some(b"c"), Some(b"a"), Some(b"b")];
        put_all(&store, &swapped, &[Some(b"3"), Some(b"1"), Some(b"2")]);
        assert_eq!(entries(&store, b"", None), ["a=1", "b=2", "c=3"]);
        // A rebuild between the read and the write renumbers the entries.
        lookup(&store, &read);
        store.lock().compact();
        assert!(store.lock().looked_up.is_empty());
        put_all(&store, &read, &[Some(b"4"), Some(b"5"), Some(b"6")]);
        assert_eq!(entries(&store, b"", None), ["a=4", "b=5", "c=6"]);
    }

    #[test]
    fn over_its_budget_the_store_persists_forgets_and_still_answers() {
        let backend = MemoryBackend::new();
        let inner = backend.open_store("t").expect("open");
        let store = WriteBackStore::open("t", Arc::clone(&inner), 1_000).expect("open");
        for i in 0..100u8 {
            put(&store, &[i], Some(&[i, i]));
        }
        assert!(store.lock().bytes() <= 1_000);
        assert!(!store.lock().forgotten.is_empty());
        let persisted = entries(inner.as_ref(), b"", None).len();
        assert!(persisted > 0 && persisted < 100, "{persisted} persisted");
        for i in 0..100u8 {
            assert_eq!(
                lookup(&store, &[Some(&[i])]),
                vec![Some(vec![i, i])],
                "key {i}"
            );
        }
        assert_eq!(entries(&store, b"", None).len(), 100);
        store.persist().expect("persist");
        assert_eq!(entries(inner.as_ref(), b"", None).len(), 100);
    }

    #[test]
    fn compaction_keeps_the_latest_values_and_unpersisted_deletions() {
        let backend = MemoryBackend::new();
        let inner = backend.open_store("t").expect("open");
        put(inner.as_ref(), b"old", Some(b"x"));
        let store = WriteBackStore::open("t", Arc::clone(&inner), 64 << 20).expect("open");
        put(&store, b"old", None);
        let mut value = Vec::new();
        for round in 0..3_000u32 {
            // Growing values are appended: the replaced ones become garbage.
            value.extend_from_slice(&round.to_le_bytes());
            put(&store, b"grows", Some(&value));
        }
        let held = store.lock();
        assert!(
            held.arena.len() < 2 << 20,
            "compacted: {} bytes (18 MB of values were written)",
            held.arena.len()
        );
        drop(held);
        assert_eq!(
            lookup(&store, &[Some(b"grows"), Some(b"old")]),
            vec![Some(value.clone()), None]
        );
        store.persist().expect("persist");
        assert_eq!(
            lookup(inner.as_ref(), &[Some(b"grows"), Some(b"old")]),
            vec![Some(value), None],
            "the deletion survived compaction"
        );
    }
}

#[cfg(test)]
mod model_tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::test_support::scan_all;
    use crate::{MemoryBackend, StateBackend};

    /// Random batches of reads, writes, deletes, scans and persists against a map.
    #[test]
    fn behaves_like_a_map_through_spills_and_compactions() {
        let backend = MemoryBackend::new();
        let inner = backend.open_store("t").expect("open");
        let mut store = WriteBackStore::open("t", Arc::clone(&inner), 4_000).expect("open");
        let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for round in 0..3_000 {
            let mut keys = Payloads::new();
            let mut values = Payloads::new();
            let mut batch: BTreeMap<Vec<u8>, Option<Vec<u8>>> = BTreeMap::new();
            for _ in 0..next(20) {
                let key = format!("k{}", next(300)).into_bytes();
                let value = match next(10) {
                    0 => None,
                    n => Some(vec![b'v'; n as usize + (round % 3)]),
                };
                keys.push(Some(&key));
                values.push(value.as_deref());
                batch.insert(key, value);
            }
            store.write(&keys, &values).expect("write");
            for (k, v) in batch {
                match v {
                    Some(v) => model.insert(k, v),
                    None => model.remove(&k),
                };
            }
            let mut probe = Payloads::new();
            let probed: Vec<Vec<u8>> = (0..10)
                .map(|_| format!("k{}", next(320)).into_bytes())
                .collect();
            for k in &probed {
                probe.push(Some(k));
            }
            let mut out = Payloads::new();
            store.get_many(&probe, &mut out).expect("get_many");
            for (i, k) in probed.iter().enumerate() {
                assert_eq!(out.get(i), model.get(k).map(Vec::as_slice), "round {round}");
            }
            if next(50) == 0 {
                let expected: Vec<_> = model.clone().into_iter().collect();
                assert_eq!(scan_all(&store), expected, "round {round}");
            }
            match next(100) {
                0 => store.persist().expect("persist"),
                1 => {
                    // A restart: what was persisted, and then what is held again.
                    store.persist().expect("persist");
                    store = WriteBackStore::open("t", Arc::clone(&inner), 4_000).expect("reopen");
                }
                _ => {}
            }
        }
        store.persist().expect("persist");
        assert_eq!(
            scan_all(inner.as_ref()),
            model.into_iter().collect::<Vec<_>>()
        );
    }
}

#[cfg(test)]
mod forgetting_tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::test_support::{lookup, payloads};
    use crate::{MemoryBackend, StateBackend};

    /// The store behind, counting the keys it is asked for.
    struct Counting {
        inner: Arc<dyn KeyValueStore>,
        asked: AtomicUsize,
    }

    impl KeyValueStore for Counting {
        fn get_many(&self, keys: &Payloads, out: &mut Payloads) -> Result<(), StateError> {
            self.asked.fetch_add(keys.len(), Ordering::Relaxed);
            self.inner.get_many(keys, out)
        }

        fn write(&self, keys: &Payloads, values: &Payloads) -> Result<(), StateError> {
            self.inner.write(keys, values)
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

    /// Looks up 200 keys that exist nowhere: the filter answers almost all of them.
    fn assert_absence_mostly_known(store: &WriteBackStore, behind: &Counting) {
        let before = behind.asked.load(Ordering::Relaxed);
        for i in 1_000..1_200u32 {
            assert_eq!(lookup(store, &[Some(&i.to_be_bytes())]), vec![None]);
        }
        let asked = behind.asked.load(Ordering::Relaxed) - before;
        assert!(asked < 20, "{asked} of 200 absent keys reached the store");
    }

    #[test]
    fn over_its_budget_it_forgets_the_least_recently_used_and_knows_which() {
        let backend = MemoryBackend::new();
        let behind = Arc::new(Counting {
            inner: backend.open_store("t").expect("open"),
            asked: AtomicUsize::new(0),
        });
        let store = WriteBackStore::open("t", behind.clone(), 4_000).expect("open");
        for i in 0..200u32 {
            let key = i.to_be_bytes();
            store
                .write(&payloads(&[Some(&key)]), &payloads(&[Some(b"value")]))
                .expect("write");
        }
        let held = store.lock().entries.len();
        assert!(held > 10 && held < 200, "{held} held");
        let asked = |store: &WriteBackStore, key: &[u8]| {
            let before = behind.asked.load(Ordering::Relaxed);
            let value = lookup(store, &[Some(key)]).remove(0);
            (value, behind.asked.load(Ordering::Relaxed) - before)
        };
        assert_eq!(
            asked(&store, &199u32.to_be_bytes()),
            (Some(b"value".to_vec()), 0),
            "the latest write is held"
        );
        assert_eq!(
            asked(&store, &0u32.to_be_bytes()),
            (Some(b"value".to_vec()), 1),
            "the first was forgotten, and is read back"
        );
        assert_eq!(
            asked(&store, &0u32.to_be_bytes()),
            (Some(b"value".to_vec()), 0),
            "and then held again"
        );
        assert_absence_mostly_known(&store, &behind);
    }

    #[test]
    fn a_store_too_big_to_hold_opens_with_a_filter_of_its_keys() {
        let backend = MemoryBackend::new();
        let inner = backend.open_store("t").expect("open");
        for i in 0..500u32 {
            inner
                .write(
                    &payloads(&[Some(&i.to_be_bytes())]),
                    &payloads(&[Some(b"v")]),
                )
                .expect("write");
        }
        let behind = Arc::new(Counting {
            inner,
            asked: AtomicUsize::new(0),
        });
        let store = WriteBackStore::open("t", behind.clone(), 2_000).expect("open");
        for i in 0..500u32 {
            assert_eq!(
                lookup(&store, &[Some(&i.to_be_bytes())]),
                vec![Some(b"v".to_vec())]
            );
        }
        assert_absence_mostly_known(&store, &behind);
    }
}

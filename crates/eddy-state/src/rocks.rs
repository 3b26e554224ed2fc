//! [`RocksBackend`]: every store a column family of one RocksDB database.
//!
//! Memory is bounded independently of the number of keys and stores: data, index and
//! filter blocks share one LRU block cache, and the memtables of all column families share
//! one `WriteBufferManager` budget. Writes go to the WAL without fsync; a store's source of
//! truth is its topic or changelog, from which a lost tail is re-read.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use eddy_topic::Payloads;
use rocksdb::{
    BlockBasedOptions, BoundColumnFamily, Cache, ColumnFamilyDescriptor, DBCompressionType,
    DBWithThreadMode, DataBlockIndexType, LruCacheOptions, MultiThreaded, Options, ReadOptions,
    WriteBatch, WriteBufferManager,
};

use crate::error::StateError;
use crate::store::{KeyValueStore, StateBackend, check_name, check_write};

/// The database type: column families are created and dropped through `&self`.
type Db = DBWithThreadMode<MultiThreaded>;

/// RocksDB's memory budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RocksConfig {
    /// Capacity of the LRU cache shared by every store for data, index and filter blocks.
    pub block_cache_bytes: usize,
    /// Size of one memtable; a store flushes to disk when its memtable is this full.
    pub write_buffer_bytes: usize,
    /// Memtables per store, and the number of `write_buffer_bytes` all stores share.
    pub max_write_buffers: usize,
}

impl Default for RocksConfig {
    /// 256 MiB of block cache and 4 × 16 MiB of memtables.
    fn default() -> Self {
        Self {
            block_cache_bytes: 256 << 20,
            write_buffer_bytes: 16 << 20,
            max_write_buffers: 4,
        }
    }
}

/// Smallest share of the block cache a shard gets: a whole SST file's filter block fits.
const MIN_CACHE_SHARD_BYTES: usize = 8 << 20;

/// Shard bits of the block cache: as many shards as `capacity` allows (up to RocksDB's
/// usual 64) with each at least [`MIN_CACHE_SHARD_BYTES`].
fn cache_shard_bits(capacity: usize) -> i32 {
    let shards = (capacity / MIN_CACHE_SHARD_BYTES).clamp(1, 64);
    shards.ilog2() as i32
}

/// Stores on disk, in one RocksDB database with a column family per store.
pub struct RocksBackend {
    db: Arc<Db>,
    store_options: Options,
    registry: Mutex<Registry>,
}

impl std::fmt::Debug for RocksBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocksBackend")
            .field("path", &self.db.path())
            .finish_non_exhaustive()
    }
}

/// Which stores exist and which have live handles; one lock orders creates and drops.
#[derive(Default)]
struct Registry {
    existing: BTreeSet<String>,
    open: HashMap<String, Arc<RocksStore>>,
}

impl RocksBackend {
    /// Opens (or creates) the database in `dir`, with every store kept from an earlier run.
    pub fn open(dir: impl AsRef<Path>, config: RocksConfig) -> Result<Self, StateError> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|source| StateError::Directory {
            path: dir.to_path_buf(),
            source,
        })?;
        // RocksDB's default splits the cache into shards of 512 KiB, smaller than the
        // bloom filter of one SST file (10 bits per key: over 1 MB for a million keys),
        // which then never stays cached: every lookup would read and checksum it again.
        let mut cache_options = LruCacheOptions::default();
        cache_options.set_capacity(config.block_cache_bytes);
        cache_options.set_num_shard_bits(cache_shard_bits(config.block_cache_bytes));
        let cache = Cache::new_lru_cache_opts(&cache_options);
        let mut table = BlockBasedOptions::default();
        table.set_block_cache(&cache);
        // Index and filter blocks grow with the data; in the cache they stay within budget.
        table.set_cache_index_and_filter_blocks(true);
        table.set_pin_l0_filter_and_index_blocks_in_cache(true);
        // Join lookups miss often; a bloom filter answers most misses without reading a block.
        table.set_bloom_filter(10.0, false);
        // Point lookups (joins, aggregate states) find their key in a data block by hash
        // rather than by binary search and a linear scan.
        table.set_data_block_index_type(DataBlockIndexType::BinaryAndHash);
        table.set_data_block_hash_ratio(0.75);

        let mut store_options = Options::default();
        store_options.set_block_based_table_factory(&table);
        store_options.set_write_buffer_size(config.write_buffer_bytes);
        store_options.set_max_write_buffer_number(config.max_write_buffers.max(2) as i32);
        store_options.set_compression_type(DBCompressionType::Lz4);
        // Most lookups of a new group or an unmatched join key miss the memtable: a bloom
        // filter over whole keys answers those without searching the skip list.
        store_options.set_memtable_whole_key_filtering(true);
        store_options.set_memtable_prefix_bloom_ratio(0.1);

        let mut db_options = store_options.clone();
        db_options.create_if_missing(true);
        db_options.create_missing_column_families(true);
        let budget = config
            .write_buffer_bytes
            .saturating_mul(config.max_write_buffers.max(1));
        db_options
            .set_write_buffer_manager(&WriteBufferManager::new_write_buffer_manager(budget, false));

        let existing: BTreeSet<String> = if dir.join("CURRENT").exists() {
            Db::list_cf(&db_options, dir)?
                .into_iter()
                .filter(|name| name != "default")
                .collect()
        } else {
            BTreeSet::new()
        };
        let descriptors: Vec<ColumnFamilyDescriptor> = existing
            .iter()
            .map(|name| ColumnFamilyDescriptor::new(name, store_options.clone()))
            .collect();
        let db = Db::open_cf_descriptors(&db_options, dir, descriptors)?;
        tracing::info!(path = %dir.display(), stores = existing.len(), "opened RocksDB state");
        Ok(RocksBackend {
            db: Arc::new(db),
            store_options,
            registry: Mutex::new(Registry {
                existing,
                open: HashMap::new(),
            }),
        })
    }

    /// The database directory.
    pub fn path(&self) -> PathBuf {
        self.db.path().to_path_buf()
    }
}

impl StateBackend for RocksBackend {
    fn open_store(&self, name: &str) -> Result<Arc<dyn KeyValueStore>, StateError> {
        check_name(name)?;
        let mut registry = self.registry.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(store) = registry.open.get(name) {
            return Ok(store.clone());
        }
        if !registry.existing.contains(name) {
            self.db.create_cf(name, &self.store_options)?;
            registry.existing.insert(name.to_owned());
        }
        let store = Arc::new(RocksStore {
            db: self.db.clone(),
            name: name.to_owned(),
            dropped: AtomicBool::new(false),
        });
        registry.open.insert(name.to_owned(), store.clone());
        Ok(store)
    }

    fn drop_store(&self, name: &str) -> Result<(), StateError> {
        let mut registry = self.registry.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(store) = registry.open.remove(name) {
            store.dropped.store(true, Ordering::Release);
        }
        if registry.existing.remove(name) {
            self.db.drop_cf(name)?;
        }
        Ok(())
    }

    fn store_names(&self) -> Result<Vec<String>, StateError> {
        let registry = self.registry.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(registry.existing.iter().cloned().collect())
    }

    fn store_sizes(&self) -> Result<Vec<(String, u64)>, StateError> {
        let mut sizes = Vec::new();
        for name in self.store_names()? {
            let Some(cf) = self.db.cf_handle(&name) else {
                continue;
            };
            // Live data in SST files plus what is still in memtables.
            let mut bytes = 0;
            for property in [
                "rocksdb.estimate-live-data-size",
                "rocksdb.cur-size-all-mem-tables",
            ] {
                bytes += self.db.property_int_value_cf(&cf, property)?.unwrap_or(0);
            }
            sizes.push((name, bytes));
        }
        sizes.sort();
        Ok(sizes)
    }
}

/// One store: a column family.
struct RocksStore {
    db: Arc<Db>,
    name: String,
    dropped: AtomicBool,
}

impl RocksStore {
    fn column_family(&self) -> Result<Arc<BoundColumnFamily<'_>>, StateError> {
        if self.dropped.load(Ordering::Acquire) {
            return Err(StateError::StoreDropped(self.name.clone()));
        }
        self.db
            .cf_handle(&self.name)
            .ok_or_else(|| StateError::StoreDropped(self.name.clone()))
    }
}

impl KeyValueStore for RocksStore {
    fn get_many(&self, keys: &Payloads, out: &mut Payloads) -> Result<(), StateError> {
        let cf = self.column_family()?;
        // Keys already in order spare RocksDB its own sort of them.
        let mut previous: Option<&[u8]> = None;
        let sorted = keys.iter().flatten().all(|k| {
            let in_order = previous.is_none_or(|p| p <= k);
            previous = Some(k);
            in_order
        });
        let found = self
            .db
            .batched_multi_get_cf(&cf, keys.iter().flatten(), sorted);
        // Check every lookup first, so a failure appends nothing to `out`.
        if let Some(Err(err)) = found.iter().find(|result| result.is_err()) {
            return Err(StateError::Rocks(err.clone()));
        }
        let mut found = found.into_iter();
        for key in keys.iter() {
            let value = match key {
                Some(_) => found.next().and_then(Result::ok).flatten(),
                None => None,
            };
            out.push(value.as_deref());
        }
        Ok(())
    }

    fn write(&self, keys: &Payloads, values: &Payloads) -> Result<(), StateError> {
        let cf = self.column_family()?;
        check_write(&self.name, keys, values)?;
        let mut batch = WriteBatch::default();
        for (key, value) in keys.iter().flatten().zip(values.iter()) {
            match value {
                Some(value) => batch.put_cf(&cf, key, value),
                None => batch.delete_cf(&cf, key),
            }
        }
        let mut options = rocksdb::WriteOptions::default();
        options.set_memtable_insert_hint_per_batch(true);
        self.db.write_opt(batch, &options)?;
        Ok(())
    }

    fn scan_range(
        &self,
        start: &[u8],
        end: Option<&[u8]>,
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), StateError> {
        let cf = self.column_family()?;
        let mut options = ReadOptions::default();
        // A full scan for a pull query must not evict the blocks hot lookups need.
        options.fill_cache(false);
        if let Some(end) = end {
            options.set_iterate_upper_bound(end);
        }
        let mut cursor = self.db.raw_iterator_cf_opt(&cf, options);
        cursor.seek(start);
        while let Some((key, value)) = cursor.item() {
            if !visit(key, value) {
                return Ok(());
            }
            cursor.next();
        }
        cursor.status()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_shards_hold_a_whole_filter_block() {
        // The server's default 32 MiB cache: 4 shards of 8 MiB, not 64 of 512 KiB.
        assert_eq!(cache_shard_bits(32 << 20), 2);
        assert_eq!(cache_shard_bits(8 << 20), 0);
        // Smaller than one shard: a single shard of all of it.
        assert_eq!(cache_shard_bits(1 << 20), 0);
        // Large caches keep RocksDB's usual 64 shards.
        assert_eq!(cache_shard_bits(4 << 30), 6);
        assert_eq!(cache_shard_bits(256 << 20), 5);
    }
}

//! The crate's error type.

use std::path::PathBuf;

/// What went wrong in a state store.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// RocksDB reported an error (I/O, corruption, …).
    #[error("RocksDB failed: {0}")]
    Rocks(#[from] rocksdb::Error),
    /// The state directory could not be created.
    #[error("cannot create the state directory {path}: {source}")]
    Directory {
        /// The directory.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// The store was dropped while a handle to it was still in use.
    #[error("state store '{0}' has been dropped")]
    StoreDropped(String),
    /// A store name that cannot be used.
    #[error("invalid state store name '{0}': names must be non-empty and not 'default'")]
    InvalidName(String),
    /// A write contained a record without a key (a bug in the caller, which filters those).
    #[error("state store '{store}': entry {index} of a write has a null key")]
    NullKey {
        /// The store.
        store: String,
        /// Position of the entry in the write.
        index: usize,
    },
    /// A write had a different number of keys and values (a bug in the caller).
    #[error("state store '{store}': a write has {keys} keys but {values} values")]
    LengthMismatch {
        /// The store.
        store: String,
        /// Number of keys.
        keys: usize,
        /// Number of values.
        values: usize,
    },
}

impl StateError {
    /// Whether the error comes from a bug in Eddy rather than from the disk or the user.
    pub fn is_internal(&self) -> bool {
        matches!(
            self,
            StateError::NullKey { .. }
                | StateError::LengthMismatch { .. }
                | StateError::StoreDropped(_)
        )
    }
}

//! State stores for tables and aggregates: RocksDB on disk, or memory for `eddy test`.
//!
//! Entry points: a [`StateBackend`] — [`RocksBackend::open`] or [`MemoryBackend::new`] —
//! opens named [`KeyValueStore`]s (one per materialised table or aggregate), which read and
//! write whole batches of keys at a time ([`Payloads`](eddy_topic::Payloads) columns).
//!
//! Every call blocks: callers are the persistent queries' own threads (or `spawn_blocking`),
//! never the async executor.
//!
//! Invariant: a store knows bytes; encoding keys and values is the engine's business.

mod cached;
mod error;
mod memory;
mod rocks;
mod store;
#[cfg(test)]
mod test_support;
mod write_back;

pub use cached::CachedStore;
pub use error::StateError;
pub use memory::MemoryBackend;
pub use rocks::{RocksBackend, RocksConfig};
pub use store::{KeyValueStore, StateBackend};
pub use write_back::WriteBackStore;

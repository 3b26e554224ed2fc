//! State that survives the loss of the data dir: an aggregation's state changes go to a
//! changelog topic as well as to its store, and a store that is empty or behind its
//! changelog is rebuilt from the changelog before the query processes anything.
//!
//! A changelog is compacted, as ksqlDB's are: one record per change, keyed by the store's
//! key, so the broker keeps the latest state of every group however long ago it changed,
//! and drops what was overwritten. (Earlier versions packed many changes into one record
//! without a key; those are still read.)
//!
//! How far a store is in its changelog is kept in a small metadata store (the changelog
//! offset it has applied up to); a store behind the changelog's end applies the rest
//! (rebuilt from the start where that offset says nothing: several partitions, records
//! the broker dropped). An aggregation's groups are held in memory and persisted to the
//! store at every sync and when the query stops: its recorded offset moves only then.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use eddy_state::{KeyValueStore, StateBackend, WriteBackStore};
use eddy_topic::{Payloads, Position, RawBatch, RecordSink, TopicIo};
use prometheus_client::metrics::gauge::Gauge;

use crate::error::EngineError;

mod packed;

/// The store of per-store metadata (changelog progress, consumer-group generations).
const META_STORE: &str = "_eddy_meta";
/// How long a restore waits for an unreachable broker before giving up.
const RESTORE_DEADLINE: Duration = Duration::from_secs(300);
/// How often a store is brought up to the changelog's end while partitions stay put: a
/// look at the end offsets, and a read only of what other servers wrote meanwhile.
const SYNC_INTERVAL: Duration = Duration::from_secs(10);
/// How soon a sync postponed because the broker's end offsets lagged is tried again.
const SYNC_RETRY: Duration = Duration::from_secs(1);

/// The changelog topic of one of a query's stores (`what`: e.g. `Aggregate`), named the
/// way ksqlDB names its own.
pub(crate) fn changelog_topic(service_id: &str, query_id: &str, what: &str) -> String {
    format!(
        "{}{what}-changelog",
        internal_topic_prefix(service_id, query_id)
    )
}

/// What the names of a query's internal topics (changelogs, repartition) start with.
pub(crate) fn internal_topic_prefix(service_id: &str, query_id: &str) -> String {
    format!("_eddy_{service_id}query_{query_id}-")
}

/// The local stores a query may keep, each with a changelog.
#[derive(Debug, Clone, Copy)]
pub(crate) enum QueryStore {
    /// An aggregation's groups.
    Aggregate,
    /// The rows of the table an aggregation reads.
    Rows,
    /// The left side's records of a stream–stream join.
    JoinLeft,
    /// The right side's records of a stream–stream join.
    JoinRight,
    /// A foreign-key join's index of the left table.
    ForeignKeys,
}

impl QueryStore {
    pub(crate) const ALL: [QueryStore; 5] = [
        QueryStore::Aggregate,
        QueryStore::Rows,
        QueryStore::JoinLeft,
        QueryStore::JoinRight,
        QueryStore::ForeignKeys,
    ];

    /// The store's name for query `id`.
    pub(crate) fn name(self, id: &str) -> String {
        match self {
            QueryStore::Aggregate => format!("aggregate_{id}"),
            QueryStore::Rows => format!("aggregate_{id}_rows"),
            QueryStore::JoinLeft => format!("join_{id}_left"),
            QueryStore::JoinRight => format!("join_{id}_right"),
            QueryStore::ForeignKeys => format!("join_{id}_foreign_keys"),
        }
    }

    /// What its changelog topic's name says of it.
    pub(crate) fn topic_part(self) -> &'static str {
        match self {
            QueryStore::Aggregate => "Aggregate",
            QueryStore::Rows => "Rows",
            QueryStore::JoinLeft => "Join-left",
            QueryStore::JoinRight => "Join-right",
            QueryStore::ForeignKeys => "ForeignKeyJoin-index",
        }
    }
}

/// Writes a store's changes to its changelog and remembers how many it wrote; catches the
/// store up with changes other servers wrote.
pub(crate) struct Changelog {
    store_name: String,
    store: Arc<dyn KeyValueStore>,
    topic: String,
    topics: Arc<dyn TopicIo>,
    /// How far in each partition of the changelog the store was last brought up to date,
    /// when, and how many of the records written since are this server's own.
    synced: Vec<Position>,
    synced_at: Instant,
    own_since_sync: u64,
    sink: Box<dyn RecordSink>,
    meta: Arc<dyn KeyValueStore>,
    /// Records acknowledged by the broker.
    written: u64,
    /// Records sent since the last successful [`flush`](Changelog::flush), kept until then
    /// to be sent again if the flush fails (some may never have arrived).
    sent: u64,
    unflushed_keys: Payloads,
    unflushed_values: Payloads,
    resend: bool,
    /// The timestamps of one append's records.
    timestamps: Vec<i64>,
}

impl Changelog {
    /// Sends `keys`/`values` (a `None` value deletes); [`flush`](Changelog::flush) waits
    /// until they are stored. Takes the records, kept to be sent again if the flush fails:
    /// `keys` and `values` are left empty.
    pub(crate) fn append(
        &mut self,
        keys: &mut Payloads,
        values: &mut Payloads,
    ) -> Result<(), EngineError> {
        if keys.is_empty() {
            return Ok(());
        }
        if keys.iter().any(|k| k.is_none()) {
            return Err(EngineError::Internal("a state change without a key".into()));
        }
        self.sent += keys.len() as u64;
        if self.unflushed_keys.is_empty() {
            // The first records since the flush: taken over rather than copied.
            std::mem::swap(&mut self.unflushed_keys, keys);
            std::mem::swap(&mut self.unflushed_values, values);
            return send(
                self.sink.as_mut(),
                &mut self.timestamps,
                &self.unflushed_keys,
                &self.unflushed_values,
            );
        }
        for (key, value) in keys.iter().zip(values.iter()) {
            self.unflushed_keys.push(key);
            self.unflushed_values.push(value);
        }
        let sent = send(self.sink.as_mut(), &mut self.timestamps, keys, values);
        keys.clear();
        values.clear();
        sent
    }

    /// Waits until everything sent is stored, then records how far the changelog goes.
    /// Called before the input offsets of the changes are committed.
    pub(crate) fn flush(&mut self) -> Result<(), EngineError> {
        if self.sent == 0 {
            return Ok(());
        }
        if std::mem::take(&mut self.resend) {
            send(
                self.sink.as_mut(),
                &mut self.timestamps,
                &self.unflushed_keys,
                &self.unflushed_values,
            )?;
        }
        if let Err(err) = self.sink.flush(Duration::from_secs(30)) {
            self.resend = true;
            return Err(err.into());
        }
        self.unflushed_keys.clear();
        self.unflushed_values.clear();
        let sent = std::mem::take(&mut self.sent);
        self.written += sent;
        self.own_since_sync += sent;
        // A store that holds writes in memory records its progress only when it persists
        // them (at the sync below), so a crash makes it replay what it had not persisted.
        if !self.store.holds_writes() {
            write_count(self.meta.as_ref(), &self.store_name, self.written)?;
        }
        // Now and then, so that a catch-up never has far to read.
        if self.synced_at.elapsed() >= SYNC_INTERVAL {
            self.sync()?;
        }
        Ok(())
    }

    /// Waits until everything sent is stored, and makes the store persist all of it and
    /// record how far it goes, so that a restart reads nothing again (before a query stops).
    pub(crate) fn checkpoint(&mut self) -> Result<(), EngineError> {
        self.flush()?;
        self.store.persist()?;
        write_count(self.meta.as_ref(), &self.store_name, self.written)
    }

    /// Brings the store up to date with the changelog's end: applies what was written since
    /// the last catch-up by another server that owned some of the groups until the consumer
    /// group moved their partitions here. Called when partitions are assigned, before their
    /// records are processed.
    pub(crate) fn catch_up(&mut self) -> Result<(), EngineError> {
        self.flush()?;
        self.sync()
    }

    /// Moves `synced` to the changelog's end: for free when every record since is this
    /// server's own (the store has them), else by applying them all.
    fn sync(&mut self) -> Result<(), EngineError> {
        let ends = self.topics.admin().end_offsets(&self.topic)?;
        let total = |positions: &[Position]| -> u64 {
            positions.iter().map(|p| p.next_offset.max(0) as u64).sum()
        };
        let new = total(&ends).saturating_sub(total(&self.synced));
        if new < self.own_since_sync {
            // The broker's end offsets do not yet count every record it acknowledged (tansu's
            // lag behind at times). Reading up to them would replay this server's own older
            // states over newer ones: a flush a second from now tries again.
            tracing::debug!(
                store = %self.store_name,
                end_says = new,
                acknowledged = self.own_since_sync,
                "changelog end offsets behind acknowledged writes; sync postponed"
            );
            self.synced_at = Instant::now()
                .checked_sub(SYNC_INTERVAL.saturating_sub(SYNC_RETRY))
                .unwrap_or_else(Instant::now);
            return Ok(());
        }
        let applied = if new == self.own_since_sync {
            0
        } else {
            replay(
                &self.topics,
                &self.topic,
                self.store.as_ref(),
                &self.synced,
                &ends,
                None,
            )?
        };
        if applied > 0 {
            tracing::info!(
                store = %self.store_name,
                topic = %self.topic,
                records = applied,
                "caught up with changes written elsewhere"
            );
        }
        // The count is the changelog's end offset again, whoever wrote up to it.
        self.written = total(&ends);
        self.synced = ends;
        self.synced_at = Instant::now();
        self.own_since_sync = 0;
        self.store.persist()?;
        write_count(self.meta.as_ref(), &self.store_name, self.written)
    }
}

/// Sends changes to a changelog through `sink`; `timestamps` is scratch space.
fn send(
    sink: &mut dyn RecordSink,
    timestamps: &mut Vec<i64>,
    keys: &Payloads,
    values: &Payloads,
) -> Result<(), EngineError> {
    // Stamped with the time of writing, so that a broker that also deletes by age
    // (`compact,delete`) counts from now, not from 1970.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    timestamps.clear();
    timestamps.resize(keys.len(), now);
    sink.send(keys, values, timestamps)?;
    Ok(())
}

/// Opens `store_name` with its state as of the end of `topic`: brought up to date from
/// the changelog when the local store is behind it, rebuilt when it is empty or cannot
/// say how far it got. `held`: hold the state in memory within that many bytes (see
/// [`WriteBackStore`]). A missing changelog is created with `replicas` replicas.
/// `restoring`, if given, shows the changelog records a restore has still to read. Returns
/// the store and its changelog writer.
pub(crate) fn open_with_changelog(
    state: &dyn StateBackend,
    topics: &Arc<dyn TopicIo>,
    store_name: &str,
    topic: &str,
    replicas: i16,
    held: Option<usize>,
    restoring: Option<&Gauge>,
) -> Result<(Arc<dyn KeyValueStore>, Changelog), EngineError> {
    let admin = topics.admin();
    if admin.partition_count(topic)?.is_none() {
        admin.create_compacted_topic(topic, 1, replicas)?;
    }
    let meta = state.open_store(META_STORE)?;
    let applied = read_count(meta.as_ref(), store_name)?;
    let ends = admin.end_offsets(topic)?;
    let end: i64 = ends.iter().map(|p| p.next_offset.max(0)).sum();
    let mut store = state.open_store(store_name)?;
    if applied != Some(end as u64) {
        match resume_point(topics, topic, &ends, applied)? {
            Some(from) => {
                // Records from there on set every key they touch to its latest state;
                // those before it are in the store.
                tracing::info!(
                    store = store_name,
                    topic,
                    from = from.next_offset,
                    records = end - from.next_offset,
                    "bringing state up to date from its changelog"
                );
                replay(topics, topic, store.as_ref(), &[from], &ends, restoring)?;
            }
            None => {
                tracing::info!(
                    store = store_name,
                    topic,
                    records = end,
                    "restoring state from its changelog"
                );
                state.drop_store(store_name)?;
                store = state.open_store(store_name)?;
                replay(topics, topic, store.as_ref(), &[], &ends, restoring)?;
            }
        }
        write_count(meta.as_ref(), store_name, end as u64)?;
    }
    if let Some(budget) = held {
        store = Arc::new(WriteBackStore::open(store_name, store, budget)?);
    }
    Ok((
        Arc::clone(&store),
        Changelog {
            store_name: store_name.to_string(),
            store,
            topic: topic.to_string(),
            topics: Arc::clone(topics),
            synced: ends,
            synced_at: Instant::now(),
            own_since_sync: 0,
            sink: topics.sink(topic)?,
            meta,
            written: end as u64,
            sent: 0,
            unflushed_keys: Payloads::new(),
            unflushed_values: Payloads::new(),
            resend: false,
            timestamps: Vec::new(),
        },
    ))
}

/// Where a store that applied its changelog up to offset `applied` goes on from: only for
/// a changelog of one partition (the count is then an offset) that still has that offset.
fn resume_point(
    topics: &Arc<dyn TopicIo>,
    topic: &str,
    ends: &[Position],
    applied: Option<u64>,
) -> Result<Option<Position>, EngineError> {
    let ([end], Some(applied)) = (ends, applied) else {
        return Ok(None);
    };
    let Ok(applied) = i64::try_from(applied) else {
        return Ok(None);
    };
    if applied == 0 || applied > end.next_offset {
        return Ok(None);
    }
    let starts = topics.admin().start_offsets(topic)?;
    let start = starts
        .iter()
        .find(|p| p.partition == end.partition)
        .map_or(0, |p| p.next_offset);
    Ok((start <= applied).then_some(Position {
        partition: end.partition,
        next_offset: applied,
    }))
}

/// Applies `topic` to `store` from the offsets `from` (per partition; a partition not
/// listed from the first record the broker still keeps) up to the end offsets `ends`, and
/// returns how many records it applied. Offsets are compared, not records counted:
/// compaction and retention leave gaps.
/// Applies the changelog `topic` from `from` up to `ends` to `store`; returns the records
/// applied. `remaining`, if given, shows the records still to read as it goes.
fn replay(
    topics: &Arc<dyn TopicIo>,
    topic: &str,
    store: &dyn KeyValueStore,
    from: &[Position],
    ends: &[Position],
    remaining: Option<&Gauge>,
) -> Result<u64, EngineError> {
    let starts = topics.admin().start_offsets(topic)?;
    let offset_in = |positions: &[Position], partition: i32| {
        positions
            .iter()
            .find(|p| p.partition == partition)
            .map_or(0, |p| p.next_offset)
    };
    let first = |partition: i32| offset_in(&starts, partition).max(offset_in(from, partition));
    // The next offset each partition still has to deliver, for those with records left.
    let mut pending: HashMap<i32, i64> = ends
        .iter()
        .filter(|end| end.next_offset > first(end.partition))
        .map(|end| (end.partition, end.next_offset))
        .collect();
    if pending.is_empty() {
        return Ok(0);
    }
    // The next offset read in each partition with records left.
    let mut next: HashMap<i32, i64> = pending.keys().map(|&p| (p, first(p))).collect();
    let show_remaining = |pending: &HashMap<i32, i64>, next: &HashMap<i32, i64>| {
        if let Some(gauge) = remaining {
            let left: i64 = pending
                .iter()
                .map(|(p, end)| end - next.get(p).copied().unwrap_or(0))
                .sum();
            gauge.set(left.max(0));
        }
    };
    show_remaining(&pending, &next);
    let mut source = topics.reader_from(topic, from)?;
    let mut raw = RawBatch::default();
    let mut read = 0u64;
    let mut applied = 0u64;
    let deadline = Instant::now() + RESTORE_DEADLINE;
    while !pending.is_empty() {
        if Instant::now() > deadline {
            return Err(EngineError::Internal(format!(
                "restoring from {topic} stopped after {read} records, short of the end \
                 offsets {pending:?} (partition: offset): the broker did not deliver the rest \
                 within {} s",
                RESTORE_DEADLINE.as_secs()
            )));
        }
        raw.clear();
        let n = source.poll(&mut raw, 10_000, Duration::from_millis(200))?;
        if n == 0 {
            continue;
        }
        let (mut keys, mut values) = (Payloads::new(), Payloads::new());
        for i in 0..n {
            // Records past the end offsets taken before reading wait for the next replay.
            let partition = raw.partitions[i];
            let Some(&end) = pending.get(&partition) else {
                continue;
            };
            // A reader may start earlier than asked.
            if raw.offsets[i] >= end || raw.offsets[i] < offset_in(from, partition) {
                continue;
            }
            packed::unpack(raw.keys.get(i), raw.values.get(i), &mut keys, &mut values)?;
            applied += 1;
        }
        store.write(&keys, &values)?;
        read += n as u64;
        for (&partition, &offset) in raw.partitions.iter().zip(&raw.offsets) {
            if let Some(n) = next.get_mut(&partition) {
                *n = (*n).max(offset + 1);
            }
            if pending
                .get(&partition)
                .is_some_and(|&end| offset + 1 >= end)
            {
                pending.remove(&partition);
            }
        }
        show_remaining(&pending, &next);
    }
    Ok(applied)
}

fn read_count(meta: &dyn KeyValueStore, store_name: &str) -> Result<Option<u64>, EngineError> {
    Ok(meta.get(store_name.as_bytes())?.and_then(|b| {
        let bytes: [u8; 8] = b.as_slice().try_into().ok()?;
        Some(u64::from_be_bytes(bytes))
    }))
}

fn write_count(meta: &dyn KeyValueStore, store_name: &str, count: u64) -> Result<(), EngineError> {
    let mut keys = Payloads::new();
    let mut values = Payloads::new();
    keys.push(Some(store_name.as_bytes()));
    values.push(Some(&count.to_be_bytes()));
    meta.write(&keys, &values)?;
    Ok(())
}

/// A consumer-group generation for a store rebuilt from its topic: the same while the store
/// lives, new when the store is new (an emptied data dir reads its topic from the start
/// again rather than resuming where the lost store had got to).
pub(crate) fn store_generation(
    state: &dyn StateBackend,
    store_name: &str,
) -> Result<String, EngineError> {
    let meta = state.open_store(META_STORE)?;
    let key = format!("generation:{store_name}");
    if let Some(g) = meta.get(key.as_bytes())? {
        return Ok(String::from_utf8_lossy(&g).into_owned());
    }
    let generation = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default()
        .to_string();
    let mut keys = Payloads::new();
    let mut values = Payloads::new();
    keys.push(Some(key.as_bytes()));
    values.push(Some(generation.as_bytes()));
    meta.write(&keys, &values)?;
    Ok(generation)
}

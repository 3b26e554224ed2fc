//! The engine's Prometheus metrics: per persistent query, what it read, wrote and failed
//! on, how long its batches took and how old their records were, updated once per batch
//! (never per record); and, computed when scraped, each query's state and consumer lag.
//!
//! Names follow Prometheus' conventions: `eddy_` prefix, base units (`_seconds`,
//! `_bytes`), counters ending in `_total`, labels `query_id`, `topic`, `partition`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use eddy_state::KeyValueStore;
use eddy_topic::Position;

use crate::changelog::QueryStore;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

/// A metric's labels, as name–value pairs.
pub type Labels = Vec<(String, String)>;

type Histograms = Family<Labels, Histogram, fn() -> Histogram>;

/// Batch durations: 0.5 ms to about 16 s.
fn batch_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// End-to-end latencies: 1 ms to about 65 s.
fn latency_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

/// The engine's long-lived metric families.
#[derive(Debug, Clone)]
pub struct EngineMetrics {
    records_read: Family<Labels, Counter>,
    bytes_read: Family<Labels, Counter>,
    records_written: Family<Labels, Counter>,
    bytes_written: Family<Labels, Counter>,
    processing_errors: Family<Labels, Counter>,
    batch_seconds: Histograms,
    latency_seconds: Histograms,
    /// Changelog records each store of a query has still to read to restore its state.
    restore_remaining: Family<Labels, Gauge>,
    /// What each persistent query last committed, for its lag.
    positions: Arc<Mutex<Positions>>,
    /// The stores that hold state in memory, by query and store name, read when scraped.
    held: Arc<Mutex<Vec<HeldStore>>>,
}

/// (query id, store name, the store).
type HeldStore = (String, String, Weak<dyn KeyValueStore>);

/// (query id, input topic) → partition → next offset to read, for the partitions this
/// server reads.
type Positions = BTreeMap<(String, String), BTreeMap<i32, i64>>;

impl Default for EngineMetrics {
    fn default() -> Self {
        Self {
            records_read: Family::default(),
            bytes_read: Family::default(),
            records_written: Family::default(),
            bytes_written: Family::default(),
            processing_errors: Family::default(),
            batch_seconds: Family::new_with_constructor(batch_buckets),
            latency_seconds: Family::new_with_constructor(latency_buckets),
            restore_remaining: Family::default(),
            positions: Arc::default(),
            held: Arc::default(),
        }
    }
}

/// One persistent query's meters, resolved once when it starts.
#[derive(Debug, Clone)]
pub(crate) struct QueryMeters {
    id: String,
    records_read: Counter,
    bytes_read: Counter,
    records_written: Counter,
    bytes_written: Counter,
    processing_errors: Counter,
    batch_seconds: Histogram,
    latency_seconds: Histogram,
    positions: Arc<Mutex<Positions>>,
}

/// What one batch did, as [`QueryMeters::batch`] records it.
pub(crate) struct BatchFigures<'a> {
    /// Records read.
    pub read: u64,
    /// Bytes of their values.
    pub bytes: u64,
    /// Records written to the query's sink.
    pub written: u64,
    /// Bytes of their keys and values.
    pub written_bytes: u64,
    /// Records that went to the processing log.
    pub errors: u64,
    /// From the poll to the commit.
    pub took: Duration,
    /// The oldest input record's timestamp (ms since the epoch), if any.
    pub oldest_ms: Option<i64>,
    /// The input topic, and the next offset of each partition the batch read.
    pub topic: &'a str,
    /// The next offset of each partition the batch read.
    pub next: &'a [Position],
}

impl EngineMetrics {
    /// The meters of query `id`.
    pub(crate) fn query(&self, id: &str) -> QueryMeters {
        let labels = vec![("query_id".to_string(), id.to_string())];
        QueryMeters {
            id: id.to_string(),
            records_read: self.records_read.get_or_create(&labels).clone(),
            bytes_read: self.bytes_read.get_or_create(&labels).clone(),
            records_written: self.records_written.get_or_create(&labels).clone(),
            bytes_written: self.bytes_written.get_or_create(&labels).clone(),
            processing_errors: self.processing_errors.get_or_create(&labels).clone(),
            batch_seconds: self.batch_seconds.get_or_create(&labels).clone(),
            latency_seconds: self.latency_seconds.get_or_create(&labels).clone(),
            positions: Arc::clone(&self.positions),
        }
    }

    /// The gauge of the changelog records store `store` of query `id` has still to read.
    pub(crate) fn restore_remaining(&self, id: &str, store: &str) -> Gauge {
        let labels = vec![
            ("query_id".to_string(), id.to_string()),
            ("store".to_string(), store.to_string()),
        ];
        self.restore_remaining.get_or_create(&labels).clone()
    }

    /// Forgets a terminated query's series.
    pub(crate) fn forget(&self, id: &str) {
        let labels = vec![("query_id".to_string(), id.to_string())];
        for family in [
            &self.records_read,
            &self.bytes_read,
            &self.records_written,
            &self.bytes_written,
            &self.processing_errors,
        ] {
            family.remove(&labels);
        }
        lock(&self.held).retain(|(query, _, _)| query != id);
        self.batch_seconds.remove(&labels);
        self.latency_seconds.remove(&labels);
        lock(&self.positions).retain(|(query, _), _| query != id);
        let stores: Vec<Labels> = QueryStore::ALL
            .iter()
            .map(|store| {
                vec![
                    ("query_id".to_string(), id.to_string()),
                    ("store".to_string(), store.name(id)),
                ]
            })
            .collect();
        for labels in &stores {
            self.restore_remaining.remove(labels);
        }
    }

    /// Registers the families in `registry`, with `now` (query id → state, lag by
    /// partition) for the gauges computed when scraped.
    pub fn register(&self, registry: &mut Registry, now: &[QueryNow]) {
        registry.register(
            "eddy_query_records_read",
            "Records a persistent query read from its input",
            self.records_read.clone(),
        );
        registry.register_with_unit(
            "eddy_query_read",
            "Bytes of record values a persistent query read",
            Unit::Bytes,
            self.bytes_read.clone(),
        );
        registry.register(
            "eddy_query_records_written",
            "Records a persistent query wrote to its sink",
            self.records_written.clone(),
        );
        registry.register_with_unit(
            "eddy_query_written",
            "Bytes of record keys and values a persistent query wrote to its sink",
            Unit::Bytes,
            self.bytes_written.clone(),
        );
        let held: Family<Labels, Gauge> = Family::default();
        lock(&self.held).retain(|(query, name, store)| match store.upgrade() {
            Some(store) => {
                let labels = vec![
                    ("query_id".to_string(), query.clone()),
                    ("store".to_string(), name.clone()),
                ];
                held.get_or_create(&labels)
                    .set(i64::try_from(store.held_bytes()).unwrap_or(i64::MAX));
                true
            }
            None => false,
        });
        registry.register_with_unit(
            "eddy_query_held_state",
            "Memory a persistent query's state store holds in front of its storage",
            Unit::Bytes,
            held,
        );
        registry.register(
            "eddy_query_processing_errors",
            "Records a persistent query could not process (sent to the processing log)",
            self.processing_errors.clone(),
        );
        registry.register_with_unit(
            "eddy_query_batch_duration",
            "Time a persistent query took for a batch, from its poll to its commit",
            Unit::Seconds,
            self.batch_seconds.clone(),
        );
        registry.register_with_unit(
            "eddy_query_end_to_end_latency",
            "Age of a batch's oldest input record when the batch was committed",
            Unit::Seconds,
            self.latency_seconds.clone(),
        );
        registry.register(
            "eddy_query_restore_remaining_records",
            "Changelog records a persistent query's store has still to read to restore its state",
            self.restore_remaining.clone(),
        );
        let state: Family<Labels, Gauge> = Family::default();
        let lag: Family<Labels, Gauge> = Family::default();
        for query in now {
            for candidate in ["RUNNING", "ERROR"] {
                let labels = vec![
                    ("query_id".to_string(), query.id.clone()),
                    ("state".to_string(), candidate.to_string()),
                ];
                state
                    .get_or_create(&labels)
                    .set(i64::from(query.state == candidate));
            }
            for (topic, partition, behind) in &query.lag {
                let labels = vec![
                    ("query_id".to_string(), query.id.clone()),
                    ("topic".to_string(), topic.clone()),
                    ("partition".to_string(), partition.to_string()),
                ];
                lag.get_or_create(&labels).set(*behind);
            }
        }
        registry.register(
            "eddy_query_state",
            "1 for the state each persistent query is in",
            state,
        );
        registry.register(
            "eddy_query_consumer_lag",
            "Records of the input partition a persistent query has not yet processed",
            lag,
        );
    }

    /// Shows the memory `store` (of query `id`) holds in the metrics, for as long as it
    /// is open.
    pub(crate) fn track_held(&self, id: &str, name: &str, store: &Arc<dyn KeyValueStore>) {
        let mut held = lock(&self.held);
        held.retain(|(query, n, _)| !(query == id && n == name));
        held.push((id.to_string(), name.to_string(), Arc::downgrade(store)));
    }

    /// The records query `id` has sent to the processing log on this server.
    pub(crate) fn processing_errors(&self, id: &str) -> u64 {
        self.processing_errors
            .get(&vec![("query_id".to_string(), id.to_string())])
            .map_or(0, |c| c.get())
    }

    /// Each query's input topic and the next offset of each partition this server reads.
    pub(crate) fn positions(&self) -> Vec<(String, String, BTreeMap<i32, i64>)> {
        lock(&self.positions)
            .iter()
            .map(|((id, topic), next)| (id.clone(), topic.clone(), next.clone()))
            .collect()
    }
}

/// A persistent query as the scrape-time gauges see it.
#[derive(Debug, Clone)]
pub struct QueryNow {
    /// Its id.
    pub id: String,
    /// `RUNNING` or `ERROR`.
    pub state: String,
    /// (topic, partition, records behind the end) for the partitions this server reads.
    pub lag: Vec<(String, i32, i64)>,
}

impl QueryMeters {
    /// Records a finished batch.
    pub(crate) fn batch(&self, figures: &BatchFigures<'_>) {
        self.records_read.inc_by(figures.read);
        self.bytes_read.inc_by(figures.bytes);
        self.records_written.inc_by(figures.written);
        self.bytes_written.inc_by(figures.written_bytes);
        self.processing_errors.inc_by(figures.errors);
        self.batch_seconds.observe(figures.took.as_secs_f64());
        if let Some(oldest) = figures.oldest_ms {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64);
            self.latency_seconds
                .observe((now - oldest).max(0) as f64 / 1000.0);
        }
        if !figures.next.is_empty() {
            lock(&self.positions)
                .entry((self.id.clone(), figures.topic.to_string()))
                .or_default()
                .extend(figures.next.iter().map(|p| (p.partition, p.next_offset)));
        }
    }

    /// The query's partitions changed: the lag of partitions it no longer reads is not
    /// this server's to report.
    pub(crate) fn reassigned(&self) {
        lock(&self.positions).retain(|(query, _), _| *query != self.id);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_shows_in_the_exposition() -> Result<(), std::fmt::Error> {
        let metrics = EngineMetrics::default();
        let meters = metrics.query("CSAS_X_1");
        meters.batch(&BatchFigures {
            read: 10,
            bytes: 400,
            written: 7,
            written_bytes: 300,
            errors: 3,
            took: Duration::from_millis(3),
            oldest_ms: Some(0),
            topic: "in",
            next: &[Position {
                partition: 0,
                next_offset: 10,
            }],
        });
        metrics
            .restore_remaining("CSAS_X_1", "aggregate_CSAS_X_1")
            .set(42);
        let backend = eddy_state::MemoryBackend::new();
        let held =
            eddy_state::StateBackend::open_store(&backend, "held").map_err(|_| std::fmt::Error)?;
        metrics.track_held("CSAS_X_1", "held", &held);
        let mut registry = Registry::default();
        metrics.register(
            &mut registry,
            &[QueryNow {
                id: "CSAS_X_1".into(),
                state: "RUNNING".into(),
                lag: vec![("in".into(), 0, 5)],
            }],
        );
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry)?;
        for line in [
            "eddy_query_records_read_total{query_id=\"CSAS_X_1\"} 10",
            "eddy_query_read_bytes_total{query_id=\"CSAS_X_1\"} 400",
            "eddy_query_records_written_total{query_id=\"CSAS_X_1\"} 7",
            "eddy_query_written_bytes_total{query_id=\"CSAS_X_1\"} 300",
            "eddy_query_held_state_bytes{query_id=\"CSAS_X_1\",store=\"held\"} 0",
            "eddy_query_processing_errors_total{query_id=\"CSAS_X_1\"} 3",
            "eddy_query_batch_duration_seconds_count{query_id=\"CSAS_X_1\"} 1",
            "eddy_query_state{query_id=\"CSAS_X_1\",state=\"RUNNING\"} 1",
            "eddy_query_state{query_id=\"CSAS_X_1\",state=\"ERROR\"} 0",
            "eddy_query_consumer_lag{query_id=\"CSAS_X_1\",topic=\"in\",partition=\"0\"} 5",
            "eddy_query_restore_remaining_records{query_id=\"CSAS_X_1\",store=\"aggregate_CSAS_X_1\"} 42",
        ] {
            assert!(text.contains(line), "{line} not in\n{text}");
        }
        assert_eq!(
            metrics.positions(),
            vec![(
                "CSAS_X_1".to_string(),
                "in".to_string(),
                BTreeMap::from([(0, 10)])
            )]
        );
        metrics.forget("CSAS_X_1");
        assert!(metrics.positions().is_empty());
        Ok(())
    }
}

//! `GROUP BY` on other columns than the input's key: as in ksqlDB, the query's input goes
//! through an internal topic first, each record to the partition its group hashes to, so
//! that every group's records meet in one task whichever server read them. The query reads
//! both topics (a [`crate::stream_join::MergedSource`]): a batch of its input is forwarded,
//! a batch of the internal topic is aggregated.
//!
//! A forwarded record is the input record unchanged (key, value, timestamp), so the
//! aggregating side decodes it as it would the input; only its partition says its group.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use eddy_topic::{Payloads, RawBatch, RecordSink};

use crate::error::EngineError;

/// How long forwarded records may take to be acknowledged.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(30);

/// The internal topic of a query's repartition, named as ksqlDB names its own.
pub(crate) fn repartition_topic(service_id: &str, query_id: &str) -> String {
    format!("_eddy_{service_id}query_{query_id}-Aggregate-GroupBy-repartition")
}

/// The writing side of a repartition, and which topic the batch in hand came from.
pub(crate) struct Repartition {
    topic: String,
    sink: Box<dyn RecordSink>,
    partitions: i32,
    /// Set by the query's merged source when a batch comes from the internal topic.
    from_internal: Arc<AtomicBool>,
    /// The forwarded records of the batch in hand, kept until they are acknowledged.
    keys: Payloads,
    values: Payloads,
    timestamps: Vec<i64>,
    targets: Vec<i32>,
}

impl Repartition {
    /// Forwards to `topic` (of `partitions` partitions) through `sink`; `from_internal` is
    /// the flag of the merged source whose right side reads `topic`.
    pub(crate) fn new(
        topic: String,
        sink: Box<dyn RecordSink>,
        partitions: i32,
        from_internal: Arc<AtomicBool>,
    ) -> Self {
        Self {
            topic,
            sink,
            partitions,
            from_internal,
            keys: Payloads::new(),
            values: Payloads::new(),
            timestamps: Vec::new(),
            targets: Vec::new(),
        }
    }

    /// The internal topic.
    pub(crate) fn topic(&self) -> &str {
        &self.topic
    }

    /// The internal topic's partition count.
    pub(crate) fn partitions(&self) -> i32 {
        self.partitions
    }

    /// Whether the batch in hand came from the internal topic (it is aggregated) rather
    /// than from the input (it is forwarded).
    pub(crate) fn is_internal_batch(&self) -> bool {
        self.from_internal.load(Ordering::SeqCst)
    }

    /// Sends the records `rows` of `raw` to the partitions `targets` (aligned with `rows`).
    pub(crate) fn forward(
        &mut self,
        raw: &RawBatch,
        rows: &[usize],
        targets: &[i32],
    ) -> Result<(), EngineError> {
        self.keys.clear();
        self.values.clear();
        self.timestamps.clear();
        for &r in rows {
            self.keys.push(raw.keys.get(r));
            self.values.push(raw.values.get(r));
            self.timestamps.push(raw.timestamps[r]);
        }
        self.targets.clear();
        self.targets.extend_from_slice(targets);
        self.send()
    }

    /// Sends the forwarded records of the batch in hand (again, after a failed flush).
    pub(crate) fn send(&mut self) -> Result<(), EngineError> {
        self.sink
            .send_to_partitions(&self.keys, &self.values, &self.timestamps, &self.targets)?;
        Ok(())
    }

    /// How many records the batch in hand forwarded.
    pub(crate) fn forwarded(&self) -> usize {
        self.keys.len()
    }

    /// Waits until the forwarded records are stored.
    pub(crate) fn flush(&mut self) -> Result<(), EngineError> {
        self.sink.flush(FLUSH_TIMEOUT)?;
        Ok(())
    }
}

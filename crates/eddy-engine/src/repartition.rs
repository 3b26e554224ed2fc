//! `GROUP BY` on other columns than the input's key: as in ksqlDB, the query's input goes
//! through an internal topic first, each record to the partition its group hashes to, so
//! that every group's records meet in one task whichever server read them. The query reads
//! both topics (a [`crate::stream_join::MergedSource`]): a batch of its input is forwarded,
//! a batch of the internal topic is aggregated.
//!
//! A forwarded record is the input record unchanged (key, value, timestamp), so the
//! aggregating side decodes it as it would the input; only its partition says its group.
//! A table's change is forwarded as up to two records, as Kafka Streams does: its previous
//! version, taken out of its group, and its new version, added to its group (one byte after
//! the key says which: [`split_changes`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use eddy_topic::{Payloads, RawBatch, RecordSink};

use crate::error::EngineError;

/// How long forwarded records may take to be acknowledged.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(30);
/// The last byte of a forwarded table change's key: the row leaves its group.
const RETRACTS: u8 = 0;
/// The last byte of a forwarded table change's key: the row joins its group.
const ADDS: u8 = 1;

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

    /// Starts the forwarded records of a new batch.
    pub(crate) fn clear(&mut self) {
        self.keys.clear();
        self.values.clear();
        self.timestamps.clear();
        self.targets.clear();
    }

    /// Adds record `r` of `raw` to the batch's forwarded records, for `partition`.
    pub(crate) fn push(&mut self, raw: &RawBatch, r: usize, partition: i32) {
        self.keys.push(raw.keys.get(r));
        self.values.push(raw.values.get(r));
        self.timestamps.push(raw.timestamps[r]);
        self.targets.push(partition);
    }

    /// Adds a table change to the batch's forwarded records, for `partition`: row `value`
    /// of `key` leaves its group (`retracts`) or joins it.
    pub(crate) fn push_change(
        &mut self,
        key: &[u8],
        value: Option<&[u8]>,
        timestamp: i64,
        partition: i32,
        retracts: bool,
    ) -> Result<(), EngineError> {
        self.keys.push_with(|buf| {
            buf.extend_from_slice(key);
            buf.push(if retracts { RETRACTS } else { ADDS });
            Ok::<(), EngineError>(())
        })?;
        self.values.push(value);
        self.timestamps.push(timestamp);
        self.targets.push(partition);
        Ok(())
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

/// Splits forwarded table changes into the records as the table had them and, for each,
/// whether it leaves its group (else it joins it). A record without a key (not one Eddy
/// wrote) is dropped with a warning.
pub(crate) fn split_changes(raw: &RawBatch) -> (RawBatch, Vec<bool>) {
    let mut records = RawBatch::default();
    let mut retracts = Vec::with_capacity(raw.len());
    for i in 0..raw.len() {
        let Some((&mark, key)) = raw.keys.get(i).and_then(<[u8]>::split_last) else {
            tracing::warn!(
                partition = raw.partitions[i],
                offset = raw.offsets[i],
                "a record without a key in a repartition topic was dropped"
            );
            continue;
        };
        retracts.push(mark == RETRACTS);
        records.push(
            Some(key),
            raw.values.get(i),
            raw.timestamps[i],
            raw.partitions[i],
            raw.offsets[i],
        );
    }
    (records, retracts)
}

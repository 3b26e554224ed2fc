//! The topic abstraction: what a continuous query reads from and writes to.
//!
//! A query's operators see only [`RawBatch`]es coming out of a [`RecordSource`] and hand
//! encoded records to a [`RecordSink`]; whether the topic lives in Kafka (`eddy-kafka`) or in
//! memory (`eddy test`) is decided once, by the [`TopicIo`] the engine is given.
//!
//! Invariant: this crate knows bytes, partitions and offsets, never formats or SQL.

mod batch;
mod error;
mod partitioner;

pub use batch::{Header, Payloads, RawBatch, RecordHeaders};
pub use error::TopicError;
pub use partitioner::{murmur2, partition_for_key};

use std::time::Duration;

/// Where a new consumer group starts reading when it has no committed offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartFrom {
    /// The oldest record still in the topic (`auto.offset.reset=earliest`).
    Earliest,
    /// Only records produced from now on (`auto.offset.reset=latest`, ksqlDB's default).
    Latest,
}

/// The next offset to read for one partition: what a consumer commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// Partition number.
    pub partition: i32,
    /// Offset of the next record to read (last processed offset + 1).
    pub next_offset: i64,
}

/// Reads records of one topic for one consumer group.
pub trait RecordSource: Send {
    /// Waits at most `timeout` for records and appends up to `max_records` of them to `batch`.
    /// Returns how many were appended (0 when the timeout passed with nothing to read).
    fn poll(
        &mut self,
        batch: &mut RawBatch,
        max_records: usize,
        timeout: Duration,
    ) -> Result<usize, TopicError>;

    /// Records that everything before these positions has been processed (and its outputs
    /// acknowledged), so a restarted query resumes there.
    fn commit(&mut self, positions: &[Position]) -> Result<(), TopicError>;

    /// How many times the consumer group has assigned this source partitions: a change
    /// means partitions may have moved here from another server. Sources outside a group
    /// (and in-memory ones) never change it.
    fn assignments(&self) -> u64 {
        0
    }

    /// The partitions this source reads now (its consumer group's assignment), for sources
    /// that can say; `None` when it reads every partition or cannot tell.
    fn assigned_partitions(&self) -> Option<Vec<i32>> {
        None
    }
}

/// Writes records to one topic.
pub trait RecordSink: Send {
    /// Queues records for delivery; partitions are chosen from the key the way Kafka's
    /// default partitioner does (murmur2), so output is co-partitioned with ksqlDB's.
    /// `keys`, `values` and `timestamps` have one entry per record.
    fn send(
        &mut self,
        keys: &Payloads,
        values: &Payloads,
        timestamps: &[i64],
    ) -> Result<(), TopicError> {
        self.send_with_headers(keys, values, timestamps, &RecordHeaders::new())
    }

    /// [`RecordSink::send`], with the records' headers.
    fn send_with_headers(
        &mut self,
        keys: &Payloads,
        values: &Payloads,
        timestamps: &[i64],
        headers: &RecordHeaders,
    ) -> Result<(), TopicError>;

    /// Queues records to the partitions given (one per record) rather than the ones their
    /// keys hash to: a repartition, where records keep their key (and headers) but go
    /// where another value puts them. A partition outside the topic is an error.
    fn send_to_partitions(
        &mut self,
        keys: &Payloads,
        values: &Payloads,
        timestamps: &[i64],
        headers: &RecordHeaders,
        partitions: &[i32],
    ) -> Result<(), TopicError>;

    /// Waits until every record queued so far is acknowledged by the broker.
    fn flush(&mut self, timeout: Duration) -> Result<(), TopicError>;
}

/// A topic as listed by `SHOW TOPICS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    /// Topic name.
    pub name: String,
    /// Number of partitions.
    pub partitions: i32,
    /// Replication factor (1 when the broker does not say).
    pub replicas: i16,
}

/// A consumer group as the broker describes it: the topics assigned to each member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerGroupInfo {
    /// The group's id.
    pub group: String,
    /// Per member, the topics of the partitions assigned to it.
    pub members: Vec<Vec<String>>,
}

/// Topic administration: the part of a broker's API the engine needs.
pub trait TopicAdmin: Send + Sync {
    /// Creates a topic; succeeds without change if it exists already.
    fn create_topic(&self, name: &str, partitions: i32, replicas: i16) -> Result<(), TopicError>;
    /// Creates a compacted topic (`cleanup.policy=compact`), whose broker keeps the latest
    /// record of every key however old, as a store's changelog needs; succeeds without
    /// change if it exists already.
    fn create_compacted_topic(
        &self,
        name: &str,
        partitions: i32,
        replicas: i16,
    ) -> Result<(), TopicError>;
    /// Creates a topic with topic configs (`cleanup.policy`, `retention.ms`, …); succeeds
    /// without change if it exists already. A broker without topic configs (the in-memory
    /// topics of `eddy test`) creates it without them.
    fn create_topic_with_config(
        &self,
        name: &str,
        partitions: i32,
        replicas: i16,
        config: &[(&str, &str)],
    ) -> Result<(), TopicError> {
        let _ = config;
        self.create_topic(name, partitions, replicas)
    }
    /// The broker's consumer groups with their members' assignments (`SHOW TOPICS
    /// EXTENDED`); none where the broker cannot tell.
    fn consumer_groups(&self) -> Result<Vec<ConsumerGroupInfo>, TopicError> {
        Ok(Vec::new())
    }
    /// The number of partitions of a topic, or `None` if it does not exist.
    fn partition_count(&self, name: &str) -> Result<Option<i32>, TopicError>;
    /// All topics the broker knows.
    fn list_topics(&self) -> Result<Vec<TopicInfo>, TopicError>;
    /// Succeeds if the broker answers within `timeout` (a health check must not wait out
    /// an outage).
    fn check_reachable(&self, timeout: std::time::Duration) -> Result<(), TopicError> {
        let _ = timeout;
        self.list_topics().map(|_| ())
    }
    /// Deletes a topic.
    fn delete_topic(&self, name: &str) -> Result<(), TopicError>;
    /// The offset after the last record of every partition of a topic (its high watermarks),
    /// so a reader can tell when it has caught up.
    fn end_offsets(&self, name: &str) -> Result<Vec<Position>, TopicError> {
        Err(TopicError::Client(format!(
            "end offsets of '{name}' are not available from this broker"
        )))
    }
    /// The offset of the first record the broker still keeps in every partition of a topic
    /// (its low watermarks): where a reader from the beginning starts, past what retention
    /// or compaction removed.
    fn start_offsets(&self, name: &str) -> Result<Vec<Position>, TopicError> {
        Err(TopicError::Client(format!(
            "start offsets of '{name}' are not available from this broker"
        )))
    }
}

/// A provider of topics: Kafka in production, memory in `eddy test`.
pub trait TopicIo: Send + Sync {
    /// Topic administration.
    fn admin(&self) -> &dyn TopicAdmin;
    /// Opens a consumer of `topic` in consumer group `group`.
    fn source(
        &self,
        topic: &str,
        group: &str,
        start: StartFrom,
    ) -> Result<Box<dyn RecordSource>, TopicError>;
    /// Opens a producer to `topic`.
    fn sink(&self, topic: &str) -> Result<Box<dyn RecordSink>, TopicError>;

    /// Reads all of `topic` from the beginning without joining a consumer group (no
    /// rebalance to wait for; nothing is committed): for replaying logs and changelogs.
    fn reader(&self, topic: &str) -> Result<Box<dyn RecordSource>, TopicError> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        self.source(
            topic,
            &format!("_eddy_reader_{topic}_{nanos}"),
            StartFrom::Earliest,
        )
    }

    /// Like [`reader`](Self::reader), but each partition listed in `from` starts at its
    /// offset. A reader may also deliver earlier records (this default starts at the
    /// beginning), which callers skip.
    fn reader_from(
        &self,
        topic: &str,
        from: &[Position],
    ) -> Result<Box<dyn RecordSource>, TopicError> {
        let _ = from;
        self.reader(topic)
    }
}

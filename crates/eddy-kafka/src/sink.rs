//! [`KafkaSink`]: a producer writing one topic, partitioning keys the way Kafka's Java
//! client does.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use eddy_topic::{Payloads, RecordHeaders, RecordSink, TopicError};
use rdkafka::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::{KafkaError as RdKafkaError, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, Header as KafkaHeader, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};

use crate::config::{BrokerName, KafkaConfig};
use crate::context::{forward_error, forward_log};
use crate::error::{KafkaError, client_error, topic_error};

/// How long `send` lets librdkafka work between retries when its queue is full (rdkafka's
/// `poll` always waits this long, serving delivery reports meanwhile).
const QUEUE_FULL_BACKOFF: Duration = Duration::from_millis(5);
/// How long `flush` sleeps between checks for delivery reports.
const FLUSH_STEP: Duration = Duration::from_micros(250);

/// Writes records to one topic; [`flush`](RecordSink::flush) reports whether they all arrived.
///
/// Obtained from [`KafkaTopics`](crate::KafkaTopics) through
/// [`TopicIo::sink`](eddy_topic::TopicIo::sink). Records still queued when a sink is
/// dropped are discarded, so callers flush first.
pub struct KafkaSink {
    producer: BaseProducer<DeliveryTracker>,
    topic: String,
    broker: BrokerName,
}

impl std::fmt::Debug for KafkaSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSink")
            .field("topic", &self.topic)
            .field("broker", &self.broker)
            .finish_non_exhaustive()
    }
}

/// Counts failed deliveries between two flushes and keeps the first failure's error.
#[derive(Default)]
struct DeliveryTracker {
    failures: AtomicU64,
    first_failure: Mutex<Option<RdKafkaError>>,
}

impl DeliveryTracker {
    /// The failures since the last call: how many, and the first one's error.
    fn take_failures(&self) -> Option<(u64, RdKafkaError)> {
        let mut first = self
            .first_failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let count = self.failures.swap(0, Ordering::AcqRel);
        first.take().map(|err| (count.max(1), err))
    }
}

impl ClientContext for DeliveryTracker {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        forward_log(level, fac, log_message);
    }

    fn error(&self, error: RdKafkaError, reason: &str) {
        forward_error(&error, reason);
    }
}

impl ProducerContext for DeliveryTracker {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((err, _)) = result {
            let mut first = self
                .first_failure
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if first.is_none() {
                *first = Some(err.clone());
            }
            self.failures.fetch_add(1, Ordering::AcqRel);
        }
    }
}

impl KafkaSink {
    /// A producer for `topic`.
    pub(crate) fn open(
        config: &KafkaConfig,
        broker: BrokerName,
        topic: &str,
    ) -> Result<Self, KafkaError> {
        let client_config = config.producer_config(
            &[
                ("client.id", "eddy"),
                ("linger.ms", "5"),
                ("acks", "all"),
                // Topics are created by the admin API with the partition count the user
                // asked for, never implicitly with the broker's default.
                ("allow.auto.create.topics", "false"),
            ],
            &[
                // Java's default partitioner: records land where ksqlDB and Kafka Streams
                // would put them, so joins against topics they wrote stay co-partitioned.
                ("partitioner", "murmur2_random"),
                // Only failures matter to the sink: a delivered record is released by
                // librdkafka's own thread instead of being handed back one by one.
                ("delivery.report.only.error", "true"),
            ],
        );
        let producer: BaseProducer<DeliveryTracker> = client_config
            .create_with_context(DeliveryTracker::default())
            .map_err(|e| client_error(&broker, e))?;
        Ok(KafkaSink {
            producer,
            topic: topic.to_owned(),
            broker,
        })
    }

    /// Queues records, to the partitions given or else by their keys.
    fn queue(
        &mut self,
        keys: &Payloads,
        values: &Payloads,
        timestamps: &[i64],
        headers: &RecordHeaders,
        partitions: Option<&[i32]>,
    ) -> Result<(), TopicError> {
        if keys.len() != values.len()
            || keys.len() != timestamps.len()
            || partitions.is_some_and(|p| p.len() != keys.len())
        {
            return Err(TopicError::Client(format!(
                "sink for '{}' was given {} keys, {} values, {} timestamps and {} partitions",
                self.topic,
                keys.len(),
                values.len(),
                timestamps.len(),
                partitions.map_or(keys.len(), <[i32]>::len)
            )));
        }
        for (i, &timestamp) in timestamps.iter().enumerate() {
            let mut record = BaseRecord::<[u8], [u8]>::to(&self.topic).timestamp(timestamp);
            if let Some(key) = keys.get(i) {
                record = record.key(key);
            }
            if let Some(value) = values.get(i) {
                record = record.payload(value);
            }
            if let Some(p) = partitions {
                record = record.partition(p[i]);
            }
            let record_headers = headers.of(i);
            if !record_headers.is_empty() {
                record = record.headers(record_headers.iter().fold(
                    OwnedHeaders::new_with_capacity(record_headers.len()),
                    |all, h| {
                        all.insert(KafkaHeader {
                            key: &h.key,
                            value: h.value.as_deref(),
                        })
                    },
                ));
            }
            loop {
                match self.producer.send(record) {
                    Ok(()) => break,
                    Err((RdKafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        // Back-pressure: serve delivery reports until there is room.
                        self.producer.poll(QUEUE_FULL_BACKOFF);
                        record = back;
                    }
                    Err((err, _)) => {
                        return Err(topic_error(&self.broker, &self.operation(), &err));
                    }
                }
            }
        }
        // Serve delivery reports that are ready, so failures are counted early.
        self.producer.poll(Duration::ZERO);
        Ok(())
    }

    fn operation(&self) -> String {
        format!("Produce to '{}'", self.topic)
    }
}

impl RecordSink for KafkaSink {
    fn send_with_headers(
        &mut self,
        keys: &Payloads,
        values: &Payloads,
        timestamps: &[i64],
        headers: &RecordHeaders,
    ) -> Result<(), TopicError> {
        self.queue(keys, values, timestamps, headers, None)
    }

    fn send_to_partitions(
        &mut self,
        keys: &Payloads,
        values: &Payloads,
        timestamps: &[i64],
        headers: &RecordHeaders,
        partitions: &[i32],
    ) -> Result<(), TopicError> {
        self.queue(keys, values, timestamps, headers, Some(partitions))
    }

    fn flush(&mut self, timeout: Duration) -> Result<(), TopicError> {
        // rdkafka's `flush` polls in steps of 100 ms that each run to their end (spinning
        // through the last millisecond), so every flush took at least 100 ms. Instead: ask
        // librdkafka to send now, sleep briefly and serve the delivery reports that
        // arrived, until every record is acknowledged and its report served (a failure is
        // only known once its report is; `in_flight_count` counts both). The request to
        // send is repeated each step: librdkafka skips `linger.ms` only while one is under
        // way, so a single one would often leave the tail of a batch lingering.
        let deadline = std::time::Instant::now() + timeout;
        let mut delivered = false;
        loop {
            match self.producer.flush(Duration::ZERO) {
                Ok(()) | Err(RdKafkaError::Flush(RDKafkaErrorCode::OperationTimedOut)) => {}
                Err(other) => return Err(topic_error(&self.broker, &self.operation(), &other)),
            }
            // Serves at most one event (a delivery report covers a produce request).
            self.producer.poll(Duration::ZERO);
            if self.producer.in_flight_count() == 0 {
                delivered = true;
                break;
            }
            if std::time::Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(FLUSH_STEP);
        }
        if let Some((count, first)) = self.producer.context().take_failures() {
            let operation = format!("{} ({count} records not delivered)", self.operation());
            return Err(topic_error(&self.broker, &operation, &first));
        }
        if delivered {
            return Ok(());
        }
        Err(TopicError::Unavailable(format!(
            "{} did not acknowledge {} records for '{}' within {timeout:?}",
            self.broker,
            self.producer.in_flight_count(),
            self.topic
        )))
    }
}

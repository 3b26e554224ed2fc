//! [`KafkaSource`]: one consumer-group member reading one topic.

use std::time::{Duration, Instant};

use eddy_topic::{Header, Position, RawBatch, RecordSource, StartFrom, TopicError};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::{KafkaError as RdKafkaError, RDKafkaErrorCode};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};

use crate::config::{BrokerName, KafkaConfig};
use crate::context::GroupContext;
use crate::error::{KafkaError, client_error, error_code, is_refusal, topic_error};

/// How long an assigned reader waits for its topic's leader before starting without it.
const LEADER_LOOKUP_TIMEOUT: Duration = Duration::from_secs(2);

/// Reads one topic as a member of a consumer group, committing offsets only when told to.
///
/// Obtained from [`KafkaTopics`](crate::KafkaTopics) through
/// [`TopicIo::source`](eddy_topic::TopicIo::source).
pub struct KafkaSource {
    consumer: BaseConsumer<GroupContext>,
    topic: String,
    broker: BrokerName,
    /// Reading assigned partitions outside any group: nothing to commit.
    assigned: bool,
}

impl std::fmt::Debug for KafkaSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSource")
            .field("topic", &self.topic)
            .field("broker", &self.broker)
            .finish_non_exhaustive()
    }
}

impl KafkaSource {
    /// Joins consumer group `group` and subscribes to `topic`.
    pub(crate) fn open(
        config: &KafkaConfig,
        broker: BrokerName,
        topic: &str,
        group: &str,
        start: StartFrom,
    ) -> Result<Self, KafkaError> {
        let reset = match start {
            StartFrom::Earliest => "earliest",
            StartFrom::Latest => "latest",
        };
        let client_config = config.consumer_config(
            &[
                ("client.id", "eddy"),
                // A missing topic is waited for, never created with a guessed partition count.
                ("allow.auto.create.topics", "false"),
                ("enable.partition.eof", "false"),
                // librdkafka's 45 s makes a query whose server died wait that long before its
                // partitions move, and makes the dev broker delay every rebalance that follows
                // a member leaving by the group's session timeout. Heartbeats come from a
                // librdkafka thread, so a long batch cannot make the session expire.
                ("session.timeout.ms", "10000"),
                // Apache Kafka answers a waiting fetch as soon as data arrives, but brokers
                // that do not (librdkafka's mock cluster, tansu) hold it this long: 500 ms
                // (the default) became the pipeline's latency there. Lower costs idle fetches.
                ("fetch.wait.max.ms", "50"),
                // librdkafka prefetches up to 64 MB per consumer by default; a query takes
                // 10,000 records (~2 MB) a batch, so 12 MB keeps it fed at a fifth of the
                // memory (a server runs a consumer per query and per table).
                ("queued.max.messages.kbytes", "12288"),
            ],
            &[
                ("group.id", group),
                // Offsets are committed only once the outputs of a batch are acknowledged.
                ("enable.auto.commit", "false"),
                ("enable.auto.offset.store", "false"),
                ("auto.offset.reset", reset),
            ],
        );
        let consumer: BaseConsumer<GroupContext> = client_config
            .create_with_context(GroupContext::default())
            .map_err(|e| client_error(&broker, e))?;
        consumer
            .subscribe(&[topic])
            .map_err(|e| topic_error(&broker, &format!("Subscribe to '{topic}'"), &e))?;
        Ok(KafkaSource {
            consumer,
            topic: topic.to_owned(),
            broker,
            assigned: false,
        })
    }

    /// Reads every partition of `topic` (`partitions` of them), assigned directly rather
    /// than through a consumer group: those listed in `from` from their offset there, the
    /// others from the beginning.
    pub(crate) fn open_assigned(
        config: &KafkaConfig,
        broker: BrokerName,
        topic: &str,
        partitions: i32,
        from: &[Position],
    ) -> Result<Self, KafkaError> {
        let client_config = config.consumer_config(
            &[
                ("client.id", "eddy-reader"),
                // As for query consumers: brokers that hold a fetch to its end even when
                // data arrives would make every read of a changelog or the command topic
                // wait librdkafka's default of 500 ms (measured: start-up 0.94 s → 0.75 s).
                ("fetch.wait.max.ms", "50"),
                ("queued.max.messages.kbytes", "12288"),
                ("allow.auto.create.topics", "false"),
                ("enable.partition.eof", "false"),
            ],
            &[
                // Required by the client, never joined: partitions are assigned directly.
                ("group.id", "_eddy_reader"),
                ("enable.auto.commit", "false"),
                ("enable.auto.offset.store", "false"),
            ],
        );
        let consumer: BaseConsumer<GroupContext> = client_config
            .create_with_context(GroupContext::default())
            .map_err(|e| client_error(&broker, e))?;
        let mut assignment = TopicPartitionList::with_capacity(partitions.max(0) as usize);
        for p in 0..partitions {
            let offset = from
                .iter()
                .find(|f| f.partition == p)
                .map_or(Offset::Beginning, |f| Offset::Offset(f.next_offset));
            assignment
                .add_partition_offset(topic, p, offset)
                .map_err(|e| topic_error(&broker, &format!("Assign '{topic}'"), &e))?;
        }
        // A partition assigned before the client knows its leader waits librdkafka's fixed
        // 500 ms before asking for its first offset; the topic's metadata, fetched first,
        // names the leader (measured: start-up, which reads the command topic, 0.5 s
        // faster). A failure here only loses that head start.
        if let Err(err) = consumer.fetch_metadata(Some(topic), LEADER_LOOKUP_TIMEOUT) {
            tracing::debug!(topic, %err, "no leader known before assigning");
        }
        consumer
            .assign(&assignment)
            .map_err(|e| topic_error(&broker, &format!("Assign '{topic}'"), &e))?;
        Ok(KafkaSource {
            consumer,
            topic: topic.to_owned(),
            broker,
            assigned: true,
        })
    }

    /// Decides what a consumer error means: `Err` to stop the query, `Ok` to wait it out.
    fn triage(&self, err: RdKafkaError) -> Result<(), TopicError> {
        let fatal = matches!(err, RdKafkaError::MessageConsumptionFatal(_))
            || error_code(&err).is_some_and(is_refusal);
        if fatal {
            return Err(topic_error(
                &self.broker,
                &format!("Fetch from '{}'", self.topic),
                &err,
            ));
        }
        // Broker outages, leader changes and a topic that does not exist yet all heal by
        // themselves; librdkafka keeps retrying in the background.
        tracing::warn!(topic = %self.topic, broker = %self.broker, error = %err,
            "waiting for the broker");
        Ok(())
    }
}

impl RecordSource for KafkaSource {
    fn poll(
        &mut self,
        batch: &mut RawBatch,
        max_records: usize,
        timeout: Duration,
    ) -> Result<usize, TopicError> {
        let deadline = Instant::now() + timeout;
        let mut appended = 0;
        while appended < max_records {
            // Wait for the first record only; after that take what is already fetched.
            let wait = if appended == 0 {
                deadline.saturating_duration_since(Instant::now())
            } else {
                Duration::ZERO
            };
            match self.consumer.poll(wait) {
                Some(Ok(message)) => {
                    let timestamp = message
                        .timestamp()
                        .to_millis()
                        .filter(|t| *t >= 0)
                        .unwrap_or(0);
                    batch.push(
                        message.key(),
                        message.payload(),
                        timestamp,
                        message.partition(),
                        message.offset(),
                    );
                    if let Some(headers) = message.headers() {
                        batch.set_last_headers(
                            headers
                                .iter()
                                .map(|h| Header {
                                    key: h.key.to_owned(),
                                    value: h.value.map(<[u8]>::to_vec),
                                })
                                .collect(),
                        );
                    }
                    appended += 1;
                }
                Some(Err(err)) => {
                    self.triage(err)?;
                    if appended > 0 {
                        break;
                    }
                }
                // `poll` also returns early after serving a rebalance, hence the deadline.
                None if appended > 0 || Instant::now() >= deadline => break,
                None => {}
            }
        }
        Ok(appended)
    }

    fn commit(&mut self, positions: &[Position]) -> Result<(), TopicError> {
        if positions.is_empty() || self.assigned {
            return Ok(());
        }
        let operation = || format!("OffsetCommit for '{}'", self.topic);
        let mut offsets = TopicPartitionList::with_capacity(positions.len());
        for position in positions {
            offsets
                .add_partition_offset(
                    &self.topic,
                    position.partition,
                    Offset::Offset(position.next_offset),
                )
                .map_err(|e| topic_error(&self.broker, &operation(), &e))?;
        }
        self.consumer
            .commit(&offsets, CommitMode::Sync)
            .map_err(|e| match error_code(&e) {
                Some(
                    RDKafkaErrorCode::UnknownMemberId
                    | RDKafkaErrorCode::IllegalGeneration
                    | RDKafkaErrorCode::RebalanceInProgress
                    | RDKafkaErrorCode::FencedInstanceId,
                ) => TopicError::Rebalanced(format!("{} on {}: {e}", operation(), self.broker)),
                _ => topic_error(&self.broker, &operation(), &e),
            })
    }

    fn assignments(&self) -> u64 {
        self.consumer.context().assignments()
    }

    fn assigned_partitions(&self) -> Option<Vec<i32>> {
        if self.assigned {
            return None;
        }
        let assignment = self.consumer.assignment().ok()?;
        Some(
            assignment
                .elements_for_topic(&self.topic)
                .iter()
                .map(|p| p.partition())
                .collect(),
        )
    }
}

//! [`KafkaAdmin`]: topic administration that works on real Kafka and on the dev broker.
//!
//! Real brokers get the admin API (Metadata, CreateTopics, DeleteTopics). librdkafka's mock
//! cluster, the dev broker, implements Metadata only, so:
//!
//! * with the embedded dev broker of this process ([`DevBrokerHandle`]), topics are created
//!   through the mock cluster's own API, with exactly the requested partition count;
//! * with a broker without CreateTopics in another process (`eddy dev-kafka`), the only way
//!   to create a topic over the wire is the broker's auto-creation on a Metadata request,
//!   which gives the broker's default partition count (always 4 for the mock cluster). The
//!   topic is created that way and a different requested count is logged as a warning;
//!   `partition_count` then reports the truth. If the broker does not auto-create either,
//!   the error says which broker refused what.
//!
//! Admin requests go to the broker that answered the preceding Metadata request rather than
//! to "the controller": the mock cluster names a controller (id 0) that does not exist, so a
//! controller-bound request would wait for its whole timeout, while a request to a known
//! broker fails at once with "unsupported feature" when the broker lacks the API. Modern
//! Kafka forwards admin requests from any broker to its controller (KIP-590); an older
//! cluster answering `NOT_CONTROLLER` gets the request again, sent to its controller.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use eddy_topic::{TopicAdmin, TopicError, TopicInfo};
use futures::executor::block_on;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError as RdKafkaError, RDKafkaErrorCode};
use rdkafka::metadata::Metadata;

use crate::config::{BrokerName, KafkaConfig};
use crate::context::{AdminContext, TracingContext};
use crate::dev_broker::DevBrokerHandle;
use crate::error::{KafkaError, client_error, error_code, topic_error};

/// How long an admin request may take before it counts as the broker being unavailable.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(30);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Topic administration against one Kafka cluster (or the dev broker).
///
/// Calls block the calling thread (admin futures are driven with `block_on`), so async
/// callers use `spawn_blocking`.
pub struct KafkaAdmin {
    client: AdminClient<TracingContext>,
    config: KafkaConfig,
    broker: BrokerName,
    dev_broker: Option<DevBrokerHandle>,
    /// Set once CreateTopics went unanswered (a mock cluster in another process, which
    /// lacks the API and stays silent): topics are then created through metadata requests.
    create_topics_unanswered: AtomicBool,
    /// A consumer outside any group for watermark (end offset) and reachability queries,
    /// made on first use; its context keeps a refusal of credentials or TLS.
    probe: std::sync::OnceLock<BaseConsumer<AdminContext>>,
}

impl std::fmt::Debug for KafkaAdmin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaAdmin")
            .field("broker", &self.broker)
            .field("dev_broker", &self.dev_broker.is_some())
            .finish_non_exhaustive()
    }
}

/// The answer to a CreateTopics or DeleteTopics request for one topic.
enum AdminAnswer {
    Done,
    Failed(RDKafkaErrorCode),
    /// The request itself failed (client-side, e.g. the broker lacks the API).
    Error(RdKafkaError),
}

impl KafkaAdmin {
    /// An admin client; `dev_broker` when the broker is this process's embedded one.
    pub(crate) fn connect(
        config: &KafkaConfig,
        broker: BrokerName,
        dev_broker: Option<DevBrokerHandle>,
    ) -> Result<Self, KafkaError> {
        // Metadata requests must never create the topic they ask about.
        let client = config
            .client_config(
                &[("client.id", "eddy-admin")],
                &[("allow.auto.create.topics", "false")],
            )
            .create_with_context(TracingContext)
            .map_err(|e| client_error(&broker, e))?;
        Ok(KafkaAdmin {
            client,
            config: config.clone(),
            broker,
            dev_broker,
            create_topics_unanswered: AtomicBool::new(false),
            probe: std::sync::OnceLock::new(),
        })
    }

    /// Why the broker refused this client's credentials or TLS handshake, if it did.
    pub(crate) fn refusal(&self) -> Option<String> {
        self.probe.get().and_then(|probe| probe.context().refusal())
    }

    /// The consumer outside any group that answers watermark and reachability queries.
    fn probe(&self) -> Result<&BaseConsumer<AdminContext>, TopicError> {
        if let Some(probe) = self.probe.get() {
            return Ok(probe);
        }
        let probe: BaseConsumer<AdminContext> = self
            .config
            .client_config(&[("client.id", "eddy-probe")], &[])
            .create_with_context(AdminContext::default())
            .map_err(|e| TopicError::Client(client_error(&self.broker, e).to_string()))?;
        Ok(self.probe.get_or_init(|| probe))
    }

    /// Succeeds if the broker answers a metadata request within `timeout`; a refusal of
    /// the credentials or the TLS handshake is then known to [`KafkaAdmin::refusal`].
    pub(crate) fn check_reachable(&self, timeout: Duration) -> Result<(), TopicError> {
        let probe = self.probe()?;
        let answered = probe.fetch_metadata(None, timeout);
        // A client reports an authentication or TLS failure as an event on its queue: to
        // the context's error callback, or, forwarded to the consumer queue, as an error
        // that poll returns (with librdkafka's code, not its text).
        for _ in 0..100 {
            match probe.poll(Duration::ZERO) {
                None => break,
                Some(Err(e)) => probe.context().note(&e, &e.to_string()),
                Some(Ok(_)) => {}
            }
        }
        answered
            .map(|_| ())
            .map_err(|e| topic_error(&self.broker, "Metadata", &e))
    }

    fn fetch_metadata(
        &self,
        topic: Option<&str>,
        timeout: Duration,
    ) -> Result<Metadata, TopicError> {
        self.client
            .inner()
            .fetch_metadata(topic, timeout)
            .map_err(|e| {
                let operation = match topic {
                    Some(name) => format!("Metadata for '{name}'"),
                    None => "Metadata".to_owned(),
                };
                topic_error(&self.broker, &operation, &e)
            })
    }

    /// The partition count of `name` according to `metadata`, `None` if it does not exist.
    fn partitions_in(&self, metadata: &Metadata, name: &str) -> Result<Option<i32>, TopicError> {
        let Some(topic) = metadata.topics().iter().find(|t| t.name() == name) else {
            return Ok(None);
        };
        match topic.error().map(RDKafkaErrorCode::from) {
            None => Ok(Some(topic.partitions().len() as i32)),
            Some(RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic) => {
                Ok(None)
            }
            Some(code) => Err(topic_error(
                &self.broker,
                &format!("Metadata for '{name}'"),
                &RdKafkaError::MetadataFetch(code),
            )),
        }
    }

    /// Options for an admin request to `target` (`None`: the controller).
    fn options(target: Option<i32>) -> AdminOptions {
        // A real broker answers admin requests in milliseconds; a short timeout keeps a
        // broker that never answers (the dev broker in another process) from stalling us.
        AdminOptions::new()
            .request_timeout(Some(REQUEST_TIMEOUT))
            .operation_timeout(Some(ADMIN_TIMEOUT))
            .broker_id(target)
    }

    /// The broker that answered `metadata`, to send admin requests to (see the module docs).
    fn known_broker(metadata: &Metadata) -> Option<i32> {
        let brokers = metadata.brokers();
        brokers
            .iter()
            .find(|b| b.id() == metadata.orig_broker_id())
            .or_else(|| brokers.first())
            .map(|b| b.id())
    }

    /// Sends one admin request to `target`, and again to the controller if `target` says it
    /// is not the controller.
    fn ask(
        &self,
        target: Option<i32>,
        request: impl Fn(
            &AdminOptions,
        )
            -> Result<Vec<Result<String, (String, RDKafkaErrorCode)>>, RdKafkaError>,
    ) -> AdminAnswer {
        let answer = match request(&Self::options(target)) {
            Ok(results) => match results.into_iter().find_map(Result::err) {
                None => AdminAnswer::Done,
                Some((_, code)) => AdminAnswer::Failed(code),
            },
            Err(err) => AdminAnswer::Error(err),
        };
        match answer {
            AdminAnswer::Failed(RDKafkaErrorCode::NotController) if target.is_some() => {
                self.ask(None, request)
            }
            other => other,
        }
    }

    fn refused(&self, operation: String, reason: String) -> TopicError {
        TopicError::Refused {
            broker: self.broker.as_str().to_owned(),
            operation,
            reason,
        }
    }

    fn create_on_dev_broker(
        &self,
        dev_broker: &DevBrokerHandle,
        name: &str,
        partitions: i32,
    ) -> Result<(), TopicError> {
        dev_broker
            .create_topic(name, partitions)
            .map_err(|err| match err {
                KafkaError::DevBrokerRefused { operation, source } => {
                    self.refused(operation, source.to_string())
                }
                other => other.into(),
            })
    }

    /// Creates `name` on a broker without CreateTopics by asking for its metadata with
    /// auto-creation allowed, the one way such a broker creates topics over the wire.
    fn create_by_metadata(&self, name: &str, partitions: i32, why: &str) -> Result<(), TopicError> {
        let operation = format!("CreateTopics for '{name}'");
        let client: BaseConsumer<TracingContext> = self
            .config
            .client_config(
                &[("client.id", "eddy-admin")],
                &[("allow.auto.create.topics", "true")],
            )
            .create_with_context(TracingContext)
            .map_err(|e| TopicError::Client(client_error(&self.broker, e).to_string()))?;
        let metadata = client
            .fetch_metadata(Some(name), ADMIN_TIMEOUT)
            .map_err(|e| topic_error(&self.broker, &operation, &e))?;
        match self.partitions_in(&metadata, name)? {
            Some(created) => {
                if created != partitions {
                    tracing::warn!(
                        topic = name,
                        requested = partitions,
                        created,
                        broker = %self.broker,
                        "the broker has no CreateTopics; it auto-created the topic with its \
                         default partition count instead"
                    );
                }
                Ok(())
            }
            None => Err(self.refused(
                operation,
                format!(
                    "the broker does not implement CreateTopics ({why}) and did not \
                     auto-create the topic"
                ),
            )),
        }
    }
}

/// Whether a failed CreateTopics/DeleteTopics means the broker lacks the API altogether.
fn is_unsupported(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::UnsupportedFeature
            | RDKafkaErrorCode::UnsupportedVersion
            | RDKafkaErrorCode::NotImplemented
    )
}

impl KafkaAdmin {
    /// Creates `name` with the topic configs `configs` (e.g. `cleanup.policy`), unless it
    /// exists. Brokers that cannot be asked for configs (the dev broker, and brokers without
    /// CreateTopics, which auto-create) get the topic without them, with a warning.
    fn create(
        &self,
        name: &str,
        partitions: i32,
        replicas: i16,
        configs: &[(&str, &str)],
    ) -> Result<(), TopicError> {
        if let Some(dev_broker) = &self.dev_broker {
            return self.create_on_dev_broker(dev_broker, name, partitions);
        }
        let metadata = self.fetch_metadata(Some(name), ADMIN_TIMEOUT)?;
        if self.partitions_in(&metadata, name)?.is_some() {
            return Ok(());
        }
        if self.create_topics_unanswered.load(Ordering::Relaxed) {
            return self.create_without_configs(
                name,
                partitions,
                configs,
                "CreateTopics went unanswered",
            );
        }
        let operation = format!("CreateTopics for '{name}'");
        // Below 1 means "the broker's default" (KIP-464).
        let replication = if replicas < 1 {
            -1
        } else {
            i32::from(replicas)
        };
        let mut new_topic = NewTopic::new(name, partitions, TopicReplication::Fixed(replication));
        for (key, value) in configs {
            new_topic = new_topic.set(key, value);
        }
        let answer = self.ask(Self::known_broker(&metadata), |options| {
            block_on(self.client.create_topics([&new_topic], options))
        });
        match answer {
            AdminAnswer::Done | AdminAnswer::Failed(RDKafkaErrorCode::TopicAlreadyExists) => Ok(()),
            AdminAnswer::Failed(code) if is_unsupported(code) => {
                self.create_without_configs(name, partitions, configs, &code.to_string())
            }
            AdminAnswer::Failed(code) => Err(topic_error(
                &self.broker,
                &operation,
                &RdKafkaError::AdminOp(code),
            )),
            AdminAnswer::Error(err) if error_code(&err).is_some_and(is_unsupported) => {
                self.create_without_configs(name, partitions, configs, &err.to_string())
            }
            AdminAnswer::Error(err)
                if error_code(&err).is_some_and(|c| {
                    matches!(
                        c,
                        RDKafkaErrorCode::OperationTimedOut | RDKafkaErrorCode::RequestTimedOut
                    )
                }) =>
            {
                self.create_topics_unanswered.store(true, Ordering::Relaxed);
                self.create_without_configs(name, partitions, configs, &err.to_string())
            }
            AdminAnswer::Error(err) => Err(topic_error(&self.broker, &operation, &err)),
        }
    }

    /// Creates `name` through a metadata request (CreateTopics failed: `why`), which cannot
    /// carry topic configs; warns if `configs` are lost that way.
    fn create_without_configs(
        &self,
        name: &str,
        partitions: i32,
        configs: &[(&str, &str)],
        why: &str,
    ) -> Result<(), TopicError> {
        self.create_by_metadata(name, partitions, why)?;
        if !configs.is_empty() {
            tracing::warn!(
                topic = name,
                ?configs,
                broker = %self.broker,
                "the broker auto-created the topic, without these topic configs"
            );
        }
        Ok(())
    }

    /// One watermark of every partition of `name`, as positions: `pick` chooses from
    /// (low, high).
    fn watermark_positions(
        &self,
        name: &str,
        pick: fn((i64, i64)) -> i64,
    ) -> Result<Vec<eddy_topic::Position>, TopicError> {
        let Some(partitions) = self.partition_count(name)? else {
            return Err(TopicError::UnknownTopic(name.to_owned()));
        };
        let consumer = self.probe()?;
        (0..partitions)
            .map(|partition| {
                let (low, high) = consumer
                    .fetch_watermarks(name, partition, REQUEST_TIMEOUT)
                    .map_err(|e| {
                        topic_error(&self.broker, &format!("ListOffsets for '{name}'"), &e)
                    })?;
                Ok(eddy_topic::Position {
                    partition,
                    next_offset: pick((low, high)),
                })
            })
            .collect()
    }
}

impl TopicAdmin for KafkaAdmin {
    fn check_reachable(&self, timeout: Duration) -> Result<(), TopicError> {
        KafkaAdmin::check_reachable(self, timeout)
    }

    fn create_topic(&self, name: &str, partitions: i32, replicas: i16) -> Result<(), TopicError> {
        self.create(name, partitions, replicas, &[])
    }

    fn create_compacted_topic(
        &self,
        name: &str,
        partitions: i32,
        replicas: i16,
    ) -> Result<(), TopicError> {
        self.create(name, partitions, replicas, &[("cleanup.policy", "compact")])
    }

    fn consumer_groups(&self) -> Result<Vec<eddy_topic::ConsumerGroupInfo>, TopicError> {
        let list = self
            .client
            .inner()
            .fetch_group_list(None, ADMIN_TIMEOUT)
            .map_err(|e| self.refused("ListGroups".to_owned(), e.to_string()))?;
        tracing::debug!(
            groups = ?list
                .groups()
                .iter()
                .map(|g| (g.name(), g.state(), g.protocol_type(), g.members().len()))
                .collect::<Vec<_>>(),
            "consumer groups"
        );
        Ok(list
            .groups()
            .iter()
            .map(|g| eddy_topic::ConsumerGroupInfo {
                group: g.name().to_string(),
                members: g
                    .members()
                    .iter()
                    .map(|m| m.assignment().map(assigned_topics).unwrap_or_default())
                    .collect(),
            })
            .collect())
    }

    fn create_topic_with_config(
        &self,
        name: &str,
        partitions: i32,
        replicas: i16,
        config: &[(&str, &str)],
    ) -> Result<(), TopicError> {
        self.create(name, partitions, replicas, config)
    }

    fn end_offsets(&self, name: &str) -> Result<Vec<eddy_topic::Position>, TopicError> {
        self.watermark_positions(name, |(_, high)| high)
    }

    fn start_offsets(&self, name: &str) -> Result<Vec<eddy_topic::Position>, TopicError> {
        self.watermark_positions(name, |(low, _)| low)
    }

    fn partition_count(&self, name: &str) -> Result<Option<i32>, TopicError> {
        let metadata = self.fetch_metadata(Some(name), ADMIN_TIMEOUT)?;
        self.partitions_in(&metadata, name)
    }

    fn list_topics(&self) -> Result<Vec<TopicInfo>, TopicError> {
        let metadata = self.fetch_metadata(None, ADMIN_TIMEOUT)?;
        Ok(metadata
            .topics()
            .iter()
            .filter(|t| t.error().is_none())
            .map(|t| TopicInfo {
                name: t.name().to_owned(),
                partitions: t.partitions().len() as i32,
                replicas: t
                    .partitions()
                    .first()
                    .map_or(1, |p| p.replicas().len().max(1) as i16),
            })
            .collect())
    }

    fn delete_topic(&self, name: &str) -> Result<(), TopicError> {
        let metadata = self.fetch_metadata(Some(name), ADMIN_TIMEOUT)?;
        if self.partitions_in(&metadata, name)?.is_none() {
            return Err(TopicError::UnknownTopic(name.to_owned()));
        }
        let operation = format!("DeleteTopics for '{name}'");
        let answer = self.ask(Self::known_broker(&metadata), |options| {
            block_on(self.client.delete_topics(&[name], options))
        });
        let unsupported = |why: String| {
            self.refused(
                operation.clone(),
                format!("the broker does not implement DeleteTopics ({why})"),
            )
        };
        match answer {
            AdminAnswer::Done => Ok(()),
            AdminAnswer::Failed(RDKafkaErrorCode::UnknownTopicOrPartition) => {
                Err(TopicError::UnknownTopic(name.to_owned()))
            }
            AdminAnswer::Failed(code) if is_unsupported(code) => Err(unsupported(code.to_string())),
            AdminAnswer::Failed(code) => Err(topic_error(
                &self.broker,
                &operation,
                &RdKafkaError::AdminOp(code),
            )),
            AdminAnswer::Error(err) if error_code(&err).is_some_and(is_unsupported) => {
                Err(unsupported(err.to_string()))
            }
            AdminAnswer::Error(err) => Err(topic_error(&self.broker, &operation, &err)),
        }
    }
}

/// The topics of a consumer group member's assignment, as the Kafka consumer protocol
/// encodes it: a version (i16), then an array (i32 count) of topics, each a string (i16
/// length, UTF-8) and an array of partitions (i32 count, i32 each), then user data. Bytes
/// that do not follow it give the topics read so far.
fn assigned_topics(bytes: &[u8]) -> Vec<String> {
    let mut at = 2; // the version
    let mut take = |n: usize| -> Option<&[u8]> {
        let slice = bytes.get(at..at + n)?;
        at += n;
        Some(slice)
    };
    let mut topics = Vec::new();
    let Some(count) = take(4).map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]])) else {
        return topics;
    };
    for _ in 0..count.max(0) {
        let Some(len) = take(2).map(|b| i16::from_be_bytes([b[0], b[1]])) else {
            break;
        };
        let Some(name) = take(len.max(0) as usize) else {
            break;
        };
        topics.push(String::from_utf8_lossy(name).into_owned());
        let Some(partitions) = take(4).map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]])) else {
            break;
        };
        if take(4 * partitions.max(0) as usize).is_none() {
            break;
        }
    }
    topics
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_the_topics_of_a_member_assignment() {
        // Version 0; two topics: "a" with partitions [0, 1], "bc" with [2]; no user data.
        let mut bytes = vec![0, 0, 0, 0, 0, 2];
        bytes.extend_from_slice(&[0, 1, b'a', 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1]);
        bytes.extend_from_slice(&[0, 2, b'b', b'c', 0, 0, 0, 1, 0, 0, 0, 2]);
        assert_eq!(super::assigned_topics(&bytes), ["a", "bc"]);
        assert_eq!(super::assigned_topics(&bytes[..9]), ["a"]);
        assert!(super::assigned_topics(&[]).is_empty());
    }
}

//! [`KafkaTopics`]: the [`TopicIo`] of a Kafka cluster.

use std::time::Duration;

use eddy_topic::{Position, RecordSink, RecordSource, StartFrom, TopicAdmin, TopicError, TopicIo};

use crate::admin::KafkaAdmin;
use crate::config::{BrokerName, KafkaConfig};
use crate::dev_broker::DevBrokerHandle;
use crate::error::KafkaError;
use crate::sink::KafkaSink;
use crate::source::KafkaSource;

/// Topics in a Kafka cluster: opens sources and sinks and administers topics.
#[derive(Debug)]
pub struct KafkaTopics {
    config: KafkaConfig,
    broker: BrokerName,
    admin: KafkaAdmin,
}

impl KafkaTopics {
    /// Prepares clients for the cluster at `config.bootstrap_servers`; pass the handle of
    /// the embedded dev broker when that is the cluster, so topics get created through it.
    ///
    /// Connections are made lazily: an unreachable broker is reported by the first
    /// operation (see [`check_reachable`](Self::check_reachable)), not here. A bad client
    /// property is reported here.
    pub fn connect(
        config: KafkaConfig,
        dev_broker: Option<DevBrokerHandle>,
    ) -> Result<Self, KafkaError> {
        let broker = BrokerName::new(&config, dev_broker.is_some());
        let admin = KafkaAdmin::connect(&config, broker.clone(), dev_broker)?;
        Ok(KafkaTopics {
            config,
            broker,
            admin,
        })
    }

    /// Which broker this is, e.g. "Kafka at host:9092" or "the embedded dev broker at …".
    pub fn broker(&self) -> &str {
        self.broker.as_str()
    }

    /// Why the broker refused Eddy's credentials or TLS handshake (a wrong password, an
    /// unknown certificate authority), if it did: unlike an outage, waiting cannot help.
    pub fn refusal(&self) -> Option<String> {
        self.admin.refusal()
    }

    /// How Eddy's clients authenticate, for messages about a refusal: e.g.
    /// `security.protocol=SASL_SSL, sasl.mechanism=SCRAM-SHA-512, sasl.username=alice`.
    pub fn security_summary(&self) -> String {
        let setting = |names: &[&str]| {
            self.config
                .client_properties
                .iter()
                .rev()
                .find(|(k, _)| names.contains(&k.as_str()))
                .map(|(_, v)| v.clone())
        };
        let mut parts = vec![format!(
            "security.protocol={}",
            setting(&["security.protocol"]).unwrap_or_else(|| "PLAINTEXT".into())
        )];
        if let Some(mechanism) = setting(&["sasl.mechanism", "sasl.mechanisms"]) {
            parts.push(format!("sasl.mechanism={mechanism}"));
        }
        if let Some(user) = setting(&["sasl.username"]) {
            parts.push(format!("sasl.username={user}"));
        }
        parts.join(", ")
    }

    /// Asks the cluster for its metadata, failing if it does not answer within `timeout`.
    pub fn check_reachable(&self, timeout: Duration) -> Result<(), TopicError> {
        self.admin.check_reachable(timeout)
    }
}

impl TopicIo for KafkaTopics {
    fn admin(&self) -> &dyn TopicAdmin {
        &self.admin
    }

    fn source(
        &self,
        topic: &str,
        group: &str,
        start: StartFrom,
    ) -> Result<Box<dyn RecordSource>, TopicError> {
        let source = KafkaSource::open(&self.config, self.broker.clone(), topic, group, start)?;
        Ok(Box::new(source))
    }

    fn sink(&self, topic: &str) -> Result<Box<dyn RecordSink>, TopicError> {
        let sink = KafkaSink::open(&self.config, self.broker.clone(), topic)?;
        Ok(Box::new(sink))
    }

    fn reader(&self, topic: &str) -> Result<Box<dyn RecordSource>, TopicError> {
        self.reader_from(topic, &[])
    }

    fn reader_from(
        &self,
        topic: &str,
        from: &[Position],
    ) -> Result<Box<dyn RecordSource>, TopicError> {
        let partitions = self
            .admin()
            .partition_count(topic)?
            .ok_or_else(|| TopicError::UnknownTopic(topic.to_owned()))?;
        let source =
            KafkaSource::open_assigned(&self.config, self.broker.clone(), topic, partitions, from)?;
        Ok(Box::new(source))
    }
}

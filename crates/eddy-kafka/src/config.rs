//! Client configuration shared by every Kafka client Eddy creates.

use rdkafka::ClientConfig;

/// How to reach Kafka.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaConfig {
    /// Comma-separated `host:port` list (`bootstrap.servers`).
    pub bootstrap_servers: String,
    /// Extra librdkafka properties (security, timeouts, …) applied to every client after
    /// Eddy's defaults, so a user can override them; the properties Eddy's correctness
    /// depends on (group id, manual commits, partitioner) are set last and cannot be.
    pub client_properties: Vec<(String, String)>,
    /// Properties for the consumers only (a consumer property set on a producer makes
    /// librdkafka warn), applied after `client_properties`.
    pub consumer_properties: Vec<(String, String)>,
    /// Properties for the producers only, applied after `client_properties`.
    pub producer_properties: Vec<(String, String)>,
}

impl KafkaConfig {
    /// A configuration with no extra client properties.
    pub fn new(bootstrap_servers: impl Into<String>) -> Self {
        Self {
            bootstrap_servers: bootstrap_servers.into(),
            client_properties: Vec::new(),
            consumer_properties: Vec::new(),
            producer_properties: Vec::new(),
        }
    }

    /// A librdkafka configuration: `defaults`, then the user's properties, then `fixed`.
    pub(crate) fn client_config(
        &self,
        defaults: &[(&str, &str)],
        fixed: &[(&str, &str)],
    ) -> ClientConfig {
        self.config_with(defaults, &[], fixed)
    }

    /// [`client_config`](Self::client_config) for a consumer: the consumer properties go
    /// after the user's properties.
    pub(crate) fn consumer_config(
        &self,
        defaults: &[(&str, &str)],
        fixed: &[(&str, &str)],
    ) -> ClientConfig {
        self.config_with(defaults, &self.consumer_properties, fixed)
    }

    /// [`client_config`](Self::client_config) for a producer: the producer properties go
    /// after the user's properties.
    pub(crate) fn producer_config(
        &self,
        defaults: &[(&str, &str)],
        fixed: &[(&str, &str)],
    ) -> ClientConfig {
        self.config_with(defaults, &self.producer_properties, fixed)
    }

    fn config_with(
        &self,
        defaults: &[(&str, &str)],
        extra: &[(String, String)],
        fixed: &[(&str, &str)],
    ) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.bootstrap_servers);
        for (key, value) in defaults {
            config.set(*key, *value);
        }
        for (key, value) in self.client_properties.iter().chain(extra) {
            config.set(key, value);
        }
        for (key, value) in fixed {
            config.set(*key, *value);
        }
        config
    }
}

/// Which broker a client talks to, for error messages that say whose answer it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BrokerName(String);

impl BrokerName {
    /// The broker described by `config`; `embedded` when it is this process's dev broker.
    pub(crate) fn new(config: &KafkaConfig, embedded: bool) -> Self {
        if embedded {
            Self(format!(
                "the embedded dev broker at {}",
                config.bootstrap_servers
            ))
        } else {
            Self(format!("Kafka at {}", config.bootstrap_servers))
        }
    }

    /// The description, e.g. "Kafka at host:9092".
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for BrokerName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

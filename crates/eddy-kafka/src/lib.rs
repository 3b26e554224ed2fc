//! Kafka plumbing: topic sources and sinks over rdkafka, topic administration, and the
//! embedded dev broker.
//!
//! Entry points:
//!
//! * [`KafkaTopics::connect`] — the [`TopicIo`](eddy_topic::TopicIo) of a Kafka cluster,
//!   handing out [`KafkaSource`]s (consumer-group members with manual commits),
//!   [`KafkaSink`]s (producers with Java-compatible key partitioning) and a [`KafkaAdmin`].
//! * [`DevBroker::start`] — librdkafka's in-memory mock cluster on a thread of its own, for
//!   `eddy server` without Kafka, `eddy dev-kafka` and tests; see [`dev_broker`] for what it
//!   can and cannot do.
//!
//! Every call is blocking: persistent queries call these from their own threads, and async
//! code must go through `spawn_blocking`.
//!
//! Invariant: this crate moves bytes and offsets; it knows no record format and no SQL.

mod admin;
mod config;
mod context;
pub mod dev_broker;
mod error;
mod java_properties;
mod sink;
mod source;
mod topics;

pub use admin::KafkaAdmin;
pub use config::KafkaConfig;
pub use dev_broker::{DevBroker, DevBrokerHandle};
pub use error::KafkaError;
pub use java_properties::librdkafka_properties;
pub use sink::KafkaSink;
pub use source::KafkaSource;
pub use topics::KafkaTopics;

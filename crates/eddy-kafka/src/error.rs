//! The crate's error type and the translation of librdkafka errors into [`TopicError`]s.

use eddy_topic::TopicError;
use rdkafka::error::{KafkaError as RdKafkaError, RDKafkaErrorCode};

use crate::config::BrokerName;

/// What went wrong while setting up Kafka clients or the embedded dev broker.
///
/// Errors of the running topic I/O are [`TopicError`]s, the type the `eddy-topic` traits use.
#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    /// A Kafka client could not be created, usually because of a bad client property.
    #[error("cannot create a Kafka client for {broker}: {source}")]
    Client {
        /// Which broker the client was for.
        broker: String,
        /// librdkafka's reason (names the offending property for configuration errors).
        #[source]
        source: RdKafkaError,
    },
    /// A client property (in Java's or librdkafka's naming) is unknown or has a bad value.
    #[error("Kafka client property '{key}': {reason}")]
    Property {
        /// The property as the user wrote it.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// librdkafka's mock cluster could not be created.
    #[error("the embedded dev broker could not start: {0}")]
    DevBrokerStart(#[source] RdKafkaError),
    /// The thread that owns the embedded dev broker could not be spawned.
    #[error("cannot start the embedded dev broker's thread: {0}")]
    DevBrokerThread(#[from] std::io::Error),
    /// The embedded dev broker was stopped (its `DevBroker` was dropped).
    #[error("the embedded dev broker has stopped")]
    DevBrokerStopped,
    /// The embedded dev broker refused a request made through its handle.
    #[error("the embedded dev broker refused {operation}: {source}")]
    DevBrokerRefused {
        /// What was asked, e.g. "creating topic 'reviews' with 3 partitions".
        operation: String,
        /// The mock cluster's reason.
        #[source]
        source: RdKafkaError,
    },
    /// A topic operation failed.
    #[error(transparent)]
    Topic(#[from] TopicError),
}

/// The broker-side error code behind `err`, if there is one.
pub(crate) fn error_code(err: &RdKafkaError) -> Option<RDKafkaErrorCode> {
    match err {
        // rdkafka does not report the code of failed admin operations through
        // `rdkafka_error_code`, but the variant carries it.
        RdKafkaError::AdminOp(code) => Some(*code),
        other => other.rdkafka_error_code(),
    }
}

/// Whether an error with this code may go away by itself (broker outage, leader election,
/// rebalance), so the caller should wait and retry rather than give up.
pub(crate) fn is_transient(code: RDKafkaErrorCode) -> bool {
    use RDKafkaErrorCode::*;
    matches!(
        code,
        BrokerTransportFailure
            | Resolve
            | MessageTimedOut
            | AllBrokersDown
            | OperationTimedOut
            | TimedOutQueue
            | WaitingForCoordinator
            | Retry
            | RequestTimedOut
            | NetworkException
            | LeaderNotAvailable
            | NotLeaderForPartition
            | BrokerNotAvailable
            | ReplicaNotAvailable
            | CoordinatorLoadInProgress
            | CoordinatorNotAvailable
            | NotCoordinator
            | NotEnoughReplicas
            | NotEnoughReplicasAfterAppend
            | KafkaStorageError
            | RebalanceInProgress
            | NotController
    )
}

/// Whether an error with this code means the broker will keep refusing (authorization,
/// authentication, invalid configuration), so retrying is pointless.
pub(crate) fn is_refusal(code: RDKafkaErrorCode) -> bool {
    use RDKafkaErrorCode::*;
    matches!(
        code,
        TopicAuthorizationFailed
            | GroupAuthorizationFailed
            | ClusterAuthorizationFailed
            | TransactionalIdAuthorizationFailed
            | SaslAuthenticationFailed
            | Authentication
            | UnsupportedSASLMechanism
            | IllegalSASLState
            | SSL
            | InvalidGroupId
            | InvalidTopic
            | InvalidConfig
            | Fatal
    )
}

/// Translates a librdkafka error of `operation` (e.g. "Metadata for 'reviews'") against
/// `broker` into the error type of the topic traits.
pub(crate) fn topic_error(broker: &BrokerName, operation: &str, err: &RdKafkaError) -> TopicError {
    match error_code(err) {
        Some(code) if is_transient(code) => {
            TopicError::Unavailable(format!("{broker} did not answer {operation}: {err}"))
        }
        Some(_) => TopicError::Refused {
            broker: broker.as_str().to_owned(),
            operation: operation.to_owned(),
            reason: err.to_string(),
        },
        None => TopicError::Client(format!("{operation} on {broker}: {err}")),
    }
}

/// The error for a client that could not be created.
pub(crate) fn client_error(broker: &BrokerName, source: RdKafkaError) -> KafkaError {
    KafkaError::Client {
        broker: broker.as_str().to_owned(),
        source,
    }
}

/// The same failure seen through the topic traits, which cannot return a [`KafkaError`].
impl From<KafkaError> for TopicError {
    fn from(err: KafkaError) -> Self {
        match err {
            KafkaError::Topic(inner) => inner,
            KafkaError::DevBrokerStopped => TopicError::Unavailable(err.to_string()),
            other => TopicError::Client(other.to_string()),
        }
    }
}

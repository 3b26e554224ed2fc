/// What went wrong while talking to the topics' broker.
#[derive(Debug, thiserror::Error)]
pub enum TopicError {
    /// The topic does not exist (and the broker would not create it).
    #[error("topic '{0}' does not exist")]
    UnknownTopic(String),
    /// The broker refused an operation; `broker` says which kind of broker it was.
    #[error("{broker} refused {operation}: {reason}")]
    Refused {
        /// Which broker refused, e.g. "the embedded dev broker" or "Kafka at host:9092".
        broker: String,
        /// What was asked, e.g. "CreateTopics for 'reviews'".
        operation: String,
        /// The broker's reason.
        reason: String,
    },
    /// The consumer group has moved the source's partitions since the batch was read: its
    /// offsets can no longer be committed by this member, and its partitions' records will
    /// be read again by their new owner.
    #[error("{0}: the consumer group moved the partitions being committed")]
    Rebalanced(String),
    /// The broker could not be reached in time; the caller may retry.
    #[error("broker unavailable: {0}")]
    Unavailable(String),
    /// Any other client-side failure.
    #[error("kafka client error: {0}")]
    Client(String),
}

impl TopicError {
    /// Whether waiting and retrying may help (a broker outage rather than a refusal).
    pub fn is_transient(&self) -> bool {
        matches!(self, TopicError::Unavailable(_))
    }
}

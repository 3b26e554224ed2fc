//! librdkafka client contexts that report through `tracing` rather than the `log` crate.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use rdkafka::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError as RdKafkaError, RDKafkaErrorCode};

/// Forwards a librdkafka log line to `tracing`.
pub(crate) fn forward_log(level: RDKafkaLogLevel, facility: &str, message: &str) {
    match level {
        RDKafkaLogLevel::Emerg
        | RDKafkaLogLevel::Alert
        | RDKafkaLogLevel::Critical
        | RDKafkaLogLevel::Error => {
            tracing::error!(target: "librdkafka", facility, "{message}")
        }
        RDKafkaLogLevel::Warning => tracing::warn!(target: "librdkafka", facility, "{message}"),
        RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
            tracing::info!(target: "librdkafka", facility, "{message}")
        }
        RDKafkaLogLevel::Debug => tracing::debug!(target: "librdkafka", facility, "{message}"),
    }
}

/// Forwards a client-wide librdkafka error (e.g. "all brokers down") to `tracing`.
///
/// These errors are informational: librdkafka keeps reconnecting by itself, and operations
/// that cannot complete report their own errors.
pub(crate) fn forward_error(error: &RdKafkaError, reason: &str) {
    tracing::warn!(target: "librdkafka", %error, "{reason}");
}

/// The context of Eddy's consumers and admin clients.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct TracingContext;

impl ClientContext for TracingContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        forward_log(level, fac, log_message);
    }

    fn error(&self, error: RdKafkaError, reason: &str) {
        forward_error(&error, reason);
    }
}

impl ConsumerContext for TracingContext {}

/// The context of Eddy's query consumers: [`TracingContext`], and a count of the partition
/// assignments the consumer group has made.
#[derive(Debug, Default)]
pub(crate) struct GroupContext {
    assignments: AtomicU64,
}

impl GroupContext {
    /// Assignments received so far.
    pub(crate) fn assignments(&self) -> u64 {
        self.assignments.load(Ordering::Acquire)
    }
}

impl ClientContext for GroupContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        forward_log(level, fac, log_message);
    }

    fn error(&self, error: RdKafkaError, reason: &str) {
        forward_error(&error, reason);
    }
}

impl ConsumerContext for GroupContext {
    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(partitions) = rebalance {
            tracing::debug!(partitions = partitions.count(), "partitions assigned");
            self.assignments.fetch_add(1, Ordering::AcqRel);
        }
    }
}

/// The context of the admin client: [`TracingContext`], and the last time the broker
/// refused the client's credentials or its TLS handshake failed. librdkafka retries those
/// forever like an outage, but no retry can succeed, so a starting server asks for it.
#[derive(Debug, Default)]
pub(crate) struct AdminContext {
    refusal: Mutex<Option<String>>,
}

impl AdminContext {
    /// Keeps `reason` if `error` is a refusal of the credentials or the TLS handshake; a
    /// reason given before is kept (it is the fuller one: librdkafka's own text).
    pub(crate) fn note(&self, error: &RdKafkaError, reason: &str) {
        if matches!(
            error.rdkafka_error_code(),
            Some(
                RDKafkaErrorCode::Authentication
                    | RDKafkaErrorCode::SaslAuthenticationFailed
                    | RDKafkaErrorCode::SSL
            )
        ) {
            let mut refusal = self.refusal.lock().unwrap_or_else(PoisonError::into_inner);
            if refusal.is_none() {
                *refusal = Some(reason.to_string());
            }
        }
    }

    /// Why the broker refused this client, if it did.
    pub(crate) fn refusal(&self) -> Option<String> {
        self.refusal
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl ClientContext for AdminContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        forward_log(level, fac, log_message);
    }

    fn error(&self, error: RdKafkaError, reason: &str) {
        self.note(&error, reason);
        forward_error(&error, reason);
    }
}

impl ConsumerContext for AdminContext {}

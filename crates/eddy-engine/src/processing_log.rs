//! The processing log: where records that could not be processed go, with the reason, so
//! that nothing is lost silently and the query goes on.

use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use eddy_sql::catalog::{Column, ColumnRole, Source, SourceKind};
use eddy_sql::types::SqlType;
use eddy_topic::{Payloads, RecordSink};
use serde_json::json;

/// Name of the stream over the processing-log topic.
pub const PROCESSING_LOG_STREAM: &str = "EDDY_PROCESSING_LOG";

/// What kind of failure a processing-log entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The record's key or value could not be decoded.
    Deserialization,
    /// An expression could not be evaluated for the record.
    RecordProcessing,
    /// An output record could not be encoded.
    Serialization,
}

impl ErrorKind {
    fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Deserialization => "DESERIALIZATION_ERROR",
            ErrorKind::RecordProcessing => "RECORD_PROCESSING_ERROR",
            ErrorKind::Serialization => "SERIALIZATION_ERROR",
        }
    }
}

/// One record that could not be processed.
#[derive(Debug, Clone)]
pub struct ProcessingError {
    /// What failed.
    pub kind: ErrorKind,
    /// Topic the record came from.
    pub topic: String,
    /// Its partition.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// Why it failed.
    pub reason: String,
    /// The record's bytes as text (lossy), when they are known.
    pub record: Option<String>,
}

/// Writes processing-log entries to the processing-log topic.
pub struct ProcessingLog {
    sink: Mutex<Box<dyn RecordSink>>,
}

impl ProcessingLog {
    /// A log writing through `sink`.
    pub fn new(sink: Box<dyn RecordSink>) -> Self {
        Self {
            sink: Mutex::new(sink),
        }
    }

    /// The catalog entry of the processing-log stream over `topic`.
    pub fn stream(topic: &str) -> Source {
        let col = |name: &str, ty: SqlType| Column {
            name: name.to_string(),
            ty,
            role: ColumnRole::Value,
        };
        let columns = vec![
            col("LOGGER", SqlType::String),
            col("LEVEL", SqlType::String),
            col("TIME", SqlType::Bigint),
            col("QUERY_ID", SqlType::String),
            col("TYPE", SqlType::String),
            col("TOPIC", SqlType::String),
            col("PARTITION", SqlType::Int),
            col("OFFSET", SqlType::Bigint),
            col("MESSAGE", SqlType::String),
            col("RECORD", SqlType::String),
        ];
        Source {
            sql: format!(
                "CREATE STREAM {PROCESSING_LOG_STREAM} WITH (KAFKA_TOPIC='{topic}', VALUE_FORMAT='JSON');"
            ),
            ..Source::new(PROCESSING_LOG_STREAM, SourceKind::Stream, topic, columns)
        }
    }

    /// Records `errors` of query `query_id`; the errors are also logged with tracing, so a
    /// failure to write them to the topic loses nothing either.
    pub fn write(&self, query_id: &str, errors: &[ProcessingError]) {
        if errors.is_empty() {
            return;
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        let mut keys = Payloads::new();
        let mut values = Payloads::new();
        let mut timestamps = Vec::with_capacity(errors.len());
        for e in errors {
            tracing::warn!(
                query_id,
                topic = %e.topic,
                partition = e.partition,
                offset = e.offset,
                kind = e.kind.as_str(),
                "record skipped: {}",
                e.reason
            );
            let entry = json!({
                "LOGGER": format!("processing.{query_id}"),
                "LEVEL": "ERROR",
                "TIME": now,
                "QUERY_ID": query_id,
                "TYPE": e.kind.as_str(),
                "TOPIC": e.topic,
                "PARTITION": e.partition,
                "OFFSET": e.offset,
                "MESSAGE": e.reason,
                "RECORD": e.record,
            });
            keys.push(None);
            values.push(Some(entry.to_string().as_bytes()));
            timestamps.push(now);
        }
        let mut sink = self.sink.lock().unwrap_or_else(|p| p.into_inner());
        let sent = sink
            .send(&keys, &values, &timestamps)
            .and_then(|()| sink.flush(Duration::from_secs(10)));
        if let Err(e) = sent {
            tracing::error!(query_id, "could not write to the processing log: {e}");
        }
    }
}

//! The built-in schema registry's store in a compacted topic (`_schemas`), in the record
//! format Confluent's Schema Registry uses for its own: a server reads the topic at start,
//! so registered schemas survive restarts, and writes every change before it answers.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use eddy_registry::{Compatibility, MemoryRegistry, RegistryEvent, SchemaType};
use eddy_topic::{Payloads, RawBatch, RecordSink, TopicIo};
use serde_json::{Value, json};

use crate::error::EngineError;

/// Confluent's default name of the registry's topic (`kafkastore.topic`).
pub const SCHEMAS_TOPIC: &str = "_schemas";

/// How long a change may take to reach the broker.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// The key and value of a change, as Confluent's registry writes them.
fn record_of(event: &RegistryEvent) -> (Value, Value) {
    match event {
        RegistryEvent::Registered {
            subject,
            version,
            id,
            schema_type,
            schema,
            references,
        } => {
            let value = eddy_registry::describe_schema(
                json!({
                    "subject": subject, "version": version, "id": id, "schema": schema, "deleted": false,
                }),
                &eddy_registry::Schema {
                    schema_type: *schema_type,
                    text: String::new(),
                    references: references.clone(),
                },
            );
            (
                json!({"keytype": "SCHEMA", "subject": subject, "version": version, "magic": 1}),
                value,
            )
        }
        RegistryEvent::VersionDeleted { subject, version } => (
            json!({"keytype": "SCHEMA", "subject": subject, "version": version, "magic": 1}),
            json!({"subject": subject, "version": version, "deleted": true}),
        ),
        RegistryEvent::CompatibilitySet {
            subject,
            compatibility,
        } => (
            json!({"keytype": "CONFIG", "subject": subject, "magic": 0}),
            json!({"compatibilityLevel": compatibility}),
        ),
    }
}

/// The change a record of the topic holds, if it is one this store keeps.
fn event_of(key: &[u8], value: &[u8]) -> Option<RegistryEvent> {
    let key: Value = serde_json::from_slice(key).ok()?;
    let value: Value = serde_json::from_slice(value).ok()?;
    let subject = key
        .get("subject")
        .and_then(Value::as_str)
        .map(str::to_string);
    match key.get("keytype")?.as_str()? {
        "SCHEMA" => {
            let subject = subject?;
            let version = u32::try_from(value.get("version")?.as_u64()?).ok()?;
            if value.get("deleted").and_then(Value::as_bool) == Some(true) {
                return Some(RegistryEvent::VersionDeleted { subject, version });
            }
            let schema_type = match value.get("schemaType").and_then(Value::as_str) {
                Some("PROTOBUF") => SchemaType::Protobuf,
                Some("JSON") => SchemaType::Json,
                _ => SchemaType::Avro,
            };
            Some(RegistryEvent::Registered {
                subject,
                version,
                id: u32::try_from(value.get("id")?.as_u64()?).ok()?,
                schema_type,
                schema: value.get("schema")?.as_str()?.to_string(),
                references: eddy_registry::references_in(&value),
            })
        }
        "CONFIG" => {
            let level = value.get("compatibilityLevel")?.as_str()?;
            let compatibility: Compatibility = level.parse().ok()?;
            Some(RegistryEvent::CompatibilitySet {
                subject,
                compatibility,
            })
        }
        _ => None,
    }
}

/// Opens the registry kept in `topic`: creates the topic if needed, applies every record
/// in it (waiting at most `timeout`), then writes each later change to it.
pub fn open_schema_store(
    topics: Arc<dyn TopicIo>,
    topic: &str,
    replicas: i16,
    timeout: Duration,
) -> Result<Arc<MemoryRegistry>, EngineError> {
    topics.admin().create_compacted_topic(topic, 1, replicas)?;
    let registry = Arc::new(MemoryRegistry::new());
    let ends = topics.admin().end_offsets(topic)?;
    if ends.iter().any(|e| e.next_offset > 0) {
        let mut reader = topics.reader(topic)?;
        let deadline = Instant::now() + timeout;
        let mut next = std::collections::BTreeMap::new();
        let behind = |next: &std::collections::BTreeMap<i32, i64>| {
            ends.iter()
                .any(|e| next.get(&e.partition).copied().unwrap_or(0) < e.next_offset)
        };
        let mut raw = RawBatch::default();
        while behind(&next) {
            if Instant::now() > deadline {
                return Err(EngineError::Internal(format!(
                    "reading the schema registry's topic '{topic}' did not finish within {timeout:?}"
                )));
            }
            raw.clear();
            reader.poll(&mut raw, 1000, Duration::from_millis(100))?;
            for i in 0..raw.len() {
                next.insert(raw.partitions[i], raw.offsets[i] + 1);
                let (Some(key), Some(value)) = (raw.keys.get(i), raw.values.get(i)) else {
                    continue;
                };
                match event_of(key, value) {
                    Some(event) => registry.apply(&event),
                    None => tracing::debug!(
                        offset = raw.offsets[i],
                        "skipping a record of the schemas topic that is not a schema or config"
                    ),
                }
            }
        }
    }
    let sink: Mutex<Box<dyn RecordSink>> = Mutex::new(topics.sink(topic)?);
    let name = topic.to_string();
    registry.on_change(move |event| {
        let (key, value) = record_of(event);
        let (mut keys, mut values) = (Payloads::new(), Payloads::new());
        keys.push(Some(key.to_string().as_bytes()));
        values.push(Some(value.to_string().as_bytes()));
        let mut sink = sink.lock().unwrap_or_else(|p| p.into_inner());
        let written = sink
            .send(&keys, &values, &[crate::command_log::now_millis()])
            .and_then(|()| sink.flush(WRITE_TIMEOUT));
        if let Err(e) = written {
            tracing::error!(topic = %name, "could not write a schema registry change: {e}");
        }
    });
    Ok(registry)
}

#[cfg(test)]
mod tests {
    use eddy_registry::{Schema, SchemaRegistry};

    use super::*;
    use crate::memory::MemoryTopics;

    #[test]
    fn schemas_written_to_the_topic_are_there_after_a_restart()
    -> Result<(), Box<dyn std::error::Error>> {
        let topics: Arc<dyn TopicIo> = Arc::new(MemoryTopics::new());
        let first = open_schema_store(
            Arc::clone(&topics),
            SCHEMAS_TOPIC,
            1,
            Duration::from_secs(5),
        )?;
        let schema =
            Schema::avro(r#"{"type":"record","name":"R","fields":[{"name":"A","type":"int"}]}"#);
        let id = first.register("t-value", &schema)?;
        first.set_compatibility(Some("t-value"), Compatibility::None);
        let again = open_schema_store(topics, SCHEMAS_TOPIC, 1, Duration::from_secs(5))?;
        assert_eq!(again.schema(id)?.text, schema.text);
        assert_eq!(again.compatibility(Some("t-value")), Compatibility::None);
        assert_eq!(again.latest("t-value")?.map(|v| v.version), Some(1));
        Ok(())
    }
}

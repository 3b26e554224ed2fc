//! Schemas by id and by subject, as a Confluent Schema Registry keeps them.
//!
//! Records of the schema-registry formats (AVRO, and later PROTOBUF and JSON_SR) carry the id
//! of their writer's schema; readers fetch the schema by that id, writers register theirs
//! under the subject `<topic>-value` or `<topic>-key` and put the id they get in front of
//! each record. [`SchemaRegistry`] is what Eddy's codecs and statements need of a registry;
//! [`MemoryRegistry`] is the store of Eddy's built-in registry (and of `eddy test`, as
//! ksqlDB's test harness uses a mock registry); [`HttpRegistry`] is a client of an external
//! Confluent Schema Registry.

mod compatibility;
mod error;
mod http;
mod memory;
pub mod protobuf;

use std::fmt;
use std::sync::Arc;

pub use error::RegistryError;
pub use http::{HttpRegistry, HttpRegistryConfig};
pub use memory::{Compatibility, MemoryRegistry, RegistryEvent};
use serde::{Deserialize, Serialize};

/// What a registry needs to answer: schemas by id, the latest of a subject, and
/// registration. Implementations are shared between threads.
pub trait SchemaRegistry: Send + Sync + fmt::Debug {
    /// The schema registered under `id`.
    fn schema(&self, id: u32) -> Result<Arc<Schema>, RegistryError>;

    /// The latest version registered under `subject`, `None` if the subject has none.
    fn latest(&self, subject: &str) -> Result<Option<SubjectVersion>, RegistryError>;

    /// Version `version` of `subject` (what a schema reference names), `None` if there is
    /// no such version.
    fn subject_version(
        &self,
        subject: &str,
        version: u32,
    ) -> Result<Option<SubjectVersion>, RegistryError>;

    /// Registers `schema` under `subject`, or finds it there, and returns its id. Fails if
    /// it is incompatible with the subject's earlier versions.
    fn register(&self, subject: &str, schema: &Schema) -> Result<u32, RegistryError> {
        self.register_with_id(subject, schema, None)
    }

    /// [`SchemaRegistry::register`] with the id the schema must get (`None`: the registry
    /// picks one), as Confluent's registry allows in its import mode. Fails if the id is
    /// taken by another schema.
    fn register_with_id(
        &self,
        subject: &str,
        schema: &Schema,
        id: Option<u32>,
    ) -> Result<u32, RegistryError>;
}

/// The kind of a schema (Confluent's `schemaType`; absent means AVRO).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "UPPERCASE")]
pub enum SchemaType {
    /// An Avro schema (JSON text).
    #[default]
    Avro,
    /// A Protobuf schema (`.proto` text).
    Protobuf,
    /// A JSON Schema (JSON text).
    Json,
}

impl fmt::Display for SchemaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SchemaType::Avro => "AVRO",
            SchemaType::Protobuf => "PROTOBUF",
            SchemaType::Json => "JSON",
        })
    }
}

/// A schema as registered: its kind, its text and the schemas it refers to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Schema {
    /// The kind.
    pub schema_type: SchemaType,
    /// The text (for Avro and JSON Schema a JSON document).
    pub text: String,
    /// The registered schemas the text refers to (a Protobuf schema's imports).
    pub references: Vec<SchemaReference>,
}

/// A reference from a schema to another registered schema (Confluent's `references`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SchemaReference {
    /// The name the referring schema uses for it (a Protobuf import's file name).
    pub name: String,
    /// The subject it is registered under.
    pub subject: String,
    /// The version of that subject.
    pub version: u32,
}

impl Schema {
    /// A schema of `schema_type` without references.
    pub fn new(schema_type: SchemaType, text: impl Into<String>) -> Self {
        Self {
            schema_type,
            text: text.into(),
            references: Vec::new(),
        }
    }

    /// An Avro schema.
    pub fn avro(text: impl Into<String>) -> Self {
        Self::new(SchemaType::Avro, text)
    }
}

/// One version of a subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectVersion {
    /// The subject.
    pub subject: String,
    /// The version, from 1.
    pub version: u32,
    /// The schema's id.
    pub id: u32,
    /// The schema.
    pub schema: Arc<Schema>,
}

/// The references of a registry's JSON answer or request (its `references` list).
pub fn references_in(body: &serde_json::Value) -> Vec<SchemaReference> {
    body.get("references")
        .and_then(|r| serde_json::from_value(r.clone()).ok())
        .unwrap_or_default()
}

/// Adds a schema's `schemaType` (left out for Avro, as Confluent does) and `references` (if
/// any) to a registry JSON object.
pub fn describe_schema(mut body: serde_json::Value, schema: &Schema) -> serde_json::Value {
    if let Some(o) = body.as_object_mut() {
        if schema.schema_type != SchemaType::Avro {
            o.insert("schemaType".into(), serde_json::json!(schema.schema_type));
        }
        if !schema.references.is_empty() {
            o.insert("references".into(), serde_json::json!(schema.references));
        }
    }
    body
}

/// The subject of a topic's record values (`value = true`) or keys, as Confluent's default
/// `TopicNameStrategy` names it.
pub fn subject(topic: &str, value: bool) -> String {
    format!("{topic}-{}", if value { "value" } else { "key" })
}

/// The bytes in front of every record of a schema-registry format: the magic byte 0 and the
/// schema id, big-endian.
pub fn wire_prefix(id: u32) -> [u8; 5] {
    let [a, b, c, d] = id.to_be_bytes();
    [0, a, b, c, d]
}

/// The schema id of a record in Confluent's wire format and the rest of its bytes; `None`
/// if the record is too short or does not start with the magic byte.
pub fn split_wire(bytes: &[u8]) -> Option<(u32, &[u8])> {
    match bytes {
        [0, a, b, c, d, rest @ ..] => Some((u32::from_be_bytes([*a, *b, *c, *d]), rest)),
        _ => None,
    }
}

//! Whether a schema can read what another was written with, for each kind of schema the
//! registry keeps, with the rules Confluent's Schema Registry applies to that kind.
//!
//! Each check answers the incompatibilities it found, named as Confluent names them
//! (`FIELD_SCALAR_KIND_CHANGED`, `PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL`, …) with where in
//! the schema they are; an empty answer means compatible.

mod json;
mod protobuf;

use apache_avro::schema_compatibility::SchemaCompatibility;
use prost_reflect::FileDescriptor;

/// A schema parsed for comparison.
#[derive(Debug)]
pub(crate) enum Parsed {
    /// An Avro schema.
    Avro(apache_avro::Schema),
    /// A compiled Protobuf file.
    Protobuf(FileDescriptor),
    /// A JSON Schema document.
    Json(serde_json::Value),
}

/// What keeps `reader` from reading data written with `writer`; empty when it can. Schemas
/// of different kinds never can.
pub(crate) fn incompatibilities(writer: &Parsed, reader: &Parsed) -> Vec<String> {
    match (writer, reader) {
        (Parsed::Avro(w), Parsed::Avro(r)) => match SchemaCompatibility::can_read(w, r) {
            Ok(()) => Vec::new(),
            Err(e) => vec![e.to_string()],
        },
        (Parsed::Protobuf(w), Parsed::Protobuf(r)) => protobuf::incompatibilities(w, r),
        (Parsed::Json(w), Parsed::Json(r)) => json::incompatibilities(w, r),
        _ => vec!["TYPE_CHANGED: the schema's kind changed".to_string()],
    }
}

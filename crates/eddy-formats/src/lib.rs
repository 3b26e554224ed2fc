//! Serialisation formats (JSON, DELIMITED, KAFKA, NONE, AVRO, JSON_SR, PROTOBUF) between Kafka record bytes and
//! Arrow batches, with ksqlDB's semantics.
//!
//! Entry points:
//! * [`ValueDecoder`] and [`KeyDecoder`] turn a column of record values or keys
//!   ([`eddy_topic::Payloads`]) into a [`Decoded`] batch: one row per record, and a
//!   [`RecordError`] (with an all-null row) for each record that does not decode, so one bad
//!   record never fails a batch.
//! * [`ValueEncoder`] and [`KeyEncoder`] turn a `RecordBatch` back into `Payloads`.
//!
//! Each is built once per query for a [`Format`] and an Arrow schema (`new` rejects a schema
//! the format cannot carry, with ksqlDB's message) and then reused for every batch. Decoding
//! and encoding are columnar: records are parsed straight into column builders and written
//! straight into the output buffer, without a per-record value tree or allocation.
//!
//! Types: BOOLEAN = `Boolean`, INT = `Int32`, BIGINT = `Int64`, DOUBLE = `Float64`,
//! DECIMAL(p,s) = `Decimal128(p,s)`, STRING = `Utf8`, BYTES = `Binary`, DATE = `Date32`,
//! TIME = `Time32(Millisecond)`, TIMESTAMP = `Timestamp(Millisecond, _)`, ARRAY = `List`,
//! MAP = `Map`, STRUCT = `Struct`.

mod avro;
mod column;
mod decoder;
mod delimited;
mod encoder;
mod error;
mod failure;
mod json;
mod json_sr;
mod kafka;
mod protobuf;
mod push;
mod registry;
mod scalar;
mod schema;
mod view;

#[cfg(test)]
mod tests;

pub use avro::{DEFAULT_FULL_NAME, derive_schema, infer_fields};
pub use decoder::{Decoded, KeyDecoder, RecordError, ValueDecoder};
pub use encoder::{KeyEncoder, ValueEncoder};
pub use error::FormatError;
pub use json_sr::{derive_json_schema, infer_json_schema_fields};
/// Compiling Protobuf schemas and Confluent's message indexes, for tools that read and
/// write PROTOBUF records themselves.
pub use protobuf::schema as protobuf_schema;
pub use protobuf::{
    DEFAULT_MESSAGE, NullableRepresentation, ProtobufFormat, derive_proto, infer_protobuf_fields,
    protobuf_references,
};
pub use registry::RegistryFormat;

/// A serialisation format of record keys or values (ksqlDB's `KEY_FORMAT` / `VALUE_FORMAT`).
#[derive(Debug, Clone)]
pub enum Format {
    /// A JSON object per record (or the bare value of a single unwrapped column).
    Json,
    /// One CSV-style line per record.
    Delimited {
        /// The field separator, `,` by default (`VALUE_DELIMITER`).
        delimiter: u8,
    },
    /// Kafka's own serialisers for a single INT, BIGINT, DOUBLE, STRING or BYTES column.
    Kafka,
    /// No columns: the bytes are ignored, and nothing is written.
    None,
    /// Avro records in Confluent's wire format, with their schemas in a registry.
    Avro(RegistryFormat),
    /// JSON records in Confluent's wire format, with their JSON Schemas in a registry.
    JsonSr(RegistryFormat),
    /// Protobuf messages: in Confluent's wire format with their schemas in a registry
    /// (PROTOBUF), or bare (PROTOBUF_NOSR).
    Protobuf(ProtobufFormat),
}

impl Format {
    /// DELIMITED's default field separator.
    pub const DEFAULT_DELIMITER: u8 = b',';

    /// The format's name as ksqlDB spells it: `JSON`, `DELIMITED`, `KAFKA`, `NONE`, `AVRO`,
    /// `JSON_SR`, `PROTOBUF` or `PROTOBUF_NOSR`.
    pub fn name(&self) -> &'static str {
        match self {
            Format::Json => "JSON",
            Format::Delimited { .. } => "DELIMITED",
            Format::Kafka => "KAFKA",
            Format::None => "NONE",
            Format::Avro(_) => "AVRO",
            Format::JsonSr(_) => "JSON_SR",
            Format::Protobuf(p) if p.registry.is_none() => "PROTOBUF_NOSR",
            Format::Protobuf(_) => "PROTOBUF",
        }
    }
}

//! AVRO: records in Confluent's wire format (magic byte 0, the writer schema's 4-byte id,
//! then the Avro binary encoding), with ksqlDB's mapping between Avro and SQL types.
//!
//! The writer schema of each record is fetched from the registry by its id once and
//! compiled into a [`plan::Plan`] against the columns being decoded; records are then decoded
//! straight into the column builders, without an Avro value tree. Writers derive ksqlDB's
//! schema from their columns ([`derive`]) or use a registered one (`VALUE_SCHEMA_ID`), and
//! register it under the topic's subject.

pub(crate) mod decode;
mod derive;
pub(crate) mod encode;
mod infer;
mod plan;
pub(crate) mod wire;

pub use derive::{DEFAULT_FULL_NAME, derive_schema};
pub use infer::infer_fields;
pub(crate) use plan::match_column;

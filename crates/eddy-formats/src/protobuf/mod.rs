//! PROTOBUF and PROTOBUF_NOSR: Protobuf messages, in Confluent's wire format (magic byte 0,
//! the schema's 4-byte id, the message indexes, then the message) with the schemas in a
//! registry, or bare with the schema derived from the columns.
//!
//! A writer schema is compiled once per schema id and message into a plan against the
//! columns ([`decode`]); a record is parsed into a dynamic message (`prost-reflect`) that
//! the plan walks into the column builders. Writers derive ksqlDB's schema from their
//! columns ([`derive`]) or use a registered one, and register it under the topic's subject.

pub(crate) mod decode;
mod derive;
pub(crate) mod encode;
pub mod schema;
mod types;

pub use derive::{DEFAULT_MESSAGE, NullableRepresentation, derive_proto};
pub use schema::references as protobuf_references;
pub use types::infer_protobuf_fields;

use crate::registry::RegistryFormat;

/// How PROTOBUF and PROTOBUF_NOSR keys or values are read and written.
#[derive(Debug, Clone)]
pub struct ProtobufFormat {
    /// Where the schemas are, for PROTOBUF; `None` for PROTOBUF_NOSR, whose records carry
    /// no schema id and are read and written with the schema derived from the columns.
    pub registry: Option<RegistryFormat>,
    /// How nullable columns are declared in derived schemas.
    pub nullable: NullableRepresentation,
}

impl ProtobufFormat {
    /// The message name of a derived schema (`…_SCHEMA_FULL_NAME`).
    pub(crate) fn full_name(&self) -> Option<&str> {
        self.registry.as_ref().and_then(|r| r.full_name.as_deref())
    }
}

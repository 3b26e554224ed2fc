//! The crate's one error type.

use arrow::error::ArrowError;

/// Why a codec could not be built or could not process a batch.
///
/// `Unsupported` and `Record` are the user's fault (a schema the format cannot carry, a record
/// that does not decode); `BatchMismatch` and `Arrow` are bugs in the caller or in this crate.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// The format cannot carry the schema (raised when a codec is built), e.g. "The 'KAFKA'
    /// format does not support type 'ARRAY', column: `A`".
    #[error("The '{format}' format {what}")]
    Unsupported {
        /// Format name as ksqlDB spells it (`JSON`, `DELIMITED`, `KAFKA`, `NONE`).
        format: &'static str,
        /// What is unsupported, phrased to follow the format name.
        what: String,
    },
    /// A key column is or contains a map.
    #[error(
        "Map keys, including types that contain maps, are not supported as they may lead to unexpected behavior due to inconsistent serialization. Key column name: `{column}`. Column type: {column_type}. See https://github.com/confluentinc/ksql/issues/6621 for more."
    )]
    MapKey {
        /// The key column.
        column: String,
        /// Its type, e.g. `MAP<STRING, INTEGER>`.
        column_type: String,
    },
    /// The key format cannot carry the key columns.
    #[error(
        "Key format does not support schema.\nformat: {format}\nschema: Persistence{{columns={columns}, features=[]}}\nreason: {reason}"
    )]
    KeySchema {
        /// Format name.
        format: &'static str,
        /// The key columns, e.g. "[`K` INTEGER KEY]".
        columns: String,
        /// Why, as the format says it.
        reason: String,
    },
    /// JSON object keys are strings, so JSON maps must have STRING keys.
    #[error("JSON only supports MAP types with STRING keys")]
    JsonMapKey,
    /// `WRAP_SINGLE_VALUE = false` was asked for a schema that does not have exactly one column.
    #[error("'WRAP_SINGLE_VALUE' is only valid for single-field value schemas. Got: {columns}")]
    UnwrappedMultiField {
        /// The schema's columns, e.g. "[`A` INT, `B` INT]".
        columns: String,
    },
    /// A schema-registry format cannot use or register a schema for these columns, e.g.
    /// "Avro only supports MAPs with STRING keys", or the registry refused it.
    #[error("{0}")]
    Schema(String),
    /// One record could not be decoded (see [`crate::Decoded::into_batch`]).
    #[error("{reason}")]
    Record {
        /// Position of the record in its batch.
        index: usize,
        /// What was wrong with it.
        reason: String,
    },
    /// The batch handed to an encoder does not fit the encoder's schema.
    #[error("batch does not match the format's schema: {reason}")]
    BatchMismatch {
        /// What differs.
        reason: String,
    },
    /// Arrow refused to assemble the decoded columns (a bug in this crate).
    #[error("could not build the decoded batch: {0}")]
    Arrow(#[from] ArrowError),
}

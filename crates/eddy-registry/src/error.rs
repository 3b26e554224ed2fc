//! The crate's one error type.

/// Why a registry could not answer, with the Confluent error code its REST API answers with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// No schema has this id (Confluent: 40403).
    #[error("Schema {0} not found")]
    SchemaNotFound(u32),
    /// No subject of this name (Confluent: 40401).
    #[error("Subject '{0}' not found.")]
    SubjectNotFound(String),
    /// The subject has no such version (Confluent: 40402).
    #[error("Version {version} not found for subject '{subject}'.")]
    VersionNotFound {
        /// The subject.
        subject: String,
        /// The version asked for.
        version: String,
    },
    /// The schema text does not parse as a schema of its type (Confluent: 42201).
    #[error("Invalid schema: {0}")]
    InvalidSchema(String),
    /// The schema cannot be registered next to the subject's earlier versions (Confluent:
    /// 409).
    #[error(
        "Schema being registered is incompatible with an earlier schema for subject \"{subject}\": {reason}"
    )]
    Incompatible {
        /// The subject.
        subject: String,
        /// What is incompatible.
        reason: String,
    },
    /// An id asked for is already taken by another schema (Confluent: 42205).
    #[error("Overwrite new schema with id {0} is not permitted.")]
    IdTaken(u32),
    /// A compatibility level that Confluent does not define (Confluent: 42203).
    #[error(
        "Invalid compatibility level. Valid values are none, backward, forward, full, backward_transitive, forward_transitive, and full_transitive: {0}"
    )]
    InvalidCompatibility(String),
    /// The registry could not be reached or answered something unexpected.
    #[error("Schema Registry request failed: {0}")]
    Unavailable(String),
}

impl RegistryError {
    /// The Confluent error code and HTTP status of this error.
    pub fn code(&self) -> (u32, u16) {
        match self {
            RegistryError::SubjectNotFound(_) => (40401, 404),
            RegistryError::VersionNotFound { .. } => (40402, 404),
            RegistryError::SchemaNotFound(_) => (40403, 404),
            RegistryError::InvalidSchema(_) => (42201, 422),
            RegistryError::InvalidCompatibility(_) => (42203, 422),
            RegistryError::IdTaken(_) => (42205, 422),
            RegistryError::Incompatible { .. } => (409, 409),
            RegistryError::Unavailable(_) => (50001, 500),
        }
    }
}

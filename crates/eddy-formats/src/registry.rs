//! What the codecs of the schema-registry formats (AVRO, JSON_SR) need: the registry, the
//! subject they register under, and the `WITH` settings that pick or name the schema.

use std::fmt;
use std::sync::Arc;

use eddy_registry::{Schema, SchemaRegistry, SchemaType};

use crate::FormatError;

/// Where a schema-registry key or value codec finds and registers its schemas.
#[derive(Clone)]
pub struct RegistryFormat {
    /// The registry.
    pub registry: Arc<dyn SchemaRegistry>,
    /// The subject a writer registers its schema under (`<topic>-value` or `<topic>-key`).
    pub subject: String,
    /// `VALUE_SCHEMA_ID` / `KEY_SCHEMA_ID`: write with this registered schema instead of
    /// one derived from the columns.
    pub schema_id: Option<u32>,
    /// `VALUE_AVRO_SCHEMA_FULL_NAME` / `KEY_SCHEMA_FULL_NAME`: the derived record's name.
    pub full_name: Option<String>,
}

impl RegistryFormat {
    /// The schema registered under `id`, which a writer was told to use; it must be of
    /// `schema_type` (named `kind` in the error, e.g. "an Avro schema").
    pub(crate) fn registered(
        &self,
        id: u32,
        schema_type: SchemaType,
        kind: &str,
    ) -> Result<Arc<Schema>, FormatError> {
        let registered = self.registry.schema(id).map_err(|e| {
            FormatError::Schema(format!("Error retrieving schema for id {id}: {e}"))
        })?;
        if registered.schema_type != schema_type {
            return Err(FormatError::Schema(format!(
                "Schema {id} is a {} schema, not {kind}",
                registered.schema_type
            )));
        }
        Ok(registered)
    }
}

impl fmt::Debug for RegistryFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryFormat")
            .field("subject", &self.subject)
            .field("schema_id", &self.schema_id)
            .field("full_name", &self.full_name)
            .finish_non_exhaustive()
    }
}

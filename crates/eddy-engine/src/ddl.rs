//! Turning CREATE statements and their `WITH` properties into catalog entries.

use std::time::Duration;

use eddy_sql::ast::{CreateSource, PropertyValue, WithProperties};
use eddy_sql::catalog::{
    Column, ColumnRole, FormatName, Registry, Source, SourceKind, SourceSchemas,
};
use eddy_sql::plan::QueryPlan;
use eddy_sql::types::{SqlType, StructField};
use eddy_sql::window::WindowSpec;

use crate::error::EngineError;

/// The `WITH` properties Eddy understands; anything else is an error naming it.
const KNOWN: &[&str] = &[
    "KAFKA_TOPIC",
    "VALUE_FORMAT",
    "KEY_FORMAT",
    "FORMAT",
    "PARTITIONS",
    "REPLICAS",
    "TIMESTAMP",
    "TIMESTAMP_FORMAT",
    "VALUE_DELIMITER",
    "KEY_DELIMITER",
    "WRAP_SINGLE_VALUE",
    "VALUE_SCHEMA_ID",
    "KEY_SCHEMA_ID",
    "VALUE_AVRO_SCHEMA_FULL_NAME",
    "KEY_SCHEMA_FULL_NAME",
    "VALUE_SCHEMA_FULL_NAME",
    "KEY_PROTOBUF_NULLABLE_REPRESENTATION",
    "VALUE_PROTOBUF_NULLABLE_REPRESENTATION",
    "RETENTION_MS",
    "CLEANUP_POLICY",
    "WINDOW_TYPE",
    "WINDOW_SIZE",
];

/// The topic configs of a stream's or table's new topic, as ksqlDB sets them: a table's topic
/// is compacted (a windowed table's also deletes old windows), `CLEANUP_POLICY` and
/// `RETENTION_MS` set `cleanup.policy` and `retention.ms`.
pub(crate) fn topic_config(
    source: &Source,
    with: &WithProperties,
) -> Result<Vec<(&'static str, String)>, EngineError> {
    let w = With(with);
    let default_policy = match (source.kind, &source.window) {
        (SourceKind::Table, None) => Some("compact"),
        (SourceKind::Table, Some(_)) => Some("compact,delete"),
        (SourceKind::Stream, _) => None,
    };
    let policy = match w.string("CLEANUP_POLICY") {
        Some(p) => {
            let p = p.to_ascii_lowercase().replace(' ', "");
            if !["compact", "delete", "compact,delete", "delete,compact"].contains(&p.as_str()) {
                return Err(EngineError::Invalid(format!(
                    "Invalid value for CLEANUP_POLICY: '{p}'. Expected 'compact', 'delete' or \
                     'compact,delete'."
                )));
            }
            Some(p)
        }
        None => default_policy.map(str::to_string),
    };
    let mut config = Vec::new();
    if let Some(p) = policy {
        config.push(("cleanup.policy", p));
    }
    if let Some(ms) = w.int("RETENTION_MS")? {
        if ms < -1 {
            return Err(EngineError::Invalid(format!(
                "Invalid value for RETENTION_MS: {ms}. Expected -1 (forever) or milliseconds."
            )));
        }
        config.push(("retention.ms", ms.to_string()));
    }
    Ok(config)
}

/// Typed view of a `WITH` clause.
pub(crate) struct With<'a>(pub &'a WithProperties);

impl With<'_> {
    pub(crate) fn check_known(&self) -> Result<(), EngineError> {
        for name in self.0.props.keys() {
            if !KNOWN.contains(&name.as_str()) {
                return Err(EngineError::Invalid(format!(
                    "Invalid config variable(s) in the WITH clause: {name}"
                )));
            }
        }
        Ok(())
    }

    pub(crate) fn string(&self, name: &str) -> Option<String> {
        self.0.get(name).map(PropertyValue::as_text)
    }

    pub(crate) fn int(&self, name: &str) -> Result<Option<i64>, EngineError> {
        match self.0.get(name) {
            None => Ok(None),
            Some(v) => v.as_text().parse::<i64>().map(Some).map_err(|_| {
                EngineError::Invalid(format!(
                    "Invalid value for {name}: '{}' is not an integer.",
                    v.as_text()
                ))
            }),
        }
    }

    /// `PARTITIONS`, checked: at least 1 and a number Kafka takes (an `int`).
    pub(crate) fn partitions(&self) -> Result<Option<i32>, EngineError> {
        let Some(p) = self.int("PARTITIONS")? else {
            return Ok(None);
        };
        if p < 1 {
            return Err(EngineError::Invalid(format!(
                "Invalid number of partitions in WITH clause: {p}"
            )));
        }
        i32::try_from(p).map(Some).map_err(|_| {
            EngineError::Invalid(format!(
                "Invalid value for PARTITIONS: {p} is more partitions than Kafka allows (at \
                 most {}).",
                i32::MAX
            ))
        })
    }

    /// `REPLICAS`, checked: a replication factor Kafka takes (1 to 32767).
    pub(crate) fn replicas(&self) -> Result<Option<i16>, EngineError> {
        let Some(r) = self.int("REPLICAS")? else {
            return Ok(None);
        };
        i16::try_from(r)
            .ok()
            .filter(|r| *r >= 1)
            .map(Some)
            .ok_or_else(|| {
                EngineError::Invalid(format!(
                    "Invalid value for REPLICAS: {r} is not a replication factor (1 to {}).",
                    i16::MAX
                ))
            })
    }

    pub(crate) fn bool(&self, name: &str) -> Result<Option<bool>, EngineError> {
        match self.0.get(name) {
            None => Ok(None),
            Some(PropertyValue::Boolean(b)) => Ok(Some(*b)),
            Some(v) => match v.as_text().to_ascii_lowercase().as_str() {
                "true" => Ok(Some(true)),
                "false" => Ok(Some(false)),
                other => Err(EngineError::Invalid(format!(
                    "Property {name} must be true or false, got '{other}'."
                ))),
            },
        }
    }

    fn format(&self, name: &str) -> Result<Option<FormatName>, EngineError> {
        match self.string(name) {
            None => Ok(None),
            Some(s) => FormatName::parse(&s)
                .map(Some)
                .ok_or_else(|| EngineError::Invalid(format!("Unknown format: {s}"))),
        }
    }

    /// (key format, value format) from `FORMAT`, `KEY_FORMAT` and `VALUE_FORMAT`.
    pub(crate) fn formats(&self) -> Result<(Option<FormatName>, Option<FormatName>), EngineError> {
        let both = self.format("FORMAT")?;
        let key = self.format("KEY_FORMAT")?;
        let value = self.format("VALUE_FORMAT")?;
        if both.is_some() && (key.is_some() || value.is_some()) {
            let other = if key.is_some() {
                "KEY_FORMAT"
            } else {
                "VALUE_FORMAT"
            };
            return Err(EngineError::Invalid(format!(
                "Cannot supply both '{other}' and 'FORMAT' properties, as 'FORMAT' sets both key and value formats. Either use just 'FORMAT', or use 'KEY_FORMAT' and 'VALUE_FORMAT'."
            )));
        }
        Ok((both.or(key), both.or(value)))
    }

    /// `VALUE_DELIMITER` or `KEY_DELIMITER` (`name`): one character, or `TAB` or `SPACE`.
    pub(crate) fn delimiter(&self, name: &str) -> Result<Option<char>, EngineError> {
        let Some(d) = self.string(name) else {
            return Ok(None);
        };
        match d.to_ascii_uppercase().as_str() {
            "TAB" => return Ok(Some('\t')),
            "SPACE" => return Ok(Some(' ')),
            _ => {}
        }
        let invalid = |why: String| {
            EngineError::Sql(eddy_sql::SqlError::Prepare(format!(
                "Configuration {name} is invalid: {why}\nExample valid value: ';'"
            )))
        };
        // Whitespace is trimmed away, so a literal space or tab must be spelled out.
        let mut chars = d.trim().chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) => Ok(Some(c)),
            (None, _) => Err(invalid(
                "Delimiter cannot be empty, if you meant to have a tab or space for delimiter, please use the special values 'TAB' or 'SPACE'".into(),
            )),
            _ => Err(invalid(format!(
                "Invalid delimiter value: '{d}'. Delimiter must be a single character or TAB,SPACE"
            ))),
        }
    }

    /// The window of a windowed source's keys (`WINDOW_TYPE`, and `WINDOW_SIZE` for time
    /// windows).
    pub(crate) fn window(&self) -> Result<Option<WindowSpec>, EngineError> {
        let Some(kind) = self.string("WINDOW_TYPE") else {
            return Ok(None);
        };
        let size = self
            .string("WINDOW_SIZE")
            .map(|s| window_size(&s))
            .transpose()?;
        let window = match kind.to_ascii_uppercase().as_str() {
            "SESSION" => {
                if size.is_some() {
                    return Err(EngineError::Invalid(
                        "'WINDOW_SIZE' should not be set for SESSION windows.".into(),
                    ));
                }
                WindowSpec::Session {
                    gap: Duration::ZERO,
                    retention: None,
                    grace: None,
                }
            }
            kind @ ("TUMBLING" | "HOPPING") => {
                let size = size.ok_or_else(|| {
                    EngineError::Invalid(
                        "Tumbling and Hopping window types should set WINDOW_SIZE in the WITH clause."
                            .into(),
                    )
                })?;
                // Imported keys only carry the start; the advance does not matter to reading.
                if kind == "TUMBLING" {
                    WindowSpec::Tumbling {
                        size,
                        retention: None,
                        grace: None,
                    }
                } else {
                    WindowSpec::Hopping {
                        size,
                        advance: size,
                        retention: None,
                        grace: None,
                    }
                }
            }
            _ => {
                return Err(EngineError::Invalid(format!(
                    "Invalid value for WINDOW_TYPE: '{kind}'. Valid values are SESSION, HOPPING and TUMBLING."
                )));
            }
        };
        Ok(Some(window))
    }

    /// The `TIMESTAMP` column, normalised like an identifier.
    pub(crate) fn timestamp_column(&self) -> Option<String> {
        self.string("TIMESTAMP").map(|t| normalize_ident(&t))
    }
}

/// `WINDOW_SIZE`: `n unit`, e.g. `'1 SECOND'`.
fn window_size(text: &str) -> Result<Duration, EngineError> {
    let invalid = |why: String| {
        EngineError::Invalid(format!(
            "Configuration WINDOW_SIZE is invalid: Invalid duration: '{text}'. {why}"
        ))
    };
    let mut parts = text.split_whitespace();
    let (Some(n), Some(unit), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(invalid("Expected '<number> <time unit>'".into()));
    };
    let n: u64 = n
        .parse()
        .map_err(|_| invalid(format!("Not a number: '{n}'")))?;
    let unit = unit.to_ascii_uppercase();
    let millis: u64 = match unit.trim_end_matches('S') {
        "MILLISECOND" => 1,
        "SECOND" => 1_000,
        "MINUTE" => 60_000,
        "HOUR" => 3_600_000,
        "DAY" => 86_400_000,
        _ => return Err(invalid(format!("Unknown time unit: '{unit}'"))),
    };
    n.checked_mul(millis)
        .map(Duration::from_millis)
        .ok_or_else(|| invalid("Too large".into()))
}

/// ksqlDB's identifier rule for names given as strings: upper-cased unless back-quoted.
pub(crate) fn normalize_ident(s: &str) -> String {
    let t = s.trim();
    if t.len() >= 2 && t.starts_with('`') && t.ends_with('`') {
        t[1..t.len() - 1].to_string()
    } else {
        t.to_ascii_uppercase()
    }
}

/// `with`, completed from the session's or server's properties as ksqlDB completes it:
/// for a declared source (`declared`), `ksql.persistence.default.format.value`/`.key` stand
/// in for a missing `VALUE_FORMAT` or `KEY_FORMAT` (a query's sink takes its input's
/// formats instead); and `ksql.persistence.wrap.single.values=false` unwraps a single value
/// column (`values` is how many value columns the source has).
pub(crate) fn with_defaults(
    with: &WithProperties,
    props: &crate::Properties,
    values: usize,
    declared: bool,
) -> WithProperties {
    let mut with = with.clone();
    let has_format = with.get("FORMAT").is_some() || !declared;
    let defaults = [
        ("VALUE_FORMAT", "ksql.persistence.default.format.value"),
        ("KEY_FORMAT", "ksql.persistence.default.format.key"),
    ];
    for (property, config) in defaults {
        if !has_format
            && with.get(property).is_none()
            && let Some(format) = props.get(config)
        {
            with.props
                .insert(property.to_string(), PropertyValue::String(format.clone()));
        }
    }
    let unwrap = props
        .get("ksql.persistence.wrap.single.values")
        .is_some_and(|v| v.eq_ignore_ascii_case("false"));
    if unwrap && values == 1 && with.get("WRAP_SINGLE_VALUE").is_none() {
        with.props.insert(
            "WRAP_SINGLE_VALUE".to_string(),
            PropertyValue::Boolean(false),
        );
    }
    with
}

/// Refuses a header column whose type is not the one its headers have: `HEADERS` is
/// `ARRAY<STRUCT<KEY STRING, VALUE BYTES>>`, `HEADER('key')` is `BYTES`.
fn check_header_type(role: &ColumnRole, ty: &SqlType) -> Result<(), EngineError> {
    let (marker, expected) = match role {
        ColumnRole::Header(None) => ("HEADERS".to_string(), headers_type()),
        ColumnRole::Header(Some(key)) => (format!("HEADER('{key}')"), SqlType::Bytes),
        ColumnRole::Key | ColumnRole::Value => return Ok(()),
    };
    if *ty == expected {
        return Ok(());
    }
    Err(EngineError::Invalid(format!(
        "Invalid type for {marker} column: expected {expected}, got {ty}"
    )))
}

/// The type of a `HEADERS` column.
pub(crate) fn headers_type() -> SqlType {
    SqlType::Array(Box::new(SqlType::Struct(vec![
        StructField {
            name: "KEY".into(),
            ty: SqlType::String,
        },
        StructField {
            name: "VALUE".into(),
            ty: SqlType::Bytes,
        },
    ])))
}

/// The schema-registry settings of a `WITH` clause; `registry` is the engine's.
fn source_schemas(
    with: &With<'_>,
    key_format: FormatName,
    value_format: FormatName,
    registry: Option<Registry>,
) -> Result<SourceSchemas, EngineError> {
    let id = |name: &str| -> Result<Option<u32>, EngineError> {
        with.int(name)?
            .map(|id| {
                u32::try_from(id).map_err(|_| {
                    EngineError::Invalid(format!(
                        "Invalid value for {name}: {id} is not a schema id."
                    ))
                })
            })
            .transpose()
    };
    let key_id = id("KEY_SCHEMA_ID")?;
    let value_id = id("VALUE_SCHEMA_ID")?;
    if key_id.is_some() && !key_format.uses_registry() {
        return Err(EngineError::Invalid(format!(
            "KEY_FORMAT should support schema inference when KEY_SCHEMA_ID is provided. Current format is {key_format}."
        )));
    }
    if value_id.is_some() && !value_format.uses_registry() {
        return Err(EngineError::Invalid(format!(
            "VALUE_FORMAT should support schema inference when VALUE_SCHEMA_ID is provided. Current format is {value_format}."
        )));
    }
    let value_full_name = with
        .string("VALUE_AVRO_SCHEMA_FULL_NAME")
        .or_else(|| with.string("VALUE_SCHEMA_FULL_NAME"));
    if value_full_name.is_some() && !value_format.uses_registry() {
        return Err(EngineError::Invalid(format!(
            "{value_format} does not support the following configs: [fullSchemaName]"
        )));
    }
    let key_full_name = with.string("KEY_SCHEMA_FULL_NAME");
    if key_full_name.is_some() && !key_format.uses_registry() {
        return Err(EngineError::Invalid(format!(
            "{key_format} does not support the following configs: [fullSchemaName]"
        )));
    }
    let nullable = |name: &str, format: FormatName| -> Result<Option<String>, EngineError> {
        let Some(value) = with.string(name) else {
            return Ok(None);
        };
        if !format.is_protobuf() {
            return Err(EngineError::Invalid(format!(
                "{format} does not support the following configs: [nullableRepresentation]"
            )));
        }
        match eddy_formats::NullableRepresentation::parse(&value) {
            Some(_) => Ok(Some(value.to_ascii_uppercase())),
            None => Err(EngineError::Invalid(format!(
                "Invalid value for {name}: '{value}'. Expected 'OPTIONAL' or 'WRAPPER'."
            ))),
        }
    };
    Ok(SourceSchemas {
        key_id,
        value_id,
        key_protobuf_nullable: nullable("KEY_PROTOBUF_NULLABLE_REPRESENTATION", key_format)?,
        value_protobuf_nullable: nullable("VALUE_PROTOBUF_NULLABLE_REPRESENTATION", value_format)?,
        key_full_name,
        value_full_name,
        registry,
    })
}

/// The columns a schema-registry format's schema gives a source declared without them:
/// the subject's latest schema, or the one `id` names. `None` when the subject has none.
fn inferred_columns(
    registry: &Registry,
    topic: &str,
    value: bool,
    id: Option<u32>,
    full_name: Option<&str>,
    unwrapped: bool,
) -> Result<Option<(Vec<Column>, bool)>, EngineError> {
    let registry_error = |e: eddy_registry::RegistryError| EngineError::Invalid(e.to_string());
    let schema = match id {
        Some(id) => registry.0.schema(id).map_err(registry_error)?,
        None => match registry
            .0
            .latest(&eddy_registry::subject(topic, value))
            .map_err(registry_error)?
        {
            Some(latest) => latest.schema,
            None => return Ok(None),
        },
    };
    let single = if value { "ROWVAL" } else { "ROWKEY" };
    let (fields, wrapped) = match schema.schema_type {
        eddy_registry::SchemaType::Avro => {
            eddy_formats::infer_fields(&schema.text, single, id.is_none())?
        }
        eddy_registry::SchemaType::Json => {
            eddy_formats::infer_json_schema_fields(&schema.text, single, id.is_none())?
        }
        eddy_registry::SchemaType::Protobuf => {
            let references = eddy_formats::protobuf_references(registry.0.as_ref(), &schema)
                .map_err(EngineError::Invalid)?;
            match eddy_formats::infer_protobuf_fields(
                &schema.text,
                &references,
                full_name,
                id.is_none(),
            ) {
                // A message named by a full name the schema lacks is no schema for the topic.
                Err(eddy_formats::FormatError::Schema(why))
                    if full_name.is_some() && why.starts_with("Schema does not contain") =>
                {
                    return Ok(None);
                }
                // A Protobuf key is always a message, whose fields are the key columns.
                fields => (fields?, value),
            }
        }
    };
    let role = if value {
        ColumnRole::Value
    } else {
        ColumnRole::Key
    };
    let fields = if (value && !unwrapped) || !wrapped {
        fields
    } else {
        // A key record is one STRUCT column, as is an unwrapped value record.
        arrow::datatypes::Fields::from(vec![arrow::datatypes::Field::new(
            single,
            arrow::datatypes::DataType::Struct(fields),
            true,
        )])
    };
    let columns = fields
        .iter()
        .map(|f| {
            let ty = SqlType::from_arrow(f.data_type()).ok_or_else(|| {
                EngineError::Invalid(format!(
                    "The type of the field {} has no SQL type: {}",
                    f.name(),
                    f.data_type()
                ))
            })?;
            Ok(Column {
                name: f.name().clone(),
                ty,
                role: role.clone(),
            })
        })
        .collect::<Result<Vec<_>, EngineError>>()?;
    Ok(Some((columns, (wrapped && !unwrapped) || !value)))
}

/// The catalog entry a `CREATE STREAM|TABLE (…) WITH (…)` declares; columns a
/// schema-registry format leaves out come from the registry.
pub(crate) fn source_from_create(
    stmt: &CreateSource,
    sql: &str,
    registry: &Registry,
) -> Result<Source, EngineError> {
    let with = With(&stmt.with);
    with.check_known()?;
    let topic = with.string("KAFKA_TOPIC").ok_or_else(|| {
        EngineError::Invalid(
            "Missing required property \"KAFKA_TOPIC\" which has no default value.".into(),
        )
    })?;
    let (key_format, value_format) = with.formats()?;
    let value_format = value_format.ok_or_else(|| {
        EngineError::Invalid(
            "Statement is missing the 'VALUE_FORMAT' property from the WITH clause. Either provide one or set a default via the 'ksql.persistence.default.format.value' config."
                .into(),
        )
    })?;
    let mut keys = Vec::new();
    let mut values = Vec::new();
    for e in &stmt.elements {
        let role = match (&e.header, e.key) {
            (Some(header), _) => ColumnRole::Header(header.clone()),
            (None, true) => ColumnRole::Key,
            (None, false) => ColumnRole::Value,
        };
        check_header_type(&role, &e.ty)?;
        let col = Column {
            name: e.name.clone(),
            ty: e.ty.clone(),
            role,
        };
        if eddy_sql::plan::is_pseudo_column(&col.name) {
            return Err(EngineError::Invalid(format!(
                "'{}' is a reserved column name. You cannot use it as a name for a column.",
                col.name
            )));
        }
        if e.key {
            keys.push(col);
        } else {
            values.push(col);
        }
    }
    let key_format = key_format.unwrap_or(FormatName::Kafka);
    let schemas = source_schemas(&with, key_format, value_format, Some(registry.clone()))?;
    let mut wrap_single_value = with.bool("WRAP_SINGLE_VALUE")?;
    // A schema id names the whole key or value schema, so it cannot come with columns.
    if schemas.key_id.is_some() && !keys.is_empty() {
        return Err(EngineError::Invalid(
            "Table elements and KEY_SCHEMA_ID cannot both exist for create statement.".into(),
        ));
    }
    if schemas.value_id.is_some() && values.iter().any(|c| c.role == ColumnRole::Value) {
        return Err(EngineError::Invalid(
            "Table elements and VALUE_SCHEMA_ID cannot both exist for create statement.".into(),
        ));
    }
    if keys.is_empty()
        && key_format.uses_registry()
        && let Some((inferred, _)) = inferred_columns(
            registry,
            &topic,
            false,
            schemas.key_id,
            schemas.key_full_name.as_deref(),
            false,
        )?
    {
        keys = inferred;
    }
    // Header columns do not count: the value columns of a source declared with headers
    // only are inferred too.
    let has_values = values.iter().any(|c| c.role == ColumnRole::Value);
    if !has_values && value_format.uses_registry() {
        let unwrapped = wrap_single_value == Some(false);
        match inferred_columns(
            registry,
            &topic,
            true,
            schemas.value_id,
            schemas.value_full_name.as_deref(),
            unwrapped,
        )? {
            Some((mut inferred, wrapped)) => {
                inferred.append(&mut values);
                values = inferred;
                if !wrapped {
                    wrap_single_value = Some(false);
                }
            }
            None => {
                return Err(EngineError::Invalid(format!(
                    "Schema for message values on topic '{topic}' does not exist in the Schema Registry.\nSubject: {}",
                    eddy_registry::subject(&topic, true)
                )));
            }
        }
    }
    if stmt.kind == SourceKind::Table && keys.is_empty() && !stmt.elements.is_empty() {
        return Err(EngineError::Invalid(
            "Tables require a PRIMARY KEY. Please define the PRIMARY KEY.".into(),
        ));
    }
    let window = with.window()?;
    if window.is_some() && keys.is_empty() {
        return Err(EngineError::Invalid(
            "Windowed sources require a key column.".into(),
        ));
    }
    let mut columns = keys;
    columns.extend(values);
    let source = Source {
        name: stmt.name.clone(),
        kind: stmt.kind,
        columns,
        topic,
        key_format,
        value_format,
        value_delimiter: with.delimiter("VALUE_DELIMITER")?.unwrap_or(','),
        key_delimiter: with.delimiter("KEY_DELIMITER")?.unwrap_or(','),
        wrap_single_value: wrap_single_value.unwrap_or(true),
        timestamp_column: with.timestamp_column(),
        timestamp_format: with.string("TIMESTAMP_FORMAT"),
        window,
        is_source: stmt.is_source,
        sql: sql.to_string(),
        schemas,
    };
    check_source(&source, &with, false)?;
    if stmt.elements.is_empty() && !source.value_format.uses_registry() {
        return Err(EngineError::Invalid("No columns supplied.".into()));
    }
    Ok(source)
}

/// The catalog entry of a CSAS/CTAS sink.
pub(crate) fn sink_from_plan(
    name: &str,
    kind: SourceKind,
    with: &WithProperties,
    plan: &QueryPlan,
    sql: &str,
) -> Result<Source, EngineError> {
    let w = With(with);
    w.check_known()?;
    let input = &plan.from.source;
    let (key_format, value_format) = w.formats()?;
    let columns = plan.output_columns();
    let value_format = value_format.unwrap_or(input.value_format);
    // A result with a key cannot keep a NONE key format: it takes the joined table's, else
    // the value format's where that can carry keys.
    let keyed = columns.iter().any(|c| c.role == ColumnRole::Key);
    if !keyed && key_format.is_some_and(|f| f != FormatName::None) && kind == SourceKind::Stream {
        return Err(EngineError::Invalid(
            "Key format specified for stream without key columns.".into(),
        ));
    }
    let inherited_key = match (input.key_format, &plan.join) {
        // A stream without key columns (PARTITION BY NULL) writes no key.
        _ if !keyed && kind == SourceKind::Stream => FormatName::None,
        (FormatName::None, Some(join)) if keyed => join.table.source.key_format,
        (FormatName::None, None) if keyed => match value_format {
            FormatName::Json
            | FormatName::Delimited
            | FormatName::Kafka
            | FormatName::Avro
            | FormatName::JsonSr
            | FormatName::Protobuf
            | FormatName::ProtobufNoSr => value_format,
            _ => FormatName::Kafka,
        },
        (other, _) => other,
    };
    let source = Source {
        name: name.to_string(),
        kind,
        columns,
        topic: w.string("KAFKA_TOPIC").unwrap_or_else(|| name.to_string()),
        key_format: key_format.unwrap_or(inherited_key),
        value_format,
        value_delimiter: w
            .delimiter("VALUE_DELIMITER")?
            .unwrap_or(input.value_delimiter),
        key_delimiter: w.delimiter("KEY_DELIMITER")?.unwrap_or(input.key_delimiter),
        wrap_single_value: w.bool("WRAP_SINGLE_VALUE")?.unwrap_or(true),
        timestamp_column: w.timestamp_column(),
        timestamp_format: w.string("TIMESTAMP_FORMAT"),
        window: match &plan.aggregate {
            Some(a) => a.window.clone(),
            None if plan.join.is_none() => plan.from.source.window.clone(),
            None => None,
        },
        is_source: false,
        sql: sql.to_string(),
        schemas: SourceSchemas::default(),
    };
    let schemas = source_schemas(
        &w,
        source.key_format,
        source.value_format,
        input.schemas.registry.clone(),
    )?;
    let source = Source { schemas, ..source };
    check_source(&source, &w, true)?;
    check_registered_value_columns(&source)?;
    Ok(source)
}

/// A sink written with a registered value schema (`VALUE_SCHEMA_ID`) must find each of its
/// value columns in that schema, with the same type, as ksqlDB checks when the statement
/// runs rather than when a record cannot be written.
fn check_registered_value_columns(source: &Source) -> Result<(), EngineError> {
    let (Some(registry), Some(id)) = (&source.schemas.registry, source.schemas.value_id) else {
        return Ok(());
    };
    if !source.wrap_single_value {
        return Ok(());
    }
    let full_name = source.schemas.value_full_name.as_deref();
    let Some((registered, _)) =
        inferred_columns(registry, &source.topic, true, Some(id), full_name, false)?
    else {
        return Ok(());
    };
    let list = |columns: &mut dyn Iterator<Item = &Column>| {
        columns
            .map(|c| format!("`{}` {}", c.name, c.ty))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut changed = source
        .value_columns()
        .filter(|c| !registered.iter().any(|r| r.name == c.name && r.ty == c.ty))
        .peekable();
    if changed.peek().is_none() {
        return Ok(());
    }
    Err(EngineError::Invalid(format!(
        "The following value columns are changed, missing or reordered: [{}]. Schema from schema registry is [{}]",
        list(&mut changed),
        list(&mut registered.iter()),
    )))
}

/// Checks a new source's properties; `sink` for a query's sink, whose errors ksqlDB words
/// differently in places.
fn check_source(source: &Source, with: &With<'_>, sink: bool) -> Result<(), EngineError> {
    let value_format = source.value_format;
    if with.0.get("VALUE_DELIMITER").is_some() && value_format != FormatName::Delimited {
        return Err(EngineError::Invalid(format!(
            "{value_format} does not support the following configs: [delimiter]"
        )));
    }
    if matches!(value_format, FormatName::Kafka | FormatName::Delimited)
        && with.bool("WRAP_SINGLE_VALUE")? == Some(true)
    {
        return Err(EngineError::Invalid(format!(
            "Format '{value_format}' does not support 'WRAP_SINGLE_VALUE' set to 'true'."
        )));
    }
    // Set either way, the property only makes sense for a single value column.
    let wrap_set = with.0.get("WRAP_SINGLE_VALUE").is_some();
    if (wrap_set || !source.wrap_single_value) && source.value_columns().count() != 1 {
        return Err(EngineError::Invalid(
            "'WRAP_SINGLE_VALUE' is only valid for single-field value schemas.".into(),
        ));
    }
    if let Some(ts) = &source.timestamp_column {
        let col = source.column(ts).ok_or_else(|| {
            EngineError::Invalid(format!(
                "The TIMESTAMP column set in the WITH clause does not exist in the schema: '{ts}'"
            ))
        })?;
        let formatted = source.timestamp_format.is_some() && col.ty == SqlType::String;
        if !matches!(col.ty, SqlType::Bigint | SqlType::Timestamp) && !formatted {
            // ksqlDB words this differently for a source and for a query's sink.
            return Err(EngineError::Invalid(if !sink {
                format!(
                    "Timestamp column, `{ts}`, should be LONG(INT64) or TIMESTAMP, or a String with a timestamp_format specified."
                )
            } else {
                format!(
                    "Timestamp column, `{ts}`, should be LONG(INT64), TIMESTAMP, or a String with a timestamp_format specified"
                )
            }));
        }
    }
    if let Some(pattern) = &source.timestamp_format {
        eddy_sql::plan::TimestampFormat::new(pattern)?;
    }
    with.partitions()?;
    with.replicas()?;
    // Building the codecs proves the formats can carry these columns. A schema-registry
    // format's encoders register their schema, which the statement does once it runs.
    crate::reader::decoders(source)?;
    if !source.key_format.uses_registry() && !source.value_format.uses_registry() {
        crate::reader::encoders(source)?;
    }
    Ok(())
}

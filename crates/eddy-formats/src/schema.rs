//! Which schemas each format can carry, and ksqlDB's names for Arrow types.

use std::fmt::Write as _;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

use crate::{Format, FormatError};

/// Whether a codec handles record keys or record values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Key,
    Value,
}

impl Role {
    /// How messages name what failed ("Failed to deserialize value: …").
    pub(crate) fn noun(self) -> &'static str {
        match self {
            Role::Key => "key",
            Role::Value => "value",
        }
    }
}

/// ksqlDB's base type name of an Arrow type (`INTEGER`, `ARRAY`, …).
pub(crate) fn base_type_name(data_type: &DataType) -> &'static str {
    match data_type {
        DataType::Boolean => "BOOLEAN",
        DataType::Int32 => "INTEGER",
        DataType::Int64 => "BIGINT",
        DataType::Float64 => "DOUBLE",
        DataType::Decimal128(_, _) => "DECIMAL",
        DataType::Utf8 => "STRING",
        DataType::Binary => "BYTES",
        DataType::Date32 => "DATE",
        DataType::Time32(TimeUnit::Millisecond) => "TIME",
        DataType::Timestamp(TimeUnit::Millisecond, _) => "TIMESTAMP",
        DataType::List(_) => "ARRAY",
        DataType::Map(_, _) => "MAP",
        DataType::Struct(_) => "STRUCT",
        _ => "UNKNOWN",
    }
}

/// Appends the SQL spelling of a type (`INT`, `DECIMAL(10, 2)`, `MAP<STRING, INT>`).
fn write_sql_type(out: &mut String, data_type: &DataType) {
    match data_type {
        DataType::Decimal128(p, s) => {
            let _ = write!(out, "DECIMAL({p}, {s})");
        }
        DataType::List(item) => {
            out.push_str("ARRAY<");
            write_sql_type(out, item.data_type());
            out.push('>');
        }
        DataType::Map(entries, _) => {
            out.push_str("MAP<");
            if let DataType::Struct(kv) = entries.data_type() {
                for (i, f) in kv.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    write_sql_type(out, f.data_type());
                }
            }
            out.push('>');
        }
        DataType::Struct(fields) => {
            out.push_str("STRUCT<");
            write_columns(out, fields.iter().map(|f| f.as_ref()));
            out.push('>');
        }
        other => match base_type_name(other) {
            "UNKNOWN" => {
                let _ = write!(out, "{other}");
            }
            name => out.push_str(name),
        },
    }
}

fn write_columns<'a>(out: &mut String, fields: impl Iterator<Item = &'a Field>) {
    for (i, f) in fields.enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let _ = write!(out, "`{}` ", f.name());
        write_sql_type(out, f.data_type());
    }
}

/// The schema's columns as ksqlDB lists them: "[`A` INTEGER, `B` STRING]".
pub(crate) fn column_list(schema: &Schema) -> String {
    let mut out = String::from("[");
    write_columns(&mut out, schema.fields().iter().map(|f| f.as_ref()));
    out.push(']');
    out
}

/// Key columns as ksqlDB lists them: "[`K` INTEGER KEY]".
fn key_column_list(schema: &Schema) -> String {
    let mut out = String::from("[");
    for (i, f) in schema.fields().iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let _ = write!(out, "`{}` ", f.name());
        write_sql_type(&mut out, f.data_type());
        out.push_str(" KEY");
    }
    out.push(']');
    out
}

/// The SQL spelling of a type, as messages print it (`MAP<INTEGER, DOUBLE>`).
fn sql_type(data_type: &DataType) -> String {
    let mut out = String::new();
    write_sql_type(&mut out, data_type);
    out
}

/// Whether a map occurs anywhere in `data_type`.
fn contains_map(data_type: &DataType) -> bool {
    match data_type {
        DataType::Map(_, _) => true,
        DataType::List(item) => contains_map(item.data_type()),
        DataType::Struct(fields) => fields.iter().any(|f| contains_map(f.data_type())),
        _ => false,
    }
}

fn is_scalar(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Boolean
            | DataType::Int32
            | DataType::Int64
            | DataType::Float64
            | DataType::Utf8
            | DataType::Binary
            | DataType::Date32
            | DataType::Time32(TimeUnit::Millisecond)
            | DataType::Timestamp(TimeUnit::Millisecond, _)
    ) || matches!(data_type, DataType::Decimal128(p, s) if *s >= 0 && s.unsigned_abs() <= *p)
}

/// Why JSON cannot carry `data_type`, if it cannot.
enum JsonUnsupported<'a> {
    /// A type JSON has no representation for.
    Type(&'a DataType),
    /// A map whose keys are not strings (JSON object keys are).
    MapKey,
}

/// The first type inside `data_type` (itself included) that JSON cannot carry.
fn json_unsupported(data_type: &DataType) -> Option<JsonUnsupported<'_>> {
    match data_type {
        DataType::List(item) => json_unsupported(item.data_type()),
        DataType::Map(entries, _) => match entries.data_type() {
            DataType::Struct(kv) if kv.len() == 2 => {
                let key = kv[0].data_type();
                if *key != DataType::Utf8 {
                    Some(JsonUnsupported::MapKey)
                } else {
                    json_unsupported(kv[1].data_type())
                }
            }
            _ => Some(JsonUnsupported::Type(data_type)),
        },
        DataType::Struct(fields) => fields.iter().find_map(|f| json_unsupported(f.data_type())),
        other if is_scalar(other) => None,
        other => Some(JsonUnsupported::Type(other)),
    }
}

fn unsupported_type(format: &Format, field: &Field, data_type: &DataType) -> FormatError {
    let mut what = String::from("does not support type '");
    match base_type_name(data_type) {
        "UNKNOWN" => write_sql_type(&mut what, data_type),
        name => what.push_str(name),
    }
    what.push('\'');
    // ksqlDB names the column for every format but KAFKA, which has only one.
    if !matches!(format, Format::Kafka) {
        let _ = write!(what, ", column: `{}`", field.name());
    }
    FormatError::Unsupported {
        format: format.name(),
        what,
    }
}

/// Checks that `format` can carry `schema` as a record key or value.
pub(crate) fn validate(
    format: &Format,
    schema: &Schema,
    role: Role,
    wrap_single_value: bool,
) -> Result<(), FormatError> {
    if role == Role::Value {
        return check_format(format, schema, role, wrap_single_value);
    }
    // Maps serialise with no defined entry order, so equal keys could differ in bytes.
    if let Some(f) = schema.fields().iter().find(|f| contains_map(f.data_type())) {
        return Err(FormatError::MapKey {
            column: f.name().clone(),
            column_type: sql_type(f.data_type()),
        });
    }
    check_format(format, schema, role, wrap_single_value).map_err(|e| FormatError::KeySchema {
        format: format.name(),
        columns: key_column_list(schema),
        reason: e.to_string(),
    })
}

fn check_format(
    format: &Format,
    schema: &Schema,
    role: Role,
    wrap_single_value: bool,
) -> Result<(), FormatError> {
    let list = || match role {
        Role::Key => key_column_list(schema),
        Role::Value => column_list(schema),
    };
    let fields = schema.fields();
    let unsupported = |what: String| FormatError::Unsupported {
        format: format.name(),
        what,
    };
    match format {
        Format::None => {
            if !fields.is_empty() {
                return Err(unsupported(format!(
                    "can only be used when no columns are defined. Got: {}",
                    list()
                )));
            }
        }
        Format::Kafka => {
            if fields.len() > 1 {
                return Err(unsupported(format!(
                    "only supports a single field. Got: {}",
                    list()
                )));
            }
            for f in fields {
                if !matches!(
                    f.data_type(),
                    DataType::Int32
                        | DataType::Int64
                        | DataType::Float64
                        | DataType::Utf8
                        | DataType::Binary
                ) {
                    return Err(unsupported_type(format, f, f.data_type()));
                }
            }
        }
        Format::Delimited { delimiter } => {
            if matches!(delimiter, b'"' | b'\n' | b'\r') || !delimiter.is_ascii() {
                return Err(unsupported(format!(
                    "does not support the delimiter {:?}",
                    char::from(*delimiter)
                )));
            }
            for f in fields {
                if !is_scalar(f.data_type()) {
                    return Err(unsupported_type(format, f, f.data_type()));
                }
            }
        }
        Format::Avro(avro) => {
            if role == Role::Value && !wrap_single_value && fields.len() != 1 {
                return Err(FormatError::UnwrappedMultiField {
                    columns: column_list(schema),
                });
            }
            let wrapped = match role {
                Role::Key => fields.len() != 1,
                Role::Value => wrap_single_value,
            };
            if !fields.is_empty() {
                crate::avro::derive_schema(fields, wrapped, avro.full_name.as_deref())?;
            }
        }
        Format::Protobuf(protobuf) => {
            if role == Role::Value && !wrap_single_value {
                return Err(FormatError::Schema(format!(
                    "Format '{}' does not support 'WRAP_SINGLE_VALUE' set to 'false'.",
                    format.name()
                )));
            }
            if !fields.is_empty() {
                crate::protobuf::derive_proto(fields, protobuf.full_name(), protobuf.nullable)?;
            }
        }
        Format::Json | Format::JsonSr(_) => {
            for f in fields {
                match json_unsupported(f.data_type()) {
                    Some(JsonUnsupported::Type(bad)) => {
                        return Err(unsupported_type(format, f, bad));
                    }
                    Some(JsonUnsupported::MapKey) => return Err(FormatError::JsonMapKey),
                    None => {}
                }
            }
            if role == Role::Value && !wrap_single_value && fields.len() != 1 {
                return Err(FormatError::UnwrappedMultiField {
                    columns: column_list(schema),
                });
            }
        }
    }
    Ok(())
}

/// The type `MAP<STRING, value>`, laid out as the column builders expect.
pub(crate) fn string_map(value: DataType) -> DataType {
    DataType::Map(
        Arc::new(Field::new(
            "entries",
            DataType::Struct(arrow::datatypes::Fields::from(vec![
                Field::new("key", DataType::Utf8, false),
                Field::new("value", value, true),
            ])),
            false,
        )),
        false,
    )
}

/// `schema` with every column nullable: a record that fails to decode becomes an all-null row.
pub(crate) fn nullable(schema: &SchemaRef) -> SchemaRef {
    if schema.fields().iter().all(|f| f.is_nullable()) {
        return schema.clone();
    }
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| f.as_ref().clone().with_nullable(true))
        .collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

//! ksqlDB's Avro schema for a list of columns: what a writer registers when no schema id is
//! given. Every field is optional (`["null", T]` with default null), nested STRUCTs are
//! records named after their path (`KsqlDataSourceSchema_ADDRESS`), MAPs are Avro maps.

use arrow::datatypes::{DataType, Field, Fields, TimeUnit};
use serde_json::{Value, json};

use crate::FormatError;

/// The record name ksqlDB gives the schemas it registers.
pub const DEFAULT_FULL_NAME: &str = "io.confluent.ksql.avro_schemas.KsqlDataSourceSchema";

fn incompatible(why: String) -> FormatError {
    FormatError::Schema(format!("Schema is not compatible with Avro: {why}"))
}

/// Checks that `name` is a valid Avro name.
fn check_name(name: &str) -> Result<(), FormatError> {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return Err(incompatible(format!("Illegal initial character: {name}"))),
    }
    if chars.any(|c| !(c.is_ascii_alphanumeric() || c == '_')) {
        return Err(incompatible(format!("Illegal character in: {name}")));
    }
    Ok(())
}

/// The Avro schema of `columns`: a record of them, or (`wrapped = false`, one column) the
/// single column's type. `full_name` names the record (default [`DEFAULT_FULL_NAME`]).
pub fn derive_schema(
    columns: &Fields,
    wrapped: bool,
    full_name: Option<&str>,
) -> Result<Value, FormatError> {
    let full_name = full_name.unwrap_or(DEFAULT_FULL_NAME);
    if full_name.trim().is_empty() {
        return Err(FormatError::Schema(format!(
            "fullSchemaName cannot be empty. Format configuration: {{fullSchemaName={}}}",
            full_name.trim()
        )));
    }
    if !wrapped && let [column] = columns.as_ref() {
        return optional(column.data_type(), full_name);
    }
    record(columns.iter().map(|f| f.as_ref()), full_name)
}

fn record<'a>(
    fields: impl Iterator<Item = &'a Field>,
    full_name: &str,
) -> Result<Value, FormatError> {
    let (namespace, name) = match full_name.rsplit_once('.') {
        Some((ns, name)) => (Some(ns), name),
        None => (None, full_name),
    };
    let fields = fields
        .map(|f| {
            check_name(f.name())?;
            Ok(json!({
                "name": f.name(),
                "type": optional(f.data_type(), &format!("{full_name}_{}", f.name()))?,
                "default": null,
            }))
        })
        .collect::<Result<Vec<_>, FormatError>>()?;
    let mut schema = json!({"type": "record", "name": name, "fields": fields});
    if let (Some(ns), Some(obj)) = (namespace, schema.as_object_mut()) {
        obj.insert("namespace".into(), json!(ns));
    }
    if let Some(obj) = schema.as_object_mut() {
        obj.insert("connect.name".into(), json!(full_name));
    }
    Ok(schema)
}

/// `["null", T]`.
fn optional(data_type: &DataType, name: &str) -> Result<Value, FormatError> {
    Ok(json!(["null", avro_type(data_type, name)?]))
}

/// The Avro type of a column type; `name` names a record it needs.
fn avro_type(data_type: &DataType, name: &str) -> Result<Value, FormatError> {
    Ok(match data_type {
        DataType::Boolean => json!("boolean"),
        DataType::Int32 => json!("int"),
        DataType::Int64 => json!("long"),
        DataType::Float64 => json!("double"),
        DataType::Utf8 => json!("string"),
        DataType::Binary => json!("bytes"),
        DataType::Decimal128(precision, scale) => json!({
            "type": "bytes",
            "logicalType": "decimal",
            "precision": precision,
            "scale": scale,
            "connect.version": 1,
            "connect.parameters": {"scale": scale.to_string(), "connect.decimal.precision": precision.to_string()},
            "connect.name": "org.apache.kafka.connect.data.Decimal",
        }),
        DataType::Date32 => {
            json!({"type": "int", "logicalType": "date", "connect.version": 1, "connect.name": "org.apache.kafka.connect.data.Date"})
        }
        DataType::Time32(TimeUnit::Millisecond) => {
            json!({"type": "int", "logicalType": "time-millis", "connect.version": 1, "connect.name": "org.apache.kafka.connect.data.Time"})
        }
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            json!({"type": "long", "logicalType": "timestamp-millis", "connect.version": 1, "connect.name": "org.apache.kafka.connect.data.Timestamp"})
        }
        DataType::List(item) => {
            json!({"type": "array", "items": optional(item.data_type(), name)?})
        }
        DataType::Map(entries, _) => {
            let DataType::Struct(kv) = entries.data_type() else {
                return Err(FormatError::Schema(format!(
                    "unsupported map type {data_type}"
                )));
            };
            if kv.len() != 2 || *kv[0].data_type() != DataType::Utf8 {
                return Err(FormatError::Schema(
                    "Avro only supports MAPs with STRING keys".into(),
                ));
            }
            json!({"type": "map", "values": optional(kv[1].data_type(), name)?})
        }
        DataType::Struct(fields) => record(fields.iter().map(|f| f.as_ref()), name)?,
        other => {
            return Err(FormatError::Unsupported {
                format: "AVRO",
                what: format!("does not support type '{other}'"),
            });
        }
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn a_row_is_a_record_of_optional_fields_named_as_ksqldb_names_it() -> Result<(), FormatError> {
        let columns = Fields::from(vec![
            Field::new("ID", DataType::Int64, true),
            Field::new(
                "ADDRESS",
                DataType::Struct(Fields::from(vec![Field::new("CITY", DataType::Utf8, true)])),
                true,
            ),
            Field::new(
                "TAGS",
                DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
                true,
            ),
        ]);
        let schema = derive_schema(&columns, true, None)?;
        assert_eq!(schema["name"], "KsqlDataSourceSchema");
        assert_eq!(schema["namespace"], "io.confluent.ksql.avro_schemas");
        assert_eq!(
            schema["fields"][0],
            json!({"name": "ID", "type": ["null", "long"], "default": null})
        );
        assert_eq!(
            schema["fields"][1]["type"][1]["name"],
            "KsqlDataSourceSchema_ADDRESS"
        );
        assert_eq!(
            schema["fields"][2]["type"][1],
            json!({"type": "array", "items": ["null", "string"]})
        );
        apache_avro::Schema::parse(&schema).map_err(|e| FormatError::Schema(e.to_string()))?;
        Ok(())
    }

    #[test]
    fn names_avro_cannot_carry_and_non_string_map_keys_are_refused() {
        let bad = Fields::from(vec![Field::new("1A", DataType::Int32, true)]);
        let e = derive_schema(&bad, true, None)
            .map(|_| ())
            .map_err(|e| e.to_string());
        assert_eq!(
            e,
            Err("Schema is not compatible with Avro: Illegal initial character: 1A".into())
        );
        let map = DataType::Map(
            Arc::new(Field::new(
                "entries",
                DataType::Struct(Fields::from(vec![
                    Field::new("key", DataType::Int32, false),
                    Field::new("value", DataType::Float64, true),
                ])),
                false,
            )),
            false,
        );
        let e = derive_schema(&Fields::from(vec![Field::new("M", map, true)]), true, None)
            .map(|_| ())
            .map_err(|e| e.to_string());
        assert_eq!(e, Err("Avro only supports MAPs with STRING keys".into()));
    }
}

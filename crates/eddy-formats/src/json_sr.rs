//! JSON_SR: JSON records in Confluent's wire format (magic byte 0, the writer schema's
//! 4-byte id, then the JSON text), with their JSON Schemas in a schema registry. Values are
//! read as JSON is (the schema does not change how a record decodes, as in ksqlDB); writers
//! register the JSON Schema Kafka Connect derives from their columns ([`derive_json_schema`]).
//! [`infer_json_schema_fields`] gives the columns of a registered schema.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Fields, TimeUnit};
use eddy_registry::{Schema, SchemaType, wire_prefix};
use serde_json::{Map, Value, json};

use crate::FormatError;
use crate::failure::Failure;
use crate::registry::RegistryFormat;

/// The JSON text of a JSON_SR record: the bytes after the magic byte and schema id.
pub(crate) fn body(bytes: &[u8]) -> Result<&[u8], Failure> {
    eddy_registry::split_wire(bytes)
        .map(|(_, rest)| rest)
        .ok_or_else(|| Failure::new("Unknown magic byte!"))
}

/// The bytes a writer puts in front of each record: the id of its schema, derived from the
/// columns and registered under the subject, or the one `VALUE_SCHEMA_ID` names.
pub(crate) fn writer_prefix(
    format: &RegistryFormat,
    columns: &Fields,
    wrapped: bool,
) -> Result<[u8; 5], FormatError> {
    let id = match format.schema_id {
        Some(id) => {
            format.registered(id, SchemaType::Json, "a JSON schema")?;
            id
        }
        None => {
            let schema = derive_json_schema(columns, wrapped)?;
            format
                .registry
                .register(
                    &format.subject,
                    &Schema::new(SchemaType::Json, schema.to_string()),
                )
                .map_err(|e| FormatError::Schema(e.to_string()))?
        }
    };
    Ok(wire_prefix(id))
}

/// The JSON Schema of `columns`, as Kafka Connect's JSON Schema converter writes it for
/// ksqlDB: an object of optional properties, or (`wrapped = false`) the single column's type.
pub fn derive_json_schema(columns: &Fields, wrapped: bool) -> Result<Value, FormatError> {
    if !wrapped && let [column] = columns.as_ref() {
        return optional(column.data_type());
    }
    object(columns)
}

fn object(fields: &Fields) -> Result<Value, FormatError> {
    let mut properties = Map::new();
    for (i, f) in fields.iter().enumerate() {
        let mut property = optional(f.data_type())?;
        if let Some(o) = property.as_object_mut() {
            o.insert("connect.index".into(), json!(i));
        }
        properties.insert(f.name().clone(), property);
    }
    Ok(json!({"type": "object", "properties": properties}))
}

fn optional(data_type: &DataType) -> Result<Value, FormatError> {
    Ok(json!({"oneOf": [{"type": "null"}, json_type(data_type)?]}))
}

fn json_type(data_type: &DataType) -> Result<Value, FormatError> {
    let logical = |title: &str, ty: &str, connect: &str| json!({"type": ty, "title": format!("org.apache.kafka.connect.data.{title}"), "connect.version": 1, "connect.type": connect});
    Ok(match data_type {
        DataType::Boolean => json!({"type": "boolean", "connect.type": "boolean"}),
        DataType::Int32 => json!({"type": "integer", "connect.type": "int32"}),
        DataType::Int64 => json!({"type": "integer", "connect.type": "int64"}),
        DataType::Float64 => json!({"type": "number", "connect.type": "float64"}),
        DataType::Utf8 => json!({"type": "string", "connect.type": "string"}),
        DataType::Binary => json!({"type": "string", "connect.type": "bytes"}),
        DataType::Decimal128(p, s) => json!({
            "type": "number",
            "title": "org.apache.kafka.connect.data.Decimal",
            "connect.version": 1,
            "connect.type": "bytes",
            "connect.parameters": {"scale": s.to_string(), "connect.decimal.precision": p.to_string()},
        }),
        DataType::Date32 => logical("Date", "integer", "int32"),
        DataType::Time32(_) => logical("Time", "integer", "int32"),
        DataType::Timestamp(_, _) => logical("Timestamp", "integer", "int64"),
        DataType::List(item) => json!({"type": "array", "items": optional(item.data_type())?}),
        DataType::Map(entries, _) => {
            let DataType::Struct(kv) = entries.data_type() else {
                return Err(FormatError::JsonMapKey);
            };
            if kv.len() != 2 || *kv[0].data_type() != DataType::Utf8 {
                return Err(FormatError::JsonMapKey);
            }
            json!({"type": "object", "additionalProperties": optional(kv[1].data_type())?, "connect.type": "map"})
        }
        DataType::Struct(fields) => object(fields)?,
        other => {
            return Err(FormatError::Unsupported {
                format: "JSON_SR",
                what: format!("does not support type '{other}'"),
            });
        }
    })
}

fn bad(why: impl Into<String>) -> FormatError {
    FormatError::Schema(format!("Unsupported JSON schema: {}", why.into()))
}

/// The columns of a JSON Schema's text: an object's properties (`Ok((fields, true))`), or one
/// column named `single_name` of any other type (`Ok(([T], false))`). `upper_case`
/// upper-cases the property names, as for a subject's latest schema.
pub fn infer_json_schema_fields(
    text: &str,
    single_name: &str,
    upper_case: bool,
) -> Result<(Fields, bool), FormatError> {
    let schema: Value = serde_json::from_str(text).map_err(|e| bad(format!("not JSON: {e}")))?;
    let schema = non_null(&schema);
    match data_type(schema, upper_case)? {
        DataType::Struct(fields) if schema.get("properties").is_some() => Ok((fields, true)),
        other => Ok((
            Fields::from(vec![Field::new(single_name, other, true)]),
            false,
        )),
    }
}

/// `{"oneOf": [{"type": "null"}, T]}` (either order) taken apart: `T`.
fn non_null(schema: &Value) -> &Value {
    let Some(branches) = schema
        .get("oneOf")
        .or(schema.get("anyOf"))
        .and_then(Value::as_array)
    else {
        return schema;
    };
    let mut others = branches
        .iter()
        .filter(|b| b.get("type") != Some(&json!("null")));
    match (others.next(), others.next()) {
        (Some(only), None) => only,
        _ => schema,
    }
}

fn data_type(schema: &Value, upper_case: bool) -> Result<DataType, FormatError> {
    let schema = non_null(schema);
    let connect = schema.get("connect.type").and_then(Value::as_str);
    let title = schema.get("title").and_then(Value::as_str).unwrap_or("");
    let ty = schema
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| bad(format!("no type in {schema}")))?;
    Ok(match ty {
        "boolean" => DataType::Boolean,
        "integer" => match title {
            "org.apache.kafka.connect.data.Date" => DataType::Date32,
            "org.apache.kafka.connect.data.Time" => DataType::Time32(TimeUnit::Millisecond),
            "org.apache.kafka.connect.data.Timestamp" => {
                DataType::Timestamp(TimeUnit::Millisecond, None)
            }
            _ => match connect {
                Some("int8" | "int16" | "int32") => DataType::Int32,
                _ => DataType::Int64,
            },
        },
        "number" if title == "org.apache.kafka.connect.data.Decimal" => {
            let parameters = schema.get("connect.parameters");
            let number = |name: &str, default: u8| {
                parameters
                    .and_then(|p| p.get(name))
                    .and_then(|v| {
                        v.as_str()
                            .and_then(|s| s.parse().ok())
                            .or(v.as_u64().and_then(|n| u8::try_from(n).ok()))
                    })
                    .unwrap_or(default)
            };
            let precision = number("connect.decimal.precision", 38).min(38);
            let scale = i8::try_from(number("scale", 0)).unwrap_or(0);
            DataType::Decimal128(precision, scale)
        }
        "number" => DataType::Float64,
        "string" if connect == Some("bytes") => DataType::Binary,
        "string" => DataType::Utf8,
        "array" => {
            let items = schema
                .get("items")
                .ok_or_else(|| bad("an array without items"))?;
            DataType::List(Arc::new(Field::new(
                "item",
                data_type(items, upper_case)?,
                true,
            )))
        }
        "object" => {
            if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
                let mut fields: Vec<(i64, Field)> = Vec::new();
                for (position, (name, property)) in properties.iter().enumerate() {
                    let index = property
                        .get("connect.index")
                        .and_then(Value::as_i64)
                        .unwrap_or(position as i64);
                    let name = if upper_case {
                        name.to_uppercase()
                    } else {
                        name.clone()
                    };
                    fields.push((
                        index,
                        Field::new(name, data_type(property, upper_case)?, true),
                    ));
                }
                fields.sort_by_key(|(index, _)| *index);
                DataType::Struct(fields.into_iter().map(|(_, f)| f).collect())
            } else if let Some(values) =
                schema.get("additionalProperties").filter(|v| v.is_object())
            {
                crate::schema::string_map(data_type(values, upper_case)?)
            } else {
                return Err(bad("an object without properties"));
            }
        }
        other => return Err(bad(format!("type {other}"))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_schemas_give_back_their_columns() -> Result<(), FormatError> {
        let columns = Fields::from(vec![
            Field::new("ID", DataType::Int32, true),
            Field::new("PRICE", DataType::Decimal128(6, 2), true),
            Field::new(
                "TAGS",
                DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
                true,
            ),
            Field::new(
                "ADDRESS",
                DataType::Struct(Fields::from(vec![Field::new("CITY", DataType::Utf8, true)])),
                true,
            ),
        ]);
        let schema = derive_json_schema(&columns, true)?;
        let (inferred, wrapped) = infer_json_schema_fields(&schema.to_string(), "ROWVAL", false)?;
        assert!(wrapped);
        assert_eq!(inferred, columns);
        let single = derive_json_schema(
            &Fields::from(vec![Field::new("K", DataType::Int64, true)]),
            false,
        )?;
        let (inferred, wrapped) = infer_json_schema_fields(&single.to_string(), "ROWKEY", false)?;
        assert!(!wrapped);
        assert_eq!(inferred[0].name(), "ROWKEY");
        assert_eq!(inferred[0].data_type(), &DataType::Int64);
        Ok(())
    }
}

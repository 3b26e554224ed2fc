//! What a Protobuf field means in SQL, as Kafka Connect's Protobuf converter reads it:
//! Google's wrappers are nullable primitives, `google.protobuf.Timestamp`, `google.type.Date`
//! and `google.type.TimeOfDay` are TIMESTAMP, DATE and TIME, `confluent.type.Decimal` is a
//! DECIMAL whose precision and scale are the field's `confluent.field_meta` parameters.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Fields, TimeUnit};
use prost_reflect::{FieldDescriptor, Kind, MapKey, MessageDescriptor, OneofDescriptor, Value};

use crate::FormatError;

/// ksqlDB's DECIMAL precision when a decimal field does not give one.
const DEFAULT_DECIMAL_PRECISION: u8 = 38;

/// A message type with a meaning of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Special {
    /// `google.protobuf.*Value`: its field 1, or null when absent.
    Wrapper,
    Timestamp,
    Date,
    TimeOfDay,
    Decimal,
}

/// The `oneof` a field is a member of, unless it is the synthetic one of a proto3
/// `optional` field. Kafka Connect reads a oneof as one STRUCT field, named as the oneof,
/// whose fields are its members and of which only the member set is not null.
pub(crate) fn real_oneof(field: &FieldDescriptor) -> Option<OneofDescriptor> {
    field.containing_oneof().filter(|o| !o.is_synthetic())
}

/// What fills a column of a message's STRUCT (or row): one field, or a oneof's members.
pub(crate) enum Filler {
    Field(FieldDescriptor),
    Oneof(OneofDescriptor),
}

/// The columns some fields fill, by the columns' index: a field the column of its name
/// (exactly, else ignoring case), and with `group_oneofs` a oneof the column of the
/// oneof's name. The decoder and encoder compile their plans over this matching.
pub(crate) fn fill_columns(
    fields: impl Iterator<Item = FieldDescriptor>,
    group_oneofs: bool,
    columns: &Fields,
) -> Vec<(usize, Filler)> {
    let mut taken = vec![false; columns.len()];
    let mut out = Vec::new();
    let mut seen = Vec::new();
    for field in fields {
        let filler = match real_oneof(&field).filter(|_| group_oneofs) {
            Some(oneof) if seen.contains(&oneof) => continue,
            Some(oneof) => {
                seen.push(oneof.clone());
                Filler::Oneof(oneof)
            }
            None => Filler::Field(field),
        };
        let name = match &filler {
            Filler::Field(f) => f.name(),
            Filler::Oneof(o) => o.name(),
        };
        if let Some(column) = crate::avro::match_column(columns, name, &taken) {
            taken[column] = true;
            out.push((column, filler));
        }
    }
    out
}

/// The special meaning of a message type, if any.
pub(crate) fn special(message: &MessageDescriptor) -> Option<Special> {
    Some(match message.full_name() {
        "google.protobuf.BoolValue"
        | "google.protobuf.Int32Value"
        | "google.protobuf.UInt32Value"
        | "google.protobuf.Int64Value"
        | "google.protobuf.UInt64Value"
        | "google.protobuf.FloatValue"
        | "google.protobuf.DoubleValue"
        | "google.protobuf.StringValue"
        | "google.protobuf.BytesValue" => Special::Wrapper,
        "google.protobuf.Timestamp" => Special::Timestamp,
        "google.type.Date" => Special::Date,
        "google.type.TimeOfDay" => Special::TimeOfDay,
        "confluent.type.Decimal" => Special::Decimal,
        _ => return None,
    })
}

/// A decimal field's precision and scale, from its `confluent.field_meta` parameters.
pub(crate) fn decimal_params(field: &FieldDescriptor) -> (u8, i8) {
    let mut precision = DEFAULT_DECIMAL_PRECISION;
    let mut scale = 0;
    let pool = field.parent_pool();
    if let Some(meta) = pool.get_extension_by_name("confluent.field_meta") {
        let options = field.options();
        if options.has_extension(&meta)
            && let Value::Message(meta) = options.get_extension(&meta).as_ref()
            && let Some(params) = meta.get_field_by_name("params")
            && let Value::Map(params) = params.as_ref()
        {
            let param = |name: &str| {
                params
                    .get(&MapKey::String(name.into()))
                    .and_then(|v| v.as_str().and_then(|s| s.trim().parse::<i64>().ok()))
            };
            if let Some(p) = param("precision").and_then(|p| u8::try_from(p).ok()) {
                precision = p.min(DEFAULT_DECIMAL_PRECISION);
            }
            if let Some(s) = param("scale").and_then(|s| i8::try_from(s).ok()) {
                scale = s;
            }
        }
    }
    (precision, scale)
}

/// The SQL type (as Arrow) of a field's values; `stack` holds the messages being inferred,
/// to refuse recursive ones.
pub(crate) fn field_type(
    field: &FieldDescriptor,
    upper_case: bool,
    stack: &mut Vec<String>,
) -> Result<DataType, FormatError> {
    if field.is_map() {
        let Kind::Message(entry) = field.kind() else {
            return Err(FormatError::Schema("a map field without entries".into()));
        };
        let (key, value) = (entry.map_entry_key_field(), entry.map_entry_value_field());
        if key.kind() != Kind::String {
            return Err(FormatError::Schema(
                "PROTOBUF format only supports MAP types with STRING keys".into(),
            ));
        }
        return Ok(crate::schema::string_map(single_type(
            &value, upper_case, stack,
        )?));
    }
    let single = single_type(field, upper_case, stack)?;
    Ok(if field.is_list() {
        DataType::List(Arc::new(Field::new("item", single, true)))
    } else {
        single
    })
}

/// The type of one value of a field (an item, if the field is repeated).
fn single_type(
    field: &FieldDescriptor,
    upper_case: bool,
    stack: &mut Vec<String>,
) -> Result<DataType, FormatError> {
    Ok(match field.kind() {
        Kind::Bool => DataType::Boolean,
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => DataType::Int32,
        Kind::Uint32 | Kind::Fixed32 => DataType::Int64,
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 | Kind::Uint64 | Kind::Fixed64 => {
            DataType::Int64
        }
        Kind::Float | Kind::Double => DataType::Float64,
        Kind::String | Kind::Enum(_) => DataType::Utf8,
        Kind::Bytes => DataType::Binary,
        Kind::Message(message) => match special(&message) {
            Some(Special::Wrapper) => match message.get_field(1) {
                Some(inner) => single_type(&inner, upper_case, stack)?,
                None => return Err(FormatError::Schema("a wrapper without a value".into())),
            },
            Some(Special::Timestamp) => DataType::Timestamp(TimeUnit::Millisecond, None),
            Some(Special::Date) => DataType::Date32,
            Some(Special::TimeOfDay) => DataType::Time32(TimeUnit::Millisecond),
            Some(Special::Decimal) => {
                let (precision, scale) = decimal_params(field);
                DataType::Decimal128(precision, scale)
            }
            None => DataType::Struct(message_fields(&message, upper_case, stack)?),
        },
    })
}

/// The columns of a message's fields, named as declared (upper-cased if `upper_case`).
pub(crate) fn message_fields(
    message: &MessageDescriptor,
    upper_case: bool,
    stack: &mut Vec<String>,
) -> Result<Fields, FormatError> {
    let name = message.full_name().to_string();
    if stack.contains(&name) {
        return Err(FormatError::Schema(format!(
            "Recursive Protobuf schemas are not supported (message {name} contains itself)"
        )));
    }
    stack.push(name);
    let fields = columns_of(message.fields(), true, upper_case, stack);
    stack.pop();
    Ok(Fields::from(fields?))
}

/// The columns of some fields; with `group_oneofs`, the members of a oneof are one STRUCT
/// column where the first of them is.
fn columns_of(
    fields: impl Iterator<Item = FieldDescriptor>,
    group_oneofs: bool,
    upper_case: bool,
    stack: &mut Vec<String>,
) -> Result<Vec<Field>, FormatError> {
    let name = |n: &str| {
        if upper_case {
            n.to_uppercase()
        } else {
            n.to_string()
        }
    };
    let mut columns = Vec::new();
    let mut oneofs = Vec::new();
    for f in fields {
        match real_oneof(&f).filter(|_| group_oneofs) {
            Some(oneof) if oneofs.contains(&oneof) => {}
            Some(oneof) => {
                let members = columns_of(oneof.fields(), false, upper_case, stack)?;
                columns.push(Field::new(
                    name(oneof.name()),
                    DataType::Struct(Fields::from(members)),
                    true,
                ));
                oneofs.push(oneof);
            }
            None => columns.push(Field::new(
                name(f.name()),
                field_type(&f, upper_case, stack)?,
                true,
            )),
        }
    }
    Ok(columns)
}

/// The columns a Protobuf schema's text gives a source declared without columns: the fields
/// of its message named `full_name`, else of its first. `upper_case` upper-cases the names,
/// as ksqlDB does when it infers from a subject's latest schema rather than a schema id.
pub fn infer_protobuf_fields(
    text: &str,
    references: &[(String, String)],
    full_name: Option<&str>,
    upper_case: bool,
) -> Result<Fields, FormatError> {
    let file = super::schema::compile(text, references).map_err(FormatError::Schema)?;
    let message = super::schema::message(&file, full_name).map_err(FormatError::Schema)?;
    message_fields(&message, upper_case, &mut Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn infers_connect_types() -> Result<(), FormatError> {
        let fields = infer_protobuf_fields(
            r#"syntax = "proto3";
               import "google/protobuf/wrappers.proto";
               import "google/protobuf/timestamp.proto";
               import "confluent/type/decimal.proto";
               import "confluent/meta.proto";
               message M {
                 enum Suit { SPADES = 0; HEARTS = 1; }
                 message Inner { int32 f1 = 1; }
                 float c1 = 1; uint32 c2 = 2; sint32 c4 = 3; Suit s = 4;
                 google.protobuf.Int32Value w = 5; repeated string a = 6;
                 map<string, Inner> m = 7; google.protobuf.Timestamp t = 8;
                 confluent.type.Decimal d = 9 [(confluent.field_meta) = { params: [{ value: "4", key: "precision" }, { value: "2", key: "scale" }]}];
               }"#,
            &[],
            None,
            true,
        )?;
        let types: Vec<String> = fields
            .iter()
            .map(|f| {
                format!(
                    "{} {}",
                    f.name(),
                    crate::schema::base_type_name(f.data_type())
                )
            })
            .collect();
        assert_eq!(
            types,
            [
                "C1 DOUBLE",
                "C2 BIGINT",
                "C4 INTEGER",
                "S STRING",
                "W INTEGER",
                "A ARRAY",
                "M MAP",
                "T TIMESTAMP",
                "D DECIMAL"
            ]
        );
        assert_eq!(fields[8].data_type(), &DataType::Decimal128(4, 2));
        let oneof = infer_protobuf_fields(
            "syntax = \"proto3\"; message M { int32 a = 1; oneof pick { string s = 2; int64 n = 3; } optional int32 o = 4; }",
            &[],
            None,
            false,
        )?;
        let names: Vec<&str> = oneof.iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names, ["a", "pick", "o"]);
        assert_eq!(
            oneof[1].data_type(),
            &DataType::Struct(Fields::from(vec![
                Field::new("s", DataType::Utf8, true),
                Field::new("n", DataType::Int64, true),
            ]))
        );
        let recursive = infer_protobuf_fields(
            "syntax = \"proto3\"; message N { N next = 1; }",
            &[],
            None,
            false,
        );
        assert!(recursive.is_err());
        Ok(())
    }
}

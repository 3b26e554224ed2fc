//! ksqlDB's Protobuf schema for some columns, as Kafka Connect's Protobuf converter writes
//! it: a `proto3` message (`ConnectDefault1` unless a full name is given) with one field per
//! column, numbered from 1, and a nested message per STRUCT.

use std::fmt::Write as _;

use arrow::datatypes::{DataType, Fields, TimeUnit};

use crate::FormatError;

/// How a nullable column is declared (`…_PROTOBUF_NULLABLE_REPRESENTATION`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum NullableRepresentation {
    /// Plain `proto3` fields: a null is written as the type's default (0, `""`, `false`).
    #[default]
    Default,
    /// `optional` fields: a null is an absent field, read back as null.
    Optional,
    /// Google's wrapper messages (`google.protobuf.Int32Value`, …) for primitives.
    Wrapper,
}

impl NullableRepresentation {
    /// Parses `OPTIONAL` or `WRAPPER` (any case).
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_uppercase().as_str() {
            "OPTIONAL" => Some(Self::Optional),
            "WRAPPER" => Some(Self::Wrapper),
            _ => None,
        }
    }
}

/// The message name ksqlDB gives a derived schema that is not named.
pub const DEFAULT_MESSAGE: &str = "ConnectDefault1";

struct Writer {
    nullable: NullableRepresentation,
    imports: Vec<&'static str>,
    /// The number of the next nested message name.
    next: usize,
}

impl Writer {
    fn import(&mut self, file: &'static str) {
        if !self.imports.contains(&file) {
            self.imports.push(file);
        }
    }

    /// Writes `message name { … }` for `fields` at `indent`.
    fn message(
        &mut self,
        out: &mut String,
        name: &str,
        fields: &Fields,
        indent: usize,
    ) -> Result<(), FormatError> {
        let pad = "  ".repeat(indent);
        let _ = writeln!(out, "{pad}message {name} {{");
        let mut body = String::new();
        for (i, field) in fields.iter().enumerate() {
            let number = i + 1;
            let (label, ty, options) =
                self.field_type(out, field.name(), field.data_type(), indent + 1)?;
            let _ = writeln!(
                body,
                "{pad}  {label}{ty} {} = {number}{options};",
                field.name()
            );
        }
        out.push_str(&body);
        let _ = writeln!(out, "{pad}}}");
        Ok(())
    }

    /// The label (`repeated `, `optional ` or none), type and options of a field; nested
    /// messages are written into `out` first.
    fn field_type(
        &mut self,
        out: &mut String,
        column: &str,
        data_type: &DataType,
        indent: usize,
    ) -> Result<(&'static str, String, String), FormatError> {
        let optional = match self.nullable {
            NullableRepresentation::Optional => "optional ",
            _ => "",
        };
        Ok(match data_type {
            DataType::List(item) => {
                let ty = self.element_type(out, column, item.data_type(), indent)?;
                ("repeated ", ty, String::new())
            }
            DataType::Map(entries, _) => {
                let DataType::Struct(kv) = entries.data_type() else {
                    return Err(unsupported(column, "a MAP without entries"));
                };
                if kv.len() != 2 || kv[0].data_type() != &DataType::Utf8 {
                    return Err(FormatError::Schema(
                        "PROTOBUF format only supports MAP types with STRING keys".into(),
                    ));
                }
                let value = self.element_type(out, column, kv[1].data_type(), indent)?;
                ("", format!("map<string, {value}>"), String::new())
            }
            DataType::Decimal128(precision, scale) => {
                self.import("confluent/type/decimal.proto");
                self.import("confluent/meta.proto");
                (
                    optional,
                    "confluent.type.Decimal".into(),
                    format!(
                        " [(confluent.field_meta) = {{ params: [{{ key: \"precision\", value: \"{precision}\" }}, {{ key: \"scale\", value: \"{scale}\" }}] }}]"
                    ),
                )
            }
            other => (
                optional,
                self.single_type(out, column, other, indent)?,
                String::new(),
            ),
        })
    }

    /// The type of an array's items or a map's values, which cannot be repeated themselves.
    fn element_type(
        &mut self,
        out: &mut String,
        column: &str,
        data_type: &DataType,
        indent: usize,
    ) -> Result<String, FormatError> {
        match data_type {
            DataType::List(_) | DataType::Map(_, _) => Err(unsupported(
                column,
                "an ARRAY or MAP inside an ARRAY or MAP",
            )),
            DataType::Decimal128(_, _) => {
                self.import("confluent/type/decimal.proto");
                Ok("confluent.type.Decimal".into())
            }
            // Items and map values are never wrapped: Connect writes their nulls as defaults.
            other => {
                let nullable = std::mem::take(&mut self.nullable);
                let ty = self.single_type(out, column, other, indent);
                self.nullable = nullable;
                ty
            }
        }
    }

    fn single_type(
        &mut self,
        out: &mut String,
        column: &str,
        data_type: &DataType,
        indent: usize,
    ) -> Result<String, FormatError> {
        let wrapper = self.nullable == NullableRepresentation::Wrapper;
        let primitive = |plain: &str, wrapped: &str| {
            if wrapper {
                format!("google.protobuf.{wrapped}")
            } else {
                plain.to_string()
            }
        };
        if wrapper
            && matches!(
                data_type,
                DataType::Boolean
                    | DataType::Int32
                    | DataType::Int64
                    | DataType::Float64
                    | DataType::Utf8
                    | DataType::Binary
            )
        {
            self.import("google/protobuf/wrappers.proto");
        }
        Ok(match data_type {
            DataType::Boolean => primitive("bool", "BoolValue"),
            DataType::Int32 => primitive("int32", "Int32Value"),
            DataType::Int64 => primitive("int64", "Int64Value"),
            DataType::Float64 => primitive("double", "DoubleValue"),
            DataType::Utf8 => primitive("string", "StringValue"),
            DataType::Binary => primitive("bytes", "BytesValue"),
            DataType::Date32 => {
                self.import("google/type/date.proto");
                "google.type.Date".into()
            }
            DataType::Time32(TimeUnit::Millisecond) => {
                self.import("google/type/timeofday.proto");
                "google.type.TimeOfDay".into()
            }
            DataType::Timestamp(TimeUnit::Millisecond, _) => {
                self.import("google/protobuf/timestamp.proto");
                "google.protobuf.Timestamp".into()
            }
            DataType::Struct(fields) => {
                self.next += 1;
                let name = format!("ConnectDefault{}", self.next);
                let mut nested = String::new();
                self.message(&mut nested, &name, fields, indent)?;
                out.push_str(&nested);
                name
            }
            other => {
                return Err(unsupported(
                    column,
                    &format!("the type {}", crate::schema::base_type_name(other)),
                ));
            }
        })
    }
}

fn unsupported(column: &str, what: &str) -> FormatError {
    FormatError::Schema(format!(
        "The 'PROTOBUF' format does not support {what} (column `{column}`)"
    ))
}

/// The `.proto` text ksqlDB registers for `columns`, its message named `full_name` (default
/// [`DEFAULT_MESSAGE`]).
pub fn derive_proto(
    columns: &Fields,
    full_name: Option<&str>,
    nullable: NullableRepresentation,
) -> Result<String, FormatError> {
    let mut writer = Writer {
        nullable,
        imports: Vec::new(),
        next: 1,
    };
    let name = full_name.unwrap_or(DEFAULT_MESSAGE);
    let (package, name) = match name.rsplit_once('.') {
        Some((package, name)) => (Some(package), name),
        None => (None, name),
    };
    let mut message = String::new();
    writer.message(&mut message, name, columns, 0)?;
    let mut text = String::from("syntax = \"proto3\";\n\n");
    if let Some(package) = package {
        let _ = writeln!(text, "package {package};\n");
    }
    for import in &writer.imports {
        let _ = writeln!(text, "import \"{import}\";");
    }
    if !writer.imports.is_empty() {
        text.push('\n');
    }
    text.push_str(&message);
    Ok(text)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::datatypes::Field;

    use super::*;

    #[test]
    fn derives_connect_schemas_that_compile() -> Result<(), String> {
        let columns = Fields::from(vec![
            Field::new("I", DataType::Int32, true),
            Field::new("D", DataType::Decimal128(4, 2), true),
            Field::new(
                "A",
                DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
                true,
            ),
            Field::new("M", crate::schema::string_map(DataType::Int64), true),
            Field::new(
                "S",
                DataType::Struct(Fields::from(vec![Field::new("X", DataType::Date32, true)])),
                true,
            ),
            Field::new("T", DataType::Timestamp(TimeUnit::Millisecond, None), true),
        ]);
        for nullable in [
            NullableRepresentation::Default,
            NullableRepresentation::Optional,
            NullableRepresentation::Wrapper,
        ] {
            let text = derive_proto(&columns, None, nullable).map_err(|e| e.to_string())?;
            let file = super::super::schema::compile(&text, &[])?;
            let message = file.messages().next().ok_or("no message")?;
            assert_eq!(message.name(), DEFAULT_MESSAGE);
            assert_eq!(message.fields().count(), 6, "{text}");
        }
        let text = derive_proto(&columns, None, NullableRepresentation::Wrapper)
            .map_err(|e| e.to_string())?;
        assert!(text.contains("google.protobuf.Int32Value I = 1;"), "{text}");
        assert!(text.contains("message ConnectDefault2 {"), "{text}");
        let named = derive_proto(&columns, Some("a.b.Value"), NullableRepresentation::Default)
            .map_err(|e| e.to_string())?;
        assert!(named.contains("package a.b;") && named.contains("message Value {"));
        let int_keys = Fields::from(vec![Field::new(
            "M",
            DataType::Map(
                Arc::new(Field::new(
                    "entries",
                    DataType::Struct(Fields::from(vec![
                        Field::new("key", DataType::Int32, false),
                        Field::new("value", DataType::Int32, true),
                    ])),
                    false,
                )),
                false,
            ),
            true,
        )]);
        let err = derive_proto(&int_keys, None, NullableRepresentation::Default)
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("PROTOBUF format only supports MAP types with STRING keys")
        );
        Ok(())
    }
}

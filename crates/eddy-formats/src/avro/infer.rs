//! The columns an Avro schema gives a source declared without columns (schema inference).

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Fields, TimeUnit};

use super::plan::{self, Node};
use crate::FormatError;

/// ksqlDB's DECIMAL precision when a decimal schema does not give one.
const DEFAULT_DECIMAL_PRECISION: u8 = 64;

/// The columns of an Avro schema's JSON text: a record's fields (`Ok((fields, true))`), or
/// one column of type `T` named `single_name` for any other type (`Ok(([T], false))`: the
/// value is unwrapped). `upper_case` upper-cases the field names, as ksqlDB does when it
/// infers from a subject's latest schema rather than from a given schema id.
pub fn infer_fields(
    text: &str,
    single_name: &str,
    upper_case: bool,
) -> Result<(Fields, bool), FormatError> {
    let (_, node) = plan::parse(text).map_err(FormatError::Schema)?;
    let name = |n: &str| {
        if upper_case {
            n.to_uppercase()
        } else {
            n.to_string()
        }
    };
    match node.non_null() {
        Node::Record(r) => {
            let fields = r
                .fields
                .iter()
                .map(|f| {
                    Ok(Field::new(
                        name(&f.name),
                        data_type(&f.node, upper_case)?,
                        true,
                    ))
                })
                .collect::<Result<Vec<_>, FormatError>>()?;
            Ok((Fields::from(fields), true))
        }
        other => Ok((
            Fields::from(vec![Field::new(
                single_name,
                data_type(other, upper_case)?,
                true,
            )]),
            false,
        )),
    }
}

fn data_type(node: &Node, upper_case: bool) -> Result<DataType, FormatError> {
    Ok(match node.non_null() {
        Node::Boolean => DataType::Boolean,
        Node::Int => DataType::Int32,
        Node::Long => DataType::Int64,
        Node::Float | Node::Double => DataType::Float64,
        Node::String | Node::Enum(_) => DataType::Utf8,
        Node::Bytes | Node::Fixed(_) => DataType::Binary,
        Node::Decimal {
            precision, scale, ..
        } => {
            let precision = if *precision == 0 {
                DEFAULT_DECIMAL_PRECISION
            } else {
                *precision
            };
            DataType::Decimal128(precision.min(38), *scale)
        }
        Node::Date => DataType::Date32,
        Node::TimeMillis | Node::TimeMicros => DataType::Time32(TimeUnit::Millisecond),
        Node::TimestampMillis | Node::TimestampMicros | Node::TimestampNanos => {
            DataType::Timestamp(TimeUnit::Millisecond, None)
        }
        Node::Array(item) => DataType::List(Arc::new(Field::new(
            "item",
            data_type(item, upper_case)?,
            true,
        ))),
        Node::Map(values) => crate::schema::string_map(data_type(values, upper_case)?),
        Node::Record(r) => DataType::Struct(Fields::from(
            r.fields
                .iter()
                .map(|f| {
                    let name = if upper_case {
                        f.name.to_uppercase()
                    } else {
                        f.name.clone()
                    };
                    Ok(Field::new(name, data_type(&f.node, upper_case)?, true))
                })
                .collect::<Result<Vec<_>, FormatError>>()?,
        )),
        Node::Null => {
            return Err(FormatError::Schema(
                "Avro type 'null' has no SQL type".into(),
            ));
        }
        Node::Union(_) => {
            return Err(FormatError::Schema(
                "Avro unions other than [\"null\", T] are not supported yet".into(),
            ));
        }
    })
}

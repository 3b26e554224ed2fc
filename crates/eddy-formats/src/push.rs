//! Appending one decoded value to a column builder, converted to the column's type as
//! Kafka Connect converts it (a number into a STRING column as its text, an integer into
//! a DOUBLE or DECIMAL column, …): what the Avro and Protobuf decoders share.

use arrow::datatypes::DataType;

use crate::column::{self, ColumnBuilder, Values};
use crate::failure::Failure;
use crate::scalar;

/// What an integer means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Integer {
    /// `int` (read as a zig-zag varint like `long`).
    Int,
    Long,
    Date,
    TimeMillis,
    TimeMicros,
    TimestampMillis,
    TimestampMicros,
    TimestampNanos,
}

pub(crate) fn set_valid(col: &mut ColumnBuilder) {
    col.nulls.append_non_null();
}

pub(crate) fn push_text(col: &mut ColumnBuilder, s: &str) -> Result<(), Failure> {
    match &mut col.values {
        Values::Bytes { offsets, data } if col.data_type == DataType::Utf8 => {
            data.extend_from_slice(s.as_bytes());
            column::push_offset(offsets, data.len())?;
            set_valid(col);
            Ok(())
        }
        _ => col.append_text(s),
    }
}

pub(crate) fn push_integer(col: &mut ColumnBuilder, kind: Integer, v: i64) -> Result<(), Failure> {
    let target = col.type_name();
    let millis = match kind {
        Integer::TimeMicros | Integer::TimestampMicros => v.div_euclid(1_000),
        Integer::TimestampNanos => v.div_euclid(1_000_000),
        _ => v,
    };
    match (&mut col.values, &col.data_type) {
        (Values::Int32(values), _) => {
            values.push(i32::try_from(millis).map_err(|_| Failure::convert("BIGINT", target))?)
        }
        (Values::Int64(values), _) => values.push(millis),
        (Values::Float64(values), _) if matches!(kind, Integer::Int | Integer::Long) => {
            values.push(v as f64)
        }
        (
            Values::Decimal128 {
                values,
                precision,
                scale,
            },
            _,
        ) if matches!(kind, Integer::Int | Integer::Long) => {
            let text = v.to_string();
            values.push(column::decimal(&text, *precision, *scale)?);
        }
        (Values::Bytes { offsets, data }, DataType::Utf8) => {
            scalar::write_int(data, v);
            column::push_offset(offsets, data.len())?;
        }
        _ => {
            let source = match kind {
                Integer::Int => "INTEGER",
                Integer::Long => "BIGINT",
                Integer::Date => "DATE",
                Integer::TimeMillis | Integer::TimeMicros => "TIME",
                _ => "TIMESTAMP",
            };
            return Err(Failure::convert(source, target));
        }
    }
    set_valid(col);
    Ok(())
}

pub(crate) fn push_double(col: &mut ColumnBuilder, v: f64) -> Result<(), Failure> {
    let target = col.type_name();
    match (&mut col.values, &col.data_type) {
        (Values::Float64(values), _) => values.push(v),
        (
            Values::Decimal128 {
                values,
                precision,
                scale,
            },
            _,
        ) => {
            let mut text = Vec::new();
            scalar::write_f64_text(&mut text, v);
            let text = String::from_utf8_lossy(&text);
            values.push(column::decimal(&text, *precision, *scale)?);
        }
        (Values::Bytes { offsets, data }, DataType::Utf8) => {
            scalar::write_f64_text(data, v);
            column::push_offset(offsets, data.len())?;
        }
        _ => return Err(Failure::convert("DOUBLE", target)),
    }
    set_valid(col);
    Ok(())
}

pub(crate) fn push_decimal(
    col: &mut ColumnBuilder,
    unscaled: i128,
    from_scale: i8,
) -> Result<(), Failure> {
    let target = col.type_name();
    let mut text = Vec::new();
    scalar::write_decimal(&mut text, unscaled, from_scale);
    let text = String::from_utf8_lossy(&text).into_owned();
    match (&mut col.values, &col.data_type) {
        (
            Values::Decimal128 {
                values,
                precision,
                scale,
            },
            _,
        ) => {
            if *scale == from_scale && scalar::fits_precision(unscaled, *precision) {
                values.push(unscaled);
            } else {
                values.push(column::decimal(&text, *precision, *scale)?);
            }
        }
        (Values::Float64(values), _) => values.push(
            text.parse()
                .map_err(|_| Failure::convert("DECIMAL", target))?,
        ),
        (Values::Bytes { offsets, data }, DataType::Utf8) => {
            data.extend_from_slice(text.as_bytes());
            column::push_offset(offsets, data.len())?;
        }
        _ => return Err(Failure::convert("DECIMAL", target)),
    }
    set_valid(col);
    Ok(())
}

/// Appends a boolean.
pub(crate) fn push_bool(col: &mut ColumnBuilder, b: bool) -> Result<(), Failure> {
    if let Values::Boolean(v) = &mut col.values {
        v.append(b);
        set_valid(col);
        Ok(())
    } else {
        col.append_text(if b { "true" } else { "false" })
    }
}

/// Appends bytes to a BYTES column.
pub(crate) fn push_bytes(col: &mut ColumnBuilder, bytes: &[u8]) -> Result<(), Failure> {
    match &mut col.values {
        Values::Bytes { offsets, data } if col.data_type == DataType::Binary => {
            data.extend_from_slice(bytes);
            column::push_offset(offsets, data.len())?;
        }
        _ => return Err(Failure::convert("BYTES", col.type_name())),
    }
    set_valid(col);
    Ok(())
}

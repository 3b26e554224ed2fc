//! The KAFKA format: Kafka's own serialisers for a single INT, BIGINT, DOUBLE, STRING or BYTES
//! column (big-endian numbers, UTF-8 strings, raw bytes).

use arrow::datatypes::DataType;

use crate::column::{self, Rows, Values};
use crate::failure::Failure;
use crate::view::ColumnView;

/// Appends one record to `rows` (which has exactly one column).
pub(crate) fn decode(bytes: &[u8], rows: &mut Rows) -> Result<(), Failure> {
    let Some(column) = rows.columns.children.first_mut() else {
        return Err(Failure::new("no column to decode into"));
    };
    match &mut column.values {
        Values::Int32(v) => v.push(i32::from_be_bytes(sized(bytes, "Integer")?)),
        Values::Int64(v) => v.push(i64::from_be_bytes(sized(bytes, "Long")?)),
        Values::Float64(v) => v.push(f64::from_be_bytes(sized(bytes, "Double")?)),
        Values::Bytes { offsets, data } => {
            if column.data_type == DataType::Utf8 {
                std::str::from_utf8(bytes).map_err(|e| {
                    Failure::new(format!(
                        "invalid UTF-8 in STRING at byte {}",
                        e.valid_up_to()
                    ))
                })?;
            }
            data.extend_from_slice(bytes);
            column::push_offset(offsets, data.len())?;
        }
        _ => {
            return Err(Failure::new(format!(
                "The 'KAFKA' format does not support type '{}'",
                column.type_name()
            )));
        }
    }
    column.nulls.append_non_null();
    Ok(())
}

/// The payload as an `N`-byte array, failing as Kafka's `{name}Deserializer` does.
fn sized<const N: usize>(bytes: &[u8], name: &str) -> Result<[u8; N], Failure> {
    bytes.try_into().map_err(|_| {
        Failure::new(format!(
            "Size of data received by {name}Deserializer is not {N}"
        ))
    })
}

/// Writes the non-null value at row `i`.
pub(crate) fn write_value(column: &ColumnView<'_>, i: usize, out: &mut Vec<u8>) {
    match column {
        ColumnView::Int32(a) => out.extend_from_slice(&a.value(i).to_be_bytes()),
        ColumnView::Int64(a) => out.extend_from_slice(&a.value(i).to_be_bytes()),
        ColumnView::Float64(a) => out.extend_from_slice(&a.value(i).to_be_bytes()),
        ColumnView::Utf8(a) => out.extend_from_slice(a.value(i).as_bytes()),
        ColumnView::Binary(a) => out.extend_from_slice(a.value(i)),
        // Construction rejects every other type.
        other => other.write_text(i, out),
    }
}

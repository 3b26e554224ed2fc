//! ksqlDB's `TO_JSON_STRING(value)`: any value as compact JSON text.
//!
//! Numbers and booleans are JSON numbers and booleans (DOUBLE as Java prints it, DECIMAL with
//! its scale), STRING is quoted, BYTES is quoted base64, DATE, TIME and TIMESTAMP are quoted as
//! Java's `LocalDate`, `LocalTime` and `LocalDateTime` print them (`"2021-06-30T12:18:39.446"`,
//! `"13:25"`), ARRAY, MAP and STRUCT are JSON arrays and objects, and NULL is `null`.

use std::fmt::Write as _;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, StringArray};
use arrow::datatypes::{
    DataType, Date32Type, Float64Type, Int32Type, Int64Type, Time32MillisecondType, TimeUnit,
    TimestampMillisecondType,
};
use base64::Engine as _;
use datafusion_common::{Result, exec_err};
use datafusion_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use super::java_time::civil_from_days;
use crate::plan::cast::java_double;

/// The `TO_JSON_STRING` function.
pub(crate) fn function() -> Arc<ScalarUDF> {
    Arc::new(ScalarUDF::from(ToJsonString {
        signature: Signature::any(1, Volatility::Immutable),
    }))
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct ToJsonString {
    signature: Signature,
}

const MILLIS_PER_DAY: i64 = 86_400_000;

/// Java's `LocalDate.toString` of days since the epoch.
fn write_date(out: &mut String, days: i64) {
    let (year, month, day) = civil_from_days(days);
    let _ = write!(out, "{year:04}-{month:02}-{day:02}");
}

/// Java's `LocalTime.toString` of milliseconds since midnight: seconds and milliseconds only
/// when they are not zero.
fn write_time(out: &mut String, millis: i64) {
    let (hours, minutes) = (millis / 3_600_000, millis / 60_000 % 60);
    let (seconds, millis) = (millis / 1000 % 60, millis % 1000);
    let _ = write!(out, "{hours:02}:{minutes:02}");
    if seconds > 0 || millis > 0 {
        let _ = write!(out, ":{seconds:02}");
    }
    if millis > 0 {
        let _ = write!(out, ".{millis:03}");
    }
}

/// Element `i` of `array` as JSON, appended to `out`.
fn write_json(out: &mut String, array: &ArrayRef, i: usize) -> Result<()> {
    if array.is_null(i) {
        out.push_str("null");
        return Ok(());
    }
    let quoted = |out: &mut String, text: &str| {
        out.push_str(&serde_json::Value::from(text).to_string());
    };
    match array.data_type() {
        DataType::Null => out.push_str("null"),
        DataType::Boolean => out.push_str(if array.as_boolean().value(i) {
            "true"
        } else {
            "false"
        }),
        DataType::Int32 => {
            let _ = write!(out, "{}", array.as_primitive::<Int32Type>().value(i));
        }
        DataType::Int64 => {
            let _ = write!(out, "{}", array.as_primitive::<Int64Type>().value(i));
        }
        DataType::Float64 => {
            out.push_str(&java_double(array.as_primitive::<Float64Type>().value(i)));
        }
        DataType::Decimal128(..) => {
            let text = arrow::util::display::array_value_to_string(array, i)?;
            out.push_str(&text);
        }
        DataType::Utf8 => quoted(out, array.as_string::<i32>().value(i)),
        DataType::Binary => {
            let bytes = array.as_binary::<i32>().value(i);
            quoted(
                out,
                &base64::engine::general_purpose::STANDARD.encode(bytes),
            );
        }
        DataType::Date32 => {
            let mut text = String::new();
            write_date(
                &mut text,
                i64::from(array.as_primitive::<Date32Type>().value(i)),
            );
            quoted(out, &text);
        }
        DataType::Time32(TimeUnit::Millisecond) => {
            let mut text = String::new();
            let millis = array.as_primitive::<Time32MillisecondType>().value(i);
            write_time(&mut text, i64::from(millis));
            quoted(out, &text);
        }
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            let millis = array.as_primitive::<TimestampMillisecondType>().value(i);
            let mut text = String::new();
            write_date(&mut text, millis.div_euclid(MILLIS_PER_DAY));
            text.push('T');
            write_time(&mut text, millis.rem_euclid(MILLIS_PER_DAY));
            quoted(out, &text);
        }
        DataType::List(_) => {
            let list = array.as_list::<i32>();
            let items = list.value(i);
            out.push('[');
            for j in 0..items.len() {
                if j > 0 {
                    out.push(',');
                }
                write_json(out, &items, j)?;
            }
            out.push(']');
        }
        DataType::Map(..) => {
            let map = array.as_map();
            let (start, end) = (map.value_offsets()[i], map.value_offsets()[i + 1]);
            let (keys, values) = (map.keys(), map.values());
            let keys = arrow::compute::cast(keys, &DataType::Utf8)?;
            let keys = keys.as_string::<i32>();
            out.push('{');
            for j in start as usize..end as usize {
                if j > start as usize {
                    out.push(',');
                }
                quoted(out, keys.value(j));
                out.push(':');
                write_json(out, values, j)?;
            }
            out.push('}');
        }
        DataType::Struct(fields) => {
            let columns = array.as_struct().columns();
            out.push('{');
            for (n, (field, column)) in fields.iter().zip(columns).enumerate() {
                if n > 0 {
                    out.push(',');
                }
                quoted(out, field.name());
                out.push(':');
                write_json(out, column, i)?;
            }
            out.push('}');
        }
        DataType::Int8
        | DataType::Int16
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64
        | DataType::Float16
        | DataType::Float32 => {
            out.push_str(&arrow::util::display::array_value_to_string(array, i)?);
        }
        other => {
            // Other encodings of ksqlDB's types: written as the type Eddy keeps them in.
            let canonical = match other {
                DataType::LargeUtf8 | DataType::Utf8View => DataType::Utf8,
                DataType::LargeBinary | DataType::BinaryView => DataType::Binary,
                DataType::Timestamp(..) => DataType::Timestamp(TimeUnit::Millisecond, None),
                DataType::Time32(_) | DataType::Time64(_) => {
                    DataType::Time32(TimeUnit::Millisecond)
                }
                other => return exec_err!("TO_JSON_STRING cannot write values of type {other}"),
            };
            let one = arrow::compute::cast(&array.slice(i, 1), &canonical)?;
            write_json(out, &one, 0)?;
        }
    }
    Ok(())
}

impl ScalarUDFImpl for ToJsonString {
    fn name(&self) -> &str {
        "to_json_string"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let [value] = arrays.as_slice() else {
            return exec_err!("TO_JSON_STRING takes one argument");
        };
        let mut texts = Vec::with_capacity(value.len());
        let mut out = String::new();
        for i in 0..value.len() {
            out.clear();
            write_json(&mut out, value, i)?;
            texts.push(Some(out.clone()));
        }
        Ok(ColumnarValue::Array(Arc::new(StringArray::from(texts))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_print_as_java_does() {
        let time = |millis| {
            let mut out = String::new();
            write_time(&mut out, millis);
            out
        };
        assert_eq!(time(13 * 3_600_000 + 25 * 60_000), "13:25");
        assert_eq!(time(13 * 3_600_000 + 25 * 60_000 + 1000), "13:25:01");
        assert_eq!(time(12 * 3_600_000 + 18 * 60_000 + 39_446), "12:18:39.446");
        assert_eq!(time(5), "00:00:00.005");
        let mut date = String::new();
        write_date(&mut date, 18_911);
        assert_eq!(date, "2021-10-11");
    }
}

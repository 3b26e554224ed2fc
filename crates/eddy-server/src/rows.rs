//! Rows of push queries as ksqlDB renders them in JSON: numbers as numbers, DECIMAL as a
//! number, BYTES as base64, DATE/TIME/TIMESTAMP as ISO-8601 text, ARRAY as an array, MAP and
//! STRUCT as objects.

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{
    DataType, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, UInt8Type,
    UInt16Type, UInt32Type, UInt64Type,
};
use arrow::record_batch::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use base64::Engine as _;
use serde_json::{Map, Number, Value};

/// Every row of `batch` as a JSON array of its column values.
pub(crate) fn batch_rows(batch: &RecordBatch) -> Vec<Value> {
    (0..batch.num_rows())
        .map(|i| {
            Value::Array(
                batch
                    .columns()
                    .iter()
                    .map(|c| value_at(c.as_ref(), i))
                    .collect(),
            )
        })
        .collect()
}

fn float(v: f64) -> Value {
    Number::from_f64(v).map_or_else(|| Value::String(v.to_string()), Value::Number)
}

fn value_at(array: &dyn Array, i: usize) -> Value {
    if array.is_null(i) {
        return Value::Null;
    }
    match array.data_type() {
        DataType::Boolean => Value::Bool(array.as_boolean().value(i)),
        DataType::Int8 => array.as_primitive::<Int8Type>().value(i).into(),
        DataType::Int16 => array.as_primitive::<Int16Type>().value(i).into(),
        DataType::Int32 => array.as_primitive::<Int32Type>().value(i).into(),
        DataType::Int64 => array.as_primitive::<Int64Type>().value(i).into(),
        DataType::UInt8 => array.as_primitive::<UInt8Type>().value(i).into(),
        DataType::UInt16 => array.as_primitive::<UInt16Type>().value(i).into(),
        DataType::UInt32 => array.as_primitive::<UInt32Type>().value(i).into(),
        DataType::UInt64 => array.as_primitive::<UInt64Type>().value(i).into(),
        DataType::Float32 => float(f64::from(array.as_primitive::<Float32Type>().value(i))),
        DataType::Float64 => float(array.as_primitive::<Float64Type>().value(i)),
        DataType::Decimal128(_, _) => {
            let text = array
                .as_primitive::<arrow::datatypes::Decimal128Type>()
                .value_as_string(i);
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        }
        DataType::Utf8 => Value::String(array.as_string::<i32>().value(i).to_string()),
        DataType::LargeUtf8 => Value::String(array.as_string::<i64>().value(i).to_string()),
        DataType::Utf8View => Value::String(array.as_string_view().value(i).to_string()),
        DataType::Binary => Value::String(
            base64::engine::general_purpose::STANDARD.encode(array.as_binary::<i32>().value(i)),
        ),
        DataType::List(_) => list(&array.as_list::<i32>().value(i)),
        DataType::LargeList(_) => list(&array.as_list::<i64>().value(i)),
        DataType::Map(_, _) => {
            let entries = array.as_map().value(i);
            let keys = entries.column(0);
            let values = entries.column(1);
            let mut out = Map::new();
            for j in 0..entries.len() {
                let key = match value_at(keys.as_ref(), j) {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                out.insert(key, value_at(values.as_ref(), j));
            }
            Value::Object(out)
        }
        DataType::Struct(fields) => {
            let s = array.as_struct();
            Value::Object(
                fields
                    .iter()
                    .zip(s.columns())
                    .map(|(f, c)| (f.name().clone(), value_at(c.as_ref(), i)))
                    .collect(),
            )
        }
        _ => formatted(array, i),
    }
}

fn list(items: &ArrayRef) -> Value {
    Value::Array(
        (0..items.len())
            .map(|j| value_at(items.as_ref(), j))
            .collect(),
    )
}

/// DATE, TIME and TIMESTAMP (and anything else) as Arrow's ISO-8601 text, with ksqlDB's
/// millisecond timestamps.
fn formatted(array: &dyn Array, i: usize) -> Value {
    let options = FormatOptions::default()
        .with_timestamp_format(Some("%Y-%m-%dT%H:%M:%S%.3f"))
        .with_time_format(Some("%H:%M:%S"));
    match ArrayFormatter::try_new(array, &options) {
        Ok(f) => Value::String(f.value(i).to_string()),
        Err(_) => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{
        ArrayRef, BinaryArray, BooleanArray, Date32Array, Decimal128Array, Float64Array,
        Int32Builder, Int64Array, ListBuilder, MapBuilder, StringArray, StringBuilder, StructArray,
        Time32MillisecondArray, TimestampMillisecondArray,
    };
    use arrow::datatypes::{DataType, Field};
    use serde_json::json;

    use super::*;

    #[test]
    fn renders_every_type_as_ksqldb_does() -> Result<(), arrow::error::ArrowError> {
        let mut list = ListBuilder::new(Int32Builder::new());
        list.values().append_value(1);
        list.values().append_null();
        list.append(true);
        let mut map = MapBuilder::new(None, StringBuilder::new(), Int32Builder::new());
        map.keys().append_value("a");
        map.values().append_value(1);
        map.append(true)?;
        let strukt = StructArray::from(vec![(
            Arc::new(Field::new("X", DataType::Utf8, true)),
            Arc::new(StringArray::from(vec!["y"])) as ArrayRef,
        )]);
        let columns: Vec<(&str, ArrayRef)> = vec![
            ("b", Arc::new(BooleanArray::from(vec![true]))),
            ("i", Arc::new(Int64Array::from(vec![Some(-7)]))),
            ("d", Arc::new(Float64Array::from(vec![1.5]))),
            (
                "dec",
                Arc::new(Decimal128Array::from(vec![12345]).with_precision_and_scale(10, 2)?),
            ),
            ("s", Arc::new(StringArray::from(vec![None::<&str>]))),
            ("bytes", Arc::new(BinaryArray::from(vec![&b"hi"[..]]))),
            ("date", Arc::new(Date32Array::from(vec![19723]))),
            (
                "time",
                Arc::new(Time32MillisecondArray::from(vec![3_723_004])),
            ),
            (
                "ts",
                Arc::new(TimestampMillisecondArray::from(vec![1_704_067_200_123])),
            ),
            ("list", Arc::new(list.finish())),
            ("map", Arc::new(map.finish())),
            ("struct", Arc::new(strukt)),
        ];
        let batch = RecordBatch::try_from_iter(columns)?;
        assert_eq!(
            batch_rows(&batch),
            vec![json!([
                true,
                -7,
                1.5,
                123.45,
                null,
                "aGk=",
                "2024-01-01",
                "01:02:03",
                "2024-01-01T00:00:00.123",
                [1, null],
                {"a": 1},
                {"X": "y"}
            ])]
        );
        Ok(())
    }
}

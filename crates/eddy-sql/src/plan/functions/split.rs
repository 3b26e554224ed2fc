//! ksqlDB's `SPLIT(value, delimiter)` of a STRING or BYTES value into an ARRAY of parts; an
//! empty delimiter splits into characters (or bytes).

use std::sync::Arc;

use arrow::array::{Array, AsArray, BinaryBuilder, ListBuilder, StringBuilder};
use arrow::datatypes::{DataType, Field};
use datafusion_common::{Result, exec_err, plan_err};
use datafusion_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

/// The `SPLIT` function.
pub(crate) fn function() -> Arc<ScalarUDF> {
    Arc::new(ScalarUDF::from(Split {
        signature: Signature::user_defined(Volatility::Immutable),
    }))
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Split {
    signature: Signature,
}

fn list_of(item: DataType) -> DataType {
    DataType::List(Arc::new(Field::new("item", item, true)))
}

/// The parts of `value` between occurrences of `delimiter`.
fn split_bytes<'a>(value: &'a [u8], delimiter: &[u8]) -> Vec<&'a [u8]> {
    if delimiter.is_empty() {
        return value.chunks(1).collect();
    }
    let mut parts = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i + delimiter.len() <= value.len() {
        if &value[i..i + delimiter.len()] == delimiter {
            parts.push(&value[start..i]);
            i += delimiter.len();
            start = i;
        } else {
            i += 1;
        }
    }
    parts.push(&value[start..]);
    parts
}

impl ScalarUDFImpl for Split {
    fn name(&self) -> &str {
        "split"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let text = super::is_text;
        let bytes = |t: &DataType| {
            matches!(
                t,
                DataType::Binary | DataType::LargeBinary | DataType::BinaryView | DataType::Null
            )
        };
        match arg_types {
            [v, d] if text(v) && text(d) => Ok(vec![DataType::Utf8, DataType::Utf8]),
            [v, d] if bytes(v) && bytes(d) => Ok(vec![DataType::Binary, DataType::Binary]),
            _ => plan_err!("Function 'SPLIT' does not accept parameters {arg_types:?}"),
        }
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        Ok(match arg_types.first() {
            Some(DataType::Binary) => list_of(DataType::Binary),
            _ => list_of(DataType::Utf8),
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let [value, delimiter] = arrays.as_slice() else {
            return exec_err!("SPLIT takes two arguments");
        };
        let rows = 0..value.len();
        let valid = |i: usize| !value.is_null(i) && !delimiter.is_null(i);
        let out: Arc<dyn Array> = match value.data_type() {
            DataType::Binary => {
                let (v, d) = (value.as_binary::<i32>(), delimiter.as_binary::<i32>());
                let mut builder = ListBuilder::new(BinaryBuilder::new());
                for i in rows {
                    if valid(i) {
                        for part in split_bytes(v.value(i), d.value(i)) {
                            builder.values().append_value(part);
                        }
                    }
                    builder.append(valid(i));
                }
                Arc::new(builder.finish())
            }
            _ => {
                let (v, d) = (value.as_string::<i32>(), delimiter.as_string::<i32>());
                let mut builder = ListBuilder::new(StringBuilder::new());
                for i in rows {
                    if valid(i) {
                        let (text, delimiter) = (v.value(i), d.value(i));
                        if delimiter.is_empty() {
                            for c in text.chars() {
                                builder.values().append_value(c.to_string());
                            }
                        } else {
                            for part in text.split(delimiter) {
                                builder.values().append_value(part);
                            }
                        }
                    }
                    builder.append(valid(i));
                }
                Arc::new(builder.finish())
            }
        };
        Ok(ColumnarValue::Array(out))
    }
}

#[cfg(test)]
mod tests {
    use super::split_bytes;

    #[test]
    fn splits_bytes_on_a_sequence() {
        assert_eq!(split_bytes(b"a$$b.c", b"$$"), [&b"a"[..], b"b.c"]);
        assert_eq!(split_bytes(b"..a", b"."), [&b""[..], b"", b"a"]);
        assert_eq!(split_bytes(b"", b","), [&b""[..]]);
        assert_eq!(split_bytes(b"ab", b""), [&b"a"[..], b"b"]);
    }
}

//! ksqlDB's `SUBSTRING(value, pos [, length])` of a STRING or BYTES value: positions count
//! from 1, a position of 0 is the start and a negative one counts from the end, and a range
//! past either end is clipped rather than an error.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BinaryArray, StringArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Int64Type};
use datafusion_common::{Result, exec_err, plan_err};
use datafusion_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

/// `SUBSTRING`, also known as `SUBSTR`.
pub(crate) fn function() -> Arc<ScalarUDF> {
    Arc::new(ScalarUDF::from(Substring {
        signature: Signature::user_defined(Volatility::Immutable),
        aliases: vec!["substr".to_string()],
    }))
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Substring {
    signature: Signature,
    aliases: Vec<String>,
}

/// The range `[start, end)` of a value of `len` units that `pos` and `length` select.
fn range(len: usize, pos: i64, length: Option<i64>) -> (usize, usize) {
    let len_i = i64::try_from(len).unwrap_or(i64::MAX);
    let start = if pos >= 0 {
        (pos - 1).clamp(0, len_i)
    } else {
        (len_i + pos).max(0)
    };
    let end = match length {
        Some(n) => start.saturating_add(n).min(len_i).max(start),
        None => len_i,
    };
    (
        usize::try_from(start).unwrap_or(len),
        usize::try_from(end).unwrap_or(len),
    )
}

impl ScalarUDFImpl for Substring {
    fn name(&self) -> &str {
        "substring"
    }

    fn aliases(&self) -> &[String] {
        &self.aliases
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let int = |t: &DataType| t.is_integer() || t.is_null();
        let value = match arg_types.first() {
            Some(DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null) => {
                DataType::Utf8
            }
            Some(DataType::Binary | DataType::LargeBinary | DataType::BinaryView) => {
                DataType::Binary
            }
            _ => return plan_err!("Function 'SUBSTRING' does not accept parameters {arg_types:?}"),
        };
        match arg_types {
            [_, p] if int(p) => Ok(vec![value, DataType::Int64]),
            [_, p, n] if int(p) && int(n) => Ok(vec![value, DataType::Int64, DataType::Int64]),
            _ => plan_err!("Function 'SUBSTRING' does not accept parameters {arg_types:?}"),
        }
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        Ok(match arg_types.first() {
            Some(DataType::Binary) => DataType::Binary,
            _ => DataType::Utf8,
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let (value, pos, length) = match arrays.as_slice() {
            [v, p] => (v, cast(p, &DataType::Int64)?, None),
            [v, p, n] => (
                v,
                cast(p, &DataType::Int64)?,
                Some(cast(n, &DataType::Int64)?),
            ),
            _ => return exec_err!("SUBSTRING takes two or three arguments"),
        };
        let pos = pos.as_primitive::<Int64Type>();
        let length = length.as_ref().map(|n| n.as_primitive::<Int64Type>());
        // The selection of row `i`: `None` when an argument is null.
        let select = |i: usize| -> Option<(i64, Option<i64>)> {
            if value.is_null(i) || pos.is_null(i) {
                return None;
            }
            match length {
                Some(n) if n.is_null(i) => None,
                Some(n) => Some((pos.value(i), Some(n.value(i)))),
                None => Some((pos.value(i), None)),
            }
        };
        let out: ArrayRef = match value.data_type() {
            DataType::Binary => {
                let v = value.as_binary::<i32>();
                let out: BinaryArray = (0..v.len())
                    .map(|i| {
                        let (p, n) = select(i)?;
                        let bytes = v.value(i);
                        let (start, end) = range(bytes.len(), p, n);
                        Some(bytes[start..end].to_vec())
                    })
                    .collect();
                Arc::new(out)
            }
            _ => {
                let v = value.as_string::<i32>();
                let out: StringArray = (0..v.len())
                    .map(|i| {
                        let (p, n) = select(i)?;
                        let chars: Vec<char> = v.value(i).chars().collect();
                        let (start, end) = range(chars.len(), p, n);
                        Some(chars[start..end].iter().collect::<String>())
                    })
                    .collect();
                Arc::new(out)
            }
        };
        Ok(ColumnarValue::Array(out))
    }
}

#[cfg(test)]
mod tests {
    use super::range;

    #[test]
    fn positions_count_from_one_and_clip() {
        assert_eq!(range(11, 6, None), (5, 11));
        assert_eq!(range(11, 0, Some(2)), (0, 2));
        assert_eq!(range(5, 6, Some(3)), (5, 5));
        assert_eq!(range(5, -2, None), (3, 5));
        assert_eq!(range(5, -9, Some(2)), (0, 2));
        assert_eq!(range(5, 2, Some(-1)), (1, 1));
    }
}

//! ksqlDB's `LPAD` and `RPAD` of STRING and BYTES values: NULL for a negative length or an
//! empty padding (where DataFusion's would fail), truncating an input longer than the length.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BinaryArray, StringArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Int64Type};
use datafusion_common::{Result, exec_err, plan_err};
use datafusion_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

/// `LPAD` and `RPAD`.
pub(crate) fn functions() -> Vec<Arc<ScalarUDF>> {
    [Side::Left, Side::Right]
        .map(|side| {
            Arc::new(ScalarUDF::from(Pad {
                side,
                signature: Signature::user_defined(Volatility::Immutable),
            }))
        })
        .into()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Side {
    Left,
    Right,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Pad {
    side: Side,
    signature: Signature,
}

impl Pad {
    fn sql_name(&self) -> &'static str {
        match self.side {
            Side::Left => "LPAD",
            Side::Right => "RPAD",
        }
    }

    /// `input` padded with `padding` (or truncated) to `len` units.
    fn pad<T: Clone>(&self, input: &[T], len: i64, padding: &[T]) -> Option<Vec<T>> {
        let len = usize::try_from(len).ok()?;
        if padding.is_empty() {
            return None;
        }
        if input.len() >= len {
            return Some(input[..len].to_vec());
        }
        let fill: Vec<T> = padding
            .iter()
            .cycle()
            .take(len - input.len())
            .cloned()
            .collect();
        Some(match self.side {
            Side::Left => fill.into_iter().chain(input.iter().cloned()).collect(),
            Side::Right => input.iter().cloned().chain(fill).collect(),
        })
    }
}

impl ScalarUDFImpl for Pad {
    fn name(&self) -> &str {
        match self.side {
            Side::Left => "lpad",
            Side::Right => "rpad",
        }
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
        let int = |t: &DataType| t.is_integer() || t.is_null();
        match arg_types {
            [s, n, p] if text(s) && int(n) && text(p) => {
                Ok(vec![DataType::Utf8, DataType::Int64, DataType::Utf8])
            }
            [s, n, p] if bytes(s) && int(n) && bytes(p) => {
                Ok(vec![DataType::Binary, DataType::Int64, DataType::Binary])
            }
            _ => plan_err!(
                "Function '{}' does not accept parameters {arg_types:?}",
                self.sql_name()
            ),
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
        let [input, len, padding] = arrays.as_slice() else {
            return exec_err!("{} takes three arguments", self.sql_name());
        };
        let len = cast(len, &DataType::Int64)?;
        let len = len.as_primitive::<Int64Type>();
        let valid = |i: usize| !input.is_null(i) && !len.is_null(i) && !padding.is_null(i);
        let out: ArrayRef = match input.data_type() {
            DataType::Binary => {
                let (input, padding) = (input.as_binary::<i32>(), padding.as_binary::<i32>());
                let out: BinaryArray = (0..input.len())
                    .map(|i| {
                        valid(i)
                            .then(|| self.pad(input.value(i), len.value(i), padding.value(i)))
                            .flatten()
                    })
                    .collect();
                Arc::new(out)
            }
            _ => {
                let (input, padding) = (input.as_string::<i32>(), padding.as_string::<i32>());
                let out: StringArray = (0..input.len())
                    .map(|i| {
                        if !valid(i) {
                            return None;
                        }
                        let chars: Vec<char> = input.value(i).chars().collect();
                        let pad: Vec<char> = padding.value(i).chars().collect();
                        self.pad(&chars, len.value(i), &pad)
                            .map(|c| c.into_iter().collect::<String>())
                    })
                    .collect();
                Arc::new(out)
            }
        };
        Ok(ColumnarValue::Array(out))
    }
}

//! ksqlDB's `GENERATE_SERIES(start, end[, step])`: the array from `start` to `end`, both
//! included, of INTs for INT bounds and BIGINTs otherwise. Unlike DataFusion's namesake, the
//! step defaults to -1 when `end` is below `start`, and a step of zero or of the wrong sign
//! is an error rather than an empty array.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int32Builder, Int64Builder, ListBuilder};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Int64Type};
use datafusion_common::{Result, exec_err};
use datafusion_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

/// The function.
pub(crate) fn function() -> Arc<ScalarUDF> {
    Arc::new(ScalarUDF::from(GenerateSeries {
        signature: Signature::user_defined(Volatility::Immutable),
    }))
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct GenerateSeries {
    signature: Signature,
}

/// The values from `start` to `end` by `step` (its sign checked as ksqlDB checks it).
fn series(start: i64, end: i64, step: Option<i64>) -> Result<Vec<i64>> {
    let step = step.unwrap_or(if end >= start { 1 } else { -1 });
    if step == 0 {
        return exec_err!("GENERATE_SERIES step cannot be zero");
    }
    if (end > start && step < 0) || (end < start && step > 0) {
        return exec_err!("GENERATE_SERIES step has wrong sign");
    }
    let count = (i128::from(end) - i128::from(start)) / i128::from(step) + 1;
    if count > 10_000_000 {
        return exec_err!("GENERATE_SERIES would make {count} values");
    }
    Ok((0..count as i64).map(|i| start + i * step).collect())
}

impl ScalarUDFImpl for GenerateSeries {
    fn name(&self) -> &str {
        "generate_series"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let int = |t: &DataType| matches!(t, DataType::Int8 | DataType::Int16 | DataType::Int32);
        match arg_types {
            [start, end, rest @ ..]
                if super::is_integer(start)
                    && super::is_integer(end)
                    && rest.len() <= 1
                    && rest.iter().all(|s| int(s) || s.is_null()) =>
            {
                let bound = match (start, end) {
                    (s, e) if (int(s) || s.is_null()) && (int(e) || e.is_null()) => DataType::Int32,
                    _ => DataType::Int64,
                };
                let mut types = vec![bound.clone(), bound];
                types.extend(rest.iter().map(|_| DataType::Int32));
                Ok(types)
            }
            _ => super::rejected("GENERATE_SERIES", arg_types),
        }
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        let item = match arg_types.first() {
            Some(DataType::Int32) => DataType::Int32,
            _ => DataType::Int64,
        };
        Ok(DataType::List(Arc::new(arrow::datatypes::Field::new(
            "item", item, true,
        ))))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let Some(first) = arrays.first() else {
            return exec_err!("GENERATE_SERIES takes two or three arguments");
        };
        let ints = first.data_type() == &DataType::Int32;
        let longs: Vec<ArrayRef> = arrays
            .iter()
            .map(|a| cast(a, &DataType::Int64))
            .collect::<std::result::Result<_, _>>()?;
        let value = |k: usize, i: usize| -> Option<Option<i64>> {
            match longs.get(k) {
                None => Some(None),
                Some(a) if a.is_null(i) => None,
                Some(a) => Some(Some(a.as_primitive::<Int64Type>().value(i))),
            }
        };
        let mut out32 = ListBuilder::new(Int32Builder::new());
        let mut out64 = ListBuilder::new(Int64Builder::new());
        for i in 0..first.len() {
            let (Some(Some(start)), Some(Some(end)), Some(step)) =
                (value(0, i), value(1, i), value(2, i))
            else {
                out32.append_null();
                out64.append_null();
                continue;
            };
            let values = series(start, end, step)?;
            if ints {
                out32
                    .values()
                    .append_slice(&values.iter().map(|&v| v as i32).collect::<Vec<_>>());
                out32.append(true);
            } else {
                out64.values().append_slice(&values);
                out64.append(true);
            }
        }
        let out: ArrayRef = if ints {
            Arc::new(out32.finish())
        } else {
            Arc::new(out64.finish())
        };
        Ok(ColumnarValue::Array(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_as_ksqldb_does() {
        assert_eq!(series(1, 3, None).ok(), Some(vec![1, 2, 3]));
        assert_eq!(series(3, 1, None).ok(), Some(vec![3, 2, 1]));
        assert_eq!(series(0, 9, Some(4)).ok(), Some(vec![0, 4, 8]));
        assert_eq!(series(5, 5, Some(-2)).ok(), Some(vec![5]));
        assert!(series(1, 5, Some(0)).is_err());
        assert!(series(1, 5, Some(-1)).is_err());
    }
}

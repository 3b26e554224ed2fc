//! The combinations behind ksqlDB's `CUBE_EXPLODE(array)`: the planner turns the table
//! function into `EXPLODE(CUBE_COMBINATIONS(array))`, so the engine's EXPLODE makes the rows.
//!
//! For an array of `d` elements the combinations are the `2^d` arrays that keep some elements
//! and put NULL in place of the others, in binary order with the first element as the highest
//! bit (`[null, null]`, `[null, 2]`, `[1, null]`, `[1, 2]`); a combination equal to an earlier
//! one (because an element is NULL itself) is left out, as ksqlDB leaves it out.

use std::collections::HashSet;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, ListArray, UInt32Array};
use arrow::buffer::OffsetBuffer;
use arrow::compute::take;
use arrow::datatypes::{DataType, Field};
use datafusion_common::{Result, exec_err, plan_err};
use datafusion_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

/// The internal function's name; it is not listed among the functions users call.
pub(crate) const CUBE_COMBINATIONS: &str = "cube_combinations";

/// Arrays longer than this would make more than a million rows from one record.
const MAX_ELEMENTS: usize = 20;

/// The `CUBE_COMBINATIONS` function.
pub(crate) fn function() -> Arc<ScalarUDF> {
    Arc::new(ScalarUDF::from(CubeCombinations {
        signature: Signature::user_defined(Volatility::Immutable),
    }))
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct CubeCombinations {
    signature: Signature,
}

/// The combinations of an array of `n` elements whose NULL elements are `nulls`, each as the
/// element kept at every position (`None` for NULL).
fn combinations(n: usize, is_null: impl Fn(usize) -> bool) -> Vec<Vec<Option<usize>>> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for mask in 0..1usize << n {
        let combination: Vec<Option<usize>> = (0..n)
            .map(|i| (mask >> (n - 1 - i) & 1 == 1 && !is_null(i)).then_some(i))
            .collect();
        if seen.insert(combination.clone()) {
            out.push(combination);
        }
    }
    out
}

impl ScalarUDFImpl for CubeCombinations {
    fn name(&self) -> &str {
        CUBE_COMBINATIONS
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match arg_types {
            [list @ DataType::List(_)] => Ok(vec![list.clone()]),
            _ => plan_err!("Function 'cube_explode' does not accept parameters {arg_types:?}"),
        }
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match arg_types {
            [list @ DataType::List(_)] => Ok(DataType::List(Arc::new(Field::new_list_field(
                list.clone(),
                true,
            )))),
            _ => plan_err!("CUBE_EXPLODE takes an ARRAY"),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let [list] = arrays.as_slice() else {
            return exec_err!("CUBE_EXPLODE takes one ARRAY");
        };
        let DataType::List(item) = list.data_type() else {
            return exec_err!("CUBE_EXPLODE takes an ARRAY");
        };
        let list = list.as_list::<i32>();
        let values = list.values();
        let (mut picks, mut inner, mut outer) = (Vec::new(), vec![0i32], vec![0i32]);
        for row in 0..list.len() {
            if list.is_valid(row) {
                let start = list.value_offsets()[row] as usize;
                let n = list.value_length(row) as usize;
                if n > MAX_ELEMENTS {
                    return exec_err!(
                        "CUBE_EXPLODE of {n} elements would make 2^{n} rows; at most \
                         {MAX_ELEMENTS} elements are taken"
                    );
                }
                for combination in combinations(n, |i| values.is_null(start + i)) {
                    picks.extend(combination.iter().map(|k| k.map(|i| (start + i) as u32)));
                    inner.push(picks.len() as i32);
                }
            }
            outer.push((inner.len() - 1) as i32);
        }
        let elements = take(values, &UInt32Array::from(picks), None)?;
        let arrays: ArrayRef = Arc::new(ListArray::try_new(
            Arc::clone(item),
            OffsetBuffer::new(inner.into()),
            elements,
            None,
        )?);
        let out = ListArray::try_new(
            Arc::new(Field::new_list_field(list.data_type().clone(), true)),
            OffsetBuffer::new(outer.into()),
            arrays,
            list.nulls().cloned(),
        )?;
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}

#[cfg(test)]
mod tests {
    use super::combinations;

    #[test]
    fn combinations_in_binary_order_without_repeats() {
        assert_eq!(
            combinations(2, |_| false),
            [
                vec![None, None],
                vec![None, Some(1)],
                vec![Some(0), None],
                vec![Some(0), Some(1)]
            ]
        );
        assert_eq!(
            combinations(2, |i| i == 1),
            [vec![None, None], vec![Some(0), None]]
        );
        assert_eq!(combinations(3, |_| false).len(), 8);
        assert_eq!(combinations(0, |_| false), [Vec::<Option<usize>>::new()]);
    }
}

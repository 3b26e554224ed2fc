//! ksqlDB's `ARRAY_JOIN(array [, delimiter])` (elements as Java prints them, NULL as `null`)
//! and `ARRAY_SORT(array [, 'ASC' | 'DESC'])` (NULL elements last either way).

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, ListArray, StringArray, new_empty_array};
use arrow::compute::{SortOptions, cast, concat, sort_to_indices, take};
use arrow::datatypes::{DataType, Float64Type};
use datafusion_common::{Result, exec_err, plan_err};
use datafusion_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use crate::plan::cast::java_double;

/// `ARRAY_JOIN` and `ARRAY_SORT`.
pub(crate) fn functions() -> Vec<Arc<ScalarUDF>> {
    [Kind::Join, Kind::Sort]
        .map(|kind| {
            Arc::new(ScalarUDF::from(ArrayFn {
                kind,
                signature: Signature::user_defined(Volatility::Immutable),
            }))
        })
        .into()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Join,
    Sort,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct ArrayFn {
    kind: Kind,
    signature: Signature,
}

impl ArrayFn {
    fn sql_name(&self) -> &'static str {
        match self.kind {
            Kind::Join => "ARRAY_JOIN",
            Kind::Sort => "ARRAY_SORT",
        }
    }
}

/// Element `j` of `values` as text.
fn element_text(values: &ArrayRef, texts: &StringArray, j: usize) -> String {
    if values.is_null(j) {
        return "null".to_string();
    }
    match values.data_type() {
        DataType::Float64 => java_double(values.as_primitive::<Float64Type>().value(j)),
        _ => texts.value(j).to_string(),
    }
}

impl ScalarUDFImpl for ArrayFn {
    fn name(&self) -> &str {
        match self.kind {
            Kind::Join => "array_join",
            Kind::Sort => "array_sort",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let text = super::is_text;
        match arg_types {
            [list @ DataType::List(_)] => Ok(vec![list.clone()]),
            [list @ DataType::List(_), t] if text(t) => Ok(vec![list.clone(), DataType::Utf8]),
            _ => plan_err!(
                "Function '{}' does not accept parameters {arg_types:?}",
                self.sql_name()
            ),
        }
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match (self.kind, arg_types.first()) {
            (Kind::Join, _) => Ok(DataType::Utf8),
            (Kind::Sort, Some(list)) => Ok(list.clone()),
            (Kind::Sort, None) => plan_err!("Function 'ARRAY_SORT' does not accept parameters ()"),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let Some(list) = arrays.first() else {
            return exec_err!("{} needs an array", self.sql_name());
        };
        let list = list.as_list::<i32>();
        let option = arrays.get(1).map(|a| a.as_string::<i32>());
        let out: ArrayRef = match self.kind {
            Kind::Join => {
                let values = list.values();
                let texts = cast(values, &DataType::Utf8)?;
                let texts = texts.as_string::<i32>();
                let offsets = list.value_offsets();
                let joined: StringArray = (0..list.len())
                    .map(|i| {
                        let delimiter = match option {
                            None => ",",
                            Some(d) if d.is_null(i) => return None,
                            Some(d) => d.value(i),
                        };
                        if list.is_null(i) {
                            return None;
                        }
                        let (start, end) = (offsets[i] as usize, offsets[i + 1] as usize);
                        let parts: Vec<String> = (start..end)
                            .map(|j| element_text(values, texts, j))
                            .collect();
                        Some(parts.join(delimiter))
                    })
                    .collect();
                Arc::new(joined)
            }
            Kind::Sort => {
                let DataType::List(field) = list.data_type() else {
                    return exec_err!("ARRAY_SORT needs an array");
                };
                let mut pieces = Vec::with_capacity(list.len());
                let mut nulls = Vec::with_capacity(list.len());
                for i in 0..list.len() {
                    let direction =
                        option.map_or(Some("ASC"), |o| (!o.is_null(i)).then(|| o.value(i)));
                    let descending = match direction.map(str::to_ascii_uppercase).as_deref() {
                        Some("ASC") => false,
                        Some("DESC") => true,
                        _ => {
                            nulls.push(false);
                            pieces.push(new_empty_array(field.data_type()));
                            continue;
                        }
                    };
                    nulls.push(!list.is_null(i));
                    let values = list.value(i);
                    let options = SortOptions {
                        descending,
                        nulls_first: false,
                    };
                    let indices = sort_to_indices(&values, Some(options), None)?;
                    pieces.push(take(&values, &indices, None)?);
                }
                let lengths = pieces.iter().map(|p| p.len());
                let offsets = arrow::buffer::OffsetBuffer::from_lengths(lengths);
                let values = if pieces.is_empty() {
                    new_empty_array(field.data_type())
                } else {
                    let refs: Vec<&dyn Array> = pieces.iter().map(|p| p.as_ref()).collect();
                    concat(&refs)?
                };
                Arc::new(ListArray::try_new(
                    Arc::clone(field),
                    offsets,
                    values,
                    Some(nulls.into()),
                )?)
            }
        };
        Ok(ColumnarValue::Array(out))
    }
}

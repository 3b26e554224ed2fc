//! ksqlDB's `ELT(n, s1, s2, …)`, `FIELD(s, s1, s2, …)`, `SLICE(array, from, to)`,
//! `ARRAY_LENGTH(array)` (an INTEGER, where DataFusion's `cardinality` counts in BIGINT),
//! `ARRAY_REMOVE(array, element)` (every equal element out, of any type, maps and arrays too)
//! and `ARRAY_CONTAINS(array, element)` (as Java's `List.contains`: FALSE for a NULL array,
//! and a NULL element is found where the array holds one, where DataFusion's `array_has`
//! answers NULL).
//!
//! `ELT` gives the n-th string (1-based; NULL out of range) and `FIELD` the 1-based position
//! of the first string equal to `s` (0 if none, or if `s` is NULL). `SLICE` keeps the
//! elements from `from` to `to`, both 1-based and included (a NULL bound is the array's
//! start or end); bounds outside the array give NULL, as Java's `subList` refuses them.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int32Array, ListArray, StringArray, UInt32Array};
use arrow::buffer::{NullBuffer, OffsetBuffer};
use arrow::compute::{cast, take};
use arrow::datatypes::{DataType, Int64Type};
use datafusion_common::{Result, ScalarValue, exec_err};

use super::is_integer;
use datafusion_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

/// The functions of this module.
pub(crate) fn functions() -> Vec<Arc<ScalarUDF>> {
    [
        Kind::Elt,
        Kind::Field,
        Kind::Slice,
        Kind::Length,
        Kind::Remove,
        Kind::Contains,
    ]
    .map(|kind| {
        Arc::new(ScalarUDF::from(ListFn {
            kind,
            signature: Signature::user_defined(Volatility::Immutable),
        }))
    })
    .into()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Elt,
    Field,
    Slice,
    Length,
    Remove,
    Contains,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct ListFn {
    kind: Kind,
    signature: Signature,
}

/// Whether two elements are equal as Java's `equals` has them (two NULLs are).
fn java_equals(value: &ScalarValue, other: &ScalarValue) -> bool {
    match (value.is_null(), other.is_null()) {
        (true, true) => true,
        (false, false) => value == other,
        _ => false,
    }
}

/// The element range `SLICE` keeps of a list of `len` elements, if Java's `subList` takes it.
fn slice_range(len: usize, from: Option<i64>, to: Option<i64>) -> Option<std::ops::Range<usize>> {
    let start = from.map_or(Some(0), |f| f.checked_sub(1))?;
    let end = to.unwrap_or(len as i64);
    let (start, end) = (usize::try_from(start).ok()?, usize::try_from(end).ok()?);
    (start <= end && end <= len).then_some(start..end)
}

impl ListFn {
    fn sql_name(&self) -> &'static str {
        match self.kind {
            Kind::Elt => "ELT",
            Kind::Field => "FIELD",
            Kind::Slice => "SLICE",
            Kind::Length => "ARRAY_LENGTH",
            Kind::Remove => "ARRAY_REMOVE",
            Kind::Contains => "ARRAY_CONTAINS",
        }
    }
}

impl ScalarUDFImpl for ListFn {
    fn name(&self) -> &str {
        match self.kind {
            Kind::Elt => "elt",
            Kind::Field => "field",
            Kind::Slice => "slice",
            Kind::Length => "array_length",
            Kind::Remove => "array_remove",
            Kind::Contains => "array_contains",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let text = super::is_text;
        let ok = match (self.kind, arg_types) {
            (Kind::Elt, [n, rest @ ..]) => is_integer(n) && rest.iter().all(text),
            (Kind::Field, [s, rest @ ..]) => text(s) && rest.iter().all(text),
            (Kind::Slice, [DataType::List(_), from, to]) => is_integer(from) && is_integer(to),
            (Kind::Length, [DataType::List(_) | DataType::Null]) => true,
            (Kind::Remove | Kind::Contains, [DataType::List(item), element]) => {
                let item = item.data_type();
                element == item
                    || element.is_null()
                    || (element.is_numeric() && item.is_numeric())
                    || (text(element) && text(item))
            }
            _ => false,
        };
        if !ok {
            return super::rejected(self.sql_name(), arg_types);
        }
        Ok(arg_types
            .iter()
            .enumerate()
            .map(|(i, t)| match (self.kind, i) {
                (Kind::Elt, 0) | (Kind::Slice, 1 | 2) => DataType::Int64,
                // The element is compared as an element of the array.
                (Kind::Remove | Kind::Contains, 1) => match &arg_types[0] {
                    DataType::List(item) => item.data_type().clone(),
                    _ => t.clone(),
                },
                (Kind::Slice | Kind::Length | Kind::Remove | Kind::Contains, _) => t.clone(),
                _ => DataType::Utf8,
            })
            .collect())
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        Ok(match self.kind {
            Kind::Elt => DataType::Utf8,
            Kind::Field | Kind::Length => DataType::Int32,
            Kind::Slice | Kind::Remove => arg_types.first().cloned().unwrap_or(DataType::Null),
            Kind::Contains => DataType::Boolean,
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let Some((first, rest)) = arrays.split_first() else {
            return exec_err!("{} needs arguments", self.sql_name());
        };
        let rows = 0..first.len();
        let out: ArrayRef = match self.kind {
            Kind::Elt => {
                let n = first.as_primitive::<Int64Type>();
                let strings: Vec<&StringArray> = rest.iter().map(|a| a.as_string()).collect();
                Arc::new(
                    rows.map(|i| {
                        if n.is_null(i) {
                            return None;
                        }
                        let at = usize::try_from(n.value(i)).ok()?.checked_sub(1)?;
                        let s = strings.get(at)?;
                        (!s.is_null(i)).then(|| s.value(i).to_string())
                    })
                    .collect::<StringArray>(),
                )
            }
            Kind::Field => {
                let s = first.as_string::<i32>();
                let strings: Vec<&StringArray> = rest.iter().map(|a| a.as_string()).collect();
                Arc::new(
                    rows.map(|i| {
                        let found = (!s.is_null(i))
                            .then(|| {
                                strings
                                    .iter()
                                    .position(|c| !c.is_null(i) && c.value(i) == s.value(i))
                            })
                            .flatten();
                        Some(found.map_or(0, |p| i32::try_from(p + 1).unwrap_or(i32::MAX)))
                    })
                    .collect::<Int32Array>(),
                )
            }
            Kind::Remove => {
                let [element] = rest else {
                    return exec_err!("ARRAY_REMOVE takes two arguments");
                };
                let list = first.as_list::<i32>();
                let values = list.values();
                let (mut offsets, mut picks) = (vec![0i32], Vec::new());
                for i in rows {
                    if list.is_valid(i) {
                        let unwanted = ScalarValue::try_from_array(element.as_ref(), i)?;
                        let (start, end) = (list.value_offsets()[i], list.value_offsets()[i + 1]);
                        for j in start as usize..end as usize {
                            let value = ScalarValue::try_from_array(values.as_ref(), j)?;
                            if !java_equals(&value, &unwanted) {
                                picks.push(j as u32);
                            }
                        }
                    }
                    let end = i32::try_from(picks.len());
                    offsets.push(end.or_else(|_| exec_err!("ARRAY_REMOVE: too many elements"))?);
                }
                let DataType::List(item) = list.data_type() else {
                    return exec_err!("ARRAY_REMOVE needs an array");
                };
                let kept = take(values, &UInt32Array::from(picks), None)?;
                Arc::new(ListArray::try_new(
                    Arc::clone(item),
                    OffsetBuffer::new(offsets.into()),
                    kept,
                    list.nulls().cloned(),
                )?)
            }
            Kind::Contains => {
                let [element] = rest else {
                    return exec_err!("ARRAY_CONTAINS takes two arguments");
                };
                let list = first.as_list::<i32>();
                let values = list.values();
                let mut found = Vec::with_capacity(list.len());
                for i in rows {
                    let mut has = false;
                    if list.is_valid(i) {
                        let wanted = ScalarValue::try_from_array(element.as_ref(), i)?;
                        let (start, end) = (list.value_offsets()[i], list.value_offsets()[i + 1]);
                        for j in start as usize..end as usize {
                            if java_equals(
                                &ScalarValue::try_from_array(values.as_ref(), j)?,
                                &wanted,
                            ) {
                                has = true;
                                break;
                            }
                        }
                    }
                    found.push(has);
                }
                Arc::new(arrow::array::BooleanArray::from(found))
            }
            Kind::Length => match first.data_type() {
                DataType::List(_) => {
                    let list = first.as_list::<i32>();
                    Arc::new(
                        rows.map(|i| (!list.is_null(i)).then(|| list.value_length(i)))
                            .collect::<Int32Array>(),
                    )
                }
                _ => Arc::new(Int32Array::new_null(first.len())),
            },
            Kind::Slice => {
                let [from, to] = rest else {
                    return exec_err!("SLICE takes three arguments");
                };
                let list = first.as_list::<i32>();
                let (from, to) = (cast(from, &DataType::Int64)?, cast(to, &DataType::Int64)?);
                let (from, to) = (
                    from.as_primitive::<Int64Type>(),
                    to.as_primitive::<Int64Type>(),
                );
                let bound =
                    |a: &arrow::array::Int64Array, i: usize| (!a.is_null(i)).then(|| a.value(i));
                let (mut offsets, mut picks, mut valid) = (vec![0i32], Vec::new(), Vec::new());
                for i in rows {
                    let start = list.value_offsets()[i] as usize;
                    let len = list.value_length(i) as usize;
                    let range = (!list.is_null(i))
                        .then(|| slice_range(len, bound(from, i), bound(to, i)))
                        .flatten();
                    if let Some(range) = &range {
                        picks.extend(range.clone().map(|j| (start + j) as u32));
                    }
                    let end = i32::try_from(picks.len());
                    offsets.push(end.or_else(|_| exec_err!("SLICE: too many elements"))?);
                    valid.push(range.is_some());
                }
                let DataType::List(item) = list.data_type() else {
                    return exec_err!("SLICE needs an array");
                };
                let values = take(list.values(), &UInt32Array::from(picks), None)?;
                Arc::new(ListArray::try_new(
                    Arc::clone(item),
                    OffsetBuffer::new(offsets.into()),
                    values,
                    Some(NullBuffer::from(valid)),
                )?)
            }
        };
        Ok(ColumnarValue::Array(out))
    }
}

#[cfg(test)]
mod tests {
    use super::slice_range;

    #[test]
    fn slices_as_java_sublist() {
        assert_eq!(slice_range(5, Some(2), Some(4)), Some(1..4));
        assert_eq!(slice_range(5, None, Some(2)), Some(0..2));
        assert_eq!(slice_range(5, Some(3), None), Some(2..5));
        assert_eq!(slice_range(5, Some(1), Some(5)), Some(0..5));
        assert_eq!(slice_range(5, Some(0), Some(2)), None);
        assert_eq!(slice_range(5, Some(2), Some(6)), None);
        assert_eq!(slice_range(5, Some(4), Some(2)), None);
        assert_eq!(slice_range(5, Some(3), Some(2)), Some(2..2));
    }
}

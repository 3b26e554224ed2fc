//! ksqlDB's lambda functions: `TRANSFORM`, `FILTER` and `REDUCE` of an ARRAY or a MAP.
//!
//! * Over an ARRAY, `TRANSFORM(a, x => …)` and `FILTER(a, x => …)` are DataFusion's
//!   `array_transform` and `array_filter`, to which these functions hand the call.
//! * `TRANSFORM(m, (k, v) => new key, (k, v) => new value)` and `FILTER(m, (k, v) => …)` run
//!   their lambdas once over all the entries of a batch's maps. Two entries of one map that
//!   get the same key, or a NULL key, are an error for that row, as in ksqlDB.
//! * `REDUCE(a, s0, (s, x) => …)` and `REDUCE(m, s0, (s, k, v) => …)` fold element by element:
//!   the lambda runs once per position, over every row that still has an element there. The
//!   state has the lambda's type (`s0` is cast to it); a NULL collection gives `s0`. A map is
//!   folded in the order ksqlDB folds it, which is the order a Java `HashMap` sized for the
//!   map's entries iterates its STRING keys in (ksqlDB's deserializers build such maps), so a
//!   fold that depends on the order gives ksqlDB's result.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, MapArray, StructArray, UInt32Array, new_null_array,
};
use arrow::buffer::OffsetBuffer;
use arrow::compute::{cast, interleave, take, take_arrays};
use arrow::datatypes::{DataType, Field, FieldRef, Fields};
use datafusion_common::{Result, exec_err, plan_err};
use datafusion_expr::{
    ColumnarValue, HigherOrderFunctionArgs, HigherOrderReturnFieldArgs, HigherOrderSignature,
    HigherOrderUDF, HigherOrderUDFImpl, LambdaArgument, LambdaParametersProgress, ValueOrLambda,
    Volatility,
};

/// `TRANSFORM`, `FILTER` and `REDUCE`; the first two hand arrays to `array_transform` and
/// `array_filter`.
pub(crate) fn functions(
    array_transform: Option<Arc<HigherOrderUDF>>,
    array_filter: Option<Arc<HigherOrderUDF>>,
) -> Vec<Arc<HigherOrderUDF>> {
    [
        (Kind::Transform, array_transform),
        (Kind::Filter, array_filter),
        (Kind::Reduce, None),
    ]
    .map(|(kind, array)| {
        Arc::new(HigherOrderUDF::new_from_impl(Lambdas {
            kind,
            array,
            signature: HigherOrderSignature::user_defined(Volatility::Immutable),
        }))
    })
    .into()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Transform,
    Filter,
    Reduce,
}

#[derive(Debug)]
struct Lambdas {
    kind: Kind,
    /// DataFusion's function for arrays, for `TRANSFORM` and `FILTER`.
    array: Option<Arc<HigherOrderUDF>>,
    signature: HigherOrderSignature,
}

impl PartialEq for Lambdas {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind
    }
}

impl Eq for Lambdas {}

impl std::hash::Hash for Lambdas {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.kind.hash(state);
    }
}

/// A map's key and value fields.
fn map_fields(t: &DataType) -> Option<(FieldRef, FieldRef)> {
    match t {
        DataType::Map(entries, _) => match entries.data_type() {
            DataType::Struct(kv) if kv.len() == 2 => Some((Arc::clone(&kv[0]), Arc::clone(&kv[1]))),
            _ => None,
        },
        _ => None,
    }
}

/// The type of a MAP with these key and value types, named as Eddy names map fields.
fn map_type(key: &DataType, value: &DataType) -> DataType {
    let kv = Fields::from(vec![
        Field::new("key", key.clone(), false),
        Field::new("value", value.clone(), true),
    ]);
    DataType::Map(
        Arc::new(Field::new("entries", DataType::Struct(kv), false)),
        false,
    )
}

fn value_of<V: Clone, L>(arg: Option<&ValueOrLambda<V, L>>) -> Option<V> {
    match arg {
        Some(ValueOrLambda::Value(v)) => Some(v.clone()),
        _ => None,
    }
}

/// The entries of a batch's maps: keys, values, each map's offsets (from 0), and the row of
/// each entry.
struct Entries {
    keys: ArrayRef,
    values: ArrayRef,
    offsets: Vec<usize>,
    rows: UInt32Array,
}

fn entries(map: &MapArray) -> Entries {
    let offsets = map.value_offsets();
    let (first, last) = (offsets[0] as usize, offsets[map.len()] as usize);
    let keys = map.keys().slice(first, last - first);
    let values = map.values().slice(first, last - first);
    let offsets: Vec<usize> = offsets.iter().map(|o| *o as usize - first).collect();
    let rows: UInt32Array = (0..map.len())
        .flat_map(|row| std::iter::repeat_n(row as u32, offsets[row + 1] - offsets[row]))
        .collect();
    Entries {
        keys,
        values,
        offsets,
        rows,
    }
}

/// Java's `String.hashCode`.
fn java_string_hash(text: &str) -> u32 {
    text.encode_utf16().fold(0u32, |h, unit| {
        h.wrapping_mul(31).wrapping_add(u32::from(unit))
    })
}

/// The entries of each map (`offsets` delimit them) in the order a Java `HashMap` created with
/// the map's size iterates them: by bucket, then in insertion order. Keys that are not text
/// keep their order.
fn java_hash_map_order(keys: &ArrayRef, offsets: &[usize]) -> Vec<u32> {
    let texts = keys.as_string_opt::<i32>();
    let mut order = Vec::with_capacity(keys.len());
    for row in offsets.windows(2) {
        let (start, end) = (row[0], row[1]);
        let n = end - start;
        // `new HashMap<>(n)`: a power-of-two table, doubled while more than 3/4 full.
        let mut capacity = n.max(1).next_power_of_two();
        while n * 4 > capacity * 3 {
            capacity *= 2;
        }
        let bucket = |i: usize| match texts {
            Some(t) if t.is_valid(i) => {
                let h = java_string_hash(t.value(i));
                (h ^ (h >> 16)) as usize & (capacity - 1)
            }
            _ => 0,
        };
        let mut row: Vec<usize> = (start..end).collect();
        row.sort_by_key(|i| (bucket(*i), *i));
        order.extend(row.into_iter().map(|i| i as u32));
    }
    order
}

fn lambda_at(args: &HigherOrderFunctionArgs, i: usize) -> Result<&LambdaArgument> {
    match args.args.get(i) {
        Some(ValueOrLambda::Lambda(l)) => Ok(l),
        _ => exec_err!("argument {} should be a lambda", i + 1),
    }
}

/// Runs `lambda` with these parameter arrays, its captured columns taken at `rows`.
fn run(lambda: &LambdaArgument, params: &[ArrayRef], rows: &UInt32Array) -> Result<ArrayRef> {
    let closures: Vec<Box<dyn Fn() -> Result<ArrayRef> + '_>> = params
        .iter()
        .map(|p| Box::new(move || Ok(Arc::clone(p))) as Box<dyn Fn() -> Result<ArrayRef>>)
        .collect();
    let refs: Vec<&dyn Fn() -> Result<ArrayRef>> = closures.iter().map(|c| c.as_ref()).collect();
    let len = rows.len();
    lambda
        .evaluate(&refs, |captured| Ok(take_arrays(captured, rows, None)?))?
        .into_array(len)
}

impl Lambdas {
    /// DataFusion's function, when the call is over an array it takes.
    fn for_array(&self, first: Option<&DataType>) -> Option<&Arc<HigherOrderUDF>> {
        match first {
            Some(DataType::List(_) | DataType::LargeList(_)) => self.array.as_ref(),
            _ => None,
        }
    }

    fn usage(&self) -> &'static str {
        match self.kind {
            Kind::Transform => {
                "TRANSFORM takes an ARRAY and a lambda of its elements, or a MAP and two lambdas \
                 of a key and a value"
            }
            Kind::Filter => {
                "FILTER takes an ARRAY and a lambda of its elements, or a MAP and a lambda of a \
                 key and a value"
            }
            Kind::Reduce => {
                "REDUCE takes an ARRAY or a MAP, an initial state and a lambda of the state and \
                 an element (or a key and a value)"
            }
        }
    }

    fn transform_map(&self, args: &HigherOrderFunctionArgs, map: &MapArray) -> Result<ArrayRef> {
        let e = entries(map);
        let params = [Arc::clone(&e.keys), Arc::clone(&e.values)];
        let keys = run(lambda_at(args, 1)?, &params, &e.rows)?;
        let values = run(lambda_at(args, 2)?, &params, &e.rows)?;
        let texts = cast(&keys, &DataType::Utf8)?;
        let texts = texts.as_string::<i32>();
        for row in 0..map.len() {
            let (start, end) = (e.offsets[row], e.offsets[row + 1]);
            for i in start..end {
                if keys.is_null(i) {
                    return exec_err!("TRANSFORM of a MAP gave a NULL key");
                }
                if (start..i).any(|j| texts.value(j) == texts.value(i)) {
                    return exec_err!("TRANSFORM of a MAP gave the key '{}' twice", texts.value(i));
                }
            }
        }
        let DataType::Map(entries_field, _) = map_type(keys.data_type(), values.data_type()) else {
            return exec_err!("TRANSFORM: not a map type");
        };
        let DataType::Struct(kv) = entries_field.data_type().clone() else {
            return exec_err!("TRANSFORM: not a map type");
        };
        let offsets: Vec<i32> = e.offsets.iter().map(|o| *o as i32).collect();
        Ok(Arc::new(MapArray::try_new(
            entries_field,
            OffsetBuffer::new(offsets.into()),
            StructArray::try_new(kv, vec![keys, values], None)?,
            map.nulls().cloned(),
            false,
        )?))
    }

    fn filter_map(&self, args: &HigherOrderFunctionArgs, map: &MapArray) -> Result<ArrayRef> {
        let e = entries(map);
        let keep = run(
            lambda_at(args, 1)?,
            &[Arc::clone(&e.keys), Arc::clone(&e.values)],
            &e.rows,
        )?;
        let Some(keep) = keep.as_any().downcast_ref::<BooleanArray>() else {
            return exec_err!("FILTER's lambda must give a BOOLEAN");
        };
        let mut picks = Vec::new();
        let mut offsets = vec![0i32];
        for row in 0..map.len() {
            for i in e.offsets[row]..e.offsets[row + 1] {
                if keep.is_valid(i) && keep.value(i) {
                    picks.push(i as u32);
                }
            }
            offsets.push(picks.len() as i32);
        }
        let picks = UInt32Array::from(picks);
        let DataType::Map(entries_field, sorted) = map.data_type().clone() else {
            return exec_err!("FILTER: not a map");
        };
        let DataType::Struct(kv) = entries_field.data_type().clone() else {
            return exec_err!("FILTER: not a map");
        };
        let columns = vec![take(&e.keys, &picks, None)?, take(&e.values, &picks, None)?];
        Ok(Arc::new(MapArray::try_new(
            entries_field,
            OffsetBuffer::new(offsets.into()),
            StructArray::try_new(kv, columns, None)?,
            map.nulls().cloned(),
            sorted,
        )?))
    }

    fn reduce(&self, args: &HigherOrderFunctionArgs) -> Result<ArrayRef> {
        let rows = args.number_rows;
        let (Some(collection), Some(initial)) =
            (value_of(args.args.first()), value_of(args.args.get(1)))
        else {
            return exec_err!("{}", self.usage());
        };
        let collection = collection.into_array(rows)?;
        let lambda = lambda_at(args, 2)?;
        let state_type = args.return_type().clone();
        let mut state = cast(&initial.into_array(rows)?, &state_type)?;
        // Each row's elements as parameter arrays, and where each row's elements start.
        let (elements, offsets): (Vec<ArrayRef>, Vec<usize>) = match collection.data_type() {
            DataType::List(_) => {
                let list = collection.as_list::<i32>();
                let offsets = list.value_offsets();
                let first = offsets[0] as usize;
                let values = list.values().slice(first, offsets[rows] as usize - first);
                (
                    vec![values],
                    offsets.iter().map(|o| *o as usize - first).collect(),
                )
            }
            DataType::Map(..) => {
                let e = entries(collection.as_map());
                let order = java_hash_map_order(&e.keys, &e.offsets);
                let order = UInt32Array::from(order);
                let keys = take(&e.keys, &order, None)?;
                let values = take(&e.values, &order, None)?;
                (vec![keys, values], e.offsets)
            }
            _ => return exec_err!("{}", self.usage()),
        };
        let longest = (0..rows)
            .filter(|r| collection.is_valid(*r))
            .map(|r| offsets[r + 1] - offsets[r])
            .max()
            .unwrap_or(0);
        for position in 0..longest {
            let active: Vec<u32> = (0..rows)
                .filter(|r| collection.is_valid(*r) && offsets[r + 1] - offsets[*r] > position)
                .map(|r| r as u32)
                .collect();
            let active = UInt32Array::from(active);
            let at: UInt32Array = active
                .values()
                .iter()
                .map(|r| (offsets[*r as usize] + position) as u32)
                .collect();
            let mut params = vec![take(&state, &active, None)?];
            for column in &elements {
                params.push(take(column, &at, None)?);
            }
            let next = cast(&run(lambda, &params, &active)?, &state_type)?;
            let mut from: Vec<(usize, usize)> = (0..rows).map(|r| (0, r)).collect();
            for (n, r) in active.values().iter().enumerate() {
                from[*r as usize] = (1, n);
            }
            state = interleave(&[state.as_ref(), next.as_ref()], &from)?;
        }
        Ok(state)
    }
}

impl HigherOrderUDFImpl for Lambdas {
    fn name(&self) -> &str {
        match self.kind {
            Kind::Transform => "transform",
            Kind::Filter => "filter",
            Kind::Reduce => "reduce",
        }
    }

    fn signature(&self) -> &HigherOrderSignature {
        &self.signature
    }

    fn coerce_value_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        if let Some(array) = self.for_array(arg_types.first())
            && self.kind != Kind::Reduce
        {
            return array.coerce_value_types(arg_types);
        }
        match (self.kind, arg_types) {
            (Kind::Transform | Kind::Filter, [map @ DataType::Map(..)]) => Ok(vec![map.clone()]),
            (Kind::Reduce, [c @ (DataType::List(_) | DataType::Map(..)), initial]) => {
                Ok(vec![c.clone(), initial.clone()])
            }
            _ => plan_err!("{}", self.usage()),
        }
    }

    fn lambda_parameters(
        &self,
        step: usize,
        fields: &[ValueOrLambda<FieldRef, Option<FieldRef>>],
    ) -> Result<LambdaParametersProgress> {
        let first: Option<FieldRef> = value_of(fields.first());
        let first_type = first.as_ref().map(|f| f.data_type());
        if self.kind != Kind::Reduce
            && let Some(array) = self.for_array(first_type)
        {
            if fields.len() != 2 {
                return plan_err!("{}", self.usage());
            }
            return array.lambda_parameters(step, fields);
        }
        let map = first_type.and_then(map_fields);
        let elements: Vec<FieldRef> = match (first_type, &map) {
            (_, Some((k, v))) => vec![Arc::clone(k), Arc::clone(v)],
            (Some(DataType::List(item)), None) => vec![Arc::clone(item)],
            _ => return plan_err!("{}", self.usage()),
        };
        match (self.kind, fields) {
            (Kind::Transform, [_, ValueOrLambda::Lambda(_), ValueOrLambda::Lambda(_)])
                if map.is_some() =>
            {
                Ok(LambdaParametersProgress::Complete(vec![
                    elements.clone(),
                    elements,
                ]))
            }
            (Kind::Filter, [_, ValueOrLambda::Lambda(_)]) if map.is_some() => {
                Ok(LambdaParametersProgress::Complete(vec![elements]))
            }
            (
                Kind::Reduce,
                [
                    _,
                    ValueOrLambda::Value(initial),
                    ValueOrLambda::Lambda(output),
                ],
            ) => {
                // The state takes the lambda's type once it is known, so `REDUCE(a, 0, (s, x)
                // => s + x)` over DOUBLEs folds in DOUBLE.
                let state = match output {
                    Some(out) => Arc::new(out.as_ref().clone().with_nullable(true)),
                    None => Arc::new(initial.as_ref().clone().with_nullable(true)),
                };
                let mut params = vec![state];
                params.extend(elements);
                let settled = output.is_some() && (step == 0 || step >= 2);
                Ok(if settled {
                    LambdaParametersProgress::Complete(vec![params])
                } else {
                    LambdaParametersProgress::Partial(vec![Some(params)])
                })
            }
            _ => plan_err!("{}", self.usage()),
        }
    }

    fn coerce_values_for_lambdas(
        &self,
        fields: &[ValueOrLambda<DataType, DataType>],
    ) -> Result<Option<Vec<DataType>>> {
        let first: Option<DataType> = value_of(fields.first());
        if self.kind != Kind::Reduce
            && let Some(array) = self.for_array(first.as_ref())
        {
            return array.coerce_values_for_lambdas(fields);
        }
        match (self.kind, fields) {
            (Kind::Reduce, [ValueOrLambda::Value(c), _, ValueOrLambda::Lambda(output)]) => {
                Ok(Some(vec![c.clone(), output.clone()]))
            }
            _ => Ok(None),
        }
    }

    fn return_field_from_args(&self, args: HigherOrderReturnFieldArgs) -> Result<FieldRef> {
        let first: Option<FieldRef> = value_of(args.arg_fields.first());
        let first_type = first.as_ref().map(|f| f.data_type());
        if self.kind != Kind::Reduce
            && let Some(array) = self.for_array(first_type)
        {
            return array.return_field_from_args(args);
        }
        let data_type = match (self.kind, args.arg_fields) {
            (Kind::Transform, [_, ValueOrLambda::Lambda(k), ValueOrLambda::Lambda(v)]) => {
                map_type(k.data_type(), v.data_type())
            }
            (Kind::Filter, [ValueOrLambda::Value(map), _]) => map.data_type().clone(),
            (Kind::Reduce, [_, _, ValueOrLambda::Lambda(out)]) => out.data_type().clone(),
            _ => return plan_err!("{}", self.usage()),
        };
        Ok(Arc::new(Field::new(self.name(), data_type, true)))
    }

    fn invoke_with_args(&self, args: HigherOrderFunctionArgs) -> Result<ColumnarValue> {
        let first = value_of(args.args.first());
        if self.kind != Kind::Reduce
            && let Some(array) = self.for_array(first.as_ref().map(|v| v.data_type()).as_ref())
        {
            return array.invoke_with_args(args);
        }
        let out = match self.kind {
            Kind::Reduce => self.reduce(&args)?,
            Kind::Transform | Kind::Filter => {
                let Some(map) = first else {
                    return exec_err!("{}", self.usage());
                };
                let map = map.into_array(args.number_rows)?;
                if !matches!(map.data_type(), DataType::Map(..)) {
                    return exec_err!("{}", self.usage());
                }
                if map.null_count() == map.len() {
                    new_null_array(args.return_type(), map.len())
                } else if self.kind == Kind::Transform {
                    self.transform_map(&args, map.as_map())?
                } else {
                    self.filter_map(&args, map.as_map())?
                }
            }
        };
        Ok(ColumnarValue::Array(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_fold_in_java_hash_map_order() {
        assert_eq!(java_string_hash("nope"), 3_387_254);
        let keys: ArrayRef = Arc::new(arrow::array::StringArray::from(vec![
            "yes, thanks",
            "nope",
            "sure, yeah",
        ]));
        // A table of 4 buckets: "nope" shares bucket 0 with "yes, thanks" but came later.
        assert_eq!(java_hash_map_order(&keys, &[0, 3]), [0, 2, 1]);
    }

    #[test]
    fn entries_of_sliced_maps_start_at_zero() {
        let t = map_type(&DataType::Utf8, &DataType::Int32);
        let DataType::Map(field, _) = &t else {
            unreachable!("a map type")
        };
        let DataType::Struct(kv) = field.data_type().clone() else {
            unreachable!("a struct of entries")
        };
        let keys: ArrayRef = Arc::new(arrow::array::StringArray::from(vec!["a", "b", "c"]));
        let values: ArrayRef = Arc::new(arrow::array::Int32Array::from(vec![1, 2, 3]));
        let map = MapArray::try_new(
            Arc::clone(field),
            OffsetBuffer::new(vec![0, 1, 3].into()),
            StructArray::try_new(kv, vec![keys, values], None).unwrap_or_else(|e| panic!("{e}")),
            None,
            false,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let sliced = map.slice(1, 1);
        let e = entries(&sliced);
        assert_eq!(e.offsets, [0, 2]);
        assert_eq!(e.rows.values().to_vec(), [0, 0]);
        assert_eq!(e.keys.len(), 2);
    }
}

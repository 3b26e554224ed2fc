//! ksqlDB's map functions: `AS_MAP(keys, values)`, `MAP_UNION(map1, map2)`,
//! `ENTRIES(map, sorted)` and `SPLIT_TO_MAP(text, entry_delimiter, kv_delimiter)`.
//!
//! Maps have STRING keys, as in ksqlDB's signatures of these functions; values of any type are
//! moved with Arrow's `take`/`interleave`, so the functions stay columnar whatever they hold.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, ListArray, MapArray, StringArray, StructArray,
    UInt32Array,
};
use arrow::buffer::{NullBuffer, OffsetBuffer};
use arrow::compute::{interleave, take};
use arrow::datatypes::{DataType, Field, Fields};
use datafusion_common::{Result, exec_err};
use datafusion_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

/// The four functions.
pub(crate) fn functions() -> Vec<Arc<ScalarUDF>> {
    [Kind::AsMap, Kind::MapUnion, Kind::Entries, Kind::SplitToMap]
        .map(|kind| {
            Arc::new(ScalarUDF::from(MapFn {
                kind,
                signature: Signature::user_defined(Volatility::Immutable),
            }))
        })
        .into()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    AsMap,
    MapUnion,
    Entries,
    SplitToMap,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct MapFn {
    kind: Kind,
    signature: Signature,
}

/// The Arrow type of ksqlDB's `MAP<STRING, value>`, as `SqlType::to_arrow` builds it.
fn map_type(value: &DataType) -> DataType {
    DataType::Map(Arc::new(entries_field(value)), false)
}

fn entries_field(value: &DataType) -> Field {
    Field::new(
        "entries",
        DataType::Struct(Fields::from(vec![
            Field::new("key", DataType::Utf8, false),
            Field::new("value", value.clone(), true),
        ])),
        false,
    )
}

/// The value type of a `MAP<STRING, value>` type.
fn string_map_values(t: &DataType) -> Option<&DataType> {
    match t {
        DataType::Map(entries, _) => match entries.data_type() {
            DataType::Struct(kv) if kv.len() == 2 && kv[0].data_type() == &DataType::Utf8 => {
                Some(kv[1].data_type())
            }
            _ => None,
        },
        _ => None,
    }
}

fn list_item(t: &DataType) -> Option<&DataType> {
    match t {
        DataType::List(item) => Some(item.data_type()),
        _ => None,
    }
}

/// A map array from each row's keys and values (`offsets` delimit the rows).
fn build_map(
    value_type: &DataType,
    offsets: Vec<i32>,
    keys: StringArray,
    values: ArrayRef,
    valid: Vec<bool>,
) -> Result<ArrayRef> {
    let DataType::Struct(kv) = entries_field(value_type).data_type().clone() else {
        return exec_err!("malformed map type");
    };
    let entries = StructArray::try_new(kv, vec![Arc::new(keys), values], None)?;
    Ok(Arc::new(MapArray::try_new(
        Arc::new(entries_field(value_type)),
        OffsetBuffer::new(offsets.into()),
        entries,
        Some(NullBuffer::from(valid)),
        false,
    )?))
}

/// ksqlDB's `SPLIT_TO_MAP` of one text: entries split on `entry`, skipping empty ones and
/// those without `kv`; the key is the text before the first `kv`, the value the text up to the
/// next; a later key replaces an earlier one in its place.
fn split_to_map(text: &str, entry: &str, kv: &str) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    for part in text
        .split(entry)
        .filter(|p| !p.is_empty() && p.contains(kv))
    {
        let mut pieces = part.split(kv);
        let key = pieces.next().unwrap_or_default().to_string();
        let value = pieces.next().unwrap_or_default().to_string();
        match pairs.iter_mut().find(|(k, _)| *k == key) {
            Some(pair) => pair.1 = value,
            None => pairs.push((key, value)),
        }
    }
    pairs
}

impl MapFn {
    fn sql_name(&self) -> &'static str {
        match self.kind {
            Kind::AsMap => "AS_MAP",
            Kind::MapUnion => "MAP_UNION",
            Kind::Entries => "ENTRIES",
            Kind::SplitToMap => "SPLIT_TO_MAP",
        }
    }
}

impl ScalarUDFImpl for MapFn {
    fn name(&self) -> &str {
        match self.kind {
            Kind::AsMap => "as_map",
            Kind::MapUnion => "map_union",
            Kind::Entries => "entries",
            Kind::SplitToMap => "split_to_map",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let text = super::is_text;
        let ok = match (self.kind, arg_types) {
            (Kind::AsMap, [keys, values]) => {
                list_item(keys).is_some_and(text) && list_item(values).is_some()
            }
            (Kind::MapUnion, [a, b]) => match (string_map_values(a), string_map_values(b)) {
                (Some(x), Some(y)) => x == y,
                _ => false,
            },
            (Kind::Entries, [map, sorted]) => {
                string_map_values(map).is_some()
                    && matches!(sorted, DataType::Boolean | DataType::Null)
            }
            (Kind::SplitToMap, [s, e, kv]) => text(s) && text(e) && text(kv),
            _ => false,
        };
        if !ok {
            return super::rejected(self.sql_name(), arg_types);
        }
        Ok(match self.kind {
            Kind::SplitToMap => vec![DataType::Utf8; 3],
            Kind::Entries => vec![arg_types[0].clone(), DataType::Boolean],
            Kind::AsMap => {
                let keys = DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true)));
                vec![keys, arg_types[1].clone()]
            }
            Kind::MapUnion => arg_types.to_vec(),
        })
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        let value = match (self.kind, arg_types) {
            (Kind::SplitToMap, _) => DataType::Utf8,
            (Kind::AsMap, [_, values, ..]) => list_item(values).cloned().unwrap_or(DataType::Null),
            (_, [map, ..]) => string_map_values(map).cloned().unwrap_or(DataType::Null),
            _ => return super::rejected(self.sql_name(), arg_types),
        };
        Ok(match self.kind {
            Kind::Entries => {
                let entry = DataType::Struct(Fields::from(vec![
                    Field::new("K", DataType::Utf8, true),
                    Field::new("V", value, true),
                ]));
                DataType::List(Arc::new(Field::new_list_field(entry, true)))
            }
            _ => map_type(&value),
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let out = match (self.kind, arrays.as_slice()) {
            (Kind::AsMap, [keys, values]) => as_map(keys.as_list::<i32>(), values.as_list())?,
            (Kind::MapUnion, [a, b]) => map_union(a.as_map(), b.as_map())?,
            (Kind::Entries, [map, sorted]) => entries(map.as_map(), sorted.as_boolean())?,
            (Kind::SplitToMap, [s, e, kv]) => {
                let (s, e, kv) = (s.as_string::<i32>(), e.as_string::<i32>(), kv.as_string());
                let mut offsets = vec![0i32];
                let (mut keys, mut values, mut valid) = (Vec::new(), Vec::new(), Vec::new());
                for i in 0..s.len() {
                    let usable = |a: &StringArray| !a.is_null(i) && !a.value(i).is_empty();
                    let row = !s.is_null(i) && usable(e) && usable(kv);
                    if row {
                        for (k, v) in split_to_map(s.value(i), e.value(i), kv.value(i)) {
                            keys.push(k);
                            values.push(Some(v));
                        }
                    }
                    offsets.push(offset(keys.len())?);
                    valid.push(row);
                }
                let values: ArrayRef = Arc::new(StringArray::from(values));
                build_map(
                    &DataType::Utf8,
                    offsets,
                    StringArray::from(keys),
                    values,
                    valid,
                )?
            }
            _ => return exec_err!("{}: wrong number of arguments", self.sql_name()),
        };
        Ok(ColumnarValue::Array(out))
    }
}

fn offset(n: usize) -> Result<i32> {
    i32::try_from(n).or_else(|_| exec_err!("a map of more than 2^31 entries"))
}

/// `AS_MAP`: the i-th key maps to the i-th value (NULL where the values run out); NULL keys
/// are left out, as a map key cannot be NULL.
fn as_map(keys: &ListArray, values: &ListArray) -> Result<ArrayRef> {
    let key_texts = keys.values().as_string::<i32>();
    let (mut offsets, mut out_keys, mut picks, mut valid) = (vec![0], vec![], vec![], vec![]);
    for i in 0..keys.len() {
        let row = !keys.is_null(i) && !values.is_null(i);
        if row {
            let (k0, k1) = (keys.value_offsets()[i], keys.value_offsets()[i + 1]);
            let (v0, v1) = (values.value_offsets()[i], values.value_offsets()[i + 1]);
            for (n, k) in (k0..k1).enumerate() {
                let k = k as usize;
                if key_texts.is_null(k) {
                    continue;
                }
                let v = v0 as usize + n;
                out_keys.push(key_texts.value(k).to_string());
                picks.push((v < v1 as usize).then_some(v as u32));
            }
        }
        offsets.push(offset(out_keys.len())?);
        valid.push(row);
    }
    let value_type = values.value_type();
    let picked = take(values.values(), &UInt32Array::from(picks), None)?;
    build_map(
        &value_type,
        offsets,
        StringArray::from(out_keys),
        picked,
        valid,
    )
}

/// `MAP_UNION`: the entries of both, the second map's value winning for a key in both; NULL
/// only when both are NULL.
fn map_union(a: &MapArray, b: &MapArray) -> Result<ArrayRef> {
    let value_type = a.value_type();
    let sides = [a, b];
    let keys = sides.map(|m| m.keys().as_string::<i32>().clone());
    let (mut offsets, mut out_keys, mut picks, mut valid) = (vec![0], vec![], vec![], vec![]);
    for i in 0..a.len() {
        let mut row: Vec<(String, (usize, usize))> = Vec::new();
        for (side, map) in sides.iter().enumerate() {
            if map.is_null(i) {
                continue;
            }
            let (start, end) = (map.value_offsets()[i], map.value_offsets()[i + 1]);
            for j in start as usize..end as usize {
                let key = keys[side].value(j);
                match row.iter_mut().find(|(k, _)| k == key) {
                    Some(entry) => entry.1 = (side, j),
                    None => row.push((key.to_string(), (side, j))),
                }
            }
        }
        for (key, pick) in row {
            out_keys.push(key);
            picks.push(pick);
        }
        offsets.push(offset(out_keys.len())?);
        valid.push(!(a.is_null(i) && b.is_null(i)));
    }
    let values: [&dyn Array; 2] = [a.values().as_ref(), b.values().as_ref()];
    let picked = interleave(&values, &picks)?;
    build_map(
        value_type,
        offsets,
        StringArray::from(out_keys),
        picked,
        valid,
    )
}

/// `ENTRIES`: the map's entries as `STRUCT<K, V>`s, in the map's order or sorted by key.
fn entries(map: &MapArray, sorted: &BooleanArray) -> Result<ArrayRef> {
    let keys = map.keys().as_string::<i32>();
    let (mut offsets, mut picks) = (vec![0i32], Vec::new());
    for i in 0..map.len() {
        if !map.is_null(i) {
            let (start, end) = (map.value_offsets()[i], map.value_offsets()[i + 1]);
            let mut row: Vec<usize> = (start as usize..end as usize).collect();
            if !sorted.is_null(i) && sorted.value(i) {
                row.sort_by(|x, y| keys.value(*x).cmp(keys.value(*y)));
            }
            picks.extend(row.into_iter().map(|j| j as u32));
        }
        offsets.push(offset(picks.len())?);
    }
    let picks = UInt32Array::from(picks);
    let k = take(map.keys(), &picks, None)?;
    let v = take(map.values(), &picks, None)?;
    let fields = Fields::from(vec![
        Field::new("K", DataType::Utf8, true),
        Field::new("V", v.data_type().clone(), true),
    ]);
    let structs = StructArray::try_new(fields.clone(), vec![k, v], None)?;
    Ok(Arc::new(ListArray::try_new(
        Arc::new(Field::new_list_field(DataType::Struct(fields), true)),
        OffsetBuffer::new(offsets.into()),
        Arc::new(structs),
        map.nulls().cloned(),
    )?))
}

#[cfg(test)]
mod tests {
    use super::split_to_map;

    #[test]
    fn splits_as_ksqldb_does() {
        let pairs = split_to_map("apple:=green/cherry:=red", "/", ":=");
        assert_eq!(
            pairs,
            [
                ("apple".into(), "green".into()),
                ("cherry".into(), "red".into())
            ]
        );
        let pairs = split_to_map("a=1//b/a=2/c=3=4", "/", "=");
        assert_eq!(pairs, [("a".into(), "2".into()), ("c".into(), "3".into())]);
    }
}

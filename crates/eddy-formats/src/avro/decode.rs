//! Avro records → column builders: each writer schema is compiled once against the columns
//! into a [`Plan`], which then decodes its records without looking anything up by name.

use std::collections::HashMap;

use arrow::datatypes::{DataType, Fields};
use eddy_registry::{SchemaType, split_wire};

use super::plan::{self, Node};
use super::wire::{read_block_len, read_bytes, read_fixed, read_long, read_str};
use crate::column::{self, ColumnBuilder, Rows, StructFields, Values};
use crate::failure::Failure;
use crate::push::{
    Integer, push_bool, push_bytes, push_decimal, push_double, push_integer, push_text, set_valid,
};
use crate::registry::RegistryFormat;

/// A writer type compiled against the column it is decoded into.
#[derive(Debug)]
enum Plan {
    Null,
    Boolean,
    /// `int` and `long`, and the logical types on them, as the number they carry.
    Integer(Integer),
    Float,
    Double,
    Bytes,
    String,
    Fixed(usize),
    Enum(Box<[String]>),
    Decimal {
        scale: i8,
        fixed: Option<usize>,
    },
    Array(Box<Plan>),
    Map(Box<Plan>),
    /// An array of `{key, value}` records (how Kafka Connect writes maps) read into a MAP.
    MapEntries {
        /// The entries are a nullable union of the record: the index of its record branch.
        union_record: Option<i64>,
        key_first: bool,
        key: Box<Plan>,
        value: Box<Plan>,
    },
    Union(Vec<Plan>),
    Record {
        /// Per writer field: the column it fills (`None`: read and dropped), and its plan.
        fields: Vec<(Option<usize>, Plan)>,
        /// The columns no writer field fills: they are null.
        absent: Vec<usize>,
    },
    /// A writer type the column cannot hold: a record that has such a value fails.
    Fail(String),
}

fn sql_name(data_type: &DataType) -> &'static str {
    crate::schema::base_type_name(data_type)
}

/// Compiles writer type `node` for a column of type `target` (`None`: the value is skipped).
fn compile(node: &Node, target: Option<&DataType>) -> Plan {
    let mismatch = |source: &str| match target {
        Some(t) => Plan::Fail(format!(
            "Can't convert type. sourceType: {source}, requiredType: {}",
            sql_name(t)
        )),
        None => Plan::Fail(String::new()),
    };
    match node {
        Node::Null => Plan::Null,
        Node::Boolean => Plan::Boolean,
        Node::Int => Plan::Integer(Integer::Int),
        Node::Long => Plan::Integer(Integer::Long),
        Node::Date => Plan::Integer(Integer::Date),
        Node::TimeMillis => Plan::Integer(Integer::TimeMillis),
        Node::TimeMicros => Plan::Integer(Integer::TimeMicros),
        Node::TimestampMillis => Plan::Integer(Integer::TimestampMillis),
        Node::TimestampMicros => Plan::Integer(Integer::TimestampMicros),
        Node::TimestampNanos => Plan::Integer(Integer::TimestampNanos),
        Node::Float => Plan::Float,
        Node::Double => Plan::Double,
        Node::Bytes => Plan::Bytes,
        Node::String => Plan::String,
        Node::Fixed(n) => Plan::Fixed(*n),
        Node::Enum(symbols) => Plan::Enum(symbols.iter().cloned().collect()),
        Node::Decimal { scale, fixed, .. } => Plan::Decimal {
            scale: *scale,
            fixed: *fixed,
        },
        Node::Union(branches) => Plan::Union(branches.iter().map(|b| compile(b, target)).collect()),
        Node::Array(item) => match target {
            None => Plan::Array(Box::new(compile(item, None))),
            Some(DataType::List(f)) => Plan::Array(Box::new(compile(item, Some(f.data_type())))),
            Some(DataType::Map(entries, _)) => match (item.non_null(), entries.data_type()) {
                (Node::Record(r), DataType::Struct(kv)) if r.fields.len() == 2 && kv.len() == 2 => {
                    let key_first = r.fields[0].name.eq_ignore_ascii_case("key");
                    let (k, v) = if key_first { (0, 1) } else { (1, 0) };
                    if !r.fields[k].name.eq_ignore_ascii_case("key")
                        || !r.fields[v].name.eq_ignore_ascii_case("value")
                    {
                        return mismatch("ARRAY");
                    }
                    let union_record = match item.as_ref() {
                        Node::Union(branches) => branches
                            .iter()
                            .position(|b| matches!(b, Node::Record(_)))
                            .map(|i| i as i64),
                        _ => None,
                    };
                    Plan::MapEntries {
                        union_record,
                        key_first,
                        key: Box::new(compile(&r.fields[k].node, Some(kv[0].data_type()))),
                        value: Box::new(compile(&r.fields[v].node, Some(kv[1].data_type()))),
                    }
                }
                _ => mismatch("ARRAY"),
            },
            Some(_) => mismatch("ARRAY"),
        },
        Node::Map(values) => match target {
            None => Plan::Map(Box::new(compile(values, None))),
            Some(DataType::Map(entries, _)) => match entries.data_type() {
                DataType::Struct(kv) if kv.len() == 2 => {
                    Plan::Map(Box::new(compile(values, Some(kv[1].data_type()))))
                }
                _ => mismatch("MAP"),
            },
            Some(_) => mismatch("MAP"),
        },
        Node::Record(record) => {
            let columns = match target {
                None => None,
                Some(DataType::Struct(columns)) => Some(columns),
                Some(_) => return mismatch("STRUCT"),
            };
            let mut taken = vec![false; columns.map_or(0, |c| c.len())];
            let fields = record
                .fields
                .iter()
                .map(|f| {
                    let column = columns.and_then(|c| plan::match_column(c, &f.name, &taken));
                    if let Some(i) = column {
                        taken[i] = true;
                    }
                    let column_type = column.and_then(|i| columns.map(|c| c[i].data_type()));
                    (column, compile(&f.node, column_type))
                })
                .collect();
            let absent = taken
                .iter()
                .enumerate()
                .filter(|(_, t)| !**t)
                .map(|(i, _)| i)
                .collect();
            Plan::Record { fields, absent }
        }
    }
}

/// Decodes one writer value of `plan` into `col` (`None`: reads past it).
fn decode(plan: &Plan, col: Option<&mut ColumnBuilder>, buf: &mut &[u8]) -> Result<(), Failure> {
    match plan {
        Plan::Null => {
            if let Some(col) = col {
                if !col.nullable {
                    return Err(Failure::new("null value for a non-nullable field"));
                }
                col.append_null();
            }
        }
        Plan::Boolean => {
            let (&b, rest) = buf
                .split_first()
                .ok_or_else(|| Failure::new("Avro record ends early"))?;
            *buf = rest;
            if let Some(col) = col {
                push_bool(col, b != 0)?;
            }
        }
        Plan::Integer(kind) => {
            let v = read_long(buf)?;
            if let Some(col) = col {
                push_integer(col, *kind, v)?;
            }
        }
        Plan::Float | Plan::Double => {
            let v = if matches!(plan, Plan::Float) {
                let b = read_fixed(buf, 4)?;
                f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            } else {
                let b = read_fixed(buf, 8)?;
                f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
            };
            if let Some(col) = col {
                push_double(col, v)?;
            }
        }
        Plan::String => {
            let s = read_str(buf)?;
            if let Some(col) = col {
                push_text(col, s)?;
            }
        }
        Plan::Enum(symbols) => {
            let i = read_long(buf)?;
            let s = usize::try_from(i)
                .ok()
                .and_then(|i| symbols.get(i))
                .ok_or_else(|| Failure::new(format!("Avro enum index {i} out of range")))?;
            if let Some(col) = col {
                push_text(col, s)?;
            }
        }
        Plan::Bytes | Plan::Fixed(_) => {
            let bytes = match plan {
                Plan::Fixed(n) => read_fixed(buf, *n)?,
                _ => read_bytes(buf)?,
            };
            if let Some(col) = col {
                push_bytes(col, bytes)?;
            }
        }
        Plan::Decimal { scale, fixed } => {
            let bytes = match fixed {
                Some(n) => read_fixed(buf, *n)?,
                None => read_bytes(buf)?,
            };
            if let Some(col) = col {
                push_decimal(col, super::wire::decimal_value(bytes)?, *scale)?;
            }
        }
        Plan::Union(branches) => {
            let i = read_long(buf)?;
            let branch = usize::try_from(i)
                .ok()
                .and_then(|i| branches.get(i))
                .ok_or_else(|| Failure::new(format!("Avro union index {i} out of range")))?;
            decode(branch, col, buf)?;
        }
        Plan::Array(item) => match col {
            None => skip_blocks(buf, |buf| decode(item, None, buf))?,
            Some(col) => {
                let target = col.type_name();
                let Values::List { offsets, items } = &mut col.values else {
                    return Err(Failure::convert("ARRAY", target));
                };
                let mut index = 0;
                skip_blocks(buf, |buf| {
                    let r = decode(item, Some(&mut **items), buf).map_err(|e| e.at_index(index));
                    index += 1;
                    r
                })?;
                column::push_offset(offsets, items.len())?;
                set_valid(col);
            }
        },
        Plan::Map(value) => match col {
            None => skip_blocks(buf, |buf| {
                read_bytes(buf)?;
                decode(value, None, buf)
            })?,
            Some(col) => decode_map(col, "MAP", buf, |keys, values, buf| {
                let key = read_str(buf)?;
                push_text(keys, key)?;
                decode(value, Some(values), buf).map_err(|e| e.at_field(key))
            })?,
        },
        Plan::MapEntries {
            union_record,
            key_first,
            key,
            value,
        } => {
            let Some(col) = col else {
                return Err(Failure::new("map entries without a map column"));
            };
            decode_map(col, "ARRAY", buf, |keys, values, buf| {
                if let Some(record) = union_record
                    && read_long(buf)? != *record
                {
                    return Err(Failure::new("null map entry"));
                }
                if *key_first {
                    decode(key, Some(keys), buf)?;
                    decode(value, Some(values), buf)
                } else {
                    decode(value, Some(values), buf)?;
                    decode(key, Some(keys), buf)
                }
            })?;
        }
        Plan::Record { fields, absent } => match col {
            None => {
                for (_, plan) in fields {
                    decode(plan, None, buf)?;
                }
            }
            Some(col) => {
                let target = col.type_name();
                let Values::Struct(s) = &mut col.values else {
                    return Err(Failure::convert("STRUCT", target));
                };
                decode_record(fields, absent, s, buf)?;
                set_valid(col);
            }
        },
        Plan::Fail(why) => return Err(Failure::new(why.clone())),
    }
    Ok(())
}

/// Decodes a record's fields into the children of a STRUCT (or of a row).
fn decode_record(
    fields: &[(Option<usize>, Plan)],
    absent: &[usize],
    s: &mut StructFields,
    buf: &mut &[u8],
) -> Result<(), Failure> {
    let StructFields {
        fields: names,
        children,
        ..
    } = s;
    for (column, plan) in fields {
        match column {
            Some(i) => decode(plan, Some(&mut children[*i]), buf)
                .map_err(|e| e.at_field(names[*i].name()))?,
            None => decode(plan, None, buf)?,
        }
    }
    for &i in absent {
        children[i].append_null();
    }
    Ok(())
}

/// Decodes the blocks of a map (or of Kafka Connect's map-entry records, `source` says which)
/// into a MAP column; `entry` reads one entry into the key and value builders.
fn decode_map(
    col: &mut ColumnBuilder,
    source: &str,
    buf: &mut &[u8],
    mut entry: impl FnMut(&mut ColumnBuilder, &mut ColumnBuilder, &mut &[u8]) -> Result<(), Failure>,
) -> Result<(), Failure> {
    let target = col.type_name();
    let Values::Map {
        offsets,
        keys,
        values,
        ..
    } = &mut col.values
    else {
        return Err(Failure::convert(source, target));
    };
    skip_blocks(buf, |buf| entry(keys, values, buf))?;
    column::push_offset(offsets, keys.len())?;
    set_valid(col);
    Ok(())
}

/// Reads the blocks of an array or map, calling `item` for each item.
fn skip_blocks(
    buf: &mut &[u8],
    mut item: impl FnMut(&mut &[u8]) -> Result<(), Failure>,
) -> Result<(), Failure> {
    loop {
        let n = read_block_len(buf)?;
        if n == 0 {
            return Ok(());
        }
        for _ in 0..n {
            item(buf)?;
        }
    }
}

/// Decodes AVRO records, compiling each writer schema once.
#[derive(Debug)]
pub(crate) struct AvroDecoder {
    format: RegistryFormat,
    /// The type records decode into: the row (a STRUCT of the columns) when wrapped, else
    /// the single column's type.
    target: DataType,
    wrapped: bool,
    plans: HashMap<u32, Result<Plan, String>>,
}

impl AvroDecoder {
    pub(crate) fn new(format: RegistryFormat, columns: &Fields, wrapped: bool) -> Self {
        let target = match (wrapped, columns.first()) {
            (false, Some(column)) => column.data_type().clone(),
            _ => DataType::Struct(columns.clone()),
        };
        Self {
            format,
            target,
            wrapped,
            plans: HashMap::new(),
        }
    }

    fn plan(&mut self, id: u32) -> Result<&Plan, Failure> {
        if !self.plans.contains_key(&id) {
            let schema = self.format.registry.schema(id).map_err(|e| {
                Failure::new(format!("Error retrieving Avro schema for id {id}: {e}"))
            })?;
            let compiled = if schema.schema_type != SchemaType::Avro {
                Err(format!(
                    "Schema {id} is a {} schema, not an Avro schema",
                    schema.schema_type
                ))
            } else {
                plan::parse(&schema.text).map(|(_, node)| compile(&node, Some(&self.target)))
            };
            self.plans.insert(id, compiled);
        }
        match self.plans.get(&id) {
            Some(Ok(plan)) => Ok(plan),
            Some(Err(why)) => Err(Failure::new(why.clone())),
            None => Err(Failure::new("schema plan lost")),
        }
    }

    /// Appends one record to `rows`.
    pub(crate) fn decode(&mut self, bytes: &[u8], rows: &mut Rows) -> Result<(), Failure> {
        let (id, mut body) =
            split_wire(bytes).ok_or_else(|| Failure::new("Unknown magic byte!"))?;
        let wrapped = self.wrapped;
        let plan = self.plan(id)?;
        if !wrapped {
            let column = rows
                .columns
                .children
                .first_mut()
                .ok_or_else(|| Failure::new("no column to decode into"))?;
            return decode(plan, Some(column), &mut body);
        }
        let mut plan = plan;
        // A nullable record: its null is an all-null row.
        if let Plan::Union(branches) = plan {
            let i = read_long(&mut body)?;
            plan = usize::try_from(i)
                .ok()
                .and_then(|i| branches.get(i))
                .ok_or_else(|| Failure::new(format!("Avro union index {i} out of range")))?;
        }
        match plan {
            Plan::Record { fields, absent } => {
                decode_record(fields, absent, &mut rows.columns, &mut body)
            }
            Plan::Null => {
                rows.columns.append_null();
                Ok(())
            }
            Plan::Fail(why) => Err(Failure::new(why.clone())),
            _ => Err(Failure::new(
                "Can't convert type. sourceType: a primitive, requiredType: STRUCT (the value is not an Avro record; set WRAP_SINGLE_VALUE=false to read a single anonymous value)",
            )),
        }
    }
}

//! Protobuf records → column builders. Each writer message is compiled once against the
//! columns into a [`MessagePlan`] (which field fills which column, and how); a record is
//! parsed into a dynamic message that the plan walks.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::datatypes::{DataType, Fields};
use eddy_registry::{SchemaType, split_wire};
use prost_reflect::{
    DynamicMessage, EnumDescriptor, FieldDescriptor, Kind, MapKey, MessageDescriptor, Value,
};

use super::ProtobufFormat;
use super::types::{Filler, Special, fill_columns, special};
use crate::column::{self, ColumnBuilder, Rows, StructFields, Values};
use crate::failure::Failure;
use crate::push::{
    Integer, push_bool, push_bytes, push_decimal, push_double, push_integer, push_text, set_valid,
};

/// How one value of a field goes into its column.
#[derive(Debug)]
enum Plan {
    /// A bool, number, string or bytes, converted by its own type.
    Scalar,
    Enum(EnumDescriptor),
    /// `google.protobuf.*Value`: the value of its field 1.
    Wrapper(Box<Plan>),
    Timestamp,
    Date,
    TimeOfDay,
    Decimal,
    Message(Arc<MessagePlan>),
    List(Box<Plan>),
    /// A map: the plan of its values (keys are strings).
    Map(Box<Plan>),
    /// A field the column cannot hold: a record that has a value for it fails.
    Fail(String),
}

/// A message compiled against the fields of a STRUCT (or the columns of a row).
#[derive(Debug)]
struct MessagePlan {
    fields: Vec<PlanField>,
    /// The oneofs, each read into a STRUCT column of its members.
    oneofs: Vec<OneofPlan>,
    /// The columns no field fills: they are null.
    absent: Vec<usize>,
}

/// A `oneof` read into a STRUCT column: null when no member is set, else the members
/// (only the one set is not null).
#[derive(Debug)]
struct OneofPlan {
    column: usize,
    members: Vec<FieldDescriptor>,
    plan: MessagePlan,
}

#[derive(Debug)]
struct PlanField {
    column: usize,
    field: FieldDescriptor,
    plan: Plan,
}

fn mismatch(source: &str, target: &DataType) -> Plan {
    Plan::Fail(format!(
        "Can't convert type. sourceType: {source}, requiredType: {}",
        crate::schema::base_type_name(target)
    ))
}

/// Compiles a message against `columns`: fields fill the columns of their name, exactly or
/// else ignoring case.
fn compile_message(message: &MessageDescriptor, columns: &Fields, depth: usize) -> MessagePlan {
    compile_fields(message.fields(), true, columns, depth)
}

/// Compiles some fields of a message against `columns`; with `group_oneofs`, the members
/// of a oneof fill the STRUCT column named as the oneof.
fn compile_fields(
    message_fields: impl Iterator<Item = FieldDescriptor>,
    group_oneofs: bool,
    columns: &Fields,
    depth: usize,
) -> MessagePlan {
    let mut fields = Vec::new();
    let mut oneofs = Vec::new();
    let mut taken = vec![false; columns.len()];
    for (column, filler) in fill_columns(message_fields, group_oneofs, columns) {
        taken[column] = true;
        match (filler, columns[column].data_type()) {
            (Filler::Oneof(oneof), DataType::Struct(inner)) => oneofs.push(OneofPlan {
                column,
                members: oneof.fields().collect(),
                plan: compile_fields(oneof.fields(), false, inner, depth + 1),
            }),
            // A oneof's column that is no STRUCT: a record that sets its first member fails.
            (Filler::Oneof(oneof), other) => {
                if let Some(field) = oneof.fields().next() {
                    fields.push(PlanField {
                        column,
                        field,
                        plan: mismatch("STRUCT", other),
                    });
                }
            }
            (Filler::Field(field), target) => fields.push(PlanField {
                column,
                plan: compile_field(&field, target, depth),
                field,
            }),
        }
    }
    let absent = (0..columns.len()).filter(|&i| !taken[i]).collect();
    MessagePlan {
        fields,
        oneofs,
        absent,
    }
}

fn compile_field(field: &FieldDescriptor, target: &DataType, depth: usize) -> Plan {
    if field.is_map() {
        let value = match field.kind() {
            Kind::Message(entry) => Some(entry.map_entry_value_field()),
            _ => None,
        };
        return match (value, target) {
            (Some(value), DataType::Map(entries, _)) => match entries.data_type() {
                DataType::Struct(kv) if kv.len() == 2 => {
                    Plan::Map(Box::new(compile_single(&value, kv[1].data_type(), depth)))
                }
                _ => mismatch("MAP", target),
            },
            _ => mismatch("MAP", target),
        };
    }
    if field.is_list() {
        return match target {
            DataType::List(item) => {
                Plan::List(Box::new(compile_single(field, item.data_type(), depth)))
            }
            _ => mismatch("ARRAY", target),
        };
    }
    compile_single(field, target, depth)
}

/// The plan of one value of a field (an item, if it is repeated).
fn compile_single(field: &FieldDescriptor, target: &DataType, depth: usize) -> Plan {
    if depth > 64 {
        return Plan::Fail("Protobuf messages nest too deeply".into());
    }
    match field.kind() {
        Kind::Enum(e) => Plan::Enum(e),
        Kind::Message(message) => match special(&message) {
            Some(Special::Wrapper) => match message.get_field(1) {
                Some(inner) => Plan::Wrapper(Box::new(compile_single(&inner, target, depth + 1))),
                None => Plan::Fail("a wrapper without a value".into()),
            },
            Some(Special::Timestamp) => Plan::Timestamp,
            Some(Special::Date) => Plan::Date,
            Some(Special::TimeOfDay) => Plan::TimeOfDay,
            Some(Special::Decimal) => Plan::Decimal,
            None => match target {
                DataType::Struct(columns) => {
                    Plan::Message(Arc::new(compile_message(&message, columns, depth + 1)))
                }
                _ => mismatch("STRUCT", target),
            },
        },
        _ => Plan::Scalar,
    }
}

/// The Unix epoch's day number from the start of the common era.
pub(crate) const EPOCH_DAYS_FROM_CE: i64 = 719_163;

/// Days since the epoch of a `google.type.Date`.
fn days_from_civil(year: i64, month: i64, day: i64) -> Result<i64, Failure> {
    use chrono::Datelike as _;
    i32::try_from(year)
        .ok()
        .zip(u32::try_from(month).ok().zip(u32::try_from(day).ok()))
        .and_then(|(y, (m, d))| chrono::NaiveDate::from_ymd_opt(y, m, d))
        .map(|d| i64::from(d.num_days_from_ce()) - EPOCH_DAYS_FROM_CE)
        .ok_or_else(|| Failure::new(format!("{year}-{month}-{day} is not a date")))
}

fn int_field(m: &DynamicMessage, number: u32) -> i64 {
    match m.get_field_by_number(number).as_deref() {
        Some(Value::I32(v)) => i64::from(*v),
        Some(Value::I64(v)) => *v,
        Some(Value::U32(v)) => i64::from(*v),
        Some(Value::U64(v)) => *v as i64,
        _ => 0,
    }
}

/// Appends one present value.
fn decode_value(plan: &Plan, value: &Value, col: &mut ColumnBuilder) -> Result<(), Failure> {
    let message = || match value {
        Value::Message(m) => Ok(m),
        _ => Err(Failure::new("expected a Protobuf message")),
    };
    match plan {
        Plan::Scalar => match value {
            Value::Bool(b) => push_bool(col, *b),
            Value::I32(v) => push_integer(col, Integer::Int, i64::from(*v)),
            Value::I64(v) => push_integer(col, Integer::Long, *v),
            Value::U32(v) => push_integer(col, Integer::Long, i64::from(*v)),
            Value::U64(v) => push_integer(col, Integer::Long, *v as i64),
            Value::F32(v) => push_double(col, f64::from(*v)),
            Value::F64(v) => push_double(col, *v),
            Value::String(s) => push_text(col, s),
            Value::Bytes(b) => push_bytes(col, b),
            Value::EnumNumber(n) => push_integer(col, Integer::Int, i64::from(*n)),
            Value::Message(_) | Value::List(_) | Value::Map(_) => {
                Err(Failure::convert("STRUCT", col.type_name()))
            }
        },
        Plan::Enum(e) => match value {
            Value::EnumNumber(n) => match e.get_value(*n) {
                Some(symbol) => push_text(col, symbol.name()),
                None => push_text(col, &n.to_string()),
            },
            _ => Err(Failure::new("expected a Protobuf enum")),
        },
        Plan::Wrapper(inner) => {
            let m = message()?;
            match m.get_field_by_number(1) {
                Some(v) => decode_value(inner, &v, col),
                None => {
                    col.append_null();
                    Ok(())
                }
            }
        }
        Plan::Timestamp => {
            let m = message()?;
            let millis = int_field(m, 1) * 1_000 + int_field(m, 2).div_euclid(1_000_000);
            push_integer(col, Integer::TimestampMillis, millis)
        }
        Plan::Date => {
            let m = message()?;
            let days = days_from_civil(int_field(m, 1), int_field(m, 2), int_field(m, 3))?;
            push_integer(col, Integer::Date, days)
        }
        Plan::TimeOfDay => {
            let m = message()?;
            let millis = ((int_field(m, 1) * 60 + int_field(m, 2)) * 60 + int_field(m, 3)) * 1_000
                + int_field(m, 4) / 1_000_000;
            push_integer(col, Integer::TimeMillis, millis)
        }
        Plan::Decimal => {
            let m = message()?;
            let bytes = match m.get_field_by_number(1).as_deref() {
                Some(Value::Bytes(b)) => b.clone(),
                _ => Default::default(),
            };
            let unscaled = crate::avro::wire::decimal_value(&bytes)?;
            let scale = i8::try_from(int_field(m, 3))
                .map_err(|_| Failure::new("Protobuf decimal scale out of range"))?;
            push_decimal(col, unscaled, scale)
        }
        Plan::Message(plan) => {
            let m = message()?;
            let target = col.type_name();
            let Values::Struct(s) = &mut col.values else {
                return Err(Failure::convert("STRUCT", target));
            };
            decode_message(plan, m, s)?;
            set_valid(col);
            Ok(())
        }
        Plan::List(item) => {
            let Value::List(values) = value else {
                return Err(Failure::new("expected a repeated field"));
            };
            let target = col.type_name();
            let Values::List { offsets, items } = &mut col.values else {
                return Err(Failure::convert("ARRAY", target));
            };
            for (index, v) in values.iter().enumerate() {
                decode_value(item, v, items).map_err(|e| e.at_index(index))?;
            }
            column::push_offset(offsets, items.len())?;
            set_valid(col);
            Ok(())
        }
        Plan::Map(value_plan) => {
            let Value::Map(entries) = value else {
                return Err(Failure::new("expected a map field"));
            };
            let target = col.type_name();
            let Values::Map {
                offsets,
                keys,
                values,
                ..
            } = &mut col.values
            else {
                return Err(Failure::convert("MAP", target));
            };
            let mut sorted: Vec<(&MapKey, &Value)> = entries.iter().collect();
            sorted.sort_by(|a, b| a.0.cmp(b.0));
            for (key, v) in sorted {
                let MapKey::String(key) = key else {
                    return Err(Failure::new(
                        "PROTOBUF format only supports MAP types with STRING keys",
                    ));
                };
                push_text(keys, key)?;
                decode_value(value_plan, v, values).map_err(|e| e.at_field(key))?;
            }
            column::push_offset(offsets, keys.len())?;
            set_valid(col);
            Ok(())
        }
        Plan::Fail(why) => Err(Failure::new(why.clone())),
    }
}

/// Decodes a message's fields into the children of a STRUCT (or of a row). An absent field
/// with presence (a message, an `optional` or `oneof` field) is null; an absent plain
/// `proto3` field is its type's default, as Protobuf reads it, except `bytes`, which Kafka
/// Connect's converter reads as null (its schema gives bytes no default).
fn decode_message(
    plan: &MessagePlan,
    m: &DynamicMessage,
    s: &mut StructFields,
) -> Result<(), Failure> {
    let StructFields {
        fields: names,
        children,
        ..
    } = s;
    for f in &plan.fields {
        let col = &mut children[f.column];
        let absent_is_null = f.field.supports_presence() || f.field.kind() == Kind::Bytes;
        if !f.field.is_list() && !f.field.is_map() && absent_is_null && !m.has_field(&f.field) {
            col.append_null();
            continue;
        }
        decode_value(&f.plan, &m.get_field(&f.field), col)
            .map_err(|e| e.at_field(names[f.column].name()))?;
    }
    for o in &plan.oneofs {
        let col = &mut children[o.column];
        if !o.members.iter().any(|f| m.has_field(f)) {
            col.append_null();
            continue;
        }
        let target = col.type_name();
        let Values::Struct(s) = &mut col.values else {
            return Err(Failure::convert("STRUCT", target));
        };
        decode_message(&o.plan, m, s).map_err(|e| e.at_field(names[o.column].name()))?;
        set_valid(col);
    }
    for &i in &plan.absent {
        children[i].append_null();
    }
    Ok(())
}

/// A compiled writer message.
type Compiled = Result<(MessageDescriptor, MessagePlan), String>;

/// Decodes PROTOBUF and PROTOBUF_NOSR records, compiling each writer message once.
#[derive(Debug)]
pub(crate) struct ProtobufDecoder {
    format: ProtobufFormat,
    columns: Fields,
    /// By schema id and message indexes.
    plans: HashMap<(u32, Vec<i64>), Compiled>,
    /// PROTOBUF_NOSR: the message derived from the columns.
    derived: Option<Compiled>,
}

impl ProtobufDecoder {
    pub(crate) fn new(format: ProtobufFormat, columns: &Fields) -> Self {
        let derived = format.registry.is_none().then(|| {
            let text =
                super::derive_proto(columns, None, format.nullable).map_err(|e| e.to_string())?;
            let file = super::schema::compile(&text, &[])?;
            let message = super::schema::message(&file, None)?;
            let plan = compile_message(&message, columns, 0);
            Ok((message, plan))
        });
        Self {
            format,
            columns: columns.clone(),
            plans: HashMap::new(),
            derived,
        }
    }

    fn compile(&self, id: u32, path: &[i64]) -> Compiled {
        let registry = self
            .format
            .registry
            .as_ref()
            .ok_or_else(|| "no schema registry".to_string())?;
        let schema = registry
            .registry
            .schema(id)
            .map_err(|e| format!("Error retrieving Protobuf schema for id {id}: {e}"))?;
        if schema.schema_type != SchemaType::Protobuf {
            return Err(format!(
                "Schema {id} is a {} schema, not a Protobuf schema",
                schema.schema_type
            ));
        }
        let references = super::schema::references(registry.registry.as_ref(), &schema)?;
        let file = super::schema::compile(&schema.text, &references)?;
        let message = super::schema::message_at(&file, path)?;
        let plan = compile_message(&message, &self.columns, 0);
        Ok((message, plan))
    }

    /// Appends one record to `rows`.
    pub(crate) fn decode(&mut self, bytes: &[u8], rows: &mut Rows) -> Result<(), Failure> {
        let (compiled, body) = if self.format.registry.is_some() {
            let (id, mut body) =
                split_wire(bytes).ok_or_else(|| Failure::new("Unknown magic byte!"))?;
            let path = super::schema::read_indexes(&mut body).map_err(Failure::new)?;
            let key = (id, path);
            if !self.plans.contains_key(&key) {
                let compiled = self.compile(key.0, &key.1);
                self.plans.insert(key.clone(), compiled);
            }
            (self.plans.get(&key), body)
        } else {
            (self.derived.as_ref(), bytes)
        };
        let (message, plan) = match compiled {
            Some(Ok(compiled)) => compiled,
            Some(Err(why)) => return Err(Failure::new(why.clone())),
            None => return Err(Failure::new("schema plan lost")),
        };
        let m = DynamicMessage::decode(message.clone(), body)
            .map_err(|e| Failure::new(format!("Invalid Protobuf record: {e}")))?;
        decode_message(plan, &m, &mut rows.columns)
    }
}

#[cfg(test)]
mod tests {
    use super::days_from_civil;

    #[test]
    fn civil_days() -> Result<(), super::Failure> {
        assert_eq!(days_from_civil(1970, 1, 1)?, 0);
        assert_eq!(days_from_civil(2000, 3, 1)?, 11_017);
        assert_eq!(days_from_civil(1969, 12, 31)?, -1);
        assert!(days_from_civil(2001, 2, 29).is_err());
        Ok(())
    }
}

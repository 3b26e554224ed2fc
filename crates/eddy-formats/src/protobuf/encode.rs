//! Column values → Protobuf records: the writer message (derived from the columns, or
//! registered and named by id) is compiled once against the columns into an [`EncMessage`];
//! each row is built into a dynamic message and encoded.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::datatypes::{DataType, Fields, SchemaRef};
use eddy_registry::{Schema, SchemaType, wire_prefix};
use prost_reflect::prost::Message as _;
use prost_reflect::{
    DynamicMessage, EnumDescriptor, FieldDescriptor, Kind, MapKey, MessageDescriptor, Value,
};

use super::ProtobufFormat;
use super::types::{Filler, Special, fill_columns, special};
use crate::FormatError;
use crate::view::ColumnView;

/// How one value of a column is written as a field's type.
#[derive(Debug)]
enum Enc {
    /// A bool, number, string or bytes field of this kind.
    Scalar(Kind),
    Enum(EnumDescriptor),
    /// `google.protobuf.*Value`: the wrapper message and its value's encoding.
    Wrapper(MessageDescriptor, Box<Enc>),
    Timestamp(MessageDescriptor),
    Date(MessageDescriptor),
    TimeOfDay(MessageDescriptor),
    Decimal(MessageDescriptor),
    Message(Arc<EncMessage>),
    List(Box<Enc>),
    Map(Box<Enc>),
}

/// A message compiled against the fields of a STRUCT (or the columns of a row).
#[derive(Debug)]
struct EncMessage {
    descriptor: MessageDescriptor,
    /// The fields columns fill; the others are left out (read as their defaults).
    fields: Vec<(FieldDescriptor, usize, Enc)>,
    /// The oneofs a STRUCT column fills (by column): its members, set on this message.
    oneofs: Vec<(usize, EncMessage)>,
}

impl EncMessage {
    /// Sets the fields of `m` from row `i`; `column` gives the view of a column by index.
    fn fill<'v, 'a: 'v>(
        &self,
        m: &mut DynamicMessage,
        column: &dyn Fn(usize) -> &'v ColumnView<'a>,
        i: usize,
    ) -> Result<(), String> {
        for (field, c, enc) in &self.fields {
            if let Some(v) = value(enc, column(*c), i)? {
                m.set_field(field, v);
            }
        }
        for (c, members) in &self.oneofs {
            if let ColumnView::Struct(_, children) = column(*c)
                && !column(*c).is_null(i)
            {
                members.fill(m, &|k| &children[k].1, i)?;
            }
        }
        Ok(())
    }
}

fn compile_message(message: &MessageDescriptor, columns: &Fields) -> Result<EncMessage, String> {
    compile_fields(message, message.fields(), true, columns)
}

/// Compiles some fields of `message` against `columns`; with `group_oneofs`, a STRUCT column
/// named as a oneof fills its members.
fn compile_fields(
    message: &MessageDescriptor,
    message_fields: impl Iterator<Item = FieldDescriptor>,
    group_oneofs: bool,
    columns: &Fields,
) -> Result<EncMessage, String> {
    let mut fields = Vec::new();
    let mut oneofs = Vec::new();
    for (column, filler) in fill_columns(message_fields, group_oneofs, columns) {
        match (filler, columns[column].data_type()) {
            (Filler::Oneof(oneof), DataType::Struct(inner)) => oneofs.push((
                column,
                compile_fields(message, oneof.fields(), false, inner)?,
            )),
            (Filler::Oneof(oneof), other) => {
                return Err(format!(
                    "cannot write a {other} column as the oneof {}",
                    oneof.name()
                ));
            }
            (Filler::Field(field), data_type) => {
                let enc = compile_field(&field, data_type)
                    .map_err(|e| format!("field {}: {e}", field.name()))?;
                fields.push((field, column, enc));
            }
        }
    }
    Ok(EncMessage {
        descriptor: message.clone(),
        fields,
        oneofs,
    })
}

fn compile_field(field: &FieldDescriptor, data_type: &DataType) -> Result<Enc, String> {
    if field.is_map() {
        let DataType::Map(entries, _) = data_type else {
            return Err(format!("cannot write a {data_type} column as a map"));
        };
        let (Kind::Message(entry), DataType::Struct(kv)) = (field.kind(), entries.data_type())
        else {
            return Err("a map field without entries".into());
        };
        let value = entry.map_entry_value_field();
        return Ok(Enc::Map(Box::new(compile_single(
            &value,
            kv[1].data_type(),
        )?)));
    }
    if field.is_list() {
        let DataType::List(item) = data_type else {
            return Err(format!(
                "cannot write a {data_type} column as a repeated field"
            ));
        };
        return Ok(Enc::List(Box::new(compile_single(
            field,
            item.data_type(),
        )?)));
    }
    compile_single(field, data_type)
}

fn compile_single(field: &FieldDescriptor, data_type: &DataType) -> Result<Enc, String> {
    Ok(match field.kind() {
        Kind::Enum(e) => Enc::Enum(e),
        Kind::Message(message) => match special(&message) {
            Some(Special::Wrapper) => {
                let inner = message.get_field(1).ok_or("a wrapper without a value")?;
                let enc = compile_single(&inner, data_type)?;
                Enc::Wrapper(message, Box::new(enc))
            }
            Some(Special::Timestamp) => Enc::Timestamp(message),
            Some(Special::Date) => Enc::Date(message),
            Some(Special::TimeOfDay) => Enc::TimeOfDay(message),
            Some(Special::Decimal) => Enc::Decimal(message),
            None => match data_type {
                DataType::Struct(columns) => {
                    Enc::Message(Arc::new(compile_message(&message, columns)?))
                }
                other => return Err(format!("cannot write a {other} column as a message")),
            },
        },
        kind => Enc::Scalar(kind),
    })
}

/// The date of a day count since the epoch.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    use chrono::Datelike as _;
    let date = i32::try_from(days + super::decode::EPOCH_DAYS_FROM_CE)
        .ok()
        .and_then(chrono::NaiveDate::from_num_days_from_ce_opt)
        .unwrap_or_default();
    (
        i64::from(date.year()),
        i64::from(date.month()),
        i64::from(date.day()),
    )
}

/// A number or text of a column, as the scalar `kind` holds it.
fn scalar(kind: &Kind, view: &ColumnView<'_>, i: usize) -> Result<Value, String> {
    let integer = match view {
        ColumnView::Int32(a) => Some(i64::from(a.value(i))),
        ColumnView::Int64(a) => Some(a.value(i)),
        ColumnView::Date(a) => Some(i64::from(a.value(i))),
        ColumnView::Time(a) => Some(i64::from(a.value(i))),
        ColumnView::Timestamp(a) => Some(a.value(i)),
        _ => None,
    };
    let out_of_range = || format!("{integer:?} is out of range for {kind:?}");
    Ok(match (kind, view) {
        (Kind::Bool, ColumnView::Boolean(a)) => Value::Bool(a.value(i)),
        (Kind::Int32 | Kind::Sint32 | Kind::Sfixed32, _) if integer.is_some() => Value::I32(
            integer
                .and_then(|v| i32::try_from(v).ok())
                .ok_or_else(out_of_range)?,
        ),
        (Kind::Int64 | Kind::Sint64 | Kind::Sfixed64, _) if integer.is_some() => {
            Value::I64(integer.unwrap_or_default())
        }
        (Kind::Uint32 | Kind::Fixed32, _) if integer.is_some() => Value::U32(
            integer
                .and_then(|v| u32::try_from(v).ok())
                .ok_or_else(out_of_range)?,
        ),
        (Kind::Uint64 | Kind::Fixed64, _) if integer.is_some() => {
            Value::U64(integer.unwrap_or_default() as u64)
        }
        (Kind::Double, ColumnView::Float64(a)) => Value::F64(a.value(i)),
        (Kind::Float, ColumnView::Float64(a)) => Value::F32(a.value(i) as f32),
        (Kind::Double, _) if integer.is_some() => Value::F64(integer.unwrap_or_default() as f64),
        (Kind::Float, _) if integer.is_some() => Value::F32(integer.unwrap_or_default() as f32),
        (Kind::Bytes, ColumnView::Binary(a)) => Value::Bytes(a.value(i).to_vec().into()),
        (Kind::String, _) => {
            let mut text = Vec::new();
            view.write_text(i, &mut text);
            Value::String(String::from_utf8_lossy(&text).into_owned())
        }
        (kind, _) => return Err(format!("cannot write this column as {kind:?}")),
    })
}

/// The value of row `i`, `None` if it is null.
fn value(enc: &Enc, view: &ColumnView<'_>, i: usize) -> Result<Option<Value>, String> {
    if view.is_null(i) {
        return Ok(None);
    }
    let set = |message: &MessageDescriptor, values: &[(u32, Value)]| {
        let mut m = DynamicMessage::new(message.clone());
        for (number, v) in values {
            m.set_field_by_number(*number, v.clone());
        }
        Value::Message(m)
    };
    Ok(Some(match (enc, view) {
        (Enc::Scalar(kind), _) => scalar(kind, view, i)?,
        (Enc::Enum(e), ColumnView::Utf8(a)) => {
            let name = a.value(i);
            let symbol = e
                .get_value_by_name(name)
                .ok_or_else(|| format!("'{name}' is not a symbol of the enum {}", e.name()))?;
            Value::EnumNumber(symbol.number())
        }
        (Enc::Wrapper(message, inner), _) => {
            let v = value(inner, view, i)?.ok_or("a null wrapped value")?;
            set(message, &[(1, v)])
        }
        (Enc::Timestamp(message), ColumnView::Timestamp(a)) => {
            let millis = a.value(i);
            set(
                message,
                &[
                    (1, Value::I64(millis.div_euclid(1_000))),
                    (2, Value::I32((millis.rem_euclid(1_000) * 1_000_000) as i32)),
                ],
            )
        }
        (Enc::Date(message), ColumnView::Date(a)) => {
            let (year, month, day) = civil_from_days(i64::from(a.value(i)));
            set(
                message,
                &[
                    (1, Value::I32(year as i32)),
                    (2, Value::I32(month as i32)),
                    (3, Value::I32(day as i32)),
                ],
            )
        }
        (Enc::TimeOfDay(message), ColumnView::Time(a)) => {
            let millis = a.value(i);
            set(
                message,
                &[
                    (1, Value::I32(millis / 3_600_000)),
                    (2, Value::I32(millis / 60_000 % 60)),
                    (3, Value::I32(millis / 1_000 % 60)),
                    (4, Value::I32(millis % 1_000 * 1_000_000)),
                ],
            )
        }
        (Enc::Decimal(message), ColumnView::Decimal(a)) => {
            let bytes = crate::avro::wire::decimal_bytes(a.value(i));
            set(
                message,
                &[
                    (1, Value::Bytes(bytes.into())),
                    (2, Value::U32(u32::from(a.precision()))),
                    (3, Value::I32(i32::from(a.scale()))),
                ],
            )
        }
        (Enc::Message(plan), ColumnView::Struct(_, children)) => {
            let mut m = DynamicMessage::new(plan.descriptor.clone());
            plan.fill(&mut m, &|k| &children[k].1, i)?;
            Value::Message(m)
        }
        (Enc::List(item), ColumnView::List(list, items)) => {
            let offsets = list.value_offsets();
            let (start, end) = (offsets[i] as usize, offsets[i + 1] as usize);
            let mut values = Vec::with_capacity(end - start);
            for j in start..end {
                values.push(match value(item, items, j)? {
                    Some(v) => v,
                    None => default_of(item),
                });
            }
            Value::List(values)
        }
        (Enc::Map(value_enc), ColumnView::Map(map, keys, values)) => {
            let offsets = map.value_offsets();
            let (start, end) = (offsets[i] as usize, offsets[i + 1] as usize);
            let ColumnView::Utf8(keys) = keys.as_ref() else {
                return Err("PROTOBUF format only supports MAP types with STRING keys".into());
            };
            let mut entries = HashMap::with_capacity(end - start);
            for j in start..end {
                let v = match value(value_enc, values, j)? {
                    Some(v) => v,
                    None => default_of(value_enc),
                };
                entries.insert(MapKey::String(keys.value(j).to_string()), v);
            }
            Value::Map(entries)
        }
        (_, _) => return Err(format!("cannot write the column as {enc:?}")),
    }))
}

/// What a null item of an array or value of a map is written as: its type's default, as
/// Protobuf cannot hold a null there.
fn default_of(enc: &Enc) -> Value {
    match enc {
        Enc::Scalar(kind) => Value::default_value(kind),
        Enc::Enum(e) => Value::EnumNumber(e.default_value().number()),
        Enc::Wrapper(m, _)
        | Enc::Timestamp(m)
        | Enc::Date(m)
        | Enc::TimeOfDay(m)
        | Enc::Decimal(m) => Value::Message(DynamicMessage::new(m.clone())),
        Enc::Message(plan) => Value::Message(DynamicMessage::new(plan.descriptor.clone())),
        Enc::List(_) => Value::List(Vec::new()),
        Enc::Map(_) => Value::Map(HashMap::new()),
    }
}

/// Writes rows of columns as Protobuf records of one message.
#[derive(Debug)]
pub(crate) struct ProtobufEncoder {
    /// The magic byte, schema id and message indexes (none for PROTOBUF_NOSR).
    prefix: Vec<u8>,
    message: EncMessage,
}

impl ProtobufEncoder {
    /// Resolves the writer message (`VALUE_SCHEMA_ID`/`KEY_SCHEMA_ID`, else derived from
    /// the columns and registered under the subject) and compiles it against the columns.
    pub(crate) fn new(format: &ProtobufFormat, schema: &SchemaRef) -> Result<Self, FormatError> {
        let columns = schema.fields();
        let derive = || super::derive_proto(columns, format.full_name(), format.nullable);
        let (id, file) = match &format.registry {
            None => (
                None,
                super::schema::compile(&derive()?, &[]).map_err(FormatError::Schema)?,
            ),
            Some(registry) => match registry.schema_id {
                Some(id) => {
                    let registered =
                        registry.registered(id, SchemaType::Protobuf, "a Protobuf schema")?;
                    let references =
                        super::schema::references(registry.registry.as_ref(), &registered)
                            .map_err(FormatError::Schema)?;
                    let file = super::schema::compile(&registered.text, &references)
                        .map_err(FormatError::Schema)?;
                    (Some(id), file)
                }
                None => {
                    let text = derive()?;
                    let file = super::schema::compile(&text, &[]).map_err(FormatError::Schema)?;
                    let id = registry
                        .registry
                        .register(&registry.subject, &Schema::new(SchemaType::Protobuf, text))
                        .map_err(|e| FormatError::Schema(e.to_string()))?;
                    (Some(id), file)
                }
            },
        };
        let message =
            super::schema::message(&file, format.full_name()).map_err(FormatError::Schema)?;
        let mut prefix = Vec::new();
        if let Some(id) = id {
            prefix.extend_from_slice(&wire_prefix(id));
            super::schema::write_indexes(&mut prefix, &super::schema::index_path(&message));
        }
        let message = compile_message(&message, columns).map_err(|e| {
            FormatError::Schema(format!("The Protobuf schema does not fit the columns: {e}"))
        })?;
        Ok(Self { prefix, message })
    }

    /// Writes row `i` of `columns` as one record.
    pub(crate) fn write_row(
        &self,
        columns: &[ColumnView<'_>],
        i: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), String> {
        let mut m = DynamicMessage::new(self.message.descriptor.clone());
        self.message.fill(&mut m, &|k| &columns[k], i)?;
        out.extend_from_slice(&self.prefix);
        m.encode(out).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::civil_from_days;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_017), (2000, 3, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }
}

//! Typed views of the arrays of a batch being encoded, resolved once per batch so that the
//! per-row work is a `match` and an index.

use arrow::array::{
    Array, ArrayRef, AsArray, BinaryArray, BooleanArray, Date32Array, Decimal128Array,
    Float64Array, Int32Array, Int64Array, ListArray, MapArray, StringArray, StructArray,
    Time32MillisecondArray, TimestampMillisecondArray,
};
use arrow::compute::{CastOptions, can_cast_types, cast_with_options};
use arrow::datatypes::{
    DataType, Date32Type, Decimal128Type, Float64Type, Int32Type, Int64Type, Schema,
    Time32MillisecondType, TimeUnit, TimestampMillisecondType,
};
use arrow::record_batch::RecordBatch;

use crate::FormatError;
use crate::scalar;

/// One column of a batch, downcast to its concrete array type.
#[derive(Debug)]
pub(crate) enum ColumnView<'a> {
    Boolean(&'a BooleanArray),
    Int32(&'a Int32Array),
    Int64(&'a Int64Array),
    Float64(&'a Float64Array),
    Decimal(&'a Decimal128Array),
    Date(&'a Date32Array),
    Time(&'a Time32MillisecondArray),
    Timestamp(&'a TimestampMillisecondArray),
    Utf8(&'a StringArray),
    Binary(&'a BinaryArray),
    List(&'a ListArray, Box<ColumnView<'a>>),
    Map(&'a MapArray, Box<ColumnView<'a>>, Box<ColumnView<'a>>),
    Struct(&'a StructArray, Vec<(&'a str, ColumnView<'a>)>),
}

fn mismatch(data_type: &DataType) -> FormatError {
    FormatError::BatchMismatch {
        reason: format!("cannot encode a column of type {data_type}"),
    }
}

impl<'a> ColumnView<'a> {
    /// A view of `array`, which must have one of the types listed in the crate docs.
    pub(crate) fn new(array: &'a ArrayRef) -> Result<Self, FormatError> {
        let data_type = array.data_type();
        let bad = || mismatch(data_type);
        Ok(match data_type {
            DataType::Boolean => Self::Boolean(array.as_boolean_opt().ok_or_else(bad)?),
            DataType::Int32 => Self::Int32(array.as_primitive_opt::<Int32Type>().ok_or_else(bad)?),
            DataType::Int64 => Self::Int64(array.as_primitive_opt::<Int64Type>().ok_or_else(bad)?),
            DataType::Float64 => {
                Self::Float64(array.as_primitive_opt::<Float64Type>().ok_or_else(bad)?)
            }
            DataType::Decimal128(_, _) => {
                Self::Decimal(array.as_primitive_opt::<Decimal128Type>().ok_or_else(bad)?)
            }
            DataType::Date32 => Self::Date(array.as_primitive_opt::<Date32Type>().ok_or_else(bad)?),
            DataType::Time32(TimeUnit::Millisecond) => Self::Time(
                array
                    .as_primitive_opt::<Time32MillisecondType>()
                    .ok_or_else(bad)?,
            ),
            DataType::Timestamp(TimeUnit::Millisecond, _) => Self::Timestamp(
                array
                    .as_primitive_opt::<TimestampMillisecondType>()
                    .ok_or_else(bad)?,
            ),
            DataType::Utf8 => Self::Utf8(array.as_string_opt::<i32>().ok_or_else(bad)?),
            DataType::Binary => Self::Binary(array.as_binary_opt::<i32>().ok_or_else(bad)?),
            DataType::List(_) => {
                let list = array.as_list_opt::<i32>().ok_or_else(bad)?;
                Self::List(list, Box::new(ColumnView::new(list.values())?))
            }
            DataType::Map(_, _) => {
                let map = array.as_map_opt().ok_or_else(bad)?;
                Self::Map(
                    map,
                    Box::new(ColumnView::new(map.keys())?),
                    Box::new(ColumnView::new(map.values())?),
                )
            }
            DataType::Struct(_) => {
                let s = array.as_struct_opt().ok_or_else(bad)?;
                let children = s
                    .fields()
                    .iter()
                    .zip(s.columns())
                    .map(|(f, c)| Ok((f.name().as_str(), ColumnView::new(c)?)))
                    .collect::<Result<_, FormatError>>()?;
                Self::Struct(s, children)
            }
            other => return Err(mismatch(other)),
        })
    }

    fn array(&self) -> &dyn Array {
        match self {
            Self::Boolean(a) => *a,
            Self::Int32(a) => *a,
            Self::Int64(a) => *a,
            Self::Float64(a) => *a,
            Self::Decimal(a) => *a,
            Self::Date(a) => *a,
            Self::Time(a) => *a,
            Self::Timestamp(a) => *a,
            Self::Utf8(a) => *a,
            Self::Binary(a) => *a,
            Self::List(a, _) => *a,
            Self::Map(a, _, _) => *a,
            Self::Struct(a, _) => *a,
        }
    }

    /// Whether row `i` is null.
    pub(crate) fn is_null(&self, i: usize) -> bool {
        self.array().is_null(i)
    }

    /// Writes the text form of a non-null scalar at row `i` (DELIMITED fields, JSON map keys);
    /// nested values are written as JSON.
    pub(crate) fn write_text(&self, i: usize, out: &mut Vec<u8>) {
        match self {
            Self::Boolean(a) => out.extend_from_slice(if a.value(i) { b"true" } else { b"false" }),
            Self::Int32(a) => scalar::write_int(out, a.value(i)),
            Self::Int64(a) => scalar::write_int(out, a.value(i)),
            Self::Float64(a) => scalar::write_f64_text(out, a.value(i)),
            Self::Decimal(a) => scalar::write_decimal(out, a.value(i), a.scale()),
            Self::Date(a) => scalar::write_int(out, a.value(i)),
            Self::Time(a) => scalar::write_int(out, a.value(i)),
            Self::Timestamp(a) => scalar::write_int(out, a.value(i)),
            Self::Utf8(a) => out.extend_from_slice(a.value(i).as_bytes()),
            Self::Binary(a) => scalar::write_base64(out, a.value(i)),
            Self::List(..) | Self::Map(..) | Self::Struct(..) => {
                crate::json::encode::write_value(self, i, out)
            }
        }
    }
}

/// The batch's columns with the schema's types, casting where the batch uses another
/// representation of the same values (e.g. `Utf8View` for `Utf8`).
pub(crate) fn conform(batch: &RecordBatch, schema: &Schema) -> Result<Vec<ArrayRef>, FormatError> {
    if batch.num_columns() != schema.fields().len() {
        return Err(FormatError::BatchMismatch {
            reason: format!(
                "expected {} columns, got {}",
                schema.fields().len(),
                batch.num_columns()
            ),
        });
    }
    let options = CastOptions {
        safe: false,
        ..CastOptions::default()
    };
    batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(array, field)| {
            let (from, to) = (array.data_type(), field.data_type());
            if from == to {
                Ok(array.clone())
            } else if can_cast_types(from, to) {
                cast_with_options(array, to, &options).map_err(|e| FormatError::BatchMismatch {
                    reason: format!("column `{}`: cannot cast {from} to {to}: {e}", field.name()),
                })
            } else {
                Err(FormatError::BatchMismatch {
                    reason: format!("column `{}` has type {from}, expected {to}", field.name()),
                })
            }
        })
        .collect()
}

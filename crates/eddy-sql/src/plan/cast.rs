//! ksqlDB's casts of ARRAY, MAP and STRUCT values, which DataFusion's CAST does not plan:
//! element by element, integers narrowed as Java narrows them (wrapping), and nested values
//! as strings the way Java prints them (`[1, 2]`, `{a=1}`, `Struct{A=1}`); and TIMESTAMP to
//! STRING with its milliseconds always written (`1970-01-01T00:00:00.000`), as ksqlDB does.
//!
//! The parser turns `CAST(x AS <nested type>)` into `KSQL_CAST(x, '<type>')`, and the planner
//! turns a cast of a nested value or a TIMESTAMP to STRING into `KSQL_CAST(x, 'STRING')`.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, ListArray, MapArray, StringArray, StructArray, new_null_array,
};
use arrow::compute::{CastOptions, can_cast_types, cast_with_options};
use arrow::datatypes::{
    DataType, Field, FieldRef, Fields, Float64Type, Int32Type, Int64Type, TimeUnit,
};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion_common::tree_node::{Transformed, TreeNode};
use datafusion_common::{Result, ScalarValue, exec_err, plan_err};
use datafusion_expr::{
    ColumnarValue, Expr, ExprSchemable, LogicalPlan, ReturnFieldArgs, ScalarFunctionArgs,
    ScalarUDF, ScalarUDFImpl, Signature, Volatility, lit,
};

use crate::error::SqlError;
use crate::types::SqlType;

/// How ksqlDB writes a TIMESTAMP as a STRING (Java's `yyyy-MM-dd'T'HH:mm:ss.SSS`).
const KSQL_TIMESTAMP_FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.3f";

/// The function's name, as the parser writes it.
pub(crate) const KSQL_CAST: &str = "ksql_cast";

/// `KSQL_CAST(value, 'type')`.
pub(crate) fn function() -> Arc<ScalarUDF> {
    Arc::new(ScalarUDF::from(KsqlCast {
        signature: Signature::any(2, Volatility::Immutable),
    }))
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct KsqlCast {
    signature: Signature,
}

fn target_type(args: &[Option<&ScalarValue>]) -> Result<SqlType> {
    match args.get(1) {
        Some(Some(ScalarValue::Utf8(Some(text)))) => match crate::parser::parse_data_type(text) {
            Ok(ty) => Ok(ty),
            Err(e) => plan_err!("{e}"),
        },
        _ => plan_err!("{KSQL_CAST} needs a type name"),
    }
}

impl ScalarUDFImpl for KsqlCast {
    fn name(&self) -> &str {
        KSQL_CAST
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        plan_err!("{KSQL_CAST}: the return type depends on the arguments")
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let target = target_type(args.scalar_arguments)?;
        let to = target.to_arrow();
        if let Some(from) = args.arg_fields.first().map(|f| f.data_type())
            && !castable(from, &to)
        {
            let from =
                SqlType::from_arrow(from).map_or_else(|| from.to_string(), |t| t.to_string());
            return plan_err!("Cast of {from} to {target} is not supported");
        }
        Ok(Arc::new(Field::new(KSQL_CAST, to, true)))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let to = args.return_type().clone();
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let Some(value) = arrays.first() else {
            return exec_err!("{KSQL_CAST} takes two arguments");
        };
        Ok(ColumnarValue::Array(cast_array(value, &to)?))
    }
}

/// Whether ksqlDB casts values of `from` to `to`.
fn castable(from: &DataType, to: &DataType) -> bool {
    match (from, to) {
        (DataType::Null, _) | (_, DataType::Utf8) => true,
        (DataType::List(f), DataType::List(t)) => castable(f.data_type(), t.data_type()),
        (DataType::Map(f, _), DataType::Map(t, _)) => match (f.data_type(), t.data_type()) {
            (DataType::Struct(f), DataType::Struct(t)) if f.len() == 2 && t.len() == 2 => {
                castable(f[0].data_type(), t[0].data_type())
                    && castable(f[1].data_type(), t[1].data_type())
            }
            _ => false,
        },
        (DataType::Struct(f), DataType::Struct(t)) => t.iter().all(|t| {
            f.iter()
                .find(|f| f.name() == t.name())
                .is_none_or(|f| castable(f.data_type(), t.data_type()))
        }),
        (DataType::List(_) | DataType::Map(..) | DataType::Struct(_), _) => false,
        (_, DataType::List(_) | DataType::Map(..) | DataType::Struct(_)) => false,
        (from, to) => can_cast_types(from, to),
    }
}

fn cast_array(array: &ArrayRef, to: &DataType) -> Result<ArrayRef> {
    let from = array.data_type();
    if from == to {
        return Ok(Arc::clone(array));
    }
    Ok(match (from, to) {
        (DataType::Null, _) => new_null_array(to, array.len()),
        (DataType::List(_), DataType::List(item)) => {
            let list = array.as_list::<i32>();
            let values = cast_array(list.values(), item.data_type())?;
            Arc::new(ListArray::try_new(
                Arc::clone(item),
                list.offsets().clone(),
                values,
                list.nulls().cloned(),
            )?)
        }
        (DataType::Map(..), DataType::Map(entries, sorted)) => {
            let DataType::Struct(kv) = entries.data_type() else {
                return exec_err!("malformed map type {to}");
            };
            let map = array.as_map();
            let keys = cast_array(map.keys(), kv[0].data_type())?;
            let values = cast_array(map.values(), kv[1].data_type())?;
            let entries_array = StructArray::try_new(kv.clone(), vec![keys, values], None)?;
            Arc::new(MapArray::try_new(
                Arc::clone(entries),
                map.offsets().clone(),
                entries_array,
                map.nulls().cloned(),
                *sorted,
            )?)
        }
        (DataType::Struct(_), DataType::Struct(fields)) => {
            let source = array.as_struct();
            let columns = fields
                .iter()
                .map(|f| match source.column_by_name(f.name()) {
                    Some(c) => cast_array(c, f.data_type()),
                    None => Ok(new_null_array(f.data_type(), array.len())),
                })
                .collect::<Result<Vec<_>>>()?;
            let fields: Fields = fields
                .iter()
                .map(|f| f.as_ref().clone().with_nullable(true))
                .collect();
            Arc::new(StructArray::try_new(
                fields,
                columns,
                source.nulls().cloned(),
            )?)
        }
        // Java's (int) of a long keeps the low 32 bits.
        (DataType::Int64, DataType::Int32) => Arc::new(
            array
                .as_primitive::<Int64Type>()
                .unary::<_, Int32Type>(|v| v as i32),
        ),
        (DataType::Timestamp(TimeUnit::Millisecond, None), DataType::Utf8) => {
            let options =
                FormatOptions::default().with_timestamp_format(Some(KSQL_TIMESTAMP_FORMAT));
            let formatter = ArrayFormatter::try_new(array.as_ref(), &options)?;
            let strings: StringArray = (0..array.len())
                .map(|i| (!array.is_null(i)).then(|| formatter.value(i).to_string()))
                .collect();
            Arc::new(strings)
        }
        (DataType::List(_) | DataType::Map(..) | DataType::Struct(_), DataType::Utf8) => {
            let strings: StringArray = (0..array.len())
                .map(|i| {
                    let mut out = String::new();
                    (!array.is_null(i))
                        .then(|| java_string(array, i, &mut out).map(|()| out))
                        .transpose()
                })
                .collect::<Result<_>>()?;
            Arc::new(strings)
        }
        _ => cast_with_options(
            array,
            to,
            &CastOptions {
                safe: false,
                ..CastOptions::default()
            },
        )?,
    })
}

/// Appends value `i` of `array` as Java's `toString` of its ksqlDB value prints it.
fn java_string(array: &dyn Array, i: usize, out: &mut String) -> Result<()> {
    if array.is_null(i) {
        out.push_str("null");
        return Ok(());
    }
    match array.data_type() {
        DataType::Utf8 => out.push_str(array.as_string::<i32>().value(i)),
        DataType::Float64 => {
            out.push_str(&java_double(array.as_primitive::<Float64Type>().value(i)))
        }
        DataType::List(_) => {
            let list = array.as_list::<i32>();
            let items = list.value(i);
            out.push('[');
            for j in 0..items.len() {
                if j > 0 {
                    out.push_str(", ");
                }
                java_string(&items, j, out)?;
            }
            out.push(']');
        }
        DataType::Map(..) => {
            let map = array.as_map();
            let (start, end) = (
                map.value_offsets()[i] as usize,
                map.value_offsets()[i + 1] as usize,
            );
            out.push('{');
            for j in start..end {
                if j > start {
                    out.push_str(", ");
                }
                java_string(map.keys(), j, out)?;
                out.push('=');
                java_string(map.values(), j, out)?;
            }
            out.push('}');
        }
        DataType::Struct(fields) => {
            let s = array.as_struct();
            out.push_str("Struct{");
            let mut first = true;
            for (f, column) in fields.iter().zip(s.columns()) {
                if column.is_null(i) {
                    continue;
                }
                if !first {
                    out.push(',');
                }
                first = false;
                out.push_str(f.name());
                out.push('=');
                java_string(column, i, out)?;
            }
            out.push('}');
        }
        _ => {
            let formatter = ArrayFormatter::try_new(array, &FormatOptions::default())?;
            out.push_str(&formatter.value(i).to_string());
        }
    }
    Ok(())
}

/// Java's `Double.toString`.
pub(crate) fn java_double(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    let magnitude = v.abs();
    if magnitude == 0.0 || (1e-3..1e7).contains(&magnitude) {
        return format!("{v:?}");
    }
    let text = format!("{v:e}");
    let text = if text.contains('.') {
        text
    } else {
        format!("{v:.1e}")
    };
    text.replace('e', "E")
}

/// Casts of nested values to STRING, which DataFusion does not plan, and of TIMESTAMPs,
/// which it writes without zero milliseconds, become [`KSQL_CAST`]s.
pub(crate) fn nested_casts_to_string(plan: LogicalPlan) -> Result<LogicalPlan, SqlError> {
    plan.transform_up(|node| {
        let schema = match node.inputs().as_slice() {
            [input] => Arc::clone(input.schema()),
            _ => return Ok(Transformed::no(node)),
        };
        node.map_expressions(|e| {
            e.transform_up(|e| match e {
                Expr::Cast(c)
                    if *c.field.data_type() == DataType::Utf8
                        && matches!(
                            c.expr.get_type(&schema),
                            Ok(DataType::List(_)
                                | DataType::Map(..)
                                | DataType::Struct(_)
                                | DataType::Timestamp(TimeUnit::Millisecond, None))
                        ) =>
                {
                    let f = function();
                    Ok(Transformed::yes(f.call(vec![*c.expr, lit("STRING")])))
                }
                other => Ok(Transformed::no(other)),
            })
        })
    })
    .map(|t| t.data)
    .map_err(|e| SqlError::Plan(e.strip_backtrace()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Int64Array;

    #[test]
    fn narrows_and_prints_like_java() -> Result<()> {
        let longs: ArrayRef = Arc::new(Int64Array::from(vec![1, 2_147_483_648]));
        let ints = cast_array(&longs, &DataType::Int32)?;
        assert_eq!(
            ints.as_primitive::<Int32Type>().values(),
            &[1, -2_147_483_648]
        );
        assert_eq!(java_double(1e10), "1.0E10");
        assert_eq!(java_double(0.5), "0.5");
        Ok(())
    }
}

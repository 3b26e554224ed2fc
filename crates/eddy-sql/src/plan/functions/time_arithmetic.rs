//! ksqlDB's `DATEADD`, `DATESUB`, `TIMEADD`, `TIMESUB`, `TIMESTAMPADD` and `TIMESTAMPSUB`:
//! `(unit, interval, value)`, where the unit is one of ksqlDB's time units written as a bare
//! word (`DATEADD(DAYS, 3, d)`; the parser passes it on as text).
//!
//! As in ksqlDB, a DATE moves by whole days towards zero (`DATEADD(HOURS, -1, d)` is `d`), a
//! TIME wraps around midnight, and any NULL argument gives NULL.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, Date32Array, Time32MillisecondArray, TimestampMillisecondArray,
};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Date32Type, Field, FieldRef, Time32MillisecondType, TimeUnit};
use arrow::datatypes::{Int64Type, TimestampMillisecondType};
use datafusion_common::{Result, ScalarValue, exec_err};
use datafusion_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};

use crate::types::SqlType;

/// The six functions.
pub(crate) fn functions() -> Vec<Arc<ScalarUDF>> {
    let kinds = [
        (Target::Date, 1),
        (Target::Date, -1),
        (Target::Time, 1),
        (Target::Time, -1),
        (Target::Timestamp, 1),
        (Target::Timestamp, -1),
    ];
    kinds
        .map(|(target, sign)| {
            Arc::new(ScalarUDF::from(TimeArithmetic {
                target,
                sign,
                signature: Signature::user_defined(Volatility::Immutable),
            }))
        })
        .into()
}

/// The time units ksqlDB's grammar reads as a function's first argument, with their length.
pub(crate) const TIME_UNITS: [(&str, i64); 10] = [
    ("DAY", MILLIS_PER_DAY),
    ("DAYS", MILLIS_PER_DAY),
    ("HOUR", 3_600_000),
    ("HOURS", 3_600_000),
    ("MINUTE", 60_000),
    ("MINUTES", 60_000),
    ("SECOND", 1_000),
    ("SECONDS", 1_000),
    ("MILLISECOND", 1),
    ("MILLISECONDS", 1),
];

/// The functions that take a time unit as their first argument.
pub(crate) const TAKING_A_TIME_UNIT: [&str; 6] = [
    "DATEADD",
    "DATESUB",
    "TIMEADD",
    "TIMESUB",
    "TIMESTAMPADD",
    "TIMESTAMPSUB",
];

const MILLIS_PER_DAY: i64 = 86_400_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Target {
    Date,
    Time,
    Timestamp,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct TimeArithmetic {
    target: Target,
    /// 1 to add, -1 to subtract.
    sign: i64,
    signature: Signature,
}

impl TimeArithmetic {
    fn target_type(&self) -> DataType {
        match self.target {
            Target::Date => DataType::Date32,
            Target::Time => DataType::Time32(TimeUnit::Millisecond),
            Target::Timestamp => DataType::Timestamp(TimeUnit::Millisecond, None),
        }
    }

    /// Whether these argument types are `(unit, integer, target)`.
    fn accepts(&self, arg_types: &[DataType]) -> bool {
        let integer = super::is_integer;
        let target = |t: &DataType| {
            matches!(
                (self.target, t),
                (_, DataType::Null)
                    | (Target::Date, DataType::Date32)
                    | (Target::Time, DataType::Time32(_) | DataType::Time64(_))
                    | (Target::Timestamp, DataType::Timestamp(..))
            )
        };
        matches!(arg_types, [DataType::Utf8, n, v] if integer(n) && target(v))
    }
}

/// Milliseconds in `unit`, if it is one of ksqlDB's time units.
fn unit_millis(unit: &str) -> Option<i64> {
    TIME_UNITS
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(unit))
        .map(|(_, millis)| *millis)
}

impl ScalarUDFImpl for TimeArithmetic {
    fn name(&self) -> &str {
        match (self.target, self.sign) {
            (Target::Date, 1) => "dateadd",
            (Target::Date, _) => "datesub",
            (Target::Time, 1) => "timeadd",
            (Target::Time, _) => "timesub",
            (Target::Timestamp, 1) => "timestampadd",
            (Target::Timestamp, _) => "timestampsub",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    /// Valid arguments are brought to `(STRING, BIGINT, target)`; others are left as they are
    /// for `return_field_from_args` to name, with literals typed as ksqlDB types them.
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        if self.accepts(arg_types) {
            return Ok(vec![DataType::Utf8, DataType::Int64, self.target_type()]);
        }
        Ok(arg_types.to_vec())
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(self.target_type())
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let types: Vec<DataType> = args
            .arg_fields
            .iter()
            .map(|f| f.data_type().clone())
            .collect();
        if !self.accepts(&types) {
            // ksqlDB types an integer literal that fits as INTEGER.
            let names: Vec<String> = types
                .iter()
                .zip(args.scalar_arguments)
                .map(|(t, literal)| match literal {
                    Some(ScalarValue::Int64(Some(n))) if i32::try_from(*n).is_ok() => {
                        "INTEGER".to_string()
                    }
                    _ => SqlType::from_arrow(t).map_or_else(|| t.to_string(), |s| s.to_string()),
                })
                .collect();
            return datafusion_common::plan_err!(
                "Function '{}' does not accept parameters ({}).",
                self.name(),
                names.join(", ")
            );
        }
        if let Some(Some(ScalarValue::Utf8(Some(unit)))) = args.scalar_arguments.first()
            && unit_millis(unit).is_none()
        {
            return datafusion_common::plan_err!(
                "Function '{}': '{unit}' is not a time unit (DAYS, HOURS, MINUTES, SECONDS or \
                 MILLISECONDS)",
                self.name()
            );
        }
        Ok(Arc::new(Field::new(self.name(), self.target_type(), true)))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let [unit, interval, value] = arrays.as_slice() else {
            return exec_err!("{} takes three arguments", self.name());
        };
        let unit = unit.as_string::<i32>();
        let interval = cast(interval, &DataType::Int64)?;
        let interval = interval.as_primitive::<Int64Type>();
        let value = cast(value, &self.target_type())?;
        let mut shifts = Vec::with_capacity(value.len());
        for i in 0..value.len() {
            if unit.is_null(i) || interval.is_null(i) || value.is_null(i) {
                shifts.push(None);
                continue;
            }
            let Some(millis) = unit_millis(unit.value(i)) else {
                return exec_err!("'{}' is not a time unit", unit.value(i));
            };
            shifts.push(
                interval
                    .value(i)
                    .checked_mul(millis)
                    .and_then(|m| m.checked_mul(self.sign)),
            );
        }
        let out: ArrayRef = match self.target {
            Target::Date => {
                let days = value.as_primitive::<Date32Type>();
                let moved: Date32Array = shifts
                    .iter()
                    .enumerate()
                    .map(|(i, shift)| {
                        let millis = i64::from(days.value(i)) * MILLIS_PER_DAY + (*shift)?;
                        i32::try_from(millis / MILLIS_PER_DAY).ok()
                    })
                    .collect();
                Arc::new(moved)
            }
            Target::Time => {
                let times = value.as_primitive::<Time32MillisecondType>();
                let moved: Time32MillisecondArray = shifts
                    .iter()
                    .enumerate()
                    .map(|(i, shift)| {
                        let millis = i64::from(times.value(i)) + (*shift)?;
                        i32::try_from(millis.rem_euclid(MILLIS_PER_DAY)).ok()
                    })
                    .collect();
                Arc::new(moved)
            }
            Target::Timestamp => {
                let stamps = value.as_primitive::<TimestampMillisecondType>();
                let moved: TimestampMillisecondArray = shifts
                    .iter()
                    .enumerate()
                    .map(|(i, shift)| stamps.value(i).checked_add((*shift)?))
                    .collect();
                Arc::new(moved)
            }
        };
        Ok(ColumnarValue::Array(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_are_read_in_either_number_and_any_case() {
        assert_eq!(unit_millis("DAYS"), Some(MILLIS_PER_DAY));
        assert_eq!(unit_millis("hour"), Some(3_600_000));
        assert_eq!(unit_millis("MILLISECONDS"), Some(1));
        assert_eq!(unit_millis("WEEKS"), None);
    }
}

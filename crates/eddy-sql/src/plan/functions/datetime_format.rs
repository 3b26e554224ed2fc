//! ksqlDB's conversions between dates, times and timestamps and text in Java
//! `DateTimeFormatter` patterns, and `CONVERT_TZ`:
//!
//! * `FORMAT_TIMESTAMP(timestamp, pattern [, zone])` and `PARSE_TIMESTAMP(text, pattern [,
//!   zone])`, the zone UTC if not given (a zone or offset in the text wins when parsing);
//! * `FORMAT_DATE(date, pattern)`, `PARSE_DATE(text, pattern)`, `FORMAT_TIME(time, pattern)`,
//!   `PARSE_TIME(text, pattern)`;
//! * the deprecated forms on BIGINT milliseconds and INT days: `TIMESTAMPTOSTRING`,
//!   `STRINGTOTIMESTAMP`, `DATETOSTRING`, `STRINGTODATE`;
//! * `CONVERT_TZ(timestamp, from_zone, to_zone)`: the timestamp moved by the difference between
//!   the zones' offsets at that instant.
//!
//! Null if any argument is null. A date is read from the start of its text (what follows is
//! ignored, as ksqlDB does). Text that does not match its pattern is null: ksqlDB
//! turns the failure of one function call into a null for that call only, so
//! `COALESCE(PARSE_DATE(s, 'yyyy-MM-dd'), PARSE_DATE(s, 'yyyy'))` works. A bad pattern or zone,
//! or a pattern asking for a field the value does not have (hours of a DATE), is an error.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int64Array, StringArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Int64Type, TimeUnit};
use datafusion_common::{Result, exec_err};
use datafusion_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use super::java_time::{Moment, Pattern, Zone};

/// The functions of this module.
pub(crate) fn functions() -> Vec<Arc<ScalarUDF>> {
    [
        Kind::FormatTimestamp,
        Kind::ParseTimestamp,
        Kind::FormatDate,
        Kind::ParseDate,
        Kind::FormatTime,
        Kind::ParseTime,
        Kind::TimestampToString,
        Kind::StringToTimestamp,
        Kind::DateToString,
        Kind::StringToDate,
        Kind::ConvertTz,
    ]
    .map(|kind| {
        Arc::new(ScalarUDF::from(DatetimeFn {
            kind,
            signature: Signature::user_defined(Volatility::Immutable),
        }))
    })
    .into()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    FormatTimestamp,
    ParseTimestamp,
    FormatDate,
    ParseDate,
    FormatTime,
    ParseTime,
    TimestampToString,
    StringToTimestamp,
    DateToString,
    StringToDate,
    ConvertTz,
}

/// What a function reads or writes besides text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Value {
    /// Milliseconds since the epoch, as a TIMESTAMP or (deprecated forms) a BIGINT.
    Timestamp,
    /// Days since the epoch, as a DATE or an INT.
    Date,
    /// Milliseconds since midnight, as a TIME.
    Time,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct DatetimeFn {
    kind: Kind,
    signature: Signature,
}

const TIMESTAMP: DataType = DataType::Timestamp(TimeUnit::Millisecond, None);
const TIME: DataType = DataType::Time32(TimeUnit::Millisecond);

impl DatetimeFn {
    fn sql_name(&self) -> &'static str {
        match self.kind {
            Kind::FormatTimestamp => "FORMAT_TIMESTAMP",
            Kind::ParseTimestamp => "PARSE_TIMESTAMP",
            Kind::FormatDate => "FORMAT_DATE",
            Kind::ParseDate => "PARSE_DATE",
            Kind::FormatTime => "FORMAT_TIME",
            Kind::ParseTime => "PARSE_TIME",
            Kind::TimestampToString => "TIMESTAMPTOSTRING",
            Kind::StringToTimestamp => "STRINGTOTIMESTAMP",
            Kind::DateToString => "DATETOSTRING",
            Kind::StringToDate => "STRINGTODATE",
            Kind::ConvertTz => "CONVERT_TZ",
        }
    }

    /// What the function reads or writes, and whether it formats (else it parses).
    fn value(&self) -> (Value, bool) {
        match self.kind {
            Kind::FormatTimestamp | Kind::TimestampToString => (Value::Timestamp, true),
            Kind::ParseTimestamp | Kind::StringToTimestamp | Kind::ConvertTz => {
                (Value::Timestamp, false)
            }
            Kind::FormatDate | Kind::DateToString => (Value::Date, true),
            Kind::ParseDate | Kind::StringToDate => (Value::Date, false),
            Kind::FormatTime => (Value::Time, true),
            Kind::ParseTime => (Value::Time, false),
        }
    }

    /// The SQL type of the date, time or timestamp argument or result.
    fn value_type(&self) -> DataType {
        match self.kind {
            Kind::FormatTimestamp | Kind::ParseTimestamp | Kind::ConvertTz => TIMESTAMP,
            Kind::TimestampToString | Kind::StringToTimestamp => DataType::Int64,
            Kind::FormatDate | Kind::ParseDate => DataType::Date32,
            Kind::DateToString | Kind::StringToDate => DataType::Int32,
            Kind::FormatTime | Kind::ParseTime => TIME,
        }
    }

    /// Whether a zone may follow the pattern.
    fn takes_zone(&self) -> bool {
        matches!(
            self.kind,
            Kind::FormatTimestamp
                | Kind::ParseTimestamp
                | Kind::TimestampToString
                | Kind::StringToTimestamp
        )
    }
}

/// The last pattern and zone compiled: they are usually the same on every row.
#[derive(Default)]
struct Compiled {
    pattern: Option<(String, Pattern)>,
    zone: Option<(String, Zone)>,
}

impl Compiled {
    fn pattern(&mut self, name: &str, text: &str) -> Result<&Pattern> {
        if self.pattern.as_ref().is_none_or(|(t, _)| t != text) {
            match text.parse::<Pattern>() {
                Ok(p) => self.pattern = Some((text.to_string(), p)),
                Err(e) => return exec_err!("{name}: invalid pattern '{text}': {e}"),
            }
        }
        match &self.pattern {
            Some((_, p)) => Ok(p),
            None => exec_err!("{name}: no pattern"),
        }
    }

    fn zone(&mut self, name: &str, id: &str) -> Result<Zone> {
        if self.zone.as_ref().is_none_or(|(t, _)| t != id) {
            match Zone::of(id) {
                Ok(z) => self.zone = Some((id.to_string(), z)),
                Err(e) => return exec_err!("{name}: {e}"),
            }
        }
        match &self.zone {
            Some((_, z)) => Ok(z.clone()),
            None => exec_err!("{name}: no zone"),
        }
    }
}

/// Days and milliseconds as Java's `LocalDate`, `LocalTime` or `Instant` in a zone.
fn moment(value: Value, n: i64, zone: &Zone) -> std::result::Result<Moment, String> {
    match value {
        Value::Timestamp => Moment::instant(n, zone),
        Value::Date => Ok(Moment {
            date: Some(n),
            ..Moment::default()
        }),
        Value::Time => Ok(Moment {
            time: Some(n * 1_000_000),
            ..Moment::default()
        }),
    }
}

impl ScalarUDFImpl for DatetimeFn {
    fn name(&self) -> &str {
        match self.kind {
            Kind::FormatTimestamp => "format_timestamp",
            Kind::ParseTimestamp => "parse_timestamp",
            Kind::FormatDate => "format_date",
            Kind::ParseDate => "parse_date",
            Kind::FormatTime => "format_time",
            Kind::ParseTime => "parse_time",
            Kind::TimestampToString => "timestamptostring",
            Kind::StringToTimestamp => "stringtotimestamp",
            Kind::DateToString => "datetostring",
            Kind::StringToDate => "stringtodate",
            Kind::ConvertTz => "convert_tz",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let text = super::is_text;
        let value_type = self.value_type();
        // The deprecated forms take any integer; the others their own type exactly.
        let is_value = |t: &DataType| match &value_type {
            DataType::Int64 | DataType::Int32 => t.is_integer() || t.is_null(),
            DataType::Timestamp(_, _) => matches!(t, DataType::Timestamp(_, _) | DataType::Null),
            other => t == other || t.is_null(),
        };
        let (_, formats) = self.value();
        let first_ok = |t: &DataType| {
            if formats || self.kind == Kind::ConvertTz {
                is_value(t)
            } else {
                text(t)
            }
        };
        let first = if formats || self.kind == Kind::ConvertTz {
            value_type.clone()
        } else {
            DataType::Utf8
        };
        match arg_types {
            [a, b] if self.kind != Kind::ConvertTz && first_ok(a) && text(b) => {
                Ok(vec![first, DataType::Utf8])
            }
            [a, b, c]
                if (self.takes_zone() || self.kind == Kind::ConvertTz)
                    && first_ok(a)
                    && text(b)
                    && text(c) =>
            {
                Ok(vec![first, DataType::Utf8, DataType::Utf8])
            }
            _ => super::rejected(self.sql_name(), arg_types),
        }
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        let (_, formats) = self.value();
        Ok(if formats {
            DataType::Utf8
        } else {
            self.value_type()
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let name = self.sql_name();
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let (first, second, third) = match arrays.as_slice() {
            [a, b] => (a, b, None),
            [a, b, c] => (a, b, Some(cast(c, &DataType::Utf8)?)),
            _ => return exec_err!("{name} takes two or three arguments"),
        };
        let second = cast(second, &DataType::Utf8)?;
        let second = second.as_string::<i32>();
        let third = third.as_ref().map(|t| t.as_string::<i32>());
        let (value, formats) = self.value();
        let mut compiled = Compiled::default();
        let utc = Zone::utc();
        let rows = 0..first.len();
        let null =
            |i: usize| first.is_null(i) || second.is_null(i) || third.is_some_and(|t| t.is_null(i));

        if self.kind == Kind::ConvertTz {
            let millis = cast(&cast(first, &TIMESTAMP)?, &DataType::Int64)?;
            let millis = millis.as_primitive::<Int64Type>();
            let mut out = Vec::with_capacity(millis.len());
            for i in rows {
                let Some(to) = third.filter(|_| !null(i)) else {
                    out.push(None);
                    continue;
                };
                let t = millis.value(i);
                let from = compiled.zone(name, second.value(i))?;
                let to = compiled.zone(name, to.value(i))?;
                let offset = |z: &Zone| z.offset_at(t).or_else(|e| exec_err!("{name}: {e}"));
                let shift = i64::from(offset(&to)?) - i64::from(offset(&from)?);
                match t.checked_add(shift * 1000) {
                    Some(moved) => out.push(Some(moved)),
                    None => return exec_err!("{name}: timestamp {t} is out of range"),
                }
            }
            let out: ArrayRef = Arc::new(Int64Array::from(out));
            return Ok(ColumnarValue::Array(cast(&out, &TIMESTAMP)?));
        }

        if formats {
            let numbers = match value {
                Value::Timestamp => cast(first, &DataType::Int64)?,
                Value::Date | Value::Time => {
                    cast(&cast(first, &DataType::Int32)?, &DataType::Int64)?
                }
            };
            let numbers = numbers.as_primitive::<Int64Type>();
            let mut out = Vec::with_capacity(numbers.len());
            for i in rows {
                if null(i) {
                    out.push(None);
                    continue;
                }
                let zone = match third {
                    Some(t) => compiled.zone(name, t.value(i))?,
                    None => utc.clone(),
                };
                let pattern = compiled.pattern(name, second.value(i))?;
                let text = moment(value, numbers.value(i), &zone)
                    .and_then(|m| pattern.format(&m))
                    .or_else(|e| exec_err!("{name}: {e}"))?;
                out.push(Some(text));
            }
            let out: ArrayRef = Arc::new(StringArray::from(out));
            return Ok(ColumnarValue::Array(out));
        }

        let texts = cast(first, &DataType::Utf8)?;
        let texts = texts.as_string::<i32>();
        let mut out = Vec::with_capacity(texts.len());
        for i in rows {
            if null(i) {
                out.push(None);
                continue;
            }
            let zone = match third {
                Some(t) => compiled.zone(name, t.value(i))?,
                None => utc.clone(),
            };
            let pattern = compiled.pattern(name, second.value(i))?;
            // Text that does not match is null, not an error: see the module's docs.
            // ksqlDB reads dates from the start of the text, other values from all of it.
            let rest_ignored = value == Value::Date;
            let parsed = pattern
                .parse(texts.value(i), rest_ignored)
                .ok()
                .and_then(|local| match value {
                    Value::Timestamp => local.to_utc_millis(&zone).ok(),
                    Value::Date => Some(local.date),
                    Value::Time => Some(local.time / 1_000_000),
                });
            out.push(parsed);
        }
        let out: ArrayRef = Arc::new(Int64Array::from(out));
        let out = match value {
            Value::Timestamp => out,
            Value::Date | Value::Time => cast(&out, &DataType::Int32)?,
        };
        Ok(ColumnarValue::Array(cast(&out, &self.value_type())?))
    }
}

//! ksqlDB's conversions between dates or timestamps and counts since the epoch:
//! `FROM_DAYS(days)` (an INT count of days as a DATE), `UNIX_DATE([date])` (a DATE as its INT
//! count of days; today's without an argument) and `UNIX_TIMESTAMP([timestamp])` (a TIMESTAMP
//! as its BIGINT milliseconds; now without an argument). Null in, null out.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use arrow::compute::cast;
use arrow::datatypes::{DataType, TimeUnit};
use datafusion_common::{Result, ScalarValue, exec_err};
use datafusion_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

/// `FROM_DAYS`, `UNIX_DATE` and `UNIX_TIMESTAMP`.
pub(crate) fn functions() -> Vec<Arc<ScalarUDF>> {
    [
        (Kind::FromDays, Volatility::Immutable),
        // Without an argument they read the clock.
        (Kind::UnixDate, Volatility::Volatile),
        (Kind::UnixTimestamp, Volatility::Volatile),
    ]
    .map(|(kind, volatility)| {
        Arc::new(ScalarUDF::from(EpochFn {
            kind,
            signature: Signature::user_defined(volatility),
        }))
    })
    .into()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    FromDays,
    UnixDate,
    UnixTimestamp,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct EpochFn {
    kind: Kind,
    signature: Signature,
}

const TIMESTAMP: DataType = DataType::Timestamp(TimeUnit::Millisecond, None);

/// Milliseconds since the epoch, now.
fn now_millis() -> Result<i64> {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => Ok(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
        Err(_) => exec_err!("the system clock is before 1970"),
    }
}

impl ScalarUDFImpl for EpochFn {
    fn name(&self) -> &str {
        match self.kind {
            Kind::FromDays => "from_days",
            Kind::UnixDate => "unix_date",
            Kind::UnixTimestamp => "unix_timestamp",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match (self.kind, arg_types) {
            (
                Kind::FromDays,
                [DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Null],
            ) => Ok(vec![DataType::Int32]),
            (Kind::UnixDate, []) | (Kind::UnixTimestamp, []) => Ok(vec![]),
            (Kind::UnixDate, [DataType::Date32 | DataType::Null]) => Ok(vec![DataType::Date32]),
            (Kind::UnixTimestamp, [DataType::Timestamp(_, _) | DataType::Null]) => {
                Ok(vec![TIMESTAMP])
            }
            _ => super::rejected(self.name(), arg_types),
        }
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(match self.kind {
            Kind::FromDays => DataType::Date32,
            Kind::UnixDate => DataType::Int32,
            Kind::UnixTimestamp => DataType::Int64,
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let to = self.return_type(&[])?;
        match args.args.as_slice() {
            [] => {
                let millis = now_millis()?;
                Ok(ColumnarValue::Scalar(match self.kind {
                    Kind::UnixDate => {
                        let days = millis.div_euclid(86_400_000);
                        ScalarValue::Int32(Some(i32::try_from(days).unwrap_or(i32::MAX)))
                    }
                    Kind::UnixTimestamp => ScalarValue::Int64(Some(millis)),
                    Kind::FromDays => return exec_err!("FROM_DAYS takes one argument"),
                }))
            }
            // Days and dates, milliseconds and timestamps, have the same representation.
            [ColumnarValue::Array(a)] => Ok(ColumnarValue::Array(cast(a, &to)?)),
            [ColumnarValue::Scalar(s)] => Ok(ColumnarValue::Scalar(s.cast_to(&to)?)),
            _ => exec_err!("{} takes at most one argument", self.name().to_uppercase()),
        }
    }
}

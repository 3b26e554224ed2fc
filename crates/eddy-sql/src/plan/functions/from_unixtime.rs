//! ksqlDB's `FROM_UNIXTIME(milliseconds)`: a BIGINT count of milliseconds since the epoch
//! as a TIMESTAMP. (DataFusion's function of that name reads seconds.)

use std::sync::Arc;

use arrow::compute::cast;
use arrow::datatypes::{DataType, TimeUnit};
use datafusion_common::{Result, exec_err, plan_err};
use datafusion_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

/// `FROM_UNIXTIME`.
pub(crate) fn function() -> Arc<ScalarUDF> {
    Arc::new(ScalarUDF::from(FromUnixtime {
        signature: Signature::user_defined(Volatility::Immutable),
    }))
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct FromUnixtime {
    signature: Signature,
}

const TIMESTAMP: DataType = DataType::Timestamp(TimeUnit::Millisecond, None);

impl ScalarUDFImpl for FromUnixtime {
    fn name(&self) -> &str {
        "from_unixtime"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match arg_types {
            [t] if t.is_integer() || t.is_null() => Ok(vec![DataType::Int64]),
            _ => plan_err!("Function 'FROM_UNIXTIME' does not accept parameters {arg_types:?}"),
        }
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(TIMESTAMP)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [millis] = args.args.as_slice() else {
            return exec_err!("FROM_UNIXTIME takes one argument");
        };
        // An integer cast to a millisecond timestamp is read as milliseconds; nulls stay.
        Ok(match millis {
            ColumnarValue::Array(a) => ColumnarValue::Array(cast(a, &TIMESTAMP)?),
            ColumnarValue::Scalar(s) => ColumnarValue::Scalar(s.cast_to(&TIMESTAMP)?),
        })
    }
}

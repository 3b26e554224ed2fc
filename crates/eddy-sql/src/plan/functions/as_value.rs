//! `AS_VALUE(x)`: the value of `x`, as a value column even where `x` is a key column.
//!
//! The planner's key rules match key columns by expression, so wrapping a key column in a
//! function call is enough to copy it into the value.

use std::sync::Arc;

use arrow::datatypes::DataType;
use datafusion_common::{Result, exec_err, plan_err};
use datafusion_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

/// The `AS_VALUE` function.
pub(crate) fn function() -> Arc<ScalarUDF> {
    Arc::new(ScalarUDF::from(AsValue {
        signature: Signature::any(1, Volatility::Immutable),
    }))
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct AsValue {
    signature: Signature,
}

impl ScalarUDFImpl for AsValue {
    fn name(&self) -> &str {
        "as_value"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match arg_types {
            [t] => Ok(t.clone()),
            _ => plan_err!("Function 'AS_VALUE' does not accept parameters {arg_types:?}"),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        match args.args.into_iter().next() {
            Some(v) => Ok(v),
            None => exec_err!("AS_VALUE takes one argument"),
        }
    }
}

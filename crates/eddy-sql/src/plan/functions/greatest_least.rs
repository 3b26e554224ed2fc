//! ksqlDB's `GREATEST` and `LEAST`: DataFusion's, with ksqlDB's choice of the common type. A
//! DOUBLE among the arguments makes every number a DOUBLE (DataFusion would make them all a
//! DECIMAL(30, 15), losing the DOUBLE's precision and range); whole numbers stay INT unless a
//! BIGINT is among them; text compares with text only.

use std::sync::Arc;

use arrow::datatypes::DataType;
use datafusion_common::Result;
use datafusion_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

/// The two functions.
pub(crate) fn functions() -> Vec<Arc<ScalarUDF>> {
    [
        (
            "greatest",
            "GREATEST",
            datafusion_functions::core::greatest(),
        ),
        ("least", "LEAST", datafusion_functions::core::least()),
    ]
    .map(|(name, sql_name, inner)| {
        Arc::new(ScalarUDF::from(Extremum {
            name,
            sql_name,
            inner,
            signature: Signature::user_defined(Volatility::Immutable),
        }))
    })
    .into()
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Extremum {
    name: &'static str,
    sql_name: &'static str,
    /// DataFusion's function, which compares arguments of one type.
    inner: Arc<ScalarUDF>,
    signature: Signature,
}

impl ScalarUDFImpl for Extremum {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let known: Vec<&DataType> = arg_types.iter().filter(|t| !t.is_null()).collect();
        let target = match known.as_slice() {
            [] => return super::rejected(self.sql_name, arg_types),
            types if types.iter().all(|t| super::is_text(t)) => DataType::Utf8,
            types if types.iter().all(|t| t.is_numeric()) => {
                if types.iter().any(|t| t.is_floating()) {
                    DataType::Float64
                } else if types.iter().any(|t| matches!(t, DataType::Decimal128(..))) {
                    return self.inner.coerce_types(arg_types);
                } else if types
                    .iter()
                    .all(|t| super::is_integer(t) && t.primitive_width() <= Some(4))
                {
                    DataType::Int32
                } else {
                    DataType::Int64
                }
            }
            [first, rest @ ..] if rest.iter().all(|t| t == first) => (*first).clone(),
            _ => return super::rejected(self.sql_name, arg_types),
        };
        Ok(vec![target; arg_types.len()])
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.return_type(arg_types)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        self.inner.invoke_with_args(args)
    }
}

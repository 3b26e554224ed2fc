//! ksqlDB's `UUID()` (a random version 4 UUID: DataFusion's `uuid`) and `UUID(bytes)`, which
//! DataFusion lacks: the UUID whose 16 bytes these are, NULL for any other length.

use std::sync::Arc;

use arrow::array::{Array, AsArray, StringArray};
use arrow::datatypes::DataType;
use datafusion_common::Result;
use datafusion_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature,
    Volatility,
};

/// The function.
pub(crate) fn function() -> Arc<ScalarUDF> {
    Arc::new(ScalarUDF::from(Uuid {
        signature: Signature::one_of(
            vec![TypeSignature::Nullary, TypeSignature::UserDefined],
            Volatility::Volatile,
        ),
        random: datafusion_functions::string::uuid(),
    }))
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Uuid {
    signature: Signature,
    /// DataFusion's `uuid()`, for the form without arguments.
    random: Arc<ScalarUDF>,
}

/// `bytes` written as a UUID (`xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`), if there are 16.
fn uuid_of(bytes: &[u8]) -> Option<String> {
    if bytes.len() != 16 {
        return None;
    }
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Some(format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    ))
}

impl ScalarUDFImpl for Uuid {
    fn name(&self) -> &str {
        "uuid"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match arg_types {
            [] => Ok(Vec::new()),
            [DataType::Binary | DataType::LargeBinary | DataType::BinaryView | DataType::Null] => {
                Ok(vec![DataType::Binary])
            }
            _ => super::rejected("UUID", arg_types),
        }
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        if args.args.is_empty() {
            return self.random.invoke_with_args(args);
        }
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let [bytes] = arrays.as_slice() else {
            return datafusion_common::exec_err!("UUID takes no argument or one");
        };
        let bytes = bytes.as_binary::<i32>();
        let out: StringArray = (0..bytes.len())
            .map(|i| bytes.is_valid(i).then(|| uuid_of(bytes.value(i))).flatten())
            .collect();
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sixteen_bytes_make_a_uuid() {
        let bytes: Vec<u8> = (0..16).collect();
        assert_eq!(
            uuid_of(&bytes).as_deref(),
            Some("00010203-0405-0607-0809-0a0b0c0d0e0f")
        );
        assert_eq!(uuid_of(&bytes[..15]), None);
    }
}

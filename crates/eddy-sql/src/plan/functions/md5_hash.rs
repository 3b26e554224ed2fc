//! ksqlDB's `MD5(text)`: the MD5 hash of a STRING's UTF-8 bytes, as 32 lower-case hex digits.

use std::sync::Arc;

use arrow::array::{Array, AsArray, StringArray};
use arrow::datatypes::DataType;
use datafusion_common::{Result, exec_err};
use datafusion_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use md5::{Digest, Md5};

/// The `MD5` function.
pub(crate) fn function() -> Arc<ScalarUDF> {
    Arc::new(ScalarUDF::from(Md5Hash {
        signature: Signature::user_defined(Volatility::Immutable),
    }))
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Md5Hash {
    signature: Signature,
}

/// The hex digest of `text`.
fn md5_hex(text: &str) -> String {
    format!("{:x}", Md5::digest(text.as_bytes()))
}

impl ScalarUDFImpl for Md5Hash {
    fn name(&self) -> &str {
        "md5"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match arg_types {
            [t] if super::is_text(t) => Ok(vec![DataType::Utf8]),
            _ => super::rejected("MD5", arg_types),
        }
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let [text] = arrays.as_slice() else {
            return exec_err!("MD5 takes one argument");
        };
        let text = text.as_string::<i32>();
        let hashes: StringArray = (0..text.len())
            .map(|i| (!text.is_null(i)).then(|| md5_hex(text.value(i))))
            .collect();
        Ok(ColumnarValue::Array(Arc::new(hashes)))
    }
}

#[cfg(test)]
mod tests {
    use super::md5_hex;

    #[test]
    fn hashes_as_hex() {
        assert_eq!(md5_hex(""), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(md5_hex("hash me"), "17b31dce96b9d6c6d0a6ba95f47796fb");
    }
}

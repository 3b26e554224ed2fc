//! ksqlDB's `ENCODE(text, input_encoding, output_encoding)`: the bytes `text` stands for in
//! one of `hex`, `utf8`, `ascii` and `base64`, written in another (DataFusion's `encode`
//! takes bytes and one encoding). As in ksqlDB, hex is written in lower case, text read as
//! ASCII has `?` for what ASCII lacks, and bytes written as ASCII or UTF-8 that are not
//! valid there become U+FFFD.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, StringArray};
use arrow::datatypes::DataType;
use base64::Engine as _;
use datafusion_common::{DataFusionError, Result, exec_err};
use datafusion_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use super::bytes::BASE64;

/// The function.
pub(crate) fn function() -> Arc<ScalarUDF> {
    Arc::new(ScalarUDF::from(Encode {
        signature: Signature::user_defined(Volatility::Immutable),
    }))
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Encode {
    signature: Signature,
}

const ENCODINGS: [&str; 4] = ["hex", "utf8", "ascii", "base64"];

/// `text` read in `from` and written in `to` (two different encodings of [`ENCODINGS`]).
fn encode(text: &str, from: &str, to: &str) -> Result<String> {
    let (from, to) = (from.to_ascii_lowercase(), to.to_ascii_lowercase());
    if from == to || !ENCODINGS.contains(&from.as_str()) || !ENCODINGS.contains(&to.as_str()) {
        return exec_err!("Supported input and output encodings are: hex, utf8, ascii and base64");
    }
    let bytes: Vec<u8> = match from.as_str() {
        "hex" => {
            if text.len() % 2 == 1 {
                return exec_err!("Odd number of characters in hex text '{text}'");
            }
            (0..text.len())
                .step_by(2)
                .map(|i| {
                    text.get(i..i + 2)
                        .and_then(|h| u8::from_str_radix(h, 16).ok())
                        .ok_or_else(|| {
                            DataFusionError::Execution(format!("Invalid hex text: '{text}'"))
                        })
                })
                .collect::<Result<_>>()?
        }
        "utf8" => text.as_bytes().to_vec(),
        "ascii" => text
            .chars()
            .map(|c| if c.is_ascii() { c as u8 } else { b'?' })
            .collect(),
        _ => BASE64
            .decode(text)
            .map_err(|e| DataFusionError::Execution(format!("Invalid base64 text: {e}")))?,
    };
    Ok(match to.as_str() {
        "hex" => bytes.iter().map(|b| format!("{b:02x}")).collect(),
        "utf8" => String::from_utf8_lossy(&bytes).into_owned(),
        "ascii" => bytes
            .iter()
            .map(|&b| {
                if b.is_ascii() {
                    char::from(b)
                } else {
                    '\u{fffd}'
                }
            })
            .collect(),
        _ => base64::engine::general_purpose::STANDARD.encode(&bytes),
    })
}

impl ScalarUDFImpl for Encode {
    fn name(&self) -> &str {
        "encode"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match arg_types {
            [a, b, c] if [a, b, c].iter().all(|t| super::is_text(t)) => Ok(vec![DataType::Utf8; 3]),
            _ => super::rejected("ENCODE", arg_types),
        }
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let [text, from, to] = arrays.as_slice() else {
            return exec_err!("ENCODE takes three arguments");
        };
        let (text, from, to) = (
            text.as_string::<i32>(),
            from.as_string::<i32>(),
            to.as_string::<i32>(),
        );
        let out = (0..text.len())
            .map(|i| {
                if text.is_null(i) || from.is_null(i) || to.is_null(i) {
                    return Ok(None);
                }
                encode(text.value(i), from.value(i), to.value(i)).map(Some)
            })
            .collect::<Result<StringArray>>()?;
        Ok(ColumnarValue::Array(Arc::new(out) as ArrayRef))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_between_every_pair() {
        let ok = |t: &str, f: &str, o: &str| encode(t, f, o).ok();
        assert_eq!(
            ok("4578616d706C6521", "hex", "utf8").as_deref(),
            Some("Example!")
        );
        assert_eq!(
            ok("Example!", "ascii", "hex").as_deref(),
            Some("4578616d706c6521")
        );
        assert_eq!(
            ok("Example!", "utf8", "base64").as_deref(),
            Some("RXhhbXBsZSE=")
        );
        assert_eq!(
            ok("RXhhbXBsZSE", "base64", "ascii").as_deref(),
            Some("Example!")
        );
        assert_eq!(ok("é", "ascii", "hex").as_deref(), Some("3f"));
        assert_eq!(
            ok("é", "UTF8", "ASCII").as_deref(),
            Some("\u{fffd}\u{fffd}")
        );
        assert_eq!(ok("ff", "hex", "utf8").as_deref(), Some("\u{fffd}"));
        assert!(encode("abc", "hex", "utf8").is_err());
        assert!(encode("zz", "hex", "utf8").is_err());
        assert!(encode("a", "utf8", "utf8").is_err());
        assert!(encode("a", "utf16", "hex").is_err());
    }
}

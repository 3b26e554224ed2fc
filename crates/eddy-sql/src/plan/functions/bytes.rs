//! ksqlDB's BYTES functions: `TO_BYTES(s, encoding)`, `FROM_BYTES(b, encoding)` (encodings
//! `hex`, `utf8`, `ascii`, `base64`) and `INT_FROM_BYTES`, `BIGINT_FROM_BYTES`,
//! `DOUBLE_FROM_BYTES` (`BIG_ENDIAN` by default, or `LITTLE_ENDIAN`).

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BinaryArray, Float64Array, Int32Array, Int64Array, StringArray,
};
use arrow::datatypes::DataType;
use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use datafusion_common::{DataFusionError, Result, exec_err, plan_err};
use datafusion_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

/// Standard base64; padding optional on input, like Java's decoder.
pub(super) const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The functions of this module.
pub(crate) fn functions() -> Vec<Arc<ScalarUDF>> {
    [
        Kind::ToBytes,
        Kind::FromBytes,
        Kind::Int,
        Kind::Bigint,
        Kind::Double,
    ]
    .map(|kind| {
        Arc::new(ScalarUDF::from(BytesFn {
            kind,
            signature: Signature::user_defined(Volatility::Immutable),
        }))
    })
    .into()
}

/// Which function: `TO_BYTES` (text to bytes), `FROM_BYTES` (bytes to text), or a number
/// read from bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    ToBytes,
    FromBytes,
    Int,
    Bigint,
    Double,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct BytesFn {
    kind: Kind,
    signature: Signature,
}

fn is_text(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null
    )
}

fn is_bytes(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView | DataType::Null
    )
}

/// `bytes` in `encoding`.
fn encode(bytes: &[u8], encoding: &str) -> Result<String> {
    Ok(match encoding.to_ascii_lowercase().as_str() {
        "hex" => bytes.iter().map(|b| format!("{b:02X}")).collect(),
        "utf8" => String::from_utf8(bytes.to_vec())
            .map_err(|e| DataFusionError::Execution(format!("Invalid UTF-8: {e}")))?,
        "ascii" => bytes.iter().map(|&b| char::from(b & 0x7f)).collect(),
        "base64" => BASE64.encode(bytes),
        other => return exec_err!("Unknown encoding: '{other}'"),
    })
}

/// The bytes `text` stands for in `encoding`.
fn decode(text: &str, encoding: &str) -> Result<Vec<u8>> {
    Ok(match encoding.to_ascii_lowercase().as_str() {
        "hex" => {
            // An odd number of digits has an implied leading zero.
            let padded = if text.len() % 2 == 1 {
                format!("0{text}")
            } else {
                text.to_string()
            };
            (0..padded.len())
                .step_by(2)
                .map(|i| {
                    padded
                        .get(i..i + 2)
                        .and_then(|h| u8::from_str_radix(h, 16).ok())
                        .ok_or_else(|| {
                            DataFusionError::Execution(format!("Invalid hex string: '{text}'"))
                        })
                })
                .collect::<Result<_>>()?
        }
        "utf8" => text.as_bytes().to_vec(),
        "ascii" => text.chars().map(|c| (c as u32 & 0x7f) as u8).collect(),
        "base64" => BASE64
            .decode(text)
            .map_err(|e| DataFusionError::Execution(format!("Invalid base64: {e}")))?,
        other => return exec_err!("Unknown encoding: '{other}'"),
    })
}

/// The first `N` bytes as a number's bytes in the given order.
fn number_bytes<const N: usize>(bytes: &[u8], order: &str, name: &str) -> Result<[u8; N]> {
    let Ok(mut fixed) = <[u8; N]>::try_from(bytes) else {
        return exec_err!(
            "Number of bytes must be equal to {N}, but found {}",
            bytes.len()
        );
    };
    match order.to_ascii_uppercase().as_str() {
        "BIG_ENDIAN" => {}
        "LITTLE_ENDIAN" => fixed.reverse(),
        other => return exec_err!("{name}: unknown byte order '{other}'"),
    }
    Ok(fixed)
}

impl ScalarUDFImpl for BytesFn {
    fn name(&self) -> &str {
        match self.kind {
            Kind::ToBytes => "to_bytes",
            Kind::FromBytes => "from_bytes",
            Kind::Int => "int_from_bytes",
            Kind::Bigint => "bigint_from_bytes",
            Kind::Double => "double_from_bytes",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let ok = match (self.kind, arg_types) {
            (Kind::ToBytes, [s, e]) => is_text(s) && is_text(e),
            (Kind::FromBytes, [b, e]) => is_bytes(b) && is_text(e),
            (_, [b]) => is_bytes(b) && self.kind != Kind::ToBytes && self.kind != Kind::FromBytes,
            (_, [b, o]) => is_bytes(b) && is_text(o),
            _ => false,
        };
        if !ok {
            return plan_err!(
                "Function '{}' does not accept parameters {arg_types:?}",
                self.name().to_ascii_uppercase()
            );
        }
        let first = match self.kind {
            Kind::ToBytes => DataType::Utf8,
            _ => DataType::Binary,
        };
        Ok(std::iter::once(first)
            .chain(arg_types.iter().skip(1).map(|_| DataType::Utf8))
            .collect())
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(match self.kind {
            Kind::ToBytes => DataType::Binary,
            Kind::FromBytes => DataType::Utf8,
            Kind::Int => DataType::Int32,
            Kind::Bigint => DataType::Int64,
            Kind::Double => DataType::Float64,
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let Some(input) = arrays.first() else {
            return exec_err!("{} needs an argument", self.name());
        };
        let second = arrays.get(1).map(|a| a.as_string::<i32>());
        let option = |i: usize| -> Option<&str> {
            match second {
                None => Some("BIG_ENDIAN"),
                Some(s) if s.is_null(i) => None,
                Some(s) => Some(s.value(i)),
            }
        };
        let rows = 0..input.len();
        let name = self.name().to_ascii_uppercase();
        let out: ArrayRef = match self.kind {
            Kind::ToBytes => {
                let s = input.as_string::<i32>();
                let out = rows
                    .map(|i| match option(i) {
                        Some(e) if !s.is_null(i) => decode(s.value(i), e).map(Some),
                        _ => Ok(None),
                    })
                    .collect::<Result<BinaryArray>>()?;
                Arc::new(out)
            }
            Kind::FromBytes => {
                let b = input.as_binary::<i32>();
                let out = rows
                    .map(|i| match option(i) {
                        Some(e) if !b.is_null(i) => encode(b.value(i), e).map(Some),
                        _ => Ok(None),
                    })
                    .collect::<Result<StringArray>>()?;
                Arc::new(out)
            }
            Kind::Int => {
                let b = input.as_binary::<i32>();
                let out = rows
                    .map(|i| match option(i) {
                        Some(o) if !b.is_null(i) => number_bytes::<4>(b.value(i), o, &name)
                            .map(|x| Some(i32::from_be_bytes(x))),
                        _ => Ok(None),
                    })
                    .collect::<Result<Int32Array>>()?;
                Arc::new(out)
            }
            Kind::Bigint => {
                let b = input.as_binary::<i32>();
                let out = rows
                    .map(|i| match option(i) {
                        Some(o) if !b.is_null(i) => number_bytes::<8>(b.value(i), o, &name)
                            .map(|x| Some(i64::from_be_bytes(x))),
                        _ => Ok(None),
                    })
                    .collect::<Result<Int64Array>>()?;
                Arc::new(out)
            }
            Kind::Double => {
                let b = input.as_binary::<i32>();
                let out = rows
                    .map(|i| match option(i) {
                        Some(o) if !b.is_null(i) => number_bytes::<8>(b.value(i), o, &name)
                            .map(|x| Some(f64::from_be_bytes(x))),
                        _ => Ok(None),
                    })
                    .collect::<Result<Float64Array>>()?;
                Arc::new(out)
            }
        };
        Ok(ColumnarValue::Array(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_round_trip() -> Result<()> {
        assert_eq!(encode(&[0x1a, 0xb2], "hex")?, "1AB2");
        assert_eq!(decode("1aB2", "hex")?, vec![0x1a, 0xb2]);
        assert_eq!(decode("abc", "hex")?, vec![0x0a, 0xbc]);
        assert_eq!(encode(b"!", "base64")?, "IQ==");
        assert_eq!(decode("IQ", "base64")?, b"!".to_vec());
        assert_eq!(
            number_bytes::<4>(&[0, 0, 1, 0], "LITTLE_ENDIAN", "F")?,
            [0, 1, 0, 0]
        );
        Ok(())
    }
}

//! ksqlDB's `INITCAP`, `INSTR`, `CHR`, `TRIM` and `REPLACE`, where DataFusion's functions of
//! the same names differ: DataFusion's `initcap` starts a word after any non-letter (ksqlDB
//! only after whitespace), its `strpos` takes no position or occurrence, its `chr` no
//! `\uXXXX` text, its `trim` removes spaces only (ksqlDB's, Java's `String.trim`, every
//! control character too) and its `replace` of an empty string changes nothing (ksqlDB's
//! inserts the replacement around every character).

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int32Array, StringArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Int64Type};
use datafusion_common::{Result, exec_err};
use datafusion_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

/// The functions of this module.
pub(crate) fn functions() -> Vec<Arc<ScalarUDF>> {
    [
        Kind::InitCap,
        Kind::Instr,
        Kind::Chr,
        Kind::Trim,
        Kind::Replace,
    ]
    .map(|kind| {
        Arc::new(ScalarUDF::from(StringFn {
            kind,
            signature: Signature::user_defined(Volatility::Immutable),
        }))
    })
    .into()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    InitCap,
    Instr,
    Chr,
    Trim,
    Replace,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct StringFn {
    kind: Kind,
    signature: Signature,
}

/// Each word (after whitespace) with its first letter upper-cased and the rest lower-cased.
fn initcap(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut word_start = true;
    for c in text.chars() {
        if word_start {
            out.extend(c.to_uppercase());
        } else {
            out.extend(c.to_lowercase());
        }
        word_start = c.is_whitespace();
    }
    out
}

/// `text` without the characters up to U+0020 (spaces and control characters) at either end,
/// as Java's `String.trim` leaves it.
fn java_trim(text: &str) -> &str {
    text.trim_matches(|c: char| c <= ' ')
}

/// The 1-based position of the `occurrence`-th `needle` in `text`, searching from
/// `position` (from the end when negative); 0 when there is none.
fn instr(text: &str, needle: &str, position: i64, occurrence: i64) -> i32 {
    let chars: Vec<char> = text.chars().collect();
    let wanted: Vec<char> = needle.chars().collect();
    if position == 0 || occurrence < 1 || wanted.len() > chars.len() {
        return 0;
    }
    let starts = (0..=chars.len() - wanted.len()).filter(|&i| chars[i..].starts_with(&wanted));
    let n = (occurrence - 1) as usize;
    let found = if position > 0 {
        starts.filter(|&i| i as i64 + 1 >= position).nth(n)
    } else {
        let last = chars.len() as i64 + position;
        let before: Vec<usize> = starts.filter(|&i| i as i64 <= last).collect();
        before.into_iter().rev().nth(n)
    };
    found.map_or(0, |i| i32::try_from(i + 1).unwrap_or(0))
}

/// The character of a code point, or of a `\uXXXX` text.
fn chr_of_code(code: i64) -> Option<String> {
    u32::try_from(code)
        .ok()
        .and_then(char::from_u32)
        .map(String::from)
}

fn chr_of_text(text: &str) -> Option<String> {
    let hex = text.strip_prefix("\\u")?;
    chr_of_code(i64::from_str_radix(hex, 16).ok()?)
}

impl StringFn {
    fn sql_name(&self) -> &'static str {
        match self.kind {
            Kind::InitCap => "INITCAP",
            Kind::Instr => "INSTR",
            Kind::Chr => "CHR",
            Kind::Trim => "TRIM",
            Kind::Replace => "REPLACE",
        }
    }
}

impl ScalarUDFImpl for StringFn {
    fn name(&self) -> &str {
        match self.kind {
            Kind::InitCap => "initcap",
            Kind::Instr => "instr",
            Kind::Chr => "chr",
            Kind::Trim => "trim",
            Kind::Replace => "replace",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let text = super::is_text;
        let integer = super::is_integer;
        let coerced = match (self.kind, arg_types) {
            (Kind::InitCap | Kind::Trim, [s]) if text(s) => vec![DataType::Utf8],
            (Kind::Replace, [s, from, to]) if text(s) && text(from) && text(to) => {
                vec![DataType::Utf8; 3]
            }
            (Kind::Instr, [s, n, rest @ ..])
                if text(s) && text(n) && rest.len() <= 2 && rest.iter().all(integer) =>
            {
                let mut types = vec![DataType::Utf8, DataType::Utf8];
                types.extend(rest.iter().map(|_| DataType::Int64));
                types
            }
            (Kind::Chr, [s]) if text(s) => vec![DataType::Utf8],
            (Kind::Chr, [n]) if integer(n) => vec![DataType::Int64],
            _ => return super::rejected(self.sql_name(), arg_types),
        };
        Ok(coerced)
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(match self.kind {
            Kind::Instr => DataType::Int32,
            Kind::InitCap | Kind::Chr | Kind::Trim | Kind::Replace => DataType::Utf8,
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let Some(first) = arrays.first() else {
            return exec_err!("{} needs an argument", self.sql_name());
        };
        let rows = 0..first.len();
        let out: ArrayRef = match self.kind {
            Kind::InitCap => {
                let s = first.as_string::<i32>();
                Arc::new(
                    rows.map(|i| s.is_valid(i).then(|| initcap(s.value(i))))
                        .collect::<StringArray>(),
                )
            }
            Kind::Trim => {
                let s = first.as_string::<i32>();
                Arc::new(
                    rows.map(|i| s.is_valid(i).then(|| java_trim(s.value(i))))
                        .collect::<StringArray>(),
                )
            }
            Kind::Replace => {
                let (s, from, to) = (
                    first.as_string::<i32>(),
                    arrays[1].as_string::<i32>(),
                    arrays[2].as_string::<i32>(),
                );
                Arc::new(
                    rows.map(|i| {
                        (s.is_valid(i) && from.is_valid(i) && to.is_valid(i))
                            .then(|| s.value(i).replace(from.value(i), to.value(i)))
                    })
                    .collect::<StringArray>(),
                )
            }
            Kind::Chr if first.data_type() == &DataType::Utf8 => {
                let s = first.as_string::<i32>();
                Arc::new(
                    rows.map(|i| s.is_valid(i).then(|| chr_of_text(s.value(i))).flatten())
                        .collect::<StringArray>(),
                )
            }
            Kind::Chr => {
                let n = cast(first, &DataType::Int64)?;
                let n = n.as_primitive::<Int64Type>();
                Arc::new(
                    rows.map(|i| n.is_valid(i).then(|| chr_of_code(n.value(i))).flatten())
                        .collect::<StringArray>(),
                )
            }
            Kind::Instr => {
                let (s, needle) = (first.as_string::<i32>(), arrays[1].as_string::<i32>());
                let number = |k: usize| -> Result<Option<ArrayRef>> {
                    arrays
                        .get(k)
                        .map(|a| cast(a, &DataType::Int64))
                        .transpose()
                        .map_err(Into::into)
                };
                let (position, occurrence) = (number(2)?, number(3)?);
                let value = |a: &Option<ArrayRef>, i: usize, default: i64| match a {
                    None => Some(default),
                    Some(a) if a.is_null(i) => None,
                    Some(a) => Some(a.as_primitive::<Int64Type>().value(i)),
                };
                Arc::new(
                    rows.map(|i| {
                        if s.is_null(i) || needle.is_null(i) {
                            return None;
                        }
                        let p = value(&position, i, 1)?;
                        let n = value(&occurrence, i, 1)?;
                        Some(instr(s.value(i), needle.value(i), p, n))
                    })
                    .collect::<Int32Array>(),
                )
            }
        };
        Ok(ColumnarValue::Array(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_examples() {
        let text = "CORPORATE FLOOR";
        assert_eq!(instr(text, "OR", 1, 1), 2);
        assert_eq!(instr(text, "OR", 3, 1), 5);
        assert_eq!(instr(text, "OR", 3, 2), 14);
        assert_eq!(instr(text, "OR", -3, 1), 5);
        assert_eq!(instr(text, "OR", -3, 2), 2);
        assert_eq!(instr(text, "MISSING", 1, 1), 0);
        assert_eq!(initcap("hello wORLD-foo\tbar"), "Hello World-foo\tBar");
        assert_eq!(chr_of_code(75).as_deref(), Some("K"));
        assert_eq!(chr_of_text("\\u597d").as_deref(), Some("好"));
        assert_eq!(chr_of_text("nope"), None);
        assert_eq!(chr_of_code(-1), None);
        assert_eq!(java_trim("\t a b \n\r"), "a b");
        assert_eq!(java_trim("\u{a0}a"), "\u{a0}a");
        assert_eq!("abc".replace("", "x"), "xaxbxcx");
    }
}

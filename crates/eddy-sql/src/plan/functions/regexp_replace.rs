//! ksqlDB's `REGEXP_REPLACE(string, regex, replacement)`: every match replaced, the
//! replacement written as Java writes it (`$1` for a group, `\$` for a dollar sign); null if
//! any argument is null. (DataFusion's function of that name replaces the first match only
//! unless given a `g` flag, and reads `\1` for a group.)

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, StringArray};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use datafusion_common::{Result, exec_err, plan_err};
use datafusion_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use regex::Regex;

/// `REGEXP_REPLACE`.
pub(crate) fn function() -> Arc<ScalarUDF> {
    Arc::new(ScalarUDF::from(RegexpReplace {
        signature: Signature::user_defined(Volatility::Immutable),
    }))
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct RegexpReplace {
    signature: Signature,
}

/// A Java replacement string in the `regex` crate's syntax: `$n` becomes `${n}` (Java reads
/// only the digits), `\x` the literal `x`, and a literal `$` is doubled.
fn replacement(java: &str) -> String {
    let mut out = String::with_capacity(java.len());
    let mut chars = java.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('$') => out.push_str("$$"),
                Some(other) => out.push(other),
                None => out.push('\\'),
            },
            '$' if chars.peek().is_some_and(char::is_ascii_digit) => {
                out.push_str("${");
                while let Some(d) = chars.next_if(char::is_ascii_digit) {
                    out.push(d);
                }
                out.push('}');
            }
            '$' if chars.peek() == Some(&'{') => out.push('$'),
            '$' => out.push_str("$$"),
            other => out.push(other),
        }
    }
    out
}

impl ScalarUDFImpl for RegexpReplace {
    fn name(&self) -> &str {
        "regexp_replace"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let text = super::is_text;
        match arg_types {
            [a, b, c] if text(a) && text(b) && text(c) => Ok(vec![DataType::Utf8; 3]),
            _ => plan_err!("Function 'REGEXP_REPLACE' does not accept parameters {arg_types:?}"),
        }
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let [value, pattern, with] = arrays.as_slice() else {
            return exec_err!("REGEXP_REPLACE takes three arguments");
        };
        let (value, pattern, with) = (
            cast(value, &DataType::Utf8)?,
            cast(pattern, &DataType::Utf8)?,
            cast(with, &DataType::Utf8)?,
        );
        let (value, pattern, with) = (
            value.as_string::<i32>(),
            pattern.as_string::<i32>(),
            with.as_string::<i32>(),
        );
        // Pattern and replacement are usually the same on every row: each is compiled once
        // per run of equal values, not per row.
        let mut compiled: Option<(&str, Regex)> = None;
        let mut replaced: Option<(&str, String)> = None;
        let mut out = Vec::with_capacity(value.len());
        for i in 0..value.len() {
            if value.is_null(i) || pattern.is_null(i) || with.is_null(i) {
                out.push(None);
                continue;
            }
            let (p, w) = (pattern.value(i), with.value(i));
            let re = match compiled.take() {
                Some((source, re)) if source == p => re,
                _ => match Regex::new(p) {
                    Ok(re) => re,
                    Err(e) => {
                        return exec_err!("REGEXP_REPLACE: invalid regular expression '{p}': {e}");
                    }
                },
            };
            let rust = match replaced.take() {
                Some((java, rust)) if java == w => rust,
                _ => replacement(w),
            };
            out.push(Some(
                re.replace_all(value.value(i), rust.as_str()).into_owned(),
            ));
            compiled = Some((p, re));
            replaced = Some((w, rust));
        }
        let out: ArrayRef = Arc::new(StringArray::from(out));
        Ok(ColumnarValue::Array(out))
    }
}

#[cfg(test)]
mod tests {
    use super::replacement;

    #[test]
    fn java_replacements_read_as_java_reads_them() {
        assert_eq!(replacement("+"), "+");
        assert_eq!(replacement("$1x"), "${1}x");
        assert_eq!(replacement("\\$5"), "$$5");
        assert_eq!(replacement("a$"), "a$$");
        assert_eq!(replacement("\\\\"), "\\");
    }
}

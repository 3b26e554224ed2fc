//! ksqlDB's masking functions: `MASK(s [, upper, lower, digit, other])` and `MASK_LEFT`,
//! `MASK_RIGHT`, `MASK_KEEP_LEFT`, `MASK_KEEP_RIGHT` `(s, n [, upper, lower, digit, other])`.
//!
//! Upper-case letters become `X`, lower-case `x`, digits `n` and anything else `-`, unless
//! other mask characters are given (their first character counts); a NULL mask character
//! leaves that kind of character as it is. The `_LEFT`/`_RIGHT` forms mask only the first or
//! last `n` characters, the `_KEEP_` forms all but those.

use std::sync::Arc;

use arrow::array::{Array, AsArray, StringArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Int64Type};
use datafusion_common::{Result, exec_err};
use datafusion_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

/// The five functions.
pub(crate) fn functions() -> Vec<Arc<ScalarUDF>> {
    [
        Part::All,
        Part::Left,
        Part::Right,
        Part::KeepLeft,
        Part::KeepRight,
    ]
    .map(|part| {
        Arc::new(ScalarUDF::from(Mask {
            part,
            signature: Signature::user_defined(Volatility::Immutable),
        }))
    })
    .into()
}

/// Which characters a function masks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Part {
    All,
    Left,
    Right,
    KeepLeft,
    KeepRight,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Mask {
    part: Part,
    signature: Signature,
}

/// The replacement for each kind of character; `None` keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Masks {
    upper: Option<char>,
    lower: Option<char>,
    digit: Option<char>,
    other: Option<char>,
}

impl Default for Masks {
    fn default() -> Self {
        Masks {
            upper: Some('X'),
            lower: Some('x'),
            digit: Some('n'),
            other: Some('-'),
        }
    }
}

impl Masks {
    fn mask(&self, c: char) -> char {
        let replacement = if c.is_uppercase() {
            self.upper
        } else if c.is_lowercase() {
            self.lower
        } else if c.is_ascii_digit() {
            self.digit
        } else {
            self.other
        };
        replacement.unwrap_or(c)
    }
}

/// `text` with the characters at positions `range` (in characters) masked.
fn masked(text: &str, range: std::ops::Range<usize>, masks: &Masks) -> String {
    text.chars()
        .enumerate()
        .map(|(i, c)| if range.contains(&i) { masks.mask(c) } else { c })
        .collect()
}

impl Mask {
    fn sql_name(&self) -> &'static str {
        match self.part {
            Part::All => "MASK",
            Part::Left => "MASK_LEFT",
            Part::Right => "MASK_RIGHT",
            Part::KeepLeft => "MASK_KEEP_LEFT",
            Part::KeepRight => "MASK_KEEP_RIGHT",
        }
    }

    /// Where the mask characters start among the arguments.
    fn first_mask(&self) -> usize {
        if self.part == Part::All { 1 } else { 2 }
    }

    /// The characters masked in a text of `len` characters, with `n` from the arguments.
    fn range(&self, len: usize, n: usize) -> std::ops::Range<usize> {
        let n = n.min(len);
        match self.part {
            Part::All => 0..len,
            Part::Left => 0..n,
            Part::Right => len - n..len,
            Part::KeepLeft => n..len,
            Part::KeepRight => 0..len - n,
        }
    }
}

impl ScalarUDFImpl for Mask {
    fn name(&self) -> &str {
        match self.part {
            Part::All => "mask",
            Part::Left => "mask_left",
            Part::Right => "mask_right",
            Part::KeepLeft => "mask_keep_left",
            Part::KeepRight => "mask_keep_right",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let text = super::is_text;
        let integer = super::is_integer;
        let first_mask = self.first_mask();
        let ok = match arg_types.split_first() {
            Some((s, rest)) if text(s) => {
                let (count, masks) = rest.split_at(rest.len().min(first_mask - 1));
                count.iter().all(integer)
                    && count.len() == first_mask - 1
                    && (masks.is_empty() || masks.len() == 4)
                    && masks.iter().all(text)
            }
            _ => false,
        };
        if !ok {
            return super::rejected(self.sql_name(), arg_types);
        }
        Ok(arg_types
            .iter()
            .enumerate()
            .map(|(i, _)| {
                if i > 0 && i < first_mask {
                    DataType::Int64
                } else {
                    DataType::Utf8
                }
            })
            .collect())
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let Some(text) = arrays.first() else {
            return exec_err!("{} needs a string", self.sql_name());
        };
        let text = text.as_string::<i32>();
        let first_mask = self.first_mask();
        let count = match arrays.get(1).filter(|_| first_mask == 2) {
            Some(count) => Some(cast(count, &DataType::Int64)?),
            None => None,
        };
        let mask_columns: Vec<&StringArray> = arrays
            .iter()
            .skip(first_mask)
            .map(|a| a.as_string::<i32>())
            .collect();
        let mut out = Vec::with_capacity(text.len());
        for i in 0..text.len() {
            if text.is_null(i) {
                out.push(None);
                continue;
            }
            let n = match &count {
                None => 0,
                Some(count) if count.is_null(i) => {
                    out.push(None);
                    continue;
                }
                Some(count) => {
                    let n = count.as_primitive::<Int64Type>().value(i);
                    match usize::try_from(n) {
                        Ok(n) => n,
                        Err(_) => {
                            return exec_err!(
                                "function {} requires a non-negative number, got {n}",
                                self.name()
                            );
                        }
                    }
                }
            };
            let mut masks = Masks::default();
            if let [upper, lower, digit, other] = mask_columns.as_slice() {
                let first = |column: &StringArray| {
                    (!column.is_null(i))
                        .then(|| column.value(i).chars().next())
                        .flatten()
                };
                masks = Masks {
                    upper: first(upper),
                    lower: first(lower),
                    digit: first(digit),
                    other: first(other),
                };
            }
            let value = text.value(i);
            let range = self.range(value.chars().count(), n);
            out.push(Some(masked(value, range, &masks)));
        }
        Ok(ColumnarValue::Array(Arc::new(StringArray::from(out))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask(part: Part, text: &str, n: usize) -> String {
        let f = Mask {
            part,
            signature: Signature::user_defined(Volatility::Immutable),
        };
        masked(text, f.range(text.chars().count(), n), &Masks::default())
    }

    #[test]
    fn the_documented_examples() {
        assert_eq!(mask(Part::All, "My Test $123", 0), "Xx-Xxxx--nnn");
        assert_eq!(mask(Part::KeepLeft, "My Test $123", 4), "My Txxx--nnn");
        assert_eq!(mask(Part::KeepRight, "My Test $123", 4), "Xx-Xxxx-$123");
        assert_eq!(mask(Part::Left, "My Test $123", 4), "Xx-Xest $123");
        assert_eq!(mask(Part::Right, "My Test $123", 4), "My Test -nnn");
        assert_eq!(mask(Part::Left, "ab", 10), "xx");
        let custom = Masks {
            upper: Some('*'),
            lower: None,
            digit: Some('1'),
            other: None,
        };
        assert_eq!(masked("My Test $123", 0..12, &custom), "*y *est $111");
    }
}

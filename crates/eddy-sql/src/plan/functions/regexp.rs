//! ksqlDB's `REGEXP_EXTRACT(regex, string [, group])` (the first match, or one of its groups),
//! `REGEXP_EXTRACT_ALL(regex, string [, group])` (every match, or one group of each) and
//! `REGEXP_SPLIT_TO_ARRAY(string, regex)` (the parts between matches, empty parts kept). Each
//! is null if any argument is null; an unmatched group is a null (element).

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, ListBuilder, StringArray, StringBuilder};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Int32Type};
use datafusion_common::{Result, exec_err};
use datafusion_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use regex::Regex;

/// `REGEXP_EXTRACT`, `REGEXP_EXTRACT_ALL` and `REGEXP_SPLIT_TO_ARRAY`.
pub(crate) fn functions() -> Vec<Arc<ScalarUDF>> {
    [Kind::Extract, Kind::ExtractAll, Kind::SplitToArray]
        .map(|kind| {
            Arc::new(ScalarUDF::from(RegexpFn {
                kind,
                signature: Signature::user_defined(Volatility::Immutable),
            }))
        })
        .into()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Extract,
    ExtractAll,
    SplitToArray,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct RegexpFn {
    kind: Kind,
    signature: Signature,
}

impl RegexpFn {
    fn sql_name(&self) -> &'static str {
        match self.kind {
            Kind::Extract => "REGEXP_EXTRACT",
            Kind::ExtractAll => "REGEXP_EXTRACT_ALL",
            Kind::SplitToArray => "REGEXP_SPLIT_TO_ARRAY",
        }
    }
}

/// The last regular expression compiled: patterns are usually the same on every row.
#[derive(Default)]
struct Compiled {
    last: Option<(String, Regex)>,
}

impl Compiled {
    fn get(&mut self, name: &str, pattern: &str) -> Result<&Regex> {
        if self.last.as_ref().is_none_or(|(p, _)| p != pattern) {
            match Regex::new(pattern) {
                Ok(re) => self.last = Some((pattern.to_string(), re)),
                Err(e) => return exec_err!("{name}: invalid regular expression '{pattern}': {e}"),
            }
        }
        match &self.last {
            Some((_, re)) => Ok(re),
            None => exec_err!("{name}: no regular expression"),
        }
    }
}

/// Group `group` of every match of `re` in `text` (only the first if `first_only`).
fn extract(re: &Regex, text: &str, group: usize, first_only: bool) -> Result<Vec<Option<String>>> {
    if group >= re.captures_len() {
        return exec_err!("No group {group}");
    }
    let mut found = Vec::new();
    for captures in re.captures_iter(text) {
        found.push(captures.get(group).map(|m| m.as_str().to_string()));
        if first_only {
            break;
        }
    }
    Ok(found)
}

/// `text` split around the matches of `re`, as ksqlDB splits: every part kept, except that a
/// pattern matching the empty string splits as Java's `Pattern.split` does (no leading empty
/// part from a match at the start, trailing empty parts dropped).
fn split<'a>(re: &Regex, pattern: &str, text: &'a str) -> Vec<&'a str> {
    if !pattern.is_empty() && !re.is_match("") {
        return re.split(text).collect();
    }
    let mut parts = Vec::new();
    let mut start = 0;
    for m in re.find_iter(text) {
        if m.start() == 0 && m.end() == 0 {
            continue;
        }
        parts.push(&text[start..m.start()]);
        start = m.end();
    }
    if start == 0 {
        return vec![text];
    }
    parts.push(&text[start..]);
    while parts.len() > 1 && parts.last().is_some_and(|p| p.is_empty()) {
        parts.pop();
    }
    parts
}

fn list_of_strings() -> DataType {
    DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)))
}

impl ScalarUDFImpl for RegexpFn {
    fn name(&self) -> &str {
        match self.kind {
            Kind::Extract => "regexp_extract",
            Kind::ExtractAll => "regexp_extract_all",
            Kind::SplitToArray => "regexp_split_to_array",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let text = super::is_text;
        let int = |t: &DataType| t.is_integer() || t.is_null();
        match (self.kind, arg_types) {
            (_, [a, b]) if text(a) && text(b) => Ok(vec![DataType::Utf8; 2]),
            (Kind::Extract | Kind::ExtractAll, [a, b, g]) if text(a) && text(b) && int(g) => {
                Ok(vec![DataType::Utf8, DataType::Utf8, DataType::Int32])
            }
            _ => super::rejected(self.sql_name(), arg_types),
        }
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(match self.kind {
            Kind::Extract => DataType::Utf8,
            Kind::ExtractAll | Kind::SplitToArray => list_of_strings(),
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let name = self.sql_name();
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let (first, second, group) = match arrays.as_slice() {
            [a, b] => (cast(a, &DataType::Utf8)?, cast(b, &DataType::Utf8)?, None),
            [a, b, g] => (
                cast(a, &DataType::Utf8)?,
                cast(b, &DataType::Utf8)?,
                Some(cast(g, &DataType::Int32)?),
            ),
            _ => return exec_err!("{name} takes two or three arguments"),
        };
        let (first, second) = (first.as_string::<i32>(), second.as_string::<i32>());
        let group = group.as_ref().map(|g| g.as_primitive::<Int32Type>());
        // REGEXP_SPLIT_TO_ARRAY takes the string first, the extracting functions the regex.
        let (pattern, text) = match self.kind {
            Kind::SplitToArray => (second, first),
            Kind::Extract | Kind::ExtractAll => (first, second),
        };
        let mut compiled = Compiled::default();
        let rows = 0..text.len();
        let null =
            |i: usize| pattern.is_null(i) || text.is_null(i) || group.is_some_and(|g| g.is_null(i));
        let group_at = |i: usize| -> Result<usize> {
            let g = group.map_or(0, |g| g.value(i));
            usize::try_from(g).or_else(|_| exec_err!("{name}: negative group {g}"))
        };
        let out: ArrayRef = match self.kind {
            Kind::Extract => {
                let mut out = Vec::with_capacity(text.len());
                for i in rows {
                    if null(i) {
                        out.push(None);
                        continue;
                    }
                    let re = compiled.get(name, pattern.value(i))?;
                    let found = extract(re, text.value(i), group_at(i)?, true)?;
                    out.push(found.into_iter().next().flatten());
                }
                Arc::new(StringArray::from(out))
            }
            Kind::ExtractAll | Kind::SplitToArray => {
                let mut builder = ListBuilder::new(StringBuilder::new());
                for i in rows {
                    if null(i) {
                        builder.append_null();
                        continue;
                    }
                    let re = compiled.get(name, pattern.value(i))?;
                    if self.kind == Kind::ExtractAll {
                        for found in extract(re, text.value(i), group_at(i)?, false)? {
                            builder.values().append_option(found);
                        }
                    } else {
                        for part in split(re, pattern.value(i), text.value(i)) {
                            builder.values().append_value(part);
                        }
                    }
                    builder.append(true);
                }
                Arc::new(builder.finish())
            }
        };
        Ok(ColumnarValue::Array(out))
    }
}

#[cfg(test)]
mod tests {
    use regex::Regex;

    use super::{extract, split};

    fn re(pattern: &str) -> Regex {
        Regex::new(pattern).unwrap_or_else(|e| panic!("{pattern}: {e}"))
    }

    #[test]
    fn extracts_matches_and_groups() {
        let hello = re("(.*) (.*)");
        assert_eq!(
            extract(&hello, "hello there", 2, true).ok(),
            Some(vec![Some("there".to_string())])
        );
        let words = re(r"(\w+) (\w+)");
        assert_eq!(
            extract(&words, "hello there nice day", 2, false).ok(),
            Some(vec![Some("there".to_string()), Some("day".to_string())])
        );
        assert_eq!(extract(&re("(a)|b"), "b", 1, true).ok(), Some(vec![None]));
        assert_eq!(extract(&re("x"), "abc", 0, false).ok(), Some(vec![]));
        assert!(extract(&re("a"), "a", 1, true).is_err());
    }

    #[test]
    fn splits_as_ksqldb_splits() {
        let pattern = "(ab|cd)";
        assert_eq!(split(&re(pattern), pattern, "aabcda"), ["a", "", "a"]);
        assert_eq!(split(&re(pattern), pattern, "zxy"), ["zxy"]);
        assert_eq!(split(&re("-"), "-", "-a-"), ["", "a", ""]);
        assert_eq!(split(&re(""), "", "abc"), ["a", "b", "c"]);
    }
}

//! JSON records → column builders, with ksqlDB's coercions.

use arrow::datatypes::{DataType, Fields};

use super::parser::{Parser, Token};
use crate::column::{self, ColumnBuilder, Rows, StructFields, Values};
use crate::failure::Failure;
use crate::scalar;

/// How a JSON field name matched a column; a better match replaces a worse one.
const FOLDED: u8 = 1;
const EXACT: u8 = 2;

/// Decodes JSON records; keeps a scratch buffer for unescaped strings between batches.
#[derive(Debug)]
pub(crate) struct JsonDecoder {
    /// Whether a record is an object holding the columns, rather than the single column's value.
    wrapped: bool,
    scratch: Vec<u8>,
}

impl JsonDecoder {
    pub(crate) fn new(wrapped: bool) -> Self {
        Self {
            wrapped,
            scratch: Vec::new(),
        }
    }

    /// Whether a record is an object holding the columns.
    pub(crate) fn wraps(&self) -> bool {
        self.wrapped
    }

    /// Appends one record to `rows`: one value per column, or a failure.
    pub(crate) fn decode(&mut self, bytes: &[u8], rows: &mut Rows) -> Result<(), Failure> {
        let mut p = Parser::new(bytes);
        if self.wrapped {
            let row = rows.len();
            match p.peek()? {
                Token::Null => {
                    p.literal(Token::Null)?;
                    rows.columns.append_null();
                }
                Token::Object => decode_object(&mut rows.columns, row, &mut p, &mut self.scratch)?,
                other => return Err(mismatch(other, &mut p, "STRUCT")),
            }
        } else {
            let Some(column) = rows.columns.children.first_mut() else {
                return Err(Failure::new("no column to decode into"));
            };
            decode_value(column, &mut p, &mut self.scratch)?;
        }
        p.end()
    }
}

/// Decodes an object into the fields of a STRUCT (or of a row) at position `row`.
fn decode_object(
    s: &mut StructFields,
    row: usize,
    p: &mut Parser<'_>,
    scratch: &mut Vec<u8>,
) -> Result<(), Failure> {
    let StructFields {
        fields,
        children,
        seen,
        distinct_names,
        ascii_names,
        skip,
    } = s;
    seen.fill(0);
    p.begin_object()?;
    let mut first = true;
    let mut hint = 0;
    while let Some(key) = p.next_key(first, scratch)? {
        first = false;
        let found = if *distinct_names && *ascii_names && key.is_ascii() {
            find_ascii_field(fields, key, hint)
        } else {
            find_field(fields, *distinct_names, key, hint)
        };
        let Some((idx, quality)) = found else {
            p.skip_value()?;
            continue;
        };
        if seen[idx] > quality {
            p.skip_value()?;
            continue;
        }
        if seen[idx] != 0 {
            // A later duplicate (or an exact match after a case-folded one) wins.
            children[idx].truncate(row);
        }
        seen[idx] = quality;
        hint = idx + 1;
        if skip[idx] {
            skip_text(&children[idx], p).map_err(|e| e.at_field(fields[idx].name()))?;
            continue;
        }
        decode_value(&mut children[idx], p, scratch).map_err(|e| e.at_field(fields[idx].name()))?;
    }
    for (((child, field), seen), skip) in children
        .iter_mut()
        .zip(fields.iter())
        .zip(seen.iter())
        .zip(skip.iter())
    {
        if *seen == 0 && !child.nullable {
            return Err(
                Failure::new("missing value for a non-nullable field").at_field(field.name())
            );
        }
        if *seen == 0 || *skip {
            child.append_null();
        }
    }
    Ok(())
}

/// Consumes the value of a skipped `VARCHAR` column, failing exactly where
/// [`decode_value`] would: only on malformed JSON or a null for a non-nullable column
/// (every JSON value has a text form).
fn skip_text(col: &ColumnBuilder, p: &mut Parser<'_>) -> Result<(), Failure> {
    if p.peek()? == Token::Null {
        p.literal(Token::Null)?;
        if !col.nullable {
            return Err(Failure::new("null value for a non-nullable field"));
        }
        return Ok(());
    }
    p.skip_value()
}

/// The column a JSON field name refers to: an exact match, else the first case-insensitive
/// one. `distinct_names` is [`StructFields::distinct_names`].
fn find_field(
    fields: &Fields,
    distinct_names: bool,
    key: &str,
    hint: usize,
) -> Option<(usize, u8)> {
    // Records usually list fields in schema order, so try the one after the last match first.
    let hinted = fields.get(hint).map(|f| f.name().as_str());
    if hinted == Some(key) {
        return Some((hint, EXACT));
    }
    let key_ascii = key.is_ascii();
    if distinct_names {
        // At most one field matches even ignoring case (equality ignoring case is an
        // equivalence), so the first such match is the answer, in one pass.
        if hinted.is_some_and(|name| eq_ignore_case(name, key, key_ascii)) {
            return Some((hint, FOLDED));
        }
        return fields.iter().enumerate().find_map(|(i, f)| {
            let name = f.name();
            if name == key {
                Some((i, EXACT))
            } else {
                eq_ignore_case(name, key, key_ascii).then_some((i, FOLDED))
            }
        });
    }
    if let Some(i) = fields.iter().position(|f| f.name() == key) {
        return Some((i, EXACT));
    }
    fields
        .iter()
        .position(|f| eq_ignore_case(f.name(), key, key_ascii))
        .map(|i| (i, FOLDED))
}

/// [`find_field`] for an ASCII key and ASCII, distinct (ignoring case) field names: the
/// common case, with no Unicode case folding.
fn find_ascii_field(fields: &Fields, key: &str, hint: usize) -> Option<(usize, u8)> {
    let quality = |name: &str| {
        if name == key {
            Some(EXACT)
        } else if name.eq_ignore_ascii_case(key) {
            Some(FOLDED)
        } else {
            None
        }
    };
    if let Some(q) = fields.get(hint).and_then(|f| quality(f.name())) {
        return Some((hint, q));
    }
    fields
        .iter()
        .enumerate()
        .find_map(|(i, f)| quality(f.name()).map(|q| (i, q)))
}

/// Whether the upper cases of `name` and `key` are equal; `key_ascii` is `key.is_ascii()`.
fn eq_ignore_case(name: &str, key: &str, key_ascii: bool) -> bool {
    // Strings that differ only in the case of ASCII letters have equal upper cases.
    if name.eq_ignore_ascii_case(key) {
        return true;
    }
    if key_ascii && name.is_ascii() {
        return false;
    }
    name.chars()
        .flat_map(char::to_uppercase)
        .eq(key.chars().flat_map(char::to_uppercase))
}

/// "Can't convert type" for the value at the parser's position.
fn mismatch(token: Token, p: &mut Parser<'_>, target: &str) -> Failure {
    let source = match token {
        Token::Null => "NullNode",
        Token::True | Token::False => "BooleanNode",
        Token::String => "TextNode",
        Token::Object => "ObjectNode",
        Token::Array => "ArrayNode",
        Token::Number => p.number().map_or("NumericNode", |n| n.node_type()),
    };
    Failure::convert(source, target)
}

/// A JSON number that fits `T`, truncated towards zero as Jackson's `intValue()` does
/// (`1.7` is 1, `-1.7` is -1, `1e2` is 100).
fn integer<T: TryFrom<i64>>(token: Token, p: &mut Parser<'_>, target: &str) -> Result<T, Failure> {
    if token != Token::Number {
        return Err(mismatch(token, p, target));
    }
    let n = p.number()?;
    let wide = if n.integral {
        n.text.parse::<i64>().ok()
    } else {
        scalar::parse_decimal(n.text, 0, false)
            .ok()
            .and_then(|v| i64::try_from(v).ok())
            .or_else(|| {
                let v = n.text.parse::<f64>().ok()?.trunc();
                // i64::MAX as f64 rounds up to 2^63, which does not fit.
                (v.is_finite() && v >= i64::MIN as f64 && v < i64::MAX as f64).then_some(v as i64)
            })
    };
    wide.and_then(|v| T::try_from(v).ok())
        .ok_or_else(|| Failure::convert(n.node_type(), target))
}

/// Decodes the next JSON value into `col`, appending exactly one value on success.
fn decode_value(
    col: &mut ColumnBuilder,
    p: &mut Parser<'_>,
    scratch: &mut Vec<u8>,
) -> Result<(), Failure> {
    let token = p.peek()?;
    if token == Token::Null {
        p.literal(token)?;
        if !col.nullable {
            return Err(Failure::new("null value for a non-nullable field"));
        }
        col.append_null();
        return Ok(());
    }
    if token == Token::String {
        let text = p.string(scratch)?;
        return col.append_text(text);
    }
    let target = col.type_name();
    let ColumnBuilder {
        data_type,
        nulls,
        values,
        ..
    } = col;
    match values {
        Values::Boolean(b) => match token {
            Token::True | Token::False => {
                p.literal(token)?;
                b.append(token == Token::True);
            }
            _ => return Err(mismatch(token, p, target)),
        },
        Values::Int32(v) => v.push(integer(token, p, target)?),
        Values::Int64(v) => v.push(integer(token, p, target)?),
        Values::Float64(v) => {
            if token != Token::Number {
                return Err(mismatch(token, p, target));
            }
            let n = p.number()?;
            v.push(
                n.text
                    .parse()
                    .map_err(|_| Failure::convert("DecimalNode", target))?,
            );
        }
        Values::Decimal128 {
            values,
            precision,
            scale,
        } => {
            if token != Token::Number {
                return Err(mismatch(token, p, target));
            }
            values.push(column::decimal(p.number()?.text, *precision, *scale)?);
        }
        Values::Bytes { offsets, data } => {
            if *data_type == DataType::Binary {
                return Err(mismatch(token, p, target));
            }
            match token {
                Token::Number => data.extend_from_slice(p.number()?.text.as_bytes()),
                Token::True | Token::False => {
                    p.literal(token)?;
                    data.extend_from_slice(if token == Token::True {
                        b"true"
                    } else {
                        b"false"
                    });
                }
                _ => p.copy_value(data)?,
            }
            column::push_offset(offsets, data.len())?;
        }
        Values::List { offsets, items } => {
            if token != Token::Array {
                return Err(mismatch(token, p, target));
            }
            p.begin_array()?;
            let mut i = 0;
            while p.next_element(i == 0)? {
                decode_value(items, p, scratch).map_err(|e| e.at_index(i))?;
                i += 1;
            }
            column::push_offset(offsets, items.len())?;
        }
        Values::Map {
            offsets,
            keys,
            values,
            ..
        } => {
            if token != Token::Object {
                return Err(mismatch(token, p, target));
            }
            p.begin_object()?;
            let mut first = true;
            while let Some(key) = p.next_key(first, scratch)? {
                first = false;
                keys.append_text(key).map_err(|e| e.at_field(key))?;
                decode_value(values, p, scratch)?;
            }
            column::push_offset(offsets, keys.len())?;
        }
        Values::Struct(s) => {
            if token != Token::Object {
                return Err(mismatch(token, p, target));
            }
            decode_object(s, nulls.len(), p, scratch)?;
        }
    }
    nulls.append_non_null();
    Ok(())
}

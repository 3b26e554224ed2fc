//! The DELIMITED format: one CSV line per record (`"` quotes, `""` escapes a quote), an empty
//! field is null.

use crate::column::Rows;
use crate::failure::Failure;
use crate::view::ColumnView;

/// A field of the record being decoded: a byte range of the payload.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: usize,
    end: usize,
    /// Quoted and holding `""` escapes, so it must be unescaped before use.
    escaped: bool,
}

/// Decodes DELIMITED records; keeps its field list and scratch buffer between batches.
#[derive(Debug)]
pub(crate) struct DelimitedDecoder {
    delimiter: u8,
    spans: Vec<Span>,
    scratch: Vec<u8>,
}

impl DelimitedDecoder {
    pub(crate) fn new(delimiter: u8) -> Self {
        Self {
            delimiter,
            spans: Vec::new(),
            scratch: Vec::new(),
        }
    }

    /// Appends one record to `rows`: one value per column, or a failure.
    pub(crate) fn decode(&mut self, bytes: &[u8], rows: &mut Rows) -> Result<(), Failure> {
        self.split(bytes)?;
        let columns = &mut rows.columns;
        if self.spans.len() != columns.children.len() {
            return Err(Failure::new(format!(
                "Unexpected field count, csvFields:{} schemaFields:{}",
                self.spans.len(),
                columns.children.len()
            )));
        }
        for ((span, column), field) in self
            .spans
            .iter()
            .zip(&mut columns.children)
            .zip(columns.fields.iter())
        {
            let raw = &bytes[span.start..span.end];
            let raw = if span.escaped {
                self.scratch.clear();
                let mut rest = raw;
                while let Some(q) = rest.iter().position(|&b| b == b'"') {
                    // Inside a quoted field every quote is the first of a `""` pair.
                    self.scratch.extend_from_slice(&rest[..=q]);
                    rest = rest.get(q + 2..).unwrap_or_default();
                }
                self.scratch.extend_from_slice(rest);
                &self.scratch[..]
            } else {
                raw
            };
            if raw.is_empty() {
                column.append_null();
                continue;
            }
            let text = std::str::from_utf8(raw)
                .map_err(|_| Failure::new("invalid UTF-8 in field").at_field(field.name()))?;
            column
                .append_text(text)
                .map_err(|e| e.at_field(field.name()))?;
        }
        Ok(())
    }

    /// Splits the first line of `bytes` into fields.
    fn split(&mut self, bytes: &[u8]) -> Result<(), Failure> {
        self.spans.clear();
        let delimiter = self.delimiter;
        let mut pos = 0;
        loop {
            if bytes.get(pos) == Some(&b'"') {
                pos += 1;
                let start = pos;
                let mut escaped = false;
                loop {
                    match bytes.get(pos) {
                        Some(b'"') if bytes.get(pos + 1) == Some(&b'"') => {
                            escaped = true;
                            pos += 2;
                        }
                        Some(b'"') => break,
                        Some(_) => pos += 1,
                        None => {
                            return Err(Failure::new(
                                "EOF reached before encapsulated token finished",
                            ));
                        }
                    }
                }
                self.spans.push(Span {
                    start,
                    end: pos,
                    escaped,
                });
                pos += 1;
                match bytes.get(pos) {
                    Some(&b) if b == delimiter => pos += 1,
                    None | Some(b'\n' | b'\r') => return Ok(()),
                    Some(_) => {
                        return Err(Failure::new(format!(
                            "invalid char between encapsulated token and delimiter at column {}",
                            pos + 1
                        )));
                    }
                }
            } else {
                let start = pos;
                while let Some(&b) = bytes.get(pos) {
                    if b == delimiter || b == b'\n' || b == b'\r' {
                        break;
                    }
                    pos += 1;
                }
                self.spans.push(Span {
                    start,
                    end: pos,
                    escaped: false,
                });
                match bytes.get(pos) {
                    Some(&b) if b == delimiter => pos += 1,
                    _ => return Ok(()),
                }
            }
        }
    }
}

/// Writes row `i` of `columns` as one delimited line (without a line break).
pub(crate) fn write_row(
    columns: &[ColumnView<'_>],
    i: usize,
    delimiter: u8,
    out: &mut Vec<u8>,
    scratch: &mut Vec<u8>,
) {
    for (n, column) in columns.iter().enumerate() {
        if n > 0 {
            out.push(delimiter);
        }
        if column.is_null(i) {
            continue;
        }
        let start = out.len();
        column.write_text(i, out);
        let needs_quotes = needs_quotes(&out[start..], delimiter, n == 0);
        if needs_quotes {
            scratch.clear();
            scratch.extend_from_slice(&out[start..]);
            out.truncate(start);
            out.push(b'"');
            for &b in scratch.iter() {
                if b == b'"' {
                    out.push(b'"');
                }
                out.push(b);
            }
            out.push(b'"');
        }
    }
}

/// Whether a field is quoted, as the CSV printer ksqlDB uses decides (minimal quoting): when it
/// holds the delimiter, a quote or a line break, starts with a character up to `#` or ends
/// with one up to a space, or, as the first field of a line, is empty or does not start
/// with a letter or digit.
fn needs_quotes(field: &[u8], delimiter: u8, first: bool) -> bool {
    let (Some(&head), Some(&tail)) = (field.first(), field.last()) else {
        return first;
    };
    (first && !head.is_ascii_alphanumeric())
        || head <= b'#'
        || tail <= b' '
        || field
            .iter()
            .any(|&b| b == delimiter || b == b'"' || b == b'\n' || b == b'\r')
}

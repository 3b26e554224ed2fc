//! Reading `POST /query`'s body as it arrives.
//!
//! ksqlDB streams a push query as one JSON array that never ends until the query does:
//! `[{"header":{…}},\n{"row":{"columns":[…]}},\n…{"finalMessage":"…"}]`, in chunks cut
//! anywhere. [`ArrayReader`] yields each element as soon as its last byte arrived. `PRINT`
//! answers plain text lines instead; the first byte tells which.

use serde_json::Value;

use crate::error::ShellError;

/// One message of a query's stream.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryMessage {
    /// The header: the query id and the column names.
    Header {
        /// Query id.
        query_id: String,
        /// Column names, from the header's schema.
        columns: Vec<String>,
    },
    /// A row's values.
    Row(Vec<Value>),
    /// The server ended the query (e.g. `Limit Reached`).
    Final(String),
    /// The server reported an error in the stream.
    Error(String),
    /// Text of a `PRINT`.
    Text(String),
}

impl QueryMessage {
    /// Reads one element of the array.
    ///
    /// # Errors
    ///
    /// [`ShellError::Protocol`] for an element ksqlDB does not send.
    pub fn from_element(element: &Value) -> Result<QueryMessage, ShellError> {
        // Older ksqlDB versions send every field, the unused ones as null.
        let field = |name: &str| element.get(name).filter(|v| !v.is_null());
        if let Some(header) = field("header") {
            let schema = header["schema"].as_str().unwrap_or_default();
            return Ok(QueryMessage::Header {
                query_id: header["queryId"].as_str().unwrap_or_default().to_string(),
                columns: column_names(schema),
            });
        }
        if let Some(row) = field("row") {
            let columns = row["columns"].as_array().cloned().unwrap_or_default();
            return Ok(QueryMessage::Row(columns));
        }
        if let Some(message) = field("finalMessage") {
            return Ok(QueryMessage::Final(text(message)));
        }
        if let Some(error) = field("errorMessage") {
            let message = error.get("message").map_or_else(|| text(error), text);
            return Ok(QueryMessage::Error(message));
        }
        if let Some(message) = field("message") {
            return Ok(QueryMessage::Error(text(message)));
        }
        Err(ShellError::Protocol(format!(
            "unknown element in a query's stream: {element}"
        )))
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Column names in a schema such as ``"`ID` INTEGER KEY, `S` STRUCT<`A` INT, `B` STRING>"``.
pub fn column_names(schema: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut depth = 0usize;
    let mut in_quotes = false;
    let mut field = String::new();
    let mut flush = |field: &mut String| {
        let f = field.trim();
        if !f.is_empty() {
            let name = match f.strip_prefix('`') {
                Some(rest) => rest.split('`').next().unwrap_or(rest).to_string(),
                None => f.split_whitespace().next().unwrap_or(f).to_string(),
            };
            names.push(name);
        }
        field.clear();
    };
    for c in schema.chars() {
        match c {
            '`' => in_quotes = !in_quotes,
            '<' | '(' if !in_quotes => depth += 1,
            '>' | ')' if !in_quotes => depth = depth.saturating_sub(1),
            ',' if !in_quotes && depth == 0 => {
                flush(&mut field);
                continue;
            }
            _ => {}
        }
        field.push(c);
    }
    flush(&mut field);
    names
}

/// Splits a streamed JSON array into its elements as bytes arrive.
#[derive(Debug, Default)]
pub struct ArrayReader {
    /// Bytes of the element being read.
    element: Vec<u8>,
    /// Nesting depth inside the outer array (0: between elements).
    depth: usize,
    in_string: bool,
    escaped: bool,
    /// Whether the outer `[` was seen; `None` before the first non-blank byte; `Some(false)`
    /// for a body that is not an array (plain text).
    array: Option<bool>,
}

impl ArrayReader {
    /// A reader before the first byte.
    pub fn new() -> ArrayReader {
        ArrayReader::default()
    }

    /// Feeds the next chunk; returns the messages it completed.
    ///
    /// # Errors
    ///
    /// [`ShellError::Protocol`] for an element that is not valid JSON.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<Vec<QueryMessage>, ShellError> {
        let mut out = Vec::new();
        let mut rest = chunk;
        if self.array.is_none() {
            let Some(first) = rest.iter().position(|b| !b.is_ascii_whitespace()) else {
                return Ok(out);
            };
            self.array = Some(rest[first] == b'[');
            rest = &rest[first..];
            if rest[0] == b'[' {
                rest = &rest[1..];
            }
        }
        if self.array == Some(false) {
            out.push(QueryMessage::Text(
                String::from_utf8_lossy(rest).into_owned(),
            ));
            return Ok(out);
        }
        for &b in rest {
            if self.depth == 0 {
                match b {
                    b'{' | b'[' => {
                        self.depth = 1;
                        self.element.push(b);
                    }
                    // Separators, the closing `]`, and blank keep-alive lines.
                    _ => {}
                }
                continue;
            }
            self.element.push(b);
            if self.in_string {
                match (self.escaped, b) {
                    (true, _) => self.escaped = false,
                    (false, b'\\') => self.escaped = true,
                    (false, b'"') => self.in_string = false,
                    _ => {}
                }
                continue;
            }
            match b {
                b'"' => self.in_string = true,
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' => {
                    self.depth -= 1;
                    if self.depth == 0 {
                        let element: Value =
                            serde_json::from_slice(&self.element).map_err(|e| {
                                ShellError::Protocol(format!("bad JSON in a query's stream: {e}"))
                            })?;
                        self.element.clear();
                        out.push(QueryMessage::from_element(&element)?);
                    }
                }
                _ => {}
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn elements_are_read_across_any_chunking() {
        let body = concat!(
            "[{\"header\":{\"queryId\":\"transient_1\",\"schema\":\"`ID` INTEGER, `S` STRUCT<`A` INT, `B` STRING>, `T` STRING\"}},\n",
            "{\"row\":{\"columns\":[1,{\"A\":2,\"B\":\"x}]\\\"\"},\"a,b\"]}},\n",
            "\n",
            "{\"finalMessage\":\"Limit Reached\"}]\n"
        );
        let expected = vec![
            QueryMessage::Header {
                query_id: "transient_1".into(),
                columns: vec!["ID".into(), "S".into(), "T".into()],
            },
            QueryMessage::Row(vec![json!(1), json!({"A": 2, "B": "x}]\""}), json!("a,b")]),
            QueryMessage::Final("Limit Reached".into()),
        ];
        for size in [1, 2, 7, body.len()] {
            let mut reader = ArrayReader::new();
            let mut got = Vec::new();
            for chunk in body.as_bytes().chunks(size) {
                got.extend(reader.feed(chunk).unwrap());
            }
            assert_eq!(got, expected, "chunks of {size}");
        }
    }

    #[test]
    fn errors_in_the_stream_and_plain_text() {
        let mut reader = ArrayReader::new();
        let got = reader
            .feed(br#"[{"errorMessage":{"@type":"generic_error","error_code":50000,"message":"boom"}}]"#)
            .unwrap();
        assert_eq!(got, vec![QueryMessage::Error("boom".into())]);
        let mut reader = ArrayReader::new();
        let got = reader.feed(b"Key format: KAFKA_INT\n").unwrap();
        assert_eq!(
            got,
            vec![QueryMessage::Text("Key format: KAFKA_INT\n".into())]
        );
    }
}

//! A pull parser over one JSON document that hands out borrowed tokens, so decoding writes
//! straight into column builders without building a tree.

use super::find_special;
use crate::failure::Failure;

/// Deeper documents are rejected rather than risking the stack while skipping them.
const MAX_DEPTH: usize = 512;

/// The kind of the next value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Token {
    Null,
    True,
    False,
    Number,
    String,
    Object,
    Array,
}

/// A number token.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Number<'a> {
    pub(crate) text: &'a str,
    /// No fraction and no exponent.
    pub(crate) integral: bool,
}

impl Number<'_> {
    /// The Jackson node type this number would be read as, for messages.
    pub(crate) fn node_type(&self) -> &'static str {
        if !self.integral {
            "DecimalNode"
        } else if self.text.parse::<i32>().is_ok() {
            "IntNode"
        } else if self.text.parse::<i64>().is_ok() {
            "LongNode"
        } else {
            "BigIntegerNode"
        }
    }
}

pub(crate) struct Parser<'a> {
    buf: &'a [u8],
    /// `buf` as text when it is all valid UTF-8 (almost always): strings are then sliced from
    /// it without checking each one. Otherwise each string is checked, so that the error names
    /// the column of the bad byte and is only raised if that string is reached.
    doc: Option<&'a str>,
    pos: usize,
}

impl<'a> Parser<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self {
            buf,
            doc: std::str::from_utf8(buf).ok(),
            pos: 0,
        }
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.buf.get(self.pos) {
            self.pos += 1;
        }
    }

    pub(crate) fn malformed(&self, what: &str) -> Failure {
        Failure::new(format!("malformed JSON at column {}: {what}", self.pos + 1))
    }

    fn expect(&mut self, byte: u8, what: &str) -> Result<(), Failure> {
        self.skip_ws();
        if self.buf.get(self.pos) == Some(&byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.unexpected(what))
        }
    }

    fn unexpected(&self, expected: &str) -> Failure {
        match self.buf.get(self.pos) {
            None => self.malformed(&format!("unexpected end of input, expected {expected}")),
            Some(&b) if b.is_ascii_graphic() => self.malformed(&format!(
                "unexpected character '{}', expected {expected}",
                char::from(b)
            )),
            Some(&b) => self.malformed(&format!("unexpected byte 0x{b:02x}, expected {expected}")),
        }
    }

    /// The kind of the next value, without consuming it.
    pub(crate) fn peek(&mut self) -> Result<Token, Failure> {
        self.skip_ws();
        match self.buf.get(self.pos) {
            Some(b'n') => Ok(Token::Null),
            Some(b't') => Ok(Token::True),
            Some(b'f') => Ok(Token::False),
            Some(b'"') => Ok(Token::String),
            Some(b'{') => Ok(Token::Object),
            Some(b'[') => Ok(Token::Array),
            Some(b'-' | b'0'..=b'9') => Ok(Token::Number),
            _ => Err(self.unexpected("a value")),
        }
    }

    /// Consumes `null`, `true` or `false` (whichever `token` is).
    pub(crate) fn literal(&mut self, token: Token) -> Result<(), Failure> {
        let word: &[u8] = match token {
            Token::Null => b"null",
            Token::True => b"true",
            Token::False => b"false",
            _ => return Err(self.malformed("expected a literal")),
        };
        self.skip_ws();
        if self.buf[self.pos.min(self.buf.len())..].starts_with(word) {
            self.pos += word.len();
            Ok(())
        } else {
            Err(self.malformed("invalid literal"))
        }
    }

    /// Consumes a number.
    pub(crate) fn number(&mut self) -> Result<Number<'a>, Failure> {
        self.skip_ws();
        let start = self.pos;
        let digits = |p: &mut Self| {
            let from = p.pos;
            while p.buf.get(p.pos).is_some_and(u8::is_ascii_digit) {
                p.pos += 1;
            }
            p.pos > from
        };
        if self.buf.get(self.pos) == Some(&b'-') {
            self.pos += 1;
        }
        match self.buf.get(self.pos) {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                digits(self);
            }
            _ => return Err(self.malformed("invalid number")),
        }
        let mut integral = true;
        if self.buf.get(self.pos) == Some(&b'.') {
            self.pos += 1;
            integral = false;
            if !digits(self) {
                return Err(self.malformed("invalid number"));
            }
        }
        if let Some(b'e' | b'E') = self.buf.get(self.pos) {
            self.pos += 1;
            integral = false;
            if let Some(b'+' | b'-') = self.buf.get(self.pos) {
                self.pos += 1;
            }
            if !digits(self) {
                return Err(self.malformed("invalid number"));
            }
        }
        let text = match self.doc.and_then(|doc| doc.get(start..self.pos)) {
            Some(text) => text,
            None => {
                let buf: &'a [u8] = self.buf;
                std::str::from_utf8(&buf[start..self.pos])
                    .map_err(|_| self.malformed("invalid number"))?
            }
        };
        Ok(Number { text, integral })
    }

    /// Consumes a string; the text is borrowed from the input unless it has escapes, in which
    /// case it is unescaped into `scratch`.
    pub(crate) fn string<'s>(&mut self, scratch: &'s mut Vec<u8>) -> Result<&'s str, Failure>
    where
        'a: 's,
    {
        self.expect(b'"', "a string")?;
        let start = self.pos;
        self.skip_clean();
        match self.buf.get(self.pos) {
            Some(b'"') => {
                let end = self.pos;
                self.pos += 1;
                return self.text(start, end);
            }
            Some(b'\\') => {}
            Some(_) => return Err(self.malformed("control character in string")),
            None => return Err(self.malformed("unterminated string")),
        }
        scratch.clear();
        scratch.extend_from_slice(&self.buf[start..self.pos]);
        loop {
            match self.buf.get(self.pos) {
                Some(b'"') => {
                    self.pos += 1;
                    break;
                }
                Some(b'\\') => {
                    self.pos += 1;
                    self.escape(scratch)?;
                }
                Some(_) => return Err(self.malformed("control character in string")),
                None => return Err(self.malformed("unterminated string")),
            }
            let from = self.pos;
            self.skip_clean();
            scratch.extend_from_slice(&self.buf[from..self.pos]);
        }
        std::str::from_utf8(scratch).map_err(|e| self.invalid_utf8(start, e))
    }

    /// Moves to the next quote, backslash or control character, or to the end of the input.
    fn skip_clean(&mut self) {
        let rest = self.buf.get(self.pos..).unwrap_or_default();
        self.pos = find_special(rest).map_or(self.buf.len(), |i| self.pos + i);
    }

    /// The string content `buf[start..end]`, which lies between quotes.
    fn text(&self, start: usize, end: usize) -> Result<&'a str, Failure> {
        // Slicing at quotes, which are ASCII, cannot split a character of a valid document.
        if let Some(text) = self.doc.and_then(|doc| doc.get(start..end)) {
            return Ok(text);
        }
        let buf: &'a [u8] = self.buf;
        std::str::from_utf8(&buf[start..end]).map_err(|e| self.invalid_utf8(start, e))
    }

    fn invalid_utf8(&self, start: usize, e: std::str::Utf8Error) -> Failure {
        Failure::new(format!(
            "malformed JSON at column {}: invalid UTF-8 in string",
            start + e.valid_up_to() + 1
        ))
    }

    /// Decodes the escape sequence after a backslash into `out`.
    fn escape(&mut self, out: &mut Vec<u8>) -> Result<(), Failure> {
        let Some(&b) = self.buf.get(self.pos) else {
            return Err(self.malformed("unterminated string"));
        };
        self.pos += 1;
        let simple = match b {
            b'"' => b'"',
            b'\\' => b'\\',
            b'/' => b'/',
            b'b' => 0x08,
            b'f' => 0x0c,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => {
                let unit = self.hex4()?;
                let c = if (0xD800..0xDC00).contains(&unit)
                    && self.buf[self.pos.min(self.buf.len())..].starts_with(b"\\u")
                {
                    let save = self.pos;
                    self.pos += 2;
                    let low = self.hex4()?;
                    if (0xDC00..0xE000).contains(&low) {
                        char::from_u32(0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00))
                    } else {
                        self.pos = save;
                        None
                    }
                } else {
                    char::from_u32(unit)
                };
                // Java strings may hold lone surrogates; Rust strings may not.
                let c = c.unwrap_or(char::REPLACEMENT_CHARACTER);
                let mut utf8 = [0; 4];
                out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
                return Ok(());
            }
            _ => return Err(self.malformed("invalid escape")),
        };
        out.push(simple);
        Ok(())
    }

    fn hex4(&mut self) -> Result<u32, Failure> {
        let mut value = 0;
        for _ in 0..4 {
            let digit = self
                .buf
                .get(self.pos)
                .and_then(|&b| char::from(b).to_digit(16))
                .ok_or_else(|| self.malformed("invalid unicode escape"))?;
            value = value * 16 + digit;
            self.pos += 1;
        }
        Ok(value)
    }

    /// Consumes `{`.
    pub(crate) fn begin_object(&mut self) -> Result<(), Failure> {
        self.expect(b'{', "'{'")
    }

    /// Consumes `[`.
    pub(crate) fn begin_array(&mut self) -> Result<(), Failure> {
        self.expect(b'[', "'['")
    }

    /// Consumes the next `"key":` of an object, or its `}` (then returns `None`).
    pub(crate) fn next_key<'s>(
        &mut self,
        first: bool,
        scratch: &'s mut Vec<u8>,
    ) -> Result<Option<&'s str>, Failure>
    where
        'a: 's,
    {
        self.skip_ws();
        if self.buf.get(self.pos) == Some(&b'}') {
            self.pos += 1;
            return Ok(None);
        }
        if !first {
            self.expect(b',', "',' or '}'")?;
        }
        let key = self.string(scratch)?;
        self.expect(b':', "':'")?;
        Ok(Some(key))
    }

    /// Consumes the `,` before the next element of an array and returns `true`, or consumes
    /// its `]` and returns `false`.
    pub(crate) fn next_element(&mut self, first: bool) -> Result<bool, Failure> {
        self.skip_ws();
        if self.buf.get(self.pos) == Some(&b']') {
            self.pos += 1;
            return Ok(false);
        }
        if !first {
            self.expect(b',', "',' or ']'")?;
        }
        Ok(true)
    }

    /// Consumes a value without keeping it.
    pub(crate) fn skip_value(&mut self) -> Result<(), Failure> {
        self.value(None, 0)
    }

    /// Consumes a value and appends it to `out` as compact JSON text.
    pub(crate) fn copy_value(&mut self, out: &mut Vec<u8>) -> Result<(), Failure> {
        self.value(Some(out), 0)
    }

    fn value(&mut self, mut out: Option<&mut Vec<u8>>, depth: usize) -> Result<(), Failure> {
        if depth > MAX_DEPTH {
            return Err(self.malformed("nested too deeply"));
        }
        let token = self.peek()?;
        let start = self.pos;
        match token {
            Token::Null | Token::True | Token::False => self.literal(token)?,
            Token::Number => {
                self.number()?;
            }
            Token::String => self.raw_string()?,
            Token::Object => {
                self.pos += 1;
                push(&mut out, b"{");
                let mut first = true;
                loop {
                    self.skip_ws();
                    if self.buf.get(self.pos) == Some(&b'}') {
                        self.pos += 1;
                        break;
                    }
                    if !first {
                        self.expect(b',', "',' or '}'")?;
                        push(&mut out, b",");
                    }
                    first = false;
                    self.skip_ws();
                    let key_start = self.pos;
                    self.raw_string()?;
                    push(&mut out, &self.buf[key_start..self.pos]);
                    self.expect(b':', "':'")?;
                    push(&mut out, b":");
                    self.value(out.as_deref_mut(), depth + 1)?;
                }
                push(&mut out, b"}");
                return Ok(());
            }
            Token::Array => {
                self.pos += 1;
                push(&mut out, b"[");
                let mut first = true;
                while self.next_element(first)? {
                    if !first {
                        push(&mut out, b",");
                    }
                    first = false;
                    self.value(out.as_deref_mut(), depth + 1)?;
                }
                push(&mut out, b"]");
                return Ok(());
            }
        }
        push(&mut out, &self.buf[start..self.pos]);
        Ok(())
    }

    /// Consumes a string, checking its escapes and UTF-8, without unescaping it.
    fn raw_string(&mut self) -> Result<(), Failure> {
        self.expect(b'"', "a string")?;
        let start = self.pos;
        loop {
            self.skip_clean();
            match self.buf.get(self.pos) {
                Some(b'"') => break,
                Some(b'\\') => {
                    self.pos += 1;
                    match self.buf.get(self.pos) {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                            self.pos += 1
                        }
                        Some(b'u') => {
                            self.pos += 1;
                            self.hex4()?;
                        }
                        _ => return Err(self.malformed("invalid escape")),
                    }
                }
                Some(_) => return Err(self.malformed("control character in string")),
                None => return Err(self.malformed("unterminated string")),
            }
        }
        if self.doc.is_none() {
            std::str::from_utf8(&self.buf[start..self.pos])
                .map_err(|e| self.invalid_utf8(start, e))?;
        }
        self.pos += 1;
        Ok(())
    }

    /// Checks that only whitespace follows the document.
    pub(crate) fn end(&mut self) -> Result<(), Failure> {
        self.skip_ws();
        if self.pos == self.buf.len() {
            Ok(())
        } else {
            Err(self.unexpected("end of input"))
        }
    }
}

fn push(out: &mut Option<&mut Vec<u8>>, bytes: &[u8]) {
    if let Some(out) = out {
        out.extend_from_slice(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg<T>(result: Result<T, Failure>) -> Result<T, String> {
        result.map_err(|e| e.to_string())
    }

    fn compact(json: &str) -> Result<String, String> {
        let mut p = Parser::new(json.as_bytes());
        let mut out = Vec::new();
        p.copy_value(&mut out).map_err(|e| e.to_string())?;
        p.end().map_err(|e| e.to_string())?;
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    #[test]
    fn copies_values_compactly() {
        assert_eq!(
            compact(r#" { "a" : [1, 2.5e3, "x\"y"], "b": {"c": null, "d": true} } "#),
            Ok(r#"{"a":[1,2.5e3,"x\"y"],"b":{"c":null,"d":true}}"#.to_owned())
        );
        assert_eq!(compact("[]"), Ok("[]".to_owned()));
        assert_eq!(compact("{}"), Ok("{}".to_owned()));
    }

    #[test]
    fn rejects_malformed_documents() {
        for bad in [
            "",
            "{",
            "[1,]",
            "{\"a\" 1}",
            "{\"a\":1,}",
            "01",
            "1.",
            "-",
            "tru",
            "\"abc",
            "[1] x",
            "{\"a\":1}}",
            "\"\\x\"",
            "\"\\u12\"",
            "nul",
        ] {
            assert!(compact(bad).is_err(), "{bad:?} should be rejected");
        }
        let deep = "[".repeat(10_000);
        assert!(compact(&deep).is_err());
    }

    #[test]
    fn reports_the_column_of_an_error() {
        let err = compact(r#"{"a": 1 "b": 2}"#).err().unwrap_or_default();
        assert_eq!(
            err,
            "malformed JSON at column 9: unexpected character '\"', expected ',' or '}'"
        );
    }

    #[test]
    fn unescapes_strings() {
        let mut scratch = Vec::new();
        let json = r#""a\n\u00e9\ud83d\ude00\/\"""#;
        let mut p = Parser::new(json.as_bytes());
        assert_eq!(p.string(&mut scratch).ok(), Some("a\né😀/\""));
        let mut p = Parser::new(br#""\ud800x""#);
        assert_eq!(p.string(&mut scratch).ok(), Some("\u{fffd}x"));
        let mut p = Parser::new(b"\"\xff\"");
        assert!(p.string(&mut scratch).is_err());
    }

    #[test]
    fn unescapes_after_long_clean_runs() {
        let (a, b) = ("a".repeat(40), "é".repeat(20));
        let json = format!(r#""{a}\n{b}\"{a}""#);
        let mut scratch = Vec::new();
        let mut p = Parser::new(json.as_bytes());
        let expected = format!("{a}\n{b}\"{a}");
        assert_eq!(msg(p.string(&mut scratch)), Ok(expected.as_str()));
        assert_eq!(msg(p.end()), Ok(()));
    }

    #[test]
    fn control_characters_in_strings_are_rejected_where_they_are() {
        let message = Err("malformed JSON at column 42: control character in string".to_owned());
        let json = format!("\"{}\u{1}\"", "x".repeat(40));
        assert_eq!(
            msg(Parser::new(json.as_bytes()).string(&mut Vec::new())),
            message
        );
        assert_eq!(compact(&json).map(|_| ""), message);
        let escaped = format!("\"\\n{}\t\"", "x".repeat(38));
        assert_eq!(
            msg(Parser::new(escaped.as_bytes()).string(&mut Vec::new())),
            message
        );
    }

    #[test]
    fn invalid_utf8_is_reported_at_its_column() {
        let message =
            |column: usize| format!("malformed JSON at column {column}: invalid UTF-8 in string");
        let parse = |json: &[u8]| msg(Parser::new(json).string(&mut Vec::new()).map(str::to_owned));
        let skip = |json: &[u8]| msg(Parser::new(json).skip_value());
        let long = "é".repeat(20);
        let bad = [b"\"".as_slice(), long.as_bytes(), b"\xff\""].concat();
        assert_eq!(parse(&bad), Err(message(42)));
        assert_eq!(skip(&bad), Err(message(42)));
        assert_eq!(parse(b"\"ab\xffcd\\n\""), Err(message(4)));
        // A bad byte in a later string neither hides the values before it nor moves its column.
        let later = b"[\"ok\", 1, \"\xfe\"]";
        assert_eq!(skip(later), Err(message(12)));
        let mut p = Parser::new(later);
        assert_eq!(msg(p.begin_array()), Ok(()));
        assert_eq!(msg(p.next_element(true)), Ok(true));
        assert_eq!(msg(p.string(&mut Vec::new())), Ok("ok"));
        assert_eq!(msg(p.next_element(false)), Ok(true));
        assert_eq!(msg(p.number().map(|n| n.text)), Ok("1"));
        assert_eq!(msg(p.next_element(false)), Ok(true));
        assert_eq!(msg(p.string(&mut Vec::new())), Err(message(12)));
    }

    #[test]
    fn classifies_numbers() {
        let kind = |t: &str| {
            Parser::new(t.as_bytes())
                .number()
                .map(|n| n.node_type())
                .ok()
        };
        assert_eq!(kind("12"), Some("IntNode"));
        assert_eq!(kind("-3000000000"), Some("LongNode"));
        assert_eq!(kind("99999999999999999999"), Some("BigIntegerNode"));
        assert_eq!(kind("1.5"), Some("DecimalNode"));
        assert_eq!(kind("1e5"), Some("DecimalNode"));
    }
}

//! ksqlDB's URL functions: `URL_ENCODE_PARAM`, `URL_DECODE_PARAM` and the `URL_EXTRACT_…`
//! family (`FRAGMENT`, `HOST`, `PARAMETER`, `PATH`, `PORT`, `PROTOCOL`, `QUERY`).
//!
//! A URL is split as RFC 3986 (appendix B) splits a URI reference, and is invalid, giving
//! NULL, where Java's `java.net.URI` (which ksqlDB uses) refuses it: a character that may not
//! appear in a URI, a `%` not followed by two hex digits, a bad scheme or port. As in Java, an
//! opaque URI (`mailto:a@b.com`) has no host, path or query, and the extracted parts are
//! percent-decoded. Parameters are encoded and decoded as `application/x-www-form-urlencoded`
//! values, a space as `%20` when encoding.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int32Array, StringArray};
use arrow::datatypes::DataType;
use datafusion_common::{Result, exec_err};
use datafusion_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

/// The nine functions.
pub(crate) fn functions() -> Vec<Arc<ScalarUDF>> {
    [
        Kind::EncodeParam,
        Kind::DecodeParam,
        Kind::Fragment,
        Kind::Host,
        Kind::Parameter,
        Kind::Path,
        Kind::Port,
        Kind::Protocol,
        Kind::Query,
    ]
    .map(|kind| {
        Arc::new(ScalarUDF::from(UrlFn {
            kind,
            signature: Signature::user_defined(Volatility::Immutable),
        }))
    })
    .into()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    EncodeParam,
    DecodeParam,
    Fragment,
    Host,
    Parameter,
    Path,
    Port,
    Protocol,
    Query,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct UrlFn {
    kind: Kind,
    signature: Signature,
}

/// The parts of a URI reference, still percent-encoded.
#[derive(Debug, Default, PartialEq, Eq)]
struct Uri<'a> {
    scheme: Option<&'a str>,
    host: Option<&'a str>,
    port: Option<i32>,
    path: Option<&'a str>,
    query: Option<&'a str>,
    fragment: Option<&'a str>,
}

/// Characters that may not appear anywhere in a URI.
fn illegal(c: char) -> bool {
    c.is_control()
        || c.is_whitespace()
        || matches!(c, '"' | '<' | '>' | '\\' | '^' | '`' | '{' | '|' | '}')
}

/// Whether every `%` in `text` starts an escape of two hex digits.
fn escapes_ok(text: &str) -> bool {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = |j: usize| bytes.get(j).is_some_and(u8::is_ascii_hexdigit);
            if !(hex(i + 1) && hex(i + 2)) {
                return false;
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    true
}

/// `text` as a URI, if Java would take it as one.
fn parse(text: &str) -> Option<Uri<'_>> {
    if text.chars().any(illegal) || !escapes_ok(text) {
        return None;
    }
    let (rest, fragment) = match text.split_once('#') {
        Some((rest, fragment)) if !fragment.contains('#') => (rest, Some(fragment)),
        Some(_) => return None,
        None => (text, None),
    };
    let mut uri = Uri {
        fragment,
        ..Uri::default()
    };
    let mut rest = rest;
    if let Some(colon) = rest.find(':')
        && !rest[..colon].contains(['/', '?'])
    {
        let scheme = &rest[..colon];
        let mut chars = scheme.chars();
        let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
            && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
        if !valid {
            return None;
        }
        uri.scheme = Some(scheme);
        rest = &rest[colon + 1..];
        if !rest.starts_with('/') {
            // Opaque: `mailto:a@b.com` has no host, path or query.
            return (!rest.is_empty()).then_some(uri);
        }
    }
    let (before_query, query) = match rest.split_once('?') {
        Some((before, query)) => (before, Some(query)),
        None => (rest, None),
    };
    uri.query = query;
    let path = match before_query.strip_prefix("//") {
        Some(after) => {
            let end = after.find('/').unwrap_or(after.len());
            let authority = &after[..end];
            let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
            let (host, port) = match host_port.rfind(':') {
                Some(at) if !host_port[at..].contains(']') => {
                    (&host_port[..at], Some(&host_port[at + 1..]))
                }
                _ => (host_port, None),
            };
            uri.port = match port {
                Some("") | None => None,
                Some(p) => Some(p.parse::<u16>().ok().map(i32::from)?),
            };
            uri.host = (!host.is_empty()).then_some(host);
            &after[end..]
        }
        None => before_query,
    };
    uri.path = Some(path);
    Some(uri)
}

/// Percent-decoding as Java's `URI` does it (`+` stays `+`), or also `+` as a space for form
/// values, as Java's `URLDecoder` does it; bytes that are not UTF-8 become U+FFFD.
fn decode(text: &str, plus_is_space: bool) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' if plus_is_space => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A form parameter value with every character but letters, digits and `-_.*` escaped as
/// UTF-8 `%XX`.
fn encode_param(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'*') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The decoded value of the first parameter `name` in `url`'s query, if it has one.
fn parameter(url: &str, name: &str) -> Option<String> {
    let query = parse(url)?.query?;
    let wanted = encode_param(name);
    query
        .split('&')
        .find_map(|pair| match pair.split_once('=') {
            Some((key, value)) if key == wanted || decode(key, true) == name => {
                Some(decode(value, true))
            }
            _ => None,
        })
}

impl UrlFn {
    fn sql_name(&self) -> &'static str {
        match self.kind {
            Kind::EncodeParam => "URL_ENCODE_PARAM",
            Kind::DecodeParam => "URL_DECODE_PARAM",
            Kind::Fragment => "URL_EXTRACT_FRAGMENT",
            Kind::Host => "URL_EXTRACT_HOST",
            Kind::Parameter => "URL_EXTRACT_PARAMETER",
            Kind::Path => "URL_EXTRACT_PATH",
            Kind::Port => "URL_EXTRACT_PORT",
            Kind::Protocol => "URL_EXTRACT_PROTOCOL",
            Kind::Query => "URL_EXTRACT_QUERY",
        }
    }

    /// The function's text result for one URL (or value).
    fn text(&self, value: &str) -> Option<String> {
        let uri = || parse(value);
        match self.kind {
            Kind::EncodeParam => Some(encode_param(value)),
            Kind::DecodeParam => Some(decode(value, true)),
            Kind::Fragment => uri()?.fragment.map(|f| decode(f, false)),
            Kind::Host => uri()?.host.map(str::to_string),
            Kind::Path => uri()?.path.map(|p| decode(p, false)),
            Kind::Protocol => uri()?.scheme.map(str::to_string),
            Kind::Query => uri()?.query.map(|q| decode(q, false)),
            Kind::Parameter | Kind::Port => None,
        }
    }
}

impl ScalarUDFImpl for UrlFn {
    fn name(&self) -> &str {
        match self.kind {
            Kind::EncodeParam => "url_encode_param",
            Kind::DecodeParam => "url_decode_param",
            Kind::Fragment => "url_extract_fragment",
            Kind::Host => "url_extract_host",
            Kind::Parameter => "url_extract_parameter",
            Kind::Path => "url_extract_path",
            Kind::Port => "url_extract_port",
            Kind::Protocol => "url_extract_protocol",
            Kind::Query => "url_extract_query",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let wanted = if self.kind == Kind::Parameter { 2 } else { 1 };
        if arg_types.len() != wanted || !arg_types.iter().all(super::is_text) {
            return super::rejected(self.sql_name(), arg_types);
        }
        Ok(vec![DataType::Utf8; wanted])
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(match self.kind {
            Kind::Port => DataType::Int32,
            _ => DataType::Utf8,
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let Some(first) = arrays.first() else {
            return exec_err!("{} needs an argument", self.sql_name());
        };
        let urls = first.as_string::<i32>();
        let rows = 0..urls.len();
        let out: ArrayRef = match self.kind {
            Kind::Port => Arc::new(
                rows.map(|i| {
                    (!urls.is_null(i))
                        .then(|| parse(urls.value(i)).and_then(|u| u.port))
                        .flatten()
                })
                .collect::<Int32Array>(),
            ),
            Kind::Parameter => {
                let Some(names) = arrays.get(1) else {
                    return exec_err!("URL_EXTRACT_PARAMETER takes two arguments");
                };
                let names = names.as_string::<i32>();
                Arc::new(
                    rows.map(|i| {
                        (!urls.is_null(i) && !names.is_null(i))
                            .then(|| parameter(urls.value(i), names.value(i)))
                            .flatten()
                    })
                    .collect::<StringArray>(),
                )
            }
            Kind::DecodeParam => {
                let mut out = Vec::with_capacity(urls.len());
                for i in rows {
                    if urls.is_null(i) {
                        out.push(None);
                    } else if !escapes_ok(urls.value(i)) {
                        return exec_err!(
                            "URL_DECODE_PARAM: '{}' has a '%' not followed by two hex digits",
                            urls.value(i)
                        );
                    } else {
                        out.push(self.text(urls.value(i)));
                    }
                }
                Arc::new(StringArray::from(out))
            }
            _ => Arc::new(
                rows.map(|i| {
                    (!urls.is_null(i))
                        .then(|| self.text(urls.value(i)))
                        .flatten()
                })
                .collect::<StringArray>(),
            ),
        };
        Ok(ColumnarValue::Array(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(kind: Kind, value: &str) -> Option<String> {
        let f = UrlFn {
            kind,
            signature: Signature::user_defined(Volatility::Immutable),
        };
        f.text(value)
    }

    #[test]
    fn the_documented_examples() {
        assert_eq!(
            run(Kind::DecodeParam, "url%20encoded").as_deref(),
            Some("url encoded")
        );
        assert_eq!(
            run(Kind::EncodeParam, "url encoded").as_deref(),
            Some("url%20encoded")
        );
        assert_eq!(
            run(Kind::Fragment, "http://test.com#frag").as_deref(),
            Some("frag")
        );
        assert_eq!(
            run(Kind::Fragment, "http://test.com#frag%20space").as_deref(),
            Some("frag space")
        );
        assert_eq!(
            run(Kind::Host, "http://test.com:8080/path").as_deref(),
            Some("test.com")
        );
        assert_eq!(
            parameter("http://test.com?a%20b=c%20d", "a b").as_deref(),
            Some("c d")
        );
        assert_eq!(
            parameter("http://test.com?a=foo&b=bar", "b").as_deref(),
            Some("bar")
        );
        assert_eq!(
            run(Kind::Path, "http://test.com/path/to#a").as_deref(),
            Some("/path/to")
        );
        assert_eq!(
            parse("http://localhost:8080/path").and_then(|u| u.port),
            Some(8080)
        );
        assert_eq!(
            run(Kind::Protocol, "http://test.com?a=foo&b=bar").as_deref(),
            Some("http")
        );
        assert_eq!(
            run(Kind::Query, "http://test.com?a=foo%20bar&b=baz").as_deref(),
            Some("a=foo bar&b=baz")
        );
    }

    #[test]
    fn what_java_refuses_or_lacks_is_null() {
        assert_eq!(parse("http://test.com/a b"), None);
        assert_eq!(parse("http://test.com/%zz"), None);
        assert_eq!(parse("http://test.com:port/"), None);
        assert_eq!(parse("1http://test.com/"), None);
        assert_eq!(run(Kind::Host, "mailto:a@b.com"), None);
        assert_eq!(run(Kind::Path, "mailto:a@b.com"), None);
        assert_eq!(run(Kind::Path, "http://test.com").as_deref(), Some(""));
        assert_eq!(parse("http://test.com/").and_then(|u| u.port), None);
        assert_eq!(run(Kind::Fragment, "http://test.com/"), None);
        assert_eq!(parameter("http://test.com?a&b=1", "a"), None);
        assert_eq!(parameter("http://test.com", "a"), None);
        assert_eq!(
            run(Kind::Host, "http://user:pw@[::1]:80/x").as_deref(),
            Some("[::1]")
        );
    }
}

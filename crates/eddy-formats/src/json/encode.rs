//! Arrow rows → JSON text, written straight into the output buffer.

use super::find_special;
use crate::scalar;
use crate::view::ColumnView;
use arrow::array::Array;

/// The `"NAME":` prefix of each column of a wrapped record, escaped once per encoder.
pub(crate) fn object_keys<'a>(names: impl Iterator<Item = &'a str>) -> Vec<Vec<u8>> {
    names
        .map(|name| {
            let mut key = Vec::with_capacity(name.len() + 3);
            write_string(&mut key, name);
            key.push(b':');
            key
        })
        .collect()
}

/// Writes row `i` of `columns` as an object whose members are `keys` (see [`object_keys`]).
pub(crate) fn write_object(
    columns: &[ColumnView<'_>],
    keys: &[Vec<u8>],
    i: usize,
    out: &mut Vec<u8>,
) {
    out.push(b'{');
    for (n, (column, key)) in columns.iter().zip(keys).enumerate() {
        if n > 0 {
            out.push(b',');
        }
        out.extend_from_slice(key);
        write_value(column, i, out);
    }
    out.push(b'}');
}

/// Writes the value at row `i` as JSON.
pub(crate) fn write_value(view: &ColumnView<'_>, i: usize, out: &mut Vec<u8>) {
    if view.is_null(i) {
        out.extend_from_slice(b"null");
        return;
    }
    match view {
        ColumnView::Float64(a) => {
            let v = a.value(i);
            // JSON has no NaN or infinities: like Jackson, ksqlDB writes them as strings.
            if v.is_finite() {
                scalar::write_finite_f64(out, v);
            } else {
                out.push(b'"');
                scalar::write_f64_text(out, v);
                out.push(b'"');
            }
        }
        ColumnView::Utf8(a) => write_string(out, a.value(i)),
        ColumnView::Binary(a) => {
            out.push(b'"');
            scalar::write_base64(out, a.value(i));
            out.push(b'"');
        }
        ColumnView::List(a, items) => {
            let offsets = a.value_offsets();
            out.push(b'[');
            for j in offsets[i] as usize..offsets[i + 1] as usize {
                if j > offsets[i] as usize {
                    out.push(b',');
                }
                write_value(items, j, out);
            }
            out.push(b']');
        }
        ColumnView::Map(a, keys, values) => {
            let offsets = a.value_offsets();
            out.push(b'{');
            for j in offsets[i] as usize..offsets[i + 1] as usize {
                if j > offsets[i] as usize {
                    out.push(b',');
                }
                write_key(keys, j, out);
                out.push(b':');
                write_value(values, j, out);
            }
            out.push(b'}');
        }
        ColumnView::Struct(_, fields) => {
            out.push(b'{');
            for (n, (name, child)) in fields.iter().enumerate() {
                if n > 0 {
                    out.push(b',');
                }
                write_string(out, name);
                out.push(b':');
                write_value(child, i, out);
            }
            out.push(b'}');
        }
        // The text of every other type is already valid JSON.
        _ => view.write_text(i, out),
    }
}

/// Writes a map key: JSON object keys are strings, whatever the key type.
fn write_key(keys: &ColumnView<'_>, j: usize, out: &mut Vec<u8>) {
    match keys {
        ColumnView::Utf8(a) if !a.is_null(j) => write_string(out, a.value(j)),
        _ if keys.is_null(j) => out.extend_from_slice(b"\"null\""),
        _ => {
            out.push(b'"');
            keys.write_text(j, out);
            out.push(b'"');
        }
    }
}

/// Writes `s` as a JSON string literal.
pub(crate) fn write_string(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.reserve(s.len() + 2);
    out.push(b'"');
    let mut rest = s.as_bytes();
    while let Some(i) = find_special(rest) {
        out.extend_from_slice(&rest[..i]);
        let b = rest[i];
        let unicode;
        let short: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            _ => {
                let (hi, lo) = (HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]);
                unicode = [b'\\', b'u', b'0', b'0', hi, lo];
                &unicode
            }
        };
        out.extend_from_slice(short);
        rest = &rest[i + 1..];
    }
    out.extend_from_slice(rest);
    out.push(b'"');
}

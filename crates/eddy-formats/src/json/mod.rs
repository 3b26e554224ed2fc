//! The JSON format: a record is a JSON object holding the columns, or (unwrapped) the bare
//! value of its single column.

pub(crate) mod decode;
pub(crate) mod encode;
mod parser;

/// Whether `b` ends a run of string content that can be copied as is, when reading or when
/// writing JSON: a quote, a backslash or a control character.
fn is_special(b: u8) -> bool {
    // `|` rather than `||`: branches would stop the chunk test below from being vectorised.
    (b == b'"') | (b == b'\\') | (b < 0x20)
}

/// The index of the first special byte of `bytes` (see [`is_special`]).
fn find_special(bytes: &[u8]) -> Option<usize> {
    // Test whole chunks without an early exit, which the compiler turns into a few SIMD
    // instructions; most strings are long clean runs.
    let (chunks, _) = bytes.as_chunks::<16>();
    let mut clean = 0;
    for chunk in chunks {
        if chunk.iter().fold(false, |any, &b| any | is_special(b)) {
            break;
        }
        clean += chunk.len();
    }
    bytes[clean..]
        .iter()
        .position(|&b| is_special(b))
        .map(|i| clean + i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_first_special_byte() {
        let long = "x".repeat(40);
        for (text, expected) in [
            (String::new(), None),
            ("abc".to_owned(), None),
            (long.clone(), None),
            (format!("{long}\""), Some(40)),
            (format!("{long}\\{long}\""), Some(40)),
            (format!("{}\u{1f}", "é".repeat(20)), Some(40)),
            (format!("ab\"{long}\\"), Some(2)),
            (format!("{}\n{long}", "y".repeat(16)), Some(16)),
            ("\u{7f}ü€😀".to_owned(), None),
        ] {
            assert_eq!(find_special(text.as_bytes()), expected, "{text:?}");
        }
    }
}

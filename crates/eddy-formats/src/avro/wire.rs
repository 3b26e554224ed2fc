//! Avro's binary encoding of primitives: zig-zag varints, length-prefixed bytes, IEEE floats.

use crate::failure::Failure;

fn truncated() -> Failure {
    Failure::new("Avro record ends early")
}

/// Reads a zig-zag varint `long` (also `int`, an enum index, a union branch, a length).
pub(crate) fn read_long(buf: &mut &[u8]) -> Result<i64, Failure> {
    let mut value: u64 = 0;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = buf.split_first().ok_or_else(truncated)?;
        *buf = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok((value >> 1) as i64 ^ -((value & 1) as i64));
        }
    }
    Err(Failure::new("Avro varint is longer than 10 bytes"))
}

/// Reads `n` bytes.
pub(crate) fn read_fixed<'a>(buf: &mut &'a [u8], n: usize) -> Result<&'a [u8], Failure> {
    if buf.len() < n {
        return Err(truncated());
    }
    let (head, rest) = buf.split_at(n);
    *buf = rest;
    Ok(head)
}

/// Reads length-prefixed `bytes` (also a `string`'s UTF-8).
pub(crate) fn read_bytes<'a>(buf: &mut &'a [u8]) -> Result<&'a [u8], Failure> {
    let len = read_long(buf)?;
    let len = usize::try_from(len).map_err(|_| Failure::new("negative Avro length"))?;
    read_fixed(buf, len)
}

/// Reads a `string`.
pub(crate) fn read_str<'a>(buf: &mut &'a [u8]) -> Result<&'a str, Failure> {
    std::str::from_utf8(read_bytes(buf)?).map_err(|_| Failure::new("Avro string is not UTF-8"))
}

/// Reads the item count of the next block of an array or map; 0 ends it.
pub(crate) fn read_block_len(buf: &mut &[u8]) -> Result<usize, Failure> {
    let n = read_long(buf)?;
    if n < 0 {
        // A negative count is followed by the block's size in bytes.
        read_long(buf)?;
    }
    usize::try_from(n.unsigned_abs()).map_err(|_| Failure::new("Avro block is too long"))
}

/// Writes a zig-zag varint.
pub(crate) fn write_long(out: &mut Vec<u8>, v: i64) {
    let mut n = ((v << 1) ^ (v >> 63)) as u64;
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Writes length-prefixed bytes.
pub(crate) fn write_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    write_long(out, bytes.len() as i64);
    out.extend_from_slice(bytes);
}

/// The big-endian two's-complement bytes of a decimal's unscaled value, as short as they
/// can be (Avro's `decimal` on `bytes`).
pub(crate) fn decimal_bytes(v: i128) -> Vec<u8> {
    let bytes = v.to_be_bytes();
    let sign = if v < 0 { 0xff } else { 0 };
    let mut start = 0;
    while start < 15 && bytes[start] == sign && (bytes[start + 1] & 0x80) == (sign & 0x80) {
        start += 1;
    }
    bytes[start..].to_vec()
}

/// The unscaled value of big-endian two's-complement bytes.
pub(crate) fn decimal_value(bytes: &[u8]) -> Result<i128, Failure> {
    if bytes.len() > 16 {
        return Err(Failure::new("Avro decimal is wider than 128 bits"));
    }
    let negative = bytes.first().is_some_and(|b| b & 0x80 != 0);
    let mut full = if negative { [0xff; 16] } else { [0; 16] };
    full[16 - bytes.len()..].copy_from_slice(bytes);
    Ok(i128::from_be_bytes(full))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longs_and_decimals_round_trip() -> Result<(), Failure> {
        for v in [0, 1, -1, 63, -64, 64, i64::MAX, i64::MIN, 300, -12345678] {
            let mut out = Vec::new();
            write_long(&mut out, v);
            assert_eq!(read_long(&mut out.as_slice())?, v);
        }
        let mut out = Vec::new();
        write_long(&mut out, -64);
        assert_eq!(out, [0x7f]);
        for v in [
            0i128,
            1,
            -1,
            127,
            128,
            -128,
            -129,
            6521,
            i128::from(i64::MIN),
        ] {
            assert_eq!(decimal_value(&decimal_bytes(v))?, v);
        }
        assert_eq!(decimal_bytes(128), [0x00, 0x80]);
        assert_eq!(decimal_bytes(-1), [0xff]);
        Ok(())
    }
}

//! Reading changelog records: one change per keyed record, as changelogs are written now,
//! or many changes packed into one record without a key, as an earlier version wrote them
//! (which a compacted topic cannot keep, and a deleting one loses with age).
//!
//! A packed record has a null key and the value: a format byte, then per change the key's
//! length (`u32`, little-endian) and bytes, and the value's length (`u32::MAX` for a
//! delete) and bytes.

use eddy_topic::Payloads;

use crate::error::EngineError;

/// First byte of a packed record's value.
const PACKED: u8 = 1;
/// The value length that marks a delete.
const DELETE: u32 = u32::MAX;
/// A packed record is closed once it holds this many bytes (brokers refuse records over
/// 1 MB by default).
#[cfg(test)]
const RECORD_BYTES: usize = 512 * 1024;

/// Packs `keys`/`values` (a `None` value deletes) into records appended to `records`
/// (values; their keys are null), as the earlier version did. A null key is an error.
#[cfg(test)]
fn pack(
    keys: &Payloads,
    values: &Payloads,
    records: &mut Payloads,
    buf: &mut Vec<u8>,
) -> Result<(), EngineError> {
    buf.clear();
    for (key, value) in keys.iter().zip(values.iter()) {
        let key =
            key.ok_or_else(|| EngineError::Internal("a state change without a key".into()))?;
        let size = 8 + key.len() + value.map_or(0, <[u8]>::len);
        if !buf.is_empty() && buf.len() + size > RECORD_BYTES {
            records.push(Some(buf));
            buf.clear();
        }
        if buf.is_empty() {
            buf.push(PACKED);
        }
        buf.extend_from_slice(&(key.len() as u32).to_le_bytes());
        buf.extend_from_slice(key);
        match value {
            Some(v) => {
                buf.extend_from_slice(&(v.len() as u32).to_le_bytes());
                buf.extend_from_slice(v);
            }
            None => buf.extend_from_slice(&DELETE.to_le_bytes()),
        }
    }
    if !buf.is_empty() {
        records.push(Some(buf));
    }
    Ok(())
}

/// Appends the changes of one changelog record to `keys`/`values`.
pub(super) fn unpack(
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    keys: &mut Payloads,
    values: &mut Payloads,
) -> Result<(), EngineError> {
    if key.is_some() {
        keys.push(key);
        values.push(value);
        return Ok(());
    }
    let corrupt = |what: &str| EngineError::Internal(format!("corrupt changelog record: {what}"));
    let bytes = value.ok_or_else(|| corrupt("no key and no value"))?;
    if bytes.first() != Some(&PACKED) {
        return Err(corrupt("unknown format"));
    }
    let mut cursor = Cursor { bytes, pos: 1 };
    while cursor.pos < bytes.len() {
        let key_len = cursor.length()?;
        keys.push(Some(cursor.take(key_len as usize)?));
        match cursor.length()? {
            DELETE => values.push(None),
            n => values.push(Some(cursor.take(n as usize)?)),
        }
    }
    Ok(())
}

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], EngineError> {
        let part = self
            .bytes
            .get(self.pos..self.pos + n)
            .ok_or_else(|| EngineError::Internal("corrupt changelog record: truncated".into()))?;
        self.pos += n;
        Ok(part)
    }

    fn length(&mut self) -> Result<u32, EngineError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payloads(entries: &[Option<&[u8]>]) -> Payloads {
        entries.iter().copied().collect()
    }

    #[test]
    fn changes_round_trip_through_packed_records() {
        let keys = payloads(&[Some(b"a"), Some(b""), Some(b"c")]);
        let values = payloads(&[Some(b"1"), None, Some(b"")]);
        let mut records = Payloads::new();
        pack(&keys, &values, &mut records, &mut Vec::new()).expect("packs");
        assert_eq!(records.len(), 1);
        let (mut k, mut v) = (Payloads::new(), Payloads::new());
        unpack(None, records.get(0), &mut k, &mut v).expect("unpacks");
        assert_eq!(k, keys);
        assert_eq!(v, values);
    }

    #[test]
    fn big_batches_take_several_records_and_single_changes_still_read() {
        let value = vec![7u8; 100_000];
        let keys = payloads(&[
            Some(b"1"),
            Some(b"2"),
            Some(b"3"),
            Some(b"4"),
            Some(b"5"),
            Some(b"6"),
        ]);
        let values = payloads(&[Some(&value[..]); 6]);
        let mut records = Payloads::new();
        pack(&keys, &values, &mut records, &mut Vec::new()).expect("packs");
        assert_eq!(records.len(), 2);
        let (mut k, mut v) = (Payloads::new(), Payloads::new());
        for r in records.iter() {
            unpack(None, r, &mut k, &mut v).expect("unpacks");
        }
        unpack(Some(b"7"), None, &mut k, &mut v).expect("a single change");
        assert_eq!(k.len(), 7);
        assert_eq!(v.get(5), Some(&value[..]));
        assert_eq!(v.get(6), None);
    }

    #[test]
    fn corrupt_records_are_errors() {
        let (mut k, mut v) = (Payloads::new(), Payloads::new());
        assert!(unpack(None, Some(&[9]), &mut k, &mut v).is_err());
        assert!(unpack(None, Some(&[PACKED, 5, 0, 0, 0, b'x']), &mut k, &mut v).is_err());
        assert!(unpack(None, None, &mut k, &mut v).is_err());
        let keys = payloads(&[None]);
        let values = payloads(&[Some(b"1")]);
        assert!(pack(&keys, &values, &mut Payloads::new(), &mut Vec::new()).is_err());
    }
}

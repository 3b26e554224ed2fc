/// A column of optional byte strings (record keys or values) kept in one buffer, so that a
/// batch of records costs a few allocations rather than one per record.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Payloads {
    data: Vec<u8>,
    /// End offset in `data` of each entry; an entry starts where the previous one ends.
    ends: Vec<usize>,
    /// Whether each entry is present (`false` = a null key or a tombstone value).
    present: Vec<bool>,
}

impl Payloads {
    /// An empty column.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty column with room for `records` entries of `bytes` bytes in all.
    pub fn with_capacity(records: usize, bytes: usize) -> Self {
        Self {
            data: Vec::with_capacity(bytes),
            ends: Vec::with_capacity(records),
            present: Vec::with_capacity(records),
        }
    }

    /// Appends an entry (`None` for null).
    pub fn push(&mut self, bytes: Option<&[u8]>) {
        if let Some(b) = bytes {
            self.data.extend_from_slice(b);
        }
        self.ends.push(self.data.len());
        self.present.push(bytes.is_some());
    }

    /// Appends an entry whose bytes are written by `write` into the shared buffer.
    pub fn push_with<E>(
        &mut self,
        write: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
    ) -> Result<(), E> {
        let start = self.data.len();
        if let Err(e) = write(&mut self.data) {
            self.data.truncate(start);
            return Err(e);
        }
        self.ends.push(self.data.len());
        self.present.push(true);
        Ok(())
    }

    /// The entry at `i`, or `None` if it is null.
    ///
    /// # Panics
    /// If `i >= self.len()`.
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        if !self.present[i] {
            return None;
        }
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        Some(&self.data[start..self.ends[i]])
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Total bytes held.
    pub fn byte_len(&self) -> usize {
        self.data.len()
    }

    /// Removes every entry, keeping the allocations.
    pub fn clear(&mut self) {
        self.data.clear();
        self.ends.clear();
        self.present.clear();
    }

    /// Iterates over the entries.
    pub fn iter(&self) -> impl Iterator<Item = Option<&[u8]>> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }
}

impl<'a> FromIterator<Option<&'a [u8]>> for Payloads {
    fn from_iter<I: IntoIterator<Item = Option<&'a [u8]>>>(entries: I) -> Self {
        let mut payloads = Payloads::new();
        for entry in entries {
            payloads.push(entry);
        }
        payloads
    }
}

/// One record header: a key and an optional value, as Kafka carries them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The header's key (Kafka allows repeats).
    pub key: String,
    /// The header's value (`None` for a null value).
    pub value: Option<Vec<u8>>,
}

/// The headers of a batch's records, kept only for the records that have some, so that a
/// batch without headers (the common case) costs nothing.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RecordHeaders {
    /// `(record index, its headers)`, in record order, never with an empty list.
    entries: Vec<(usize, Vec<Header>)>,
}

impl RecordHeaders {
    /// No headers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Gives record `record` its headers; records must be given in increasing order, and
    /// an empty list is not kept.
    pub fn set(&mut self, record: usize, headers: Vec<Header>) {
        if headers.is_empty() {
            return;
        }
        debug_assert!(self.entries.last().is_none_or(|(r, _)| *r < record));
        self.entries.push((record, headers));
    }

    /// The headers of record `record` (empty if it has none).
    pub fn of(&self, record: usize) -> &[Header] {
        match self.entries.binary_search_by_key(&record, |(r, _)| *r) {
            Ok(i) => &self.entries[i].1,
            Err(_) => &[],
        }
    }

    /// Whether no record has headers.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Removes every record's headers.
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// The headers of other records, in order: record `i` here gets the headers of record
    /// `origins[i]` of `self`.
    pub fn pick(&self, origins: impl IntoIterator<Item = usize>) -> RecordHeaders {
        let mut picked = RecordHeaders::new();
        if self.is_empty() {
            return picked;
        }
        for (i, origin) in origins.into_iter().enumerate() {
            picked.set(i, self.of(origin).to_vec());
        }
        picked
    }
}

/// Records read from one topic, column by column.
#[derive(Debug, Default, Clone)]
pub struct RawBatch {
    /// Record keys.
    pub keys: Payloads,
    /// Record values (`None` = tombstone).
    pub values: Payloads,
    /// Record timestamps in milliseconds since the epoch (ROWTIME).
    pub timestamps: Vec<i64>,
    /// Partition of each record (ROWPARTITION).
    pub partitions: Vec<i32>,
    /// Offset of each record (ROWOFFSET).
    pub offsets: Vec<i64>,
    /// The records' headers.
    pub headers: RecordHeaders,
}

impl RawBatch {
    /// Appends one record.
    pub fn push(
        &mut self,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        timestamp: i64,
        partition: i32,
        offset: i64,
    ) {
        self.keys.push(key);
        self.values.push(value);
        self.timestamps.push(timestamp);
        self.partitions.push(partition);
        self.offsets.push(offset);
    }

    /// Gives the record pushed last its headers.
    pub fn set_last_headers(&mut self, headers: Vec<Header>) {
        if let Some(last) = self.len().checked_sub(1) {
            self.headers.set(last, headers);
        }
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.timestamps.len()
    }

    /// Whether the batch holds no records.
    pub fn is_empty(&self) -> bool {
        self.timestamps.is_empty()
    }

    /// Removes every record, keeping the allocations.
    pub fn clear(&mut self) {
        self.keys.clear();
        self.values.clear();
        self.timestamps.clear();
        self.partitions.clear();
        self.offsets.clear();
        self.headers.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(key: &str) -> Header {
        Header {
            key: key.into(),
            value: Some(key.as_bytes().to_vec()),
        }
    }

    #[test]
    fn headers_are_kept_only_for_records_that_have_some() {
        let mut batch = RawBatch::default();
        batch.push(None, Some(b"a"), 0, 0, 0);
        batch.set_last_headers(vec![header("x"), header("y")]);
        batch.push(None, Some(b"b"), 0, 0, 1);
        batch.set_last_headers(Vec::new());
        batch.push(None, Some(b"c"), 0, 0, 2);
        batch.set_last_headers(vec![header("z")]);
        assert_eq!(batch.headers.of(0), [header("x"), header("y")]);
        assert!(batch.headers.of(1).is_empty());
        assert_eq!(batch.headers.of(2), [header("z")]);
        let picked = batch.headers.pick([2, 1, 0, 2]);
        assert_eq!(picked.of(0), [header("z")]);
        assert!(picked.of(1).is_empty());
        assert_eq!(picked.of(3), [header("z")]);
        batch.clear();
        assert!(batch.headers.is_empty());
        assert!(RecordHeaders::new().pick([0, 1]).is_empty());
    }
}

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
    }
}

//! In-memory topics: the [`TopicIo`] `eddy test` runs queries on, with Kafka's semantics
//! (partitions, offsets, consumer groups, murmur2 key partitioning) and no broker.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use eddy_topic::{
    Header, Payloads, Position, RawBatch, RecordHeaders, RecordSink, RecordSource, StartFrom,
    TopicAdmin, TopicError, TopicInfo, TopicIo, partition_for_key,
};

/// One record as stored in a memory topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    /// Key bytes.
    pub key: Option<Vec<u8>>,
    /// Value bytes (`None` = tombstone).
    pub value: Option<Vec<u8>>,
    /// Timestamp in ms.
    pub timestamp: i64,
    /// Record headers.
    pub headers: Vec<Header>,
}

#[derive(Default)]
struct State {
    topics: HashMap<String, Vec<Vec<StoredRecord>>>,
    /// Committed next offsets by (group, topic) per partition.
    committed: HashMap<(String, String), HashMap<i32, i64>>,
    /// Order in which records were appended: (topic, partition, offset).
    log: Vec<(String, i32, i64)>,
}

/// Topics held in memory, shared by every source and sink made from it.
#[derive(Clone, Default)]
pub struct MemoryTopics {
    state: Arc<Mutex<State>>,
}

impl MemoryTopics {
    /// No topics yet.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind; keep using it.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends one record, choosing the partition from the key as Kafka does.
    pub fn produce(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        timestamp: i64,
    ) -> Result<(), TopicError> {
        self.produce_with_headers(topic, key, value, timestamp, Vec::new())
    }

    /// Appends one record with headers, choosing the partition from the key as Kafka does.
    pub fn produce_with_headers(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        timestamp: i64,
        headers: Vec<Header>,
    ) -> Result<(), TopicError> {
        let mut state = self.lock();
        let record = StoredRecord {
            key: key.map(<[u8]>::to_vec),
            value: value.map(<[u8]>::to_vec),
            timestamp,
            headers,
        };
        append(&mut state, topic, record)
    }

    /// Every record of a topic in the order it was written (across partitions).
    pub fn records(&self, topic: &str) -> Vec<(i32, StoredRecord)> {
        let state = self.lock();
        state
            .log
            .iter()
            .filter(|(t, _, _)| t == topic)
            .filter_map(|(t, p, o)| {
                let rec = state.topics.get(t)?.get(*p as usize)?.get(*o as usize)?;
                Some((*p, rec.clone()))
            })
            .collect()
    }
}

fn append(state: &mut State, topic: &str, record: StoredRecord) -> Result<(), TopicError> {
    let partitions = state.topics.get(topic).map_or(1, Vec::len);
    let p = match &record.key {
        Some(k) => partition_for_key(k, partitions as i32),
        None => 0,
    };
    append_to(state, topic, p, record)
}

/// Appends a record to partition `p` of `topic`.
fn append_to(
    state: &mut State,
    topic: &str,
    p: i32,
    record: StoredRecord,
) -> Result<(), TopicError> {
    let partitions = state
        .topics
        .entry(topic.to_string())
        .or_insert_with(|| vec![Vec::new()]);
    let Some(part) = usize::try_from(p).ok().and_then(|i| partitions.get_mut(i)) else {
        return Err(TopicError::Client(format!(
            "partition {p} of '{topic}' does not exist ({} partitions)",
            partitions.len()
        )));
    };
    part.push(record);
    let offset = part.len() as i64 - 1;
    state.log.push((topic.to_string(), p, offset));
    Ok(())
}

impl TopicAdmin for MemoryTopics {
    /// A group that committed offsets of a topic counts as one member reading it.
    fn consumer_groups(&self) -> Result<Vec<eddy_topic::ConsumerGroupInfo>, TopicError> {
        let state = self.lock();
        let mut groups: std::collections::BTreeMap<&str, Vec<Vec<String>>> =
            std::collections::BTreeMap::new();
        for (group, topic) in state.committed.keys() {
            groups
                .entry(group.as_str())
                .or_default()
                .push(vec![topic.clone()]);
        }
        Ok(groups
            .into_iter()
            .map(|(group, members)| eddy_topic::ConsumerGroupInfo {
                group: group.to_string(),
                members,
            })
            .collect())
    }

    fn create_topic(&self, name: &str, partitions: i32, _replicas: i16) -> Result<(), TopicError> {
        let mut state = self.lock();
        state
            .topics
            .entry(name.to_string())
            .or_insert_with(|| vec![Vec::new(); partitions.max(1) as usize]);
        Ok(())
    }

    fn create_compacted_topic(
        &self,
        name: &str,
        partitions: i32,
        replicas: i16,
    ) -> Result<(), TopicError> {
        // Memory topics keep every record: a compacted one is an ordinary one.
        self.create_topic(name, partitions, replicas)
    }

    fn partition_count(&self, name: &str) -> Result<Option<i32>, TopicError> {
        Ok(self.lock().topics.get(name).map(|p| p.len() as i32))
    }

    fn list_topics(&self) -> Result<Vec<TopicInfo>, TopicError> {
        let mut topics: Vec<TopicInfo> = self
            .lock()
            .topics
            .iter()
            .map(|(name, parts)| TopicInfo {
                name: name.clone(),
                partitions: parts.len() as i32,
                replicas: 1,
            })
            .collect();
        topics.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(topics)
    }

    fn delete_topic(&self, name: &str) -> Result<(), TopicError> {
        self.lock().topics.remove(name);
        Ok(())
    }

    fn end_offsets(&self, name: &str) -> Result<Vec<Position>, TopicError> {
        let state = self.lock();
        let parts = state
            .topics
            .get(name)
            .ok_or_else(|| TopicError::UnknownTopic(name.to_string()))?;
        Ok(parts
            .iter()
            .enumerate()
            .map(|(p, recs)| Position {
                partition: p as i32,
                next_offset: recs.len() as i64,
            })
            .collect())
    }

    fn start_offsets(&self, name: &str) -> Result<Vec<Position>, TopicError> {
        let partitions = self
            .partition_count(name)?
            .ok_or_else(|| TopicError::UnknownTopic(name.to_string()))?;
        Ok((0..partitions)
            .map(|partition| Position {
                partition,
                next_offset: 0,
            })
            .collect())
    }
}

impl TopicIo for MemoryTopics {
    fn admin(&self) -> &dyn TopicAdmin {
        self
    }

    fn source(
        &self,
        topic: &str,
        group: &str,
        start: StartFrom,
    ) -> Result<Box<dyn RecordSource>, TopicError> {
        let mut state = self.lock();
        let committed = state
            .committed
            .get(&(group.to_string(), topic.to_string()))
            .cloned()
            .unwrap_or_default();
        let parts = state
            .topics
            .entry(topic.to_string())
            .or_insert_with(|| vec![Vec::new()]);
        let next: Vec<i64> = (0..parts.len())
            .map(|p| match committed.get(&(p as i32)) {
                Some(o) => *o,
                None => match start {
                    StartFrom::Earliest => 0,
                    StartFrom::Latest => parts[p].len() as i64,
                },
            })
            .collect();
        Ok(Box::new(MemorySource {
            topics: self.clone(),
            topic: topic.to_string(),
            group: group.to_string(),
            next,
        }))
    }

    fn sink(&self, topic: &str) -> Result<Box<dyn RecordSink>, TopicError> {
        Ok(Box::new(MemorySink {
            topics: self.clone(),
            topic: topic.to_string(),
        }))
    }
}

struct MemorySource {
    topics: MemoryTopics,
    topic: String,
    group: String,
    next: Vec<i64>,
}

impl RecordSource for MemorySource {
    fn poll(
        &mut self,
        batch: &mut RawBatch,
        max_records: usize,
        _timeout: Duration,
    ) -> Result<usize, TopicError> {
        let state = self.topics.lock();
        let Some(parts) = state.topics.get(&self.topic) else {
            return Ok(0);
        };
        if self.next.len() < parts.len() {
            self.next.resize(parts.len(), 0);
        }
        // Records are handed out in the order they were written, as a single consumer of a
        // topic fed one record at a time would see them.
        let mut taken = 0;
        for (topic, p, o) in &state.log {
            if taken >= max_records {
                break;
            }
            if *topic != self.topic || *o < self.next[*p as usize] {
                continue;
            }
            if *o != self.next[*p as usize] {
                continue;
            }
            let rec = &parts[*p as usize][*o as usize];
            batch.push(
                rec.key.as_deref(),
                rec.value.as_deref(),
                rec.timestamp,
                *p,
                *o,
            );
            batch.set_last_headers(rec.headers.clone());
            self.next[*p as usize] = o + 1;
            taken += 1;
        }
        Ok(taken)
    }

    fn commit(&mut self, positions: &[Position]) -> Result<(), TopicError> {
        let mut state = self.topics.lock();
        let entry = state
            .committed
            .entry((self.group.clone(), self.topic.clone()))
            .or_default();
        for p in positions {
            entry.insert(p.partition, p.next_offset);
        }
        Ok(())
    }
}

/// Record `i` of a batch being sent.
fn stored(
    keys: &Payloads,
    values: &Payloads,
    timestamp: i64,
    headers: &RecordHeaders,
    i: usize,
) -> StoredRecord {
    StoredRecord {
        key: keys.get(i).map(<[u8]>::to_vec),
        value: values.get(i).map(<[u8]>::to_vec),
        timestamp,
        headers: headers.of(i).to_vec(),
    }
}

struct MemorySink {
    topics: MemoryTopics,
    topic: String,
}

impl RecordSink for MemorySink {
    fn send_with_headers(
        &mut self,
        keys: &Payloads,
        values: &Payloads,
        timestamps: &[i64],
        headers: &RecordHeaders,
    ) -> Result<(), TopicError> {
        let mut state = self.topics.lock();
        for (i, ts) in timestamps.iter().enumerate() {
            append(
                &mut state,
                &self.topic,
                stored(keys, values, *ts, headers, i),
            )?;
        }
        Ok(())
    }

    fn send_to_partitions(
        &mut self,
        keys: &Payloads,
        values: &Payloads,
        timestamps: &[i64],
        headers: &RecordHeaders,
        partitions: &[i32],
    ) -> Result<(), TopicError> {
        let mut state = self.topics.lock();
        for (i, (ts, p)) in timestamps.iter().zip(partitions).enumerate() {
            let record = stored(keys, values, *ts, headers, i);
            append_to(&mut state, &self.topic, *p, record)?;
        }
        Ok(())
    }

    fn flush(&mut self, _timeout: Duration) -> Result<(), TopicError> {
        Ok(())
    }
}

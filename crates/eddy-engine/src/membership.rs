//! Who is in the cluster: each server of a service announces itself, about once a second,
//! with a record keyed by its advertised address in the compacted topic
//! `_eddy_<service id>_servers`, and reads everyone's announcements from it. A server
//! whose last announcement was written more than [`ALIVE_WINDOW`] ago (by its record's
//! timestamp, so the servers' clocks must roughly agree, as NTP keeps them) is reported
//! dead (`/clusterStatus`'s `hostAlive`), as ksqlDB's heartbeats decide it, but through
//! Kafka: no server needs to reach another one's REST API, and a server that starts
//! learns the others from the topic at once.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use eddy_topic::{Payloads, RawBatch, RecordSink, RecordSource, TopicIo};
use serde_json::Value;

use crate::error::EngineError;

/// How long after its last announcement a server still counts as alive.
pub const ALIVE_WINDOW: Duration = Duration::from_secs(5);

/// What this server knows of one server of the cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct HostStatus {
    /// The server's own report: its queries' partitions and stores.
    pub report: Value,
    /// When this server received it (ms since the epoch, its own clock).
    pub last_update_ms: i64,
}

impl HostStatus {
    /// Whether the server announced itself within [`ALIVE_WINDOW`] of `now_ms`.
    pub fn alive(&self, now_ms: i64) -> bool {
        now_ms - self.last_update_ms <= ALIVE_WINDOW.as_millis() as i64
    }
}

/// This server's view of the cluster, and its announcements.
pub struct Membership {
    topics: Arc<dyn TopicIo>,
    topic: String,
    me: String,
    sink: Mutex<Box<dyn RecordSink>>,
    reader: Mutex<Option<Box<dyn RecordSource>>>,
    hosts: Mutex<BTreeMap<String, HostStatus>>,
}

impl std::fmt::Debug for Membership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Membership")
            .field("topic", &self.topic)
            .field("me", &self.me)
            .finish_non_exhaustive()
    }
}

/// Milliseconds since the epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Membership {
    /// The membership of `service_id`'s cluster, for the server advertised as `me`
    /// (`host:port`), creating its topic if missing.
    pub fn open(
        topics: Arc<dyn TopicIo>,
        service_id: &str,
        me: &str,
        replicas: i16,
    ) -> Result<Self, EngineError> {
        let topic = format!("_eddy_{service_id}_servers");
        topics.admin().create_compacted_topic(&topic, 1, replicas)?;
        let sink = topics.sink(&topic)?;
        Ok(Self {
            topics,
            topic,
            me: me.to_string(),
            sink: Mutex::new(sink),
            reader: Mutex::new(None),
            hosts: Mutex::new(BTreeMap::new()),
        })
    }

    /// This server's advertised address.
    pub fn me(&self) -> &str {
        &self.me
    }

    /// Announces this server with `report`, and counts itself alive from now.
    pub fn announce(&self, report: &Value) -> Result<(), EngineError> {
        let value = serde_json::to_vec(report)
            .map_err(|e| EngineError::Internal(format!("encoding a server's status: {e}")))?;
        let mut keys = Payloads::new();
        keys.push(Some(self.me.as_bytes()));
        let mut values = Payloads::new();
        values.push(Some(&value));
        let mut sink = lock(&self.sink);
        sink.send(&keys, &values, &[now_ms()])?;
        sink.flush(Duration::from_secs(10))?;
        lock(&self.hosts).insert(
            self.me.clone(),
            HostStatus {
                report: report.clone(),
                last_update_ms: now_ms(),
            },
        );
        Ok(())
    }

    /// Reads the announcements that arrived since the last call (waiting at most `wait`).
    pub fn refresh(&self, wait: Duration) -> Result<(), EngineError> {
        let mut reader = lock(&self.reader);
        if reader.is_none() {
            *reader = Some(self.topics.reader(&self.topic)?);
        }
        let Some(source) = reader.as_mut() else {
            return Ok(());
        };
        let mut raw = RawBatch::default();
        source.poll(&mut raw, 1000, wait)?;
        let received = now_ms();
        let mut hosts = lock(&self.hosts);
        for i in 0..raw.len() {
            let (Some(key), Some(value)) = (raw.keys.get(i), raw.values.get(i)) else {
                continue;
            };
            let host = String::from_utf8_lossy(key).into_owned();
            if host == self.me {
                continue;
            }
            // When it was written (by the other server's clock, at most this one's now):
            // an old record read at start says the server existed, not that it lives.
            let written = raw.timestamps[i].min(received);
            match serde_json::from_slice::<Value>(value) {
                Ok(report) => {
                    hosts.insert(
                        host,
                        HostStatus {
                            report,
                            last_update_ms: written,
                        },
                    );
                }
                Err(e) => tracing::warn!(host, "skipping an unreadable server status: {e}"),
            }
        }
        Ok(())
    }

    /// Every server known, by advertised address.
    pub fn hosts(&self) -> BTreeMap<String, HostStatus> {
        lock(&self.hosts).clone()
    }
}

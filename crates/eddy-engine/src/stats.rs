//! What this server's queries read from and wrote to each topic, for `DESCRIBE EXTENDED`
//! (ksqlDB's "Local runtime statistics" and "Errors"). Counted once per batch.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use eddy_topic::RawBatch;

use crate::processing_log::ProcessingError;

/// Seconds a rate is averaged over.
const RATE_SECONDS: usize = 10;

/// Per-topic counters, shared by every task of an engine.
#[derive(Debug, Default)]
pub(crate) struct TopicStats {
    topics: Mutex<HashMap<String, Counters>>,
}

#[derive(Debug, Default)]
struct Counters {
    consumed: Flow,
    consumed_bytes: u64,
    produced: Flow,
    failed: Flow,
}

/// A count of records, when the last came, and how many came in each recent second.
#[derive(Debug, Default)]
struct Flow {
    total: u64,
    last_ms: Option<i64>,
    /// (unix second, records in it), indexed by the second modulo [`RATE_SECONDS`].
    seconds: [(i64, u64); RATE_SECONDS],
}

impl Flow {
    fn add(&mut self, records: u64, now_ms: i64) {
        if records == 0 {
            return;
        }
        self.total += records;
        self.last_ms = Some(now_ms);
        let second = now_ms.div_euclid(1000);
        let slot = &mut self.seconds[second.rem_euclid(RATE_SECONDS as i64) as usize];
        if slot.0 != second {
            *slot = (second, 0);
        }
        slot.1 += records;
    }

    /// Records per second over the last [`RATE_SECONDS`].
    fn rate(&self, now_ms: i64) -> f64 {
        let now = now_ms.div_euclid(1000);
        let recent: u64 = self
            .seconds
            .iter()
            .filter(|(second, _)| (0..RATE_SECONDS as i64).contains(&(now - second)))
            .map(|(_, records)| records)
            .sum();
        recent as f64 / RATE_SECONDS as f64
    }
}

impl TopicStats {
    /// `records` (`bytes` of values) were read from `topic`.
    pub(crate) fn consumed(&self, topic: &str, records: u64, bytes: u64) {
        self.update(topic, |c, now| {
            c.consumed.add(records, now);
            c.consumed_bytes += bytes;
        });
    }

    /// `records` were written to `topic`.
    pub(crate) fn produced(&self, topic: &str, records: u64) {
        self.update(topic, |c, now| c.produced.add(records, now));
    }

    /// `records` read from `topic` could not be processed (they went to the processing log).
    pub(crate) fn failed(&self, topic: &str, records: u64) {
        self.update(topic, |c, now| c.failed.add(records, now));
    }

    /// A processed batch read from `topic`, and the errors it sent to the processing log
    /// (counted against the topic each names).
    pub(crate) fn processed(&self, topic: &str, raw: &RawBatch, errors: &[ProcessingError]) {
        self.consumed(topic, raw.len() as u64, raw.values.byte_len() as u64);
        for e in errors {
            self.failed(&e.topic, 1);
        }
    }

    fn update(&self, topic: &str, change: impl FnOnce(&mut Counters, i64)) {
        let mut topics = self.topics.lock().unwrap_or_else(PoisonError::into_inner);
        if !topics.contains_key(topic) {
            topics.insert(topic.to_string(), Counters::default());
        }
        if let Some(counters) = topics.get_mut(topic) {
            change(counters, now_ms());
        }
    }

    /// The statistics and error statistics of `topic` as ksqlDB words them, e.g.
    /// `consumer-messages-per-sec:      2.00 consumer-total-bytes:      1024
    /// consumer-total-messages:        10 last-message: 2024-01-01T00:00:00.000Z`; empty
    /// strings for a topic this server has not touched.
    pub(crate) fn describe(&self, topic: &str) -> (String, String) {
        let topics = self.topics.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(c) = topics.get(topic) else {
            return (String::new(), String::new());
        };
        let now = now_ms();
        let mut stats = Vec::new();
        if c.consumed.total > 0 {
            stats.push(stat("consumer-messages-per-sec", rate(&c.consumed, now)));
            stats.push(stat("consumer-total-bytes", c.consumed_bytes.to_string()));
            stats.push(stat(
                "consumer-total-messages",
                c.consumed.total.to_string(),
            ));
        }
        if c.produced.total > 0 {
            stats.push(stat("messages-per-sec", rate(&c.produced, now)));
            stats.push(stat("total-messages", c.produced.total.to_string()));
        }
        let last = c.consumed.last_ms.max(c.produced.last_ms);
        if let Some(last) = last {
            stats.push(format!("last-message: {}", timestamp(last)));
        }
        let mut errors = Vec::new();
        if let Some(last) = c.failed.last_ms {
            errors.push(stat("consumer-failed-messages", c.failed.total.to_string()));
            errors.push(stat(
                "consumer-failed-messages-per-sec",
                rate(&c.failed, now),
            ));
            errors.push(format!("last-failed: {}", timestamp(last)));
        }
        (stats.join(" "), errors.join(" "))
    }
}

fn stat(name: &str, value: String) -> String {
    format!("{name}:{value:>10}")
}

fn rate(flow: &Flow, now_ms: i64) -> String {
    format!("{:.2}", flow.rate(now_ms))
}

/// ISO-8601 in UTC with milliseconds, as ksqlDB prints `last-message`.
fn timestamp(ms: i64) -> String {
    arrow::temporal_conversions::timestamp_ms_to_datetime(ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_else(|| ms.to_string())
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::{Flow, RATE_SECONDS, TopicStats};

    #[test]
    fn counts_rates_and_errors_per_topic() {
        let stats = TopicStats::default();
        stats.consumed("in", 10, 2000);
        stats.consumed("in", 5, 1000);
        stats.failed("in", 2);
        stats.produced("out", 13);
        let (in_stats, in_errors) = stats.describe("in");
        assert!(
            in_stats.contains("consumer-total-messages:        15"),
            "{in_stats}"
        );
        assert!(
            in_stats.contains("consumer-total-bytes:      3000"),
            "{in_stats}"
        );
        assert!(
            in_stats.contains("consumer-messages-per-sec:      1.50"),
            "{in_stats}"
        );
        assert!(in_stats.contains("last-message: 20"), "{in_stats}");
        assert!(!in_stats.contains(" total-messages"), "{in_stats}");
        assert!(
            in_errors.contains("consumer-failed-messages:         2"),
            "{in_errors}"
        );
        let (out_stats, out_errors) = stats.describe("out");
        assert!(
            out_stats.contains("total-messages:        13"),
            "{out_stats}"
        );
        assert!(!out_stats.contains("consumer"), "{out_stats}");
        assert_eq!(out_errors, "");
        assert_eq!(stats.describe("untouched"), (String::new(), String::new()));
    }

    #[test]
    fn a_rate_forgets_seconds_older_than_its_window() {
        let mut flow = Flow::default();
        flow.add(100, 1_000_000);
        flow.add(20, 1_000_000 + 3_000);
        assert_eq!(flow.rate(1_000_000 + 3_500), 12.0);
        let later = 1_000_000 + (RATE_SECONDS as i64) * 1000 + 500;
        assert_eq!(flow.rate(later), 2.0);
        flow.add(30, later);
        assert_eq!(flow.rate(later), 5.0);
        assert_eq!(flow.total, 150);
    }
}

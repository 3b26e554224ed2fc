//! The harness's own Kafka plumbing: the broker, topic creation, a batching producer and a
//! watcher that counts outputs. All of it runs in the harness process, never in the
//! processes whose CPU is measured.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use eddy_kafka::DevBroker;
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use serde::Deserialize;

/// The broker every phase of a run uses.
pub enum Broker {
    /// librdkafka's mock cluster, in the harness process.
    Embedded(DevBroker),
    /// A broker at this address (e.g. tansu).
    External(String),
}

impl Broker {
    /// Starts the embedded broker for `embedded`, else uses the address given.
    pub fn from_arg(arg: &str) -> Result<Broker> {
        if arg == "embedded" {
            Ok(Broker::Embedded(
                DevBroker::start(1).context("starting the embedded dev broker")?,
            ))
        } else {
            Ok(Broker::External(arg.to_string()))
        }
    }

    /// The `bootstrap.servers` value.
    pub fn bootstrap(&self) -> String {
        match self {
            Broker::Embedded(b) => b.bootstrap_servers(),
            Broker::External(a) => a.clone(),
        }
    }

    /// A description for the report.
    pub fn describe(&self) -> String {
        match self {
            Broker::Embedded(b) => format!(
                "embedded dev broker (librdkafka mock cluster, in the harness process) at {}",
                b.bootstrap_servers()
            ),
            Broker::External(a) => format!("external broker at {a}"),
        }
    }

    /// Creates a one-partition topic (tansu does not create topics on first use).
    pub fn create_topic(&self, rt: &tokio::runtime::Runtime, name: &str) -> Result<()> {
        match self {
            Broker::Embedded(b) => Ok(b.handle().create_topic(name, 1)?),
            Broker::External(addr) => {
                let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
                    .set("bootstrap.servers", addr)
                    .create()
                    .context("creating a Kafka admin client")?;
                let topic = NewTopic::new(name, 1, TopicReplication::Fixed(1));
                let results = rt.block_on(admin.create_topics(&[topic], &AdminOptions::new()))?;
                for r in results {
                    match r {
                        Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                        Err((t, e)) => bail!("creating topic {t}: {e}"),
                    }
                }
                Ok(())
            }
        }
    }
}

/// A producer that queues records and lets librdkafka batch them, waiting only when its
/// queue is full and at `flush`.
pub struct BatchProducer {
    producer: BaseProducer,
    queued: u64,
}

impl BatchProducer {
    /// A producer tuned for bulk loading (`linger_ms` of batching).
    pub fn new(bootstrap: &str, linger_ms: u32) -> Result<BatchProducer> {
        let producer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("linger.ms", linger_ms.to_string())
            .set("queue.buffering.max.messages", "500000")
            .set("queue.buffering.max.kbytes", "1048576")
            .set("batch.size", "1000000")
            .set("message.timeout.ms", "120000")
            .create()
            .context("creating a Kafka producer")?;
        Ok(BatchProducer {
            producer,
            queued: 0,
        })
    }

    /// Queues one record.
    pub fn send(&mut self, topic: &str, key: &[u8], value: &[u8], ts: i64) -> Result<()> {
        let mut record = BaseRecord::<[u8], [u8]>::to(topic)
            .key(key)
            .payload(value)
            .timestamp(ts);
        loop {
            match self.producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    self.producer.poll(Duration::from_millis(5));
                }
                Err((e, _)) => return Err(anyhow!("producing to {topic}: {e}")),
            }
        }
        self.queued += 1;
        if self.queued.is_multiple_of(1024) {
            self.producer.poll(Duration::ZERO);
        }
        Ok(())
    }

    /// Waits until every queued record is acknowledged.
    pub fn flush(&mut self) -> Result<()> {
        self.producer
            .flush(Duration::from_secs(300))
            .context("flushing the producer")
    }
}

/// A consumer with no group membership, reading whole topics from their beginning; a
/// fetch with nothing to return waits at most `fetch_wait_ms` on the broker.
pub fn reader(bootstrap: &str, topics: &[&str], fetch_wait_ms: u32) -> Result<BaseConsumer> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "eddy-bench-reader")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", fetch_wait_ms.to_string())
        .create()
        .context("creating a Kafka consumer")?;
    let mut assignment = TopicPartitionList::new();
    for topic in topics {
        for p in 0..partitions(&consumer, topic)? {
            assignment.add_partition_offset(topic, p, Offset::Beginning)?;
        }
    }
    consumer.assign(&assignment)?;
    Ok(consumer)
}

/// The partition count of `topic`, waiting (bounded) for it to appear.
pub fn partitions(consumer: &BaseConsumer, topic: &str) -> Result<i32> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(md) = consumer.fetch_metadata(Some(topic), Duration::from_secs(5))
            && let Some(t) = md.topics().iter().find(|t| t.name() == topic)
            && t.error().is_none()
            && !t.partitions().is_empty()
        {
            return Ok(t.partitions().len() as i32);
        }
        if Instant::now() > deadline {
            bail!("topic {topic} has no partitions after 30s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// What a scenario must have written before it counts as done.
#[derive(Debug, Clone)]
pub enum Expect {
    /// `count` records on `topic`.
    Records {
        /// The output topic.
        topic: String,
        /// Records expected.
        count: u64,
    },
    /// A windowed count table whose latest counts (one per windowed key) sum to `total`:
    /// true whether the aggregate emits every update or only some.
    CountsSumTo {
        /// The table's topic.
        topic: String,
        /// The value column holding the count.
        column: &'static str,
        /// Sum of the final counts: the input events.
        total: u64,
    },
}

impl Expect {
    fn topic(&self) -> &str {
        match self {
            Expect::Records { topic, .. } | Expect::CountsSumTo { topic, .. } => topic,
        }
    }
}

/// Progress of one [`Expect`].
#[derive(Default)]
struct Progress {
    records: u64,
    latest: HashMap<Vec<u8>, u64>,
    sum: u64,
}

#[derive(Deserialize)]
struct Count {
    #[serde(rename = "REVIEW_COUNT")]
    review_count: u64,
}

/// When outputs became readable.
pub struct Outputs {
    /// When the first output record was read.
    pub first: Option<Instant>,
    /// When the last expectation came true.
    pub done: Instant,
    /// What each expectation saw: records, or for [`Expect::CountsSumTo`] the sum of the
    /// latest counts.
    pub seen: Vec<u64>,
}

/// Consumes the expected topics from their beginning until every expectation holds.
pub fn await_outputs(bootstrap: &str, expects: &[Expect], timeout: Duration) -> Result<Outputs> {
    let topics: Vec<&str> = expects.iter().map(Expect::topic).collect();
    let consumer = reader(bootstrap, &topics, 10)?;
    let mut progress: Vec<Progress> = expects.iter().map(|_| Progress::default()).collect();
    let deadline = Instant::now() + timeout;
    let mut first = None;
    let done = |progress: &[Progress]| {
        expects.iter().zip(progress).all(|(e, p)| match e {
            Expect::Records { count, .. } => p.records >= *count,
            Expect::CountsSumTo { total, .. } => p.sum == *total,
        })
    };
    while !done(&progress) {
        if Instant::now() > deadline {
            let seen: Vec<u64> = progress.iter().map(|p| p.records).collect();
            bail!("timed out after {timeout:?} waiting for {expects:?}; records seen: {seen:?}");
        }
        let Some(message) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let message = message?;
        first.get_or_insert_with(Instant::now);
        for (e, p) in expects.iter().zip(progress.iter_mut()) {
            if e.topic() != message.topic() {
                continue;
            }
            p.records += 1;
            if let Expect::CountsSumTo { column, .. } = e {
                let (Some(key), Some(value)) = (message.key(), message.payload()) else {
                    continue;
                };
                let count = serde_json::from_slice::<Count>(value)
                    .map(|c| c.review_count)
                    .with_context(|| format!("reading {column} of {}", message.topic()))?;
                let old = match p.latest.get_mut(key) {
                    Some(c) => std::mem::replace(c, count),
                    None => {
                        p.latest.insert(key.to_vec(), count);
                        0
                    }
                };
                p.sum = (p.sum + count).saturating_sub(old);
            }
        }
    }
    let done = Instant::now();
    let seen = expects
        .iter()
        .zip(&progress)
        .map(|(e, p)| match e {
            Expect::Records { .. } => p.records,
            Expect::CountsSumTo { .. } => p.sum,
        })
        .collect();
    Ok(Outputs { first, done, seen })
}

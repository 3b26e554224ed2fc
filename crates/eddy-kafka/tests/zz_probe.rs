//! Temporary probe.
use eddy_kafka::{DevBroker, KafkaConfig, KafkaTopics};
use eddy_topic::{Payloads, Position, RawBatch, StartFrom, TopicIo};
use std::time::{Duration, Instant};

#[test]
fn probe() -> anyhow::Result<()> {
    let broker = DevBroker::start(1)?;
    let topics = KafkaTopics::connect(
        KafkaConfig::new(broker.bootstrap_servers()),
        Some(broker.handle()),
    )?;
    topics.admin().create_topic("t", 3, 1)?;
    let t = Instant::now();
    let mut sink = topics.sink("t")?;
    let mut k = Payloads::new();
    k.push(Some(b"a"));
    let mut v = Payloads::new();
    v.push(Some(b"b"));
    sink.send(&k, &v, &[1])?;
    sink.flush(Duration::from_secs(30))?;
    eprintln!("produced {:?}", t.elapsed());
    let mut source = topics.source("t", "g", StartFrom::Earliest)?;
    let mut batch = RawBatch::default();
    while batch.is_empty() {
        source.poll(&mut batch, 10, Duration::from_millis(200))?;
    }
    eprintln!("consumed {:?}", t.elapsed());
    source.commit(&[Position {
        partition: batch.partitions[0],
        next_offset: 0,
    }])?;
    eprintln!("committed {:?}", t.elapsed());
    drop(source);
    eprintln!("dropped {:?}", t.elapsed());
    let mut source = topics.source("t", "g", StartFrom::Earliest)?;
    let mut batch = RawBatch::default();
    while batch.is_empty() {
        source.poll(&mut batch, 10, Duration::from_millis(200))?;
    }
    eprintln!("consumed again {:?}", t.elapsed());
    Ok(())
}

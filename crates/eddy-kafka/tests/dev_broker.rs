//! Sources, sinks and admin against the embedded dev broker, over the real Kafka protocol.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use eddy_kafka::{DevBroker, KafkaConfig, KafkaTopics};
use eddy_topic::{
    Payloads, Position, RawBatch, RecordSource, StartFrom, TopicError, TopicIo, partition_for_key,
};

const DEADLINE: Duration = Duration::from_secs(60);
const FLUSH_TIMEOUT: Duration = Duration::from_secs(30);

/// Client settings for `broker`: the smallest session timeout Kafka allows, because the
/// mock cluster delays a rebalance after a member left (or lost its session) by the
/// group's session timeout.
fn config(broker: &DevBroker) -> KafkaConfig {
    let mut config = KafkaConfig::new(broker.bootstrap_servers());
    config
        .client_properties
        .push(("session.timeout.ms".into(), "6000".into()));
    config
}

/// Kafka topics on `broker`, administered through its in-process handle.
fn embedded(broker: &DevBroker) -> anyhow::Result<KafkaTopics> {
    Ok(KafkaTopics::connect(config(broker), Some(broker.handle()))?)
}

/// Kafka topics on `broker` as another process sees it (`eddy dev-kafka`): no handle.
fn remote(broker: &DevBroker) -> anyhow::Result<KafkaTopics> {
    Ok(KafkaTopics::connect(config(broker), None)?)
}

/// Polls until `batch` holds at least `want` records; fails when the deadline passes.
fn poll_until(
    source: &mut dyn RecordSource,
    batch: &mut RawBatch,
    want: usize,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + DEADLINE;
    while batch.len() < want {
        ensure!(
            Instant::now() < deadline,
            "only {} of {want} records arrived within {DEADLINE:?}",
            batch.len()
        );
        source.poll(batch, 500, Duration::from_millis(200))?;
    }
    Ok(())
}

fn keyed_records(n: usize) -> (Payloads, Payloads, Vec<i64>) {
    let mut keys = Payloads::new();
    let mut values = Payloads::new();
    let mut timestamps = Vec::with_capacity(n);
    for i in 0..n {
        keys.push(Some(format!("key-{i}").as_bytes()));
        values.push(Some(format!("{{\"n\":{i}}}").as_bytes()));
        timestamps.push(1_700_000_000_000 + i as i64);
    }
    (keys, values, timestamps)
}

#[test]
fn keyed_records_round_trip_and_consumers_resume_after_commits() -> anyhow::Result<()> {
    let broker = DevBroker::start(1)?;
    let topics = embedded(&broker)?;
    topics.admin().create_topic("orders", 3, 1)?;
    assert_eq!(topics.admin().partition_count("orders")?, Some(3));

    let (keys, values, timestamps) = keyed_records(1_000);
    let mut sink = topics.sink("orders")?;
    sink.send(&keys, &values, &timestamps)?;
    sink.flush(FLUSH_TIMEOUT)?;

    let mut source = topics.source("orders", "resume-group", StartFrom::Earliest)?;
    let mut batch = RawBatch::default();
    poll_until(source.as_mut(), &mut batch, 1_000)?;
    assert_eq!(batch.len(), 1_000, "no record arrives twice");

    let mut next_offset_by_partition: BTreeMap<i32, i64> = BTreeMap::new();
    let mut seen = HashMap::new();
    for i in 0..batch.len() {
        let key = batch.keys.get(i).context("every record is keyed")?;
        let n: usize = std::str::from_utf8(key)?
            .strip_prefix("key-")
            .context("key format")?
            .parse()?;
        assert_eq!(batch.values.get(i), values.get(n), "value of record {n}");
        assert_eq!(
            batch.timestamps[i], timestamps[n],
            "timestamp of record {n}"
        );
        assert_eq!(
            batch.partitions[i],
            partition_for_key(key, 3),
            "record {n} is partitioned like Kafka's Java client would"
        );
        let expected = next_offset_by_partition
            .entry(batch.partitions[i])
            .or_insert(0);
        assert_eq!(
            batch.offsets[i], *expected,
            "offsets of a partition are consecutive"
        );
        *expected += 1;
        assert!(
            seen.insert(n, (batch.partitions[i], batch.offsets[i]))
                .is_none()
        );
    }
    assert_eq!(
        next_offset_by_partition.len(),
        3,
        "keys spread over all partitions"
    );

    // Commit half of each partition, then a new member of the group must resume there.
    let positions: Vec<Position> = next_offset_by_partition
        .iter()
        .map(|(&partition, &end)| Position {
            partition,
            next_offset: end / 2,
        })
        .collect();
    source.commit(&positions)?;
    drop(source);

    let expected: usize = next_offset_by_partition
        .values()
        .map(|&end| (end - end / 2) as usize)
        .sum();
    let mut source = topics.source("orders", "resume-group", StartFrom::Earliest)?;
    let mut resumed = RawBatch::default();
    poll_until(source.as_mut(), &mut resumed, expected)?;
    // Anything beyond `expected` would be a record from before the committed positions.
    source.poll(&mut resumed, 500, Duration::from_millis(500))?;
    assert_eq!(resumed.len(), expected);
    for i in 0..resumed.len() {
        let half = positions
            .iter()
            .find(|p| p.partition == resumed.partitions[i])
            .context("partition was committed")?
            .next_offset;
        assert!(
            resumed.offsets[i] >= half,
            "partition {} resumed at {} before the committed {half}",
            resumed.partitions[i],
            resumed.offsets[i]
        );
    }
    Ok(())
}

#[test]
fn null_keys_and_tombstones_survive_the_round_trip() -> anyhow::Result<()> {
    let broker = DevBroker::start(1)?;
    let topics = embedded(&broker)?;
    topics.admin().create_topic("nulls", 2, 1)?;
    let mut keys = Payloads::new();
    let mut values = Payloads::new();
    keys.push(None);
    values.push(Some(b"unkeyed"));
    keys.push(Some(b"k"));
    values.push(None);
    let mut sink = topics.sink("nulls")?;
    sink.send(&keys, &values, &[5, 7])?;
    sink.flush(FLUSH_TIMEOUT)?;

    let mut source = topics.source("nulls", "nulls-group", StartFrom::Earliest)?;
    let mut batch = RawBatch::default();
    poll_until(source.as_mut(), &mut batch, 2)?;
    let mut records: Vec<_> = (0..2)
        .map(|i| (batch.keys.get(i), batch.values.get(i)))
        .collect();
    records.sort();
    assert_eq!(
        records,
        vec![(None, Some(&b"unkeyed"[..])), (Some(&b"k"[..]), None)]
    );
    let unkeyed = (0..2)
        .find(|&i| batch.keys.get(i).is_none())
        .context("unkeyed")?;
    assert_eq!(batch.timestamps[unkeyed], 5);
    Ok(())
}

#[test]
fn admin_reports_missing_and_created_topics() -> anyhow::Result<()> {
    let broker = DevBroker::start(1)?;
    let topics = embedded(&broker)?;
    let admin = topics.admin();
    assert_eq!(admin.partition_count("missing")?, None);
    admin.create_topic("listed", 5, 1)?;
    admin.create_topic("listed", 5, 1)?; // exists already: fine
    let listed = admin.list_topics()?;
    let info = listed
        .iter()
        .find(|t| t.name == "listed")
        .context("created topic is listed")?;
    assert_eq!(info.partitions, 5);
    assert!(
        listed.iter().all(|t| t.name != "missing"),
        "asking about a missing topic must not create it: {listed:?}"
    );
    match admin.delete_topic("listed") {
        Err(TopicError::Refused {
            broker, operation, ..
        }) => {
            assert!(
                broker.starts_with("the embedded dev broker at "),
                "{broker}"
            );
            assert!(operation.contains("DeleteTopics"), "{operation}");
        }
        other => anyhow::bail!("the mock cluster has no DeleteTopics, got {other:?}"),
    }
    Ok(())
}

#[test]
fn a_good_client_property_works_and_a_bad_one_is_refused_by_name() -> anyhow::Result<()> {
    let broker = DevBroker::start(1)?;
    let mut good = config(&broker);
    good.client_properties
        .push(("fetch.wait.max.ms".into(), "5".into()));
    let topics = KafkaTopics::connect(good, Some(broker.handle()))?;
    topics.admin().create_topic("low_latency", 1, 1)?;
    let (keys, values, times) = keyed_records(10);
    let mut sink = topics.sink("low_latency")?;
    sink.send(&keys, &values, &times)?;
    sink.flush(FLUSH_TIMEOUT)?;
    let mut source = topics.reader("low_latency")?;
    let mut batch = RawBatch::default();
    poll_until(source.as_mut(), &mut batch, 10)?;

    for (key, value) in [("no.such.property", "1"), ("fetch.wait.max.ms", "soon")] {
        let mut bad = config(&broker);
        bad.client_properties.push((key.into(), value.into()));
        match KafkaTopics::connect(bad, None) {
            Ok(_) => anyhow::bail!("{key}={value} was accepted"),
            Err(e) => assert!(e.to_string().contains(key), "{e}"),
        }
    }
    Ok(())
}

#[test]
fn a_broker_without_create_topics_in_another_process_auto_creates() -> anyhow::Result<()> {
    let broker = DevBroker::start(1)?;
    let topics = remote(&broker)?;
    let admin = topics.admin();
    assert_eq!(admin.partition_count("remote")?, None);
    admin.create_topic("remote", 4, 1)?;
    assert_eq!(admin.partition_count("remote")?, Some(4));
    // The mock cluster's fixed default wins over the requested count (logged as a warning).
    admin.create_topic("remote-3", 3, 1)?;
    assert_eq!(admin.partition_count("remote-3")?, Some(4));
    Ok(())
}

#[test]
fn an_outage_is_waited_out() -> anyhow::Result<()> {
    let broker = DevBroker::start(1)?;
    let topics = embedded(&broker)?;
    topics.admin().create_topic("outage", 1, 1)?;
    let mut source = topics.source("outage", "outage-group", StartFrom::Earliest)?;
    let mut sink = topics.sink("outage")?;
    let mut batch = RawBatch::default();
    source.poll(&mut batch, 10, Duration::from_millis(100))?;

    broker.handle().set_reachable(false)?;
    let (keys, values, timestamps) = keyed_records(10);
    sink.send(&keys, &values, &timestamps)?;
    match sink.flush(Duration::from_secs(2)) {
        Err(err) => assert!(err.is_transient(), "{err}"),
        Ok(()) => anyhow::bail!("flush succeeded while the broker was down"),
    }
    for _ in 0..5 {
        assert_eq!(source.poll(&mut batch, 10, Duration::from_millis(200))?, 0);
    }

    broker.handle().set_reachable(true)?;
    sink.flush(FLUSH_TIMEOUT)?;
    poll_until(source.as_mut(), &mut batch, 10)?;
    assert_eq!(batch.len(), 10);
    Ok(())
}

#[test]
fn a_record_the_broker_rejects_fails_the_flush_that_waits_for_it() -> anyhow::Result<()> {
    let broker = DevBroker::start(1)?;
    let topics = embedded(&broker)?;
    topics.admin().create_topic("rejected", 1, 1)?;
    let mut sink = topics.sink("rejected")?;
    // Delivered records are not reported back one by one; a failed one must still be.
    let (keys, values, timestamps) = keyed_records(10);
    sink.send(&keys, &values, &timestamps)?;
    sink.flush(FLUSH_TIMEOUT)?;

    broker.handle().reject_produce_requests(1)?;
    sink.send(&keys, &values, &timestamps)?;
    match sink.flush(FLUSH_TIMEOUT) {
        Err(err) => {
            assert!(!err.is_transient(), "{err}");
            assert!(err.to_string().contains("not delivered"), "{err}");
        }
        Ok(()) => anyhow::bail!("flush succeeded though the broker rejected the records"),
    }
    // The failure is reported once; later records go through.
    sink.send(&keys, &values, &timestamps)?;
    sink.flush(FLUSH_TIMEOUT)?;
    Ok(())
}

//! An aggregation whose writes the broker rejects retries them without counting its input
//! twice, and loses neither outputs nor changelog records: through the in-process dev
//! broker, which can reject produce requests.
#![allow(clippy::unwrap_used)] // test helpers: a failure here is a test failure

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::util::display::array_value_to_string;
use eddy_engine::{Engine, EngineConfig, Properties, RunMode};
use eddy_kafka::{DevBroker, KafkaConfig, KafkaTopics};
use eddy_sql::ast::Statement;
use eddy_state::MemoryBackend;
use eddy_topic::{Payloads, TopicIo};

const PIPELINE: &str = "
    CREATE STREAM reviews (id INT KEY, userid INT) WITH (KAFKA_TOPIC='reviews', VALUE_FORMAT='JSON', PARTITIONS=1);
    CREATE TABLE per_user AS SELECT userid, COUNT(*) AS n FROM reviews GROUP BY userid;
";

/// An engine on `topics` that runs its queries only when told to, with fresh state.
fn engine(topics: &Arc<KafkaTopics>) -> Engine {
    let mut config = EngineConfig::new("rejected_");
    config.mode = RunMode::Synchronous;
    Engine::new(config, topics.clone(), Arc::new(MemoryBackend::new())).unwrap()
}

fn deploy(engine: &Engine) {
    let mut props = Properties::new();
    props.insert("auto.offset.reset".into(), "earliest".into());
    for stmt in eddy_sql::parse(PIPELINE).unwrap() {
        engine.execute(&stmt, &props).unwrap();
    }
}

/// The count of user 1 by pull query, if it has one.
fn count(engine: &Engine) -> Option<String> {
    let stmt = eddy_sql::parse("SELECT n FROM per_user WHERE userid = 1;")
        .unwrap()
        .remove(0);
    let Statement::Query(q) = &stmt.statement else {
        unreachable!()
    };
    let result = engine.pull(q, &Properties::new()).ok()?;
    (result.rows.num_rows() == 1).then(|| array_value_to_string(result.rows.column(0), 0).unwrap())
}

/// Runs the engine's queries until user 1's count is `expected`; returns how many runs
/// failed on the way.
fn run_until_count(engine: &Engine, expected: &str) -> usize {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut failures = 0;
    loop {
        if engine.run_until_idle().is_err() {
            failures += 1;
        }
        let now = count(engine);
        if now.as_deref() == Some(expected) {
            return failures;
        }
        assert!(
            Instant::now() < deadline,
            "user 1's count is {now:?}, expected {expected}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs the engine's queries until a run succeeds (the batch in hand is delivered and
/// committed); returns user 1's count then.
fn settle(engine: &Engine) -> Option<String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while engine.run_until_idle().is_err() {
        assert!(Instant::now() < deadline, "the queries keep failing");
        std::thread::sleep(Duration::from_millis(20));
    }
    count(engine)
}

/// Produces `n` reviews by user 1.
fn reviews(topics: &KafkaTopics, n: usize) {
    let mut sink = topics.sink("reviews").unwrap();
    let (mut keys, mut values) = (Payloads::new(), Payloads::new());
    for i in 0..n {
        keys.push(Some(&(i as i32).to_be_bytes()));
        values.push(Some(br#"{"userid": 1}"#));
    }
    sink.send(&keys, &values, &vec![1_000; n]).unwrap();
    sink.flush(Duration::from_secs(10)).unwrap();
}

#[test]
fn rejected_writes_are_retried_without_counting_twice() {
    let broker = DevBroker::start(1).unwrap();
    let topics = Arc::new(
        KafkaTopics::connect(
            KafkaConfig::new(broker.bootstrap_servers()),
            Some(broker.handle()),
        )
        .unwrap(),
    );
    let first = engine(&topics);
    deploy(&first);
    reviews(&topics, 10);
    assert_eq!(run_until_count(&first, "10"), 0);

    // The next batch's output and changelog writes are rejected, once each.
    reviews(&topics, 5);
    broker.handle().reject_produce_requests(2).unwrap();
    let failures = run_until_count(&first, "15");
    assert!(failures > 0, "no write was rejected");
    // The retries delivered the batch without processing it again.
    assert_eq!(settle(&first).as_deref(), Some("15"));

    // Nothing was lost from the changelog: fresh state rebuilt from it has the count.
    drop(first);
    let second = engine(&topics);
    deploy(&second);
    assert_eq!(run_until_count(&second, "15"), 0);
    reviews(&topics, 1);
    run_until_count(&second, "16");
}

//! `SHOW TOPICS EXTENDED` counts the consumers and consumer groups reading each topic, from
//! the broker's groups (over in-memory topics: a group that committed offsets of a topic is
//! one member reading it).
#![allow(clippy::unwrap_used)] // test helpers: a failure here is a test failure

use std::sync::Arc;

use eddy_engine::memory::MemoryTopics;
use eddy_engine::{Engine, EngineConfig, Properties, RunMode, StatementResult};
use eddy_state::MemoryBackend;

#[test]
fn show_topics_extended_counts_the_groups_reading_each_topic() {
    let mut config = EngineConfig::new("show_topics_");
    config.mode = RunMode::Synchronous;
    let engine = Engine::new(
        config,
        Arc::new(MemoryTopics::default()),
        Arc::new(MemoryBackend::new()),
    )
    .unwrap();
    let mut props = Properties::new();
    props.insert("auto.offset.reset".into(), "earliest".into());
    let sql = "CREATE STREAM s (id INT KEY, v INT) WITH (KAFKA_TOPIC='s', VALUE_FORMAT='JSON', PARTITIONS=1);
               CREATE STREAM copy1 AS SELECT * FROM s;
               CREATE STREAM copy2 AS SELECT * FROM s;
               INSERT INTO s (id, v) VALUES (1, 10);";
    for stmt in eddy_sql::parse(sql).unwrap() {
        engine.execute(&stmt, &props).unwrap();
    }
    engine.run_until_idle().unwrap();

    let show = eddy_sql::parse("SHOW TOPICS EXTENDED;").unwrap().remove(0);
    let StatementResult::TopicsExtended(topics) = engine.execute(&show, &props).unwrap() else {
        panic!("SHOW TOPICS EXTENDED answered something else");
    };
    let counts = |name: &str| {
        topics
            .iter()
            .find(|(t, _, _)| t.name == name)
            .map(|(_, consumers, groups)| (*consumers, *groups))
    };
    assert_eq!(counts("s"), Some((2, 2)), "two queries read s: {topics:?}");
    assert_eq!(counts("COPY1"), Some((0, 0)), "{topics:?}");

    let plain = eddy_sql::parse("SHOW TOPICS;").unwrap().remove(0);
    assert!(matches!(
        engine.execute(&plain, &props).unwrap(),
        StatementResult::Topics(_)
    ));
}

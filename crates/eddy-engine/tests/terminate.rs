//! A terminated query leaves nothing behind, as in ksqlDB: its internal topics
//! (changelogs, repartition) and its local stores go; its sink stays.
#![allow(clippy::unwrap_used)] // test helpers: a failure here is a test failure

use std::sync::Arc;

use eddy_engine::memory::MemoryTopics;
use eddy_engine::{Engine, EngineConfig, Properties, RunMode};
use eddy_state::{MemoryBackend, StateBackend};
use eddy_topic::TopicIo;

fn run(engine: &Engine, sql: &str) {
    let mut props = Properties::new();
    props.insert("auto.offset.reset".into(), "earliest".into());
    for stmt in eddy_sql::parse(sql).unwrap() {
        engine.execute(&stmt, &props).unwrap();
    }
}

fn topics_named(topics: &MemoryTopics, part: &str) -> Vec<String> {
    let mut names: Vec<String> = topics
        .admin()
        .list_topics()
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .filter(|n| n.contains(part))
        .collect();
    names.sort();
    names
}

#[test]
fn terminating_a_query_deletes_its_internal_topics_and_stores() {
    let topics = MemoryTopics::new();
    let state = Arc::new(MemoryBackend::new());
    let mut config = EngineConfig::new("t_");
    config.mode = RunMode::Synchronous;
    let engine = Engine::new(config, Arc::new(topics.clone()), state.clone()).unwrap();
    run(
        &engine,
        "CREATE STREAM clicks (id INT KEY, page VARCHAR)
           WITH (KAFKA_TOPIC='clicks', VALUE_FORMAT='JSON', PARTITIONS=2);
         CREATE TABLE per_page AS SELECT page, COUNT(*) AS n FROM clicks GROUP BY page;
         CREATE TABLE per_id AS SELECT id, COUNT(*) AS n FROM clicks GROUP BY id;
         INSERT INTO clicks (id, page) VALUES (1, '/a');",
    );
    engine.run_until_idle().unwrap();
    let per_page = "query_CTAS_PER_PAGE_1-";
    assert_eq!(
        topics_named(&topics, per_page),
        vec![
            "_eddy_t_query_CTAS_PER_PAGE_1-Aggregate-GroupBy-repartition",
            "_eddy_t_query_CTAS_PER_PAGE_1-Aggregate-changelog",
        ]
    );
    assert!(
        state
            .store_names()
            .unwrap()
            .contains(&"aggregate_CTAS_PER_PAGE_1".to_string())
    );

    run(&engine, "TERMINATE CTAS_PER_PAGE_1;");
    assert_eq!(topics_named(&topics, per_page), Vec::<String>::new());
    let stores = state.store_names().unwrap();
    assert!(!stores.iter().any(|s| s.contains("PER_PAGE")), "{stores:?}");
    // The sink stays, and so does the other query's state.
    assert_eq!(topics_named(&topics, "PER_PAGE"), vec!["PER_PAGE"]);
    assert_eq!(
        topics_named(&topics, "query_CTAS_PER_ID_2-"),
        vec!["_eddy_t_query_CTAS_PER_ID_2-Aggregate-changelog"]
    );
    assert!(stores.contains(&"aggregate_CTAS_PER_ID_2".to_string()));
}

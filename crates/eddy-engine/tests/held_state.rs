//! An aggregation holds its groups in memory and persists them to its store at every
//! changelog sync and when it stops; after a crash, the store replays only the part of the
//! changelog it had not persisted.
#![allow(clippy::unwrap_used)] // test helpers: a failure here is a test failure

use std::sync::Arc;

use arrow::util::display::array_value_to_string;
use eddy_engine::memory::MemoryTopics;
use eddy_engine::{Engine, EngineConfig, Properties, RunMode};
use eddy_sql::ast::Statement;
use eddy_state::{MemoryBackend, StateBackend};

const STORE: &str = "aggregate_CTAS_PER_USER_1";

/// A fresh engine on `topics` and `state` (a restart keeps both), with the counting query.
fn start(topics: &MemoryTopics, state: &Arc<MemoryBackend>) -> Engine {
    let mut config = EngineConfig::new("held_");
    config.mode = RunMode::Synchronous;
    let engine = Engine::new(config, Arc::new(topics.clone()), state.clone()).unwrap();
    run(
        &engine,
        "CREATE STREAM reviews (id INT KEY, userid INT)
           WITH (KAFKA_TOPIC='reviews', VALUE_FORMAT='JSON', PARTITIONS=1);
         CREATE TABLE per_user AS SELECT userid, COUNT(*) AS n FROM reviews GROUP BY userid;",
    );
    engine
}

fn run(engine: &Engine, sql: &str) {
    let mut props = Properties::new();
    props.insert("auto.offset.reset".into(), "earliest".into());
    for stmt in eddy_sql::parse(sql).unwrap() {
        engine.execute(&stmt, &props).unwrap();
    }
}

/// Inserts `n` reviews by `user` and processes them.
fn review(engine: &Engine, user: i32, n: usize) {
    for _ in 0..n {
        run(
            engine,
            &format!("INSERT INTO reviews (id, userid) VALUES (0, {user});"),
        );
    }
    engine.run_until_idle().unwrap();
}

/// The count of `user` by pull query.
fn count(engine: &Engine, user: i32) -> Option<String> {
    let stmt = eddy_sql::parse(&format!("SELECT n FROM per_user WHERE userid = {user};"))
        .unwrap()
        .remove(0);
    let Statement::Query(q) = &stmt.statement else {
        unreachable!()
    };
    let result = engine.pull(q, &Properties::new()).unwrap();
    (result.rows.num_rows() == 1).then(|| array_value_to_string(result.rows.column(0), 0).unwrap())
}

fn stored_entries(state: &MemoryBackend) -> usize {
    let store = state.open_store(STORE).unwrap();
    let mut n = 0;
    store
        .scan(&mut |_, _| {
            n += 1;
            true
        })
        .unwrap();
    n
}

#[test]
fn stopping_a_query_persists_the_groups_it_holds_in_memory() {
    let topics = MemoryTopics::new();
    let state = Arc::new(MemoryBackend::new());
    let engine = start(&topics, &state);
    review(&engine, 1, 3);
    review(&engine, 2, 2);
    assert_eq!(count(&engine, 1).as_deref(), Some("3"));
    assert_eq!(stored_entries(&state), 0, "the groups are held in memory");
    engine.shutdown();
    assert_eq!(stored_entries(&state), 2, "stopping persisted both groups");
}

#[test]
fn after_a_crash_the_store_replays_only_what_it_had_not_persisted() {
    let topics = MemoryTopics::new();
    let state = Arc::new(MemoryBackend::new());
    let first = start(&topics, &state);
    review(&first, 1, 3);
    first.shutdown();

    // Two more reviews, then the process dies: they are in the changelog only.
    let second = start(&topics, &state);
    review(&second, 1, 2);
    assert_eq!(count(&second, 1).as_deref(), Some("5"));
    drop(second);

    // An entry only the local store has: a rebuild from the changelog's start would drop it,
    // a replay from where the store had got to leaves it.
    let store = state.open_store(STORE).unwrap();
    let (mut keys, mut values) = (eddy_topic::Payloads::new(), eddy_topic::Payloads::new());
    keys.push(Some(b"\x00marker"));
    values.push(Some(b"kept"));
    store.write(&keys, &values).unwrap();

    let third = start(&topics, &state);
    review(&third, 1, 1);
    assert_eq!(
        count(&third, 1).as_deref(),
        Some("6"),
        "5 before the crash, then 1"
    );
    // (A rebuild would also have dropped and recreated the store: open it again.)
    let store = state.open_store(STORE).unwrap();
    assert_eq!(
        store.get(b"\x00marker").unwrap().as_deref(),
        Some(&b"kept"[..]),
        "the store was not rebuilt from the start of its changelog"
    );
}

//! Pull queries against tables materialised by persistent queries, with in-memory topics.
#![allow(clippy::unwrap_used)] // test helpers: a failure here is a test failure

use std::sync::Arc;

use arrow::util::display::array_value_to_string;
use eddy_engine::memory::MemoryTopics;
use eddy_engine::{Engine, EngineConfig, Properties, RunMode};
use eddy_sql::ast::Statement;
use eddy_state::MemoryBackend;

fn engine() -> Engine {
    let mut config = EngineConfig::new("pull_test_");
    config.mode = RunMode::Synchronous;
    Engine::new(
        config,
        Arc::new(MemoryTopics::default()),
        Arc::new(MemoryBackend::new()),
    )
    .unwrap()
}

fn run(engine: &Engine, sql: &str) {
    let props = Properties::new();
    for stmt in eddy_sql::parse(sql).unwrap() {
        engine.execute(&stmt, &props).unwrap();
    }
    engine.run_until_idle().unwrap();
}

/// The rows of a pull query, each as `col=value` pairs.
fn pull(engine: &Engine, sql: &str) -> Result<Vec<String>, String> {
    let stmt = eddy_sql::parse(sql).unwrap().remove(0);
    let Statement::Query(q) = &stmt.statement else {
        panic!("not a query: {sql}");
    };
    let result = engine
        .pull(q, &Properties::new())
        .map_err(|e| e.to_string())?;
    let mut rows = Vec::new();
    for r in 0..result.rows.num_rows() {
        let cells: Vec<String> = result
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let v = array_value_to_string(result.rows.column(i), r).unwrap();
                format!("{}={v}", c.name)
            })
            .collect();
        rows.push(cells.join(","));
    }
    rows.sort();
    Ok(rows)
}

const PIPELINE: &str = "
    CREATE STREAM reviews (id INT KEY, userid INT, rating INT) WITH (KAFKA_TOPIC='reviews', VALUE_FORMAT='JSON', PARTITIONS=1);
    CREATE TABLE ratings AS SELECT userid, COUNT(*) AS n, AVG(rating) AS mean FROM reviews GROUP BY userid;
    CREATE TABLE per_minute AS SELECT userid, COUNT(*) AS n FROM reviews WINDOW TUMBLING (SIZE 1 MINUTE) GROUP BY userid;
    INSERT INTO reviews (id, userid, rating, ROWTIME) VALUES (1, 7, 4, 1000);
    INSERT INTO reviews (id, userid, rating, ROWTIME) VALUES (2, 7, 2, 2000);
    INSERT INTO reviews (id, userid, rating, ROWTIME) VALUES (3, 8, 5, 61000);
    INSERT INTO reviews (id, userid, rating, ROWTIME) VALUES (4, 7, 5, 62000);
";

#[test]
fn pull_by_key_reads_the_current_aggregate() {
    let e = engine();
    run(&e, PIPELINE);
    assert_eq!(
        pull(&e, "SELECT * FROM ratings WHERE userid = 7;").unwrap(),
        ["USERID=7,N=3,MEAN=3.6666666666666665"]
    );
    assert_eq!(
        pull(&e, "SELECT userid, n FROM ratings WHERE userid IN (8, 9);").unwrap(),
        ["USERID=8,N=1"]
    );
    assert_eq!(
        pull(&e, "SELECT userid, n FROM ratings WHERE n > 1;").unwrap(),
        ["USERID=7,N=3"]
    );
}

#[test]
fn pull_by_key_reads_every_window_of_a_windowed_table() {
    let e = engine();
    run(&e, PIPELINE);
    assert_eq!(
        pull(
            &e,
            "SELECT userid, WINDOWSTART, n FROM per_minute WHERE userid = 7;"
        )
        .unwrap(),
        [
            "USERID=7,WINDOWSTART=0,N=2",
            "USERID=7,WINDOWSTART=60000,N=1"
        ]
    );
    assert_eq!(
        pull(
            &e,
            "SELECT userid, n FROM per_minute WHERE userid = 7 AND WINDOWSTART >= 60000;"
        )
        .unwrap(),
        ["USERID=7,N=1"]
    );
}

#[test]
fn pull_queries_on_streams_read_the_stream_to_its_end() {
    let e = engine();
    run(&e, PIPELINE);
    assert_eq!(
        pull(&e, "SELECT id, ROWTIME FROM reviews WHERE rating >= 4;").unwrap(),
        [
            "ID=1,ROWTIME=1000",
            "ID=3,ROWTIME=61000",
            "ID=4,ROWTIME=62000"
        ]
    );
    assert_eq!(
        pull(&e, "SELECT id FROM reviews LIMIT 1;").unwrap(),
        ["ID=1"]
    );
    let err = pull(&e, "SELECT * FROM reviews GROUP BY userid;").unwrap_err();
    assert!(
        err.contains("Pull queries don't support GROUP BY clauses"),
        "{err}"
    );
}

#[test]
fn pull_answers_a_table_rows_rowtime() {
    let e = engine();
    run(&e, PIPELINE);
    assert_eq!(
        pull(&e, "SELECT userid, ROWTIME FROM ratings WHERE userid = 8;").unwrap(),
        ["USERID=8,ROWTIME=61000"]
    );
}

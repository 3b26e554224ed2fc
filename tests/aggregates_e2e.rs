//! Stateful queries end to end through Kafka: a windowed count of reviews per user per
//! minute and an average rating per user, read back with pull queries; then the server is
//! killed, its data dir deleted and the server restarted: the pull queries answer the same
//! (state rebuilt from changelogs and output topics), and new input continues the counts.

mod common;

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use common::{Broker, BrokerKind, Server, int_key, produce, producer};
use serde_json::{Value, json};

const PIPELINE: &str = "
    CREATE STREAM reviews (id INT KEY, userid INT, rating INT, text VARCHAR)
      WITH (KAFKA_TOPIC='reviews', VALUE_FORMAT='JSON', PARTITIONS=1);
    CREATE TABLE reviews_per_minute AS
      SELECT userid, COUNT(*) AS reviews FROM reviews
      WINDOW TUMBLING (SIZE 1 MINUTE) GROUP BY userid;
    CREATE TABLE user_ratings AS
      SELECT userid, AVG(rating) AS avg_rating, COUNT(*) AS reviews FROM reviews
      GROUP BY userid;
";

/// The rows of a pull query over `POST /query`, as the `columns` arrays.
async fn pull(server: &Server, sql: &str) -> Result<Vec<Value>> {
    let response = reqwest::Client::new()
        .post(format!("{}/query", server.url))
        .header("Content-Type", "application/vnd.ksql.v1+json")
        .json(&json!({"ksql": sql, "streamsProperties": {}}))
        .send()
        .await?;
    let status = response.status();
    let body: Value = response.json().await?;
    if !status.is_success() {
        bail!("pull query failed with {status}: {body}");
    }
    Ok(body
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i.get("row").map(|r| r["columns"].clone()))
                .collect()
        })
        .unwrap_or_default())
}

/// Repeats `sql` until it answers `expected`, or fails after the deadline with the last
/// answer.
async fn await_pull(server: &Server, sql: &str, expected: &[Value]) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let rows = pull(server, sql).await;
        if let Ok(rows) = &rows
            && rows == expected
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{sql} answered {rows:?}, expected {expected:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn review(bootstrap: &str, id: i32, userid: i32, rating: i32, ts: i64) -> Result<()> {
    let p = producer(bootstrap)?;
    let value = json!({"userid": userid, "rating": rating, "text": format!("review {id}")});
    produce(
        &p,
        "reviews",
        Some(&int_key(id)),
        Some(&value.to_string()),
        ts,
    )
    .await
}

/// Every pull query of the test and its expected rows.
fn expectations(user1_reviews: &[(i64, i64)], avg: f64) -> Vec<(String, Vec<Value>)> {
    let count: i64 = user1_reviews.iter().map(|(_, n)| n).sum();
    vec![
        (
            "SELECT userid, avg_rating, reviews FROM user_ratings WHERE userid = 1;".into(),
            vec![json!([1, avg, count])],
        ),
        (
            "SELECT userid, avg_rating, reviews FROM user_ratings WHERE userid = 2;".into(),
            vec![json!([2, 2.0, 2])],
        ),
        (
            "SELECT userid, WINDOWSTART, reviews FROM reviews_per_minute WHERE userid = 1;".into(),
            user1_reviews
                .iter()
                .map(|(start, n)| json!([1, start, n]))
                .collect(),
        ),
    ]
}

#[tokio::test]
async fn aggregates_survive_a_lost_data_dir() -> Result<()> {
    let broker = Broker::start(BrokerKind::DevKafka)?;
    let data = tempfile::tempdir()?;
    let server = Server::start(&broker.bootstrap, data.path(), "agg_test").await?;
    let (status, body) = server
        .ksql(
            PIPELINE,
            json!({"ksql.streams.auto.offset.reset": "earliest"}),
        )
        .await?;
    assert_eq!(status, 200, "{body}");

    for (id, userid, rating, ts) in [
        (1, 1, 4, 1_000),
        (2, 1, 2, 30_000),
        (3, 2, 1, 5_000),
        (4, 1, 5, 61_000),
        (5, 2, 3, 70_000),
    ] {
        review(&broker.bootstrap, id, userid, rating, ts).await?;
    }
    let before = expectations(&[(0, 2), (60_000, 1)], 11.0 / 3.0);
    for (sql, rows) in &before {
        await_pull(&server, sql, rows).await?;
    }

    // Lose the process and its data dir; the broker keeps the topics.
    let mut server = server;
    server.proc.kill9();
    std::fs::remove_dir_all(data.path())?;
    std::fs::create_dir_all(data.path())?;
    let server = Server::start(&broker.bootstrap, data.path(), "agg_test").await?;
    for (sql, rows) in &before {
        await_pull(&server, sql, rows).await?;
    }

    // New input continues from the rebuilt state, not from zero.
    review(&broker.bootstrap, 6, 1, 1, 62_000).await?;
    for (sql, rows) in &expectations(&[(0, 2), (60_000, 2)], 3.0) {
        await_pull(&server, sql, rows).await?;
    }
    Ok(())
}

//! The kill test: while records flow through `reviews_clean`, the server is killed with
//! SIGKILL and restarted against the same broker (`eddy dev-kafka` keeps running). The
//! restarted server replays its command log, its queries resume from their committed
//! offsets, and every input has its output: at-least-once, so duplicates are allowed (and
//! counted), none may be missing.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Result;
use common::{Broker, BrokerKind, Server, int_key, produce, producer, read_topic};
use serde_json::{Value, json};

const REVIEWS: i32 = 400;

fn query_ids(shown: &Value) -> Vec<String> {
    let mut ids: Vec<String> = shown[0]["queries"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|q| q["id"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}

#[tokio::test]
async fn sigkill_loses_nothing() -> Result<()> {
    let broker = Broker::start(BrokerKind::DevKafka)?;
    let data = tempfile::tempdir()?;
    let mut server = Server::start(&broker.bootstrap, data.path(), "kill_test").await?;
    let script = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/sql-examples/reviews.sql"
    ))?;
    server.ksql_ok(&script).await?;
    let before = query_ids(&server.ksql_ok("SHOW QUERIES;").await?);
    assert_eq!(
        before,
        vec![
            "CSAS_ENRICHED_REVIEWS_2",
            "CSAS_REVIEWS_CLEAN_1",
            "CSAS_UNHAPPY_VIPS_3"
        ]
    );

    // Records keep flowing while the server dies and comes back.
    let bootstrap = broker.bootstrap.clone();
    let feeder = tokio::spawn(async move {
        let p = producer(&bootstrap)?;
        for id in 0..REVIEWS {
            let value =
                json!({"userid": id % 4 + 1, "rating": id % 5 + 1, "text": format!("review {id}")});
            produce(
                &p,
                "reviews",
                Some(&int_key(id)),
                Some(&value.to_string()),
                10_000 + i64::from(id),
            )
            .await?;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        anyhow::Ok(())
    });

    // Kill once the query has visibly processed some, but not all, of the records.
    let bootstrap = broker.bootstrap.clone();
    let seen = tokio::task::spawn_blocking(move || {
        read_topic(
            &bootstrap,
            "REVIEWS_CLEAN",
            Duration::from_secs(60),
            Duration::ZERO,
            |r| r.len() >= 50,
        )
    })
    .await??;
    assert!(
        seen.len() >= 50,
        "reviews_clean did not start: {}",
        seen.len()
    );
    server.proc.kill9();
    println!("killed the server after seeing {} outputs", seen.len());
    let server = Server::start(&broker.bootstrap, data.path(), "kill_test").await?;
    let after = query_ids(&server.ksql_ok("SHOW QUERIES;").await?);
    assert_eq!(after, before, "SHOW QUERIES after the restart");
    feeder.await??;

    let bootstrap = broker.bootstrap.clone();
    let out = tokio::task::spawn_blocking(move || {
        read_topic(
            &bootstrap,
            "REVIEWS_CLEAN",
            Duration::from_secs(120),
            Duration::from_secs(2),
            |r| {
                let mut keys: Vec<&Option<Vec<u8>>> = r.iter().map(|x| &x.key).collect();
                keys.sort();
                keys.dedup();
                keys.len() >= REVIEWS as usize
            },
        )
    })
    .await??;
    let mut counts: BTreeMap<i32, usize> = BTreeMap::new();
    for r in &out {
        let id = r
            .key
            .as_deref()
            .and_then(|k| <[u8; 4]>::try_from(k).ok())
            .map(i32::from_be_bytes)
            .unwrap_or(-1);
        *counts.entry(id).or_default() += 1;
        let expected =
            json!({"USERID": id % 4 + 1, "RATING": id % 5 + 1, "TEXT": format!("review {id}")});
        assert_eq!(r.value.as_ref(), Some(&expected), "output of review {id}");
    }
    let missing: Vec<i32> = (0..REVIEWS).filter(|i| !counts.contains_key(i)).collect();
    let duplicates: usize = counts.values().map(|c| c - 1).sum();
    println!(
        "{} inputs, {} outputs, {} duplicates, {} missing",
        REVIEWS,
        out.len(),
        duplicates,
        missing.len()
    );
    assert!(missing.is_empty(), "inputs without output: {missing:?}");
    assert_eq!(
        counts.len(),
        REVIEWS as usize,
        "unexpected keys: {counts:?}"
    );
    Ok(())
}

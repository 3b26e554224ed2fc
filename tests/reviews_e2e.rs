//! The reviews pipeline end to end: the server binary, `sql-examples/reviews.sql` over
//! `POST /ksql`, records produced and read through the Kafka protocol — against
//! `eddy dev-kafka`, against an independent broker (tansu), and against tansu behind TLS;
//! and a broker that refuses the server's credentials stopping its start.

mod common;

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use common::{
    Broker, BrokerKind, Record, Security, Server, check_with_prometheus_parser, int_key, produce,
    producer, read_topic, sample, samples,
};
use serde_json::{Value, json};

const USERS: &[(i32, &str, &str)] = &[
    (1, "Ada", "Platinum"),
    (2, "Grace", "Platinum"),
    (3, "Linus", "Gold"),
    (4, "Ken", "Gold"),
];

fn user_json(id: i32, name: &str, status: &str) -> String {
    json!({"userid": id, "name": name, "email": format!("{}@example.com", name.to_lowercase()), "status": status})
        .to_string()
}

fn review_json(userid: i32, rating: i32, text: &str) -> String {
    json!({"userid": userid, "rating": rating, "text": text}).to_string()
}

/// Asks the `users` table (by pull query) until users 1 to 4 have the `expected` statuses.
/// The join looks users up in the same materialised table, and waits only a bounded time
/// for it to catch up with a record written before a review: at start, the table's
/// consumer group may take longer than that to join. (Once it runs, a change written
/// before a review is seen by it: phase 2 checks that without waiting.)
async fn await_users(server: &Server, expected: &[(i32, &str)]) -> Result<()> {
    let sql = "SELECT userid, status FROM users WHERE userid IN (1, 2, 3, 4);";
    let expected: Vec<Value> = expected.iter().map(|(id, s)| json!([id, s])).collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let answer = common::pull(server, sql).await.map(|mut rows| {
            rows.sort_by_key(|r| r[0].as_i64());
            rows
        });
        if answer.as_ref().is_ok_and(|rows| *rows == expected) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{sql} answered {answer:?}, expected the rows {expected:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn run_pipeline(broker: Broker) -> Result<()> {
    let data = tempfile::tempdir()?;
    let server = Server::start(&broker.bootstrap, data.path(), "reviews_test").await?;

    let script = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/sql-examples/reviews.sql"
    ))?;
    let body = server.ksql_ok(&script).await?;
    let statuses: Vec<&str> = body
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| e["commandStatus"]["message"].as_str())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        statuses,
        vec![
            "Stream created",
            "Table created",
            "Created query with ID CSAS_REVIEWS_CLEAN_1",
            "Created query with ID CSAS_ENRICHED_REVIEWS_2",
            "Created query with ID CSAS_UNHAPPY_VIPS_3",
        ],
        "{body}"
    );

    let p = producer(&broker.bootstrap)?;
    for (id, name, status) in USERS {
        produce(
            &p,
            "users",
            Some(&int_key(*id)),
            Some(&user_json(*id, name, status)),
            1000,
        )
        .await?;
    }
    await_users(
        &server,
        &[(1, "Platinum"), (2, "Platinum"), (3, "Gold"), (4, "Gold")],
    )
    .await?;
    // Phase 1: reviews while Linus (3) is Gold and Ken (4) exists.
    produce(
        &p,
        "reviews",
        Some(&int_key(100)),
        Some(&review_json(1, 5, "Lovely")),
        2000,
    )
    .await?;
    produce(
        &p,
        "reviews",
        Some(&int_key(101)),
        Some(&review_json(2, 1, "Broken on arrival")),
        2001,
    )
    .await?;
    produce(
        &p,
        "reviews",
        Some(&int_key(102)),
        Some(&review_json(3, 2, "Meh")),
        2002,
    )
    .await?;
    produce(&p, "reviews", None, Some(&review_json(1, 1, "no id")), 2003).await?;
    produce(
        &p,
        "reviews",
        Some(&int_key(105)),
        Some(r#"{"userid": 1, "rating": "#),
        2004,
    )
    .await?;
    produce(
        &p,
        "reviews",
        Some(&int_key(103)),
        Some(&review_json(4, 4, "Fine")),
        2005,
    )
    .await?;
    produce(
        &p,
        "reviews",
        Some(&int_key(104)),
        Some(&review_json(99, 1, "Unknown user")),
        2006,
    )
    .await?;

    // Wait until phase 1 is joined, so the status change below comes after it.
    let bootstrap = broker.bootstrap.clone();
    let phase1 = tokio::task::spawn_blocking(move || {
        read_topic(
            &bootstrap,
            "ENRICHED_REVIEWS",
            Duration::from_secs(60),
            Duration::ZERO,
            |r| r.len() >= 4,
        )
    })
    .await??;
    assert_eq!(phase1.len(), 4, "phase 1 enriched reviews: {phase1:?}");

    // Linus becomes Platinum; Ken is deleted.
    produce(
        &p,
        "users",
        Some(&int_key(3)),
        Some(&user_json(3, "Linus", "Platinum")),
        3000,
    )
    .await?;
    produce(&p, "users", Some(&int_key(4)), None, 3000).await?;
    // Phase 2.
    produce(
        &p,
        "reviews",
        Some(&int_key(106)),
        Some(&review_json(3, 1, "Worse now")),
        4000,
    )
    .await?;
    produce(
        &p,
        "reviews",
        Some(&int_key(107)),
        Some(&review_json(4, 1, "Gone")),
        4001,
    )
    .await?;

    let read = |topic: &'static str, n: usize| {
        let bootstrap = broker.bootstrap.clone();
        tokio::task::spawn_blocking(move || {
            read_topic(
                &bootstrap,
                topic,
                Duration::from_secs(60),
                Duration::from_secs(2),
                move |r| r.len() >= n,
            )
        })
    };
    // Kafka orders records per partition only, and a broker may give a topic several
    // partitions; the expected records are listed in timestamp order.
    let by_time = |mut r: Vec<Record>| {
        r.sort_by_key(|r| (r.timestamp, r.key.clone()));
        r
    };
    let clean = by_time(read("REVIEWS_CLEAN", 7).await??);
    let enriched = by_time(read("ENRICHED_REVIEWS", 5).await??);
    let unhappy = by_time(read("UNHAPPY_VIPS", 2).await??);

    let rec = |key: i32, value: Value, ts: i64| Record {
        key: Some(int_key(key)),
        value: Some(value),
        timestamp: ts,
    };
    let clean_value = |u: i32, r: i32, t: &str| json!({"USERID": u, "RATING": r, "TEXT": t});
    assert_eq!(
        clean,
        vec![
            rec(100, clean_value(1, 5, "Lovely"), 2000),
            rec(101, clean_value(2, 1, "Broken on arrival"), 2001),
            rec(102, clean_value(3, 2, "Meh"), 2002),
            rec(103, clean_value(4, 4, "Fine"), 2005),
            rec(104, clean_value(99, 1, "Unknown user"), 2006),
            rec(106, clean_value(3, 1, "Worse now"), 4000),
            rec(107, clean_value(4, 1, "Gone"), 4001),
        ]
    );
    let enriched_value = |id: i32, r: i32, t: &str, name: &str, status: &str| json!({"ID": id, "RATING": r, "TEXT": t, "NAME": name, "STATUS": status});
    assert_eq!(
        enriched,
        vec![
            rec(1, enriched_value(100, 5, "Lovely", "Ada", "Platinum"), 2000),
            rec(
                2,
                enriched_value(101, 1, "Broken on arrival", "Grace", "Platinum"),
                2001
            ),
            rec(3, enriched_value(102, 2, "Meh", "Linus", "Gold"), 2002),
            rec(4, enriched_value(103, 4, "Fine", "Ken", "Gold"), 2005),
            rec(
                3,
                enriched_value(106, 1, "Worse now", "Linus", "Platinum"),
                4000
            ),
        ]
    );
    assert_eq!(
        unhappy,
        vec![
            rec(
                2,
                enriched_value(101, 1, "Broken on arrival", "Grace", "Platinum"),
                2001
            ),
            rec(
                3,
                enriched_value(106, 1, "Worse now", "Linus", "Platinum"),
                4000
            ),
        ]
    );

    // The malformed record is in the processing log, with where it came from and why.
    let bootstrap = broker.bootstrap.clone();
    let log = tokio::task::spawn_blocking(move || {
        read_topic(
            &bootstrap,
            "reviews_testksql_processing_log",
            Duration::from_secs(30),
            Duration::from_secs(1),
            |r| !r.is_empty(),
        )
    })
    .await??;
    assert_eq!(log.len(), 1, "processing log: {log:?}");
    let entry = log[0].value.clone().unwrap_or_default();
    assert_eq!(entry["QUERY_ID"], "CSAS_REVIEWS_CLEAN_1");
    assert_eq!(entry["TOPIC"], "reviews");
    // Where the malformed record landed depends on the topic's partition count.
    let offset_ok = match broker.kind {
        BrokerKind::Tansu => entry["PARTITION"] == 0 && entry["OFFSET"] == 4,
        BrokerKind::DevKafka => entry["PARTITION"].is_i64() && entry["OFFSET"].is_i64(),
    };
    assert!(offset_ok, "{entry}");
    assert_eq!(entry["TYPE"], "DESERIALIZATION_ERROR");
    assert!(
        entry["MESSAGE"]
            .as_str()
            .unwrap_or("")
            .contains("Failed to deserialize value"),
        "{entry}"
    );
    assert_eq!(entry["RECORD"], r#"{"userid": 1, "rating": "#);

    // SHOW STREAMS lists the processing log next to the pipeline.
    let shown = server.ksql_ok("SHOW STREAMS;").await?;
    let names: Vec<&str> = shown[0]["streams"]
        .as_array()
        .map(|a| a.iter().filter_map(|s| s["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        names,
        vec![
            "EDDY_PROCESSING_LOG",
            "ENRICHED_REVIEWS",
            "REVIEWS",
            "REVIEWS_CLEAN",
            "UNHAPPY_VIPS"
        ]
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reviews_pipeline_on_dev_broker() -> Result<()> {
    run_pipeline(Broker::start(BrokerKind::DevKafka)?).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reviews_pipeline_on_independent_broker() -> Result<()> {
    run_pipeline(Broker::start(BrokerKind::Tansu)?).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reviews_pipeline_over_tls() -> Result<()> {
    run_pipeline(Broker::start_secured(Security::Ssl)?).await
}

/// Starts `eddy server` against `broker` with `properties` and waits (bounded) for it to
/// exit by itself; returns whether it succeeded and what it wrote to stderr.
fn server_exit(broker: &Broker, properties: &[String]) -> anyhow::Result<(bool, String)> {
    let data = tempfile::tempdir()?;
    let mut child = std::process::Command::new(common::eddy_bin())
        .args(["server", "--bootstrap-servers", &broker.bootstrap])
        .args(["--listen", &format!("127.0.0.1:{}", common::free_port())])
        .args(["--data-dir", &data.path().display().to_string()])
        .args(
            properties
                .iter()
                .flat_map(|p| ["--kafka-property", p.as_str()]),
        )
        .env("RUST_LOG", "warn,librdkafka=off,rdkafka=off")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let mut stderr = String::new();
            if let Some(mut pipe) = child.stderr.take() {
                std::io::Read::read_to_string(&mut pipe, &mut stderr)?;
            }
            bail!("the server kept waiting for a broker that refuses it: {stderr}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        std::io::Read::read_to_string(&mut pipe, &mut stderr)?;
    }
    Ok((status.success(), stderr))
}

#[test]
#[ignore = "flaky: under load the server sometimes never sees the refusal and waits (2 of 5 \
            soak runs); run with --ignored while fixing it (issue 19)"]
fn a_broker_that_refuses_the_server_stops_its_start() -> Result<()> {
    // Wrong credentials: no retry can help, unlike an outage.
    let broker = Broker::start_secured(Security::SaslSslUnknownUser)?;
    let properties: Vec<String> = common::client_properties(&broker.bootstrap)
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let (ok, stderr) = server_exit(&broker, &properties)?;
    assert!(!ok, "{stderr}");
    let says = format!(
        "Kafka at {} refused Eddy's connection (security.protocol=SASL_SSL, \
         sasl.mechanism=SCRAM-SHA-512, sasl.username={})",
        broker.bootstrap,
        common::SASL_USER.0
    );
    assert!(stderr.contains(&says), "{stderr}");
    assert!(stderr.contains("SASL"), "{stderr}");
    assert!(
        !stderr.contains(common::SASL_USER.1),
        "the password was shown: {stderr}"
    );

    // TLS to a broker whose certificate the server cannot verify (no CA given).
    let broker = Broker::start_secured(Security::Ssl)?;
    let (ok, stderr) = server_exit(&broker, &["security.protocol=SSL".to_string()])?;
    assert!(!ok, "{stderr}");
    let says = format!(
        "Kafka at {} refused Eddy's connection (security.protocol=SSL)",
        broker.bootstrap
    );
    assert!(stderr.contains(&says), "{stderr}");
    assert!(stderr.contains("SSL"), "{stderr}");
    Ok(())
}

/// Scrapes `/metrics` until `done` holds for the text, or fails after a minute with it.
async fn await_metrics(server: &Server, done: impl Fn(&str) -> bool) -> Result<String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = reqwest::get(format!("{}/metrics", server.url))
            .await?
            .text()
            .await?;
        if done(&text) {
            return Ok(text);
        }
        if Instant::now() > deadline {
            bail!("the metrics never showed what was awaited:\n{text}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `/metrics` while the reviews pipeline runs, read by Prometheus' own parser: the
/// counters rise with the input, every query's lag is 0 once its input is consumed, and the
/// malformed review is counted as a processing error of the query that read it.
#[tokio::test]
async fn metrics_while_the_reviews_pipeline_runs() -> Result<()> {
    let broker = Broker::start(BrokerKind::DevKafka)?;
    let data = tempfile::tempdir()?;
    let server = Server::start(&broker.bootstrap, data.path(), "reviews_metrics").await?;
    let script = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/sql-examples/reviews.sql"
    ))?;
    server.ksql_ok(&script).await?;
    let p = producer(&broker.bootstrap)?;
    for (id, name, status) in USERS {
        let user = user_json(*id, name, status);
        produce(&p, "users", Some(&int_key(*id)), Some(&user), 1000).await?;
    }
    await_users(
        &server,
        &[(1, "Platinum"), (2, "Platinum"), (3, "Gold"), (4, "Gold")],
    )
    .await?;

    let clean = "{query_id=\"CSAS_REVIEWS_CLEAN_1\"}";
    let enriched = "{query_id=\"CSAS_ENRICHED_REVIEWS_2\"}";
    let metric = |name: &str, labels: &str| format!("eddy_query_{name}{labels}");
    let all_caught_up = |text: &str| {
        let lags = samples(text, "eddy_query_consumer_lag");
        lags.len() >= 3 && lags.iter().all(|(_, lag)| *lag == 0.0)
    };
    let mut id = 1000;
    let mut review = async |rating: i32| -> Result<()> {
        id += 1;
        let value = review_json(1 + id % 4, rating, "r");
        produce(&p, "reviews", Some(&int_key(id)), Some(&value), 2000).await
    };
    // Round 1: 40 reviews and one the query cannot read.
    for n in 0..40 {
        review(1 + n % 5).await?;
    }
    produce(
        &p,
        "reviews",
        Some(&int_key(1)),
        Some("{\"userid\": "),
        2000,
    )
    .await?;
    let first = await_metrics(&server, |text| {
        sample(text, &metric("records_read_total", clean)) == Some(41.0)
            && sample(text, &metric("records_read_total", enriched)) == Some(40.0)
            && all_caught_up(text)
    })
    .await?;
    assert_eq!(
        sample(&first, &metric("records_written_total", clean)),
        Some(40.0),
        "{first}"
    );
    assert_eq!(
        sample(&first, &metric("processing_errors_total", clean)),
        Some(1.0),
        "{first}"
    );
    assert_eq!(
        sample(&first, &metric("processing_errors_total", enriched)),
        Some(0.0),
        "{first}"
    );
    // Round 2: the counters rise with 25 more reviews; the lag is 0 again once they are
    // consumed, and the error count stays.
    for n in 0..25 {
        review(1 + n % 5).await?;
    }
    let second = await_metrics(&server, |text| {
        sample(text, &metric("records_read_total", enriched)) == Some(65.0) && all_caught_up(text)
    })
    .await?;
    assert_eq!(
        sample(&second, &metric("records_written_total", clean)),
        Some(65.0),
        "{second}"
    );
    let bytes = |text: &str| sample(text, &metric("read_bytes_total", clean)).unwrap_or(0.0);
    assert!(bytes(&second) > bytes(&first), "{second}");
    assert_eq!(
        sample(&second, &metric("processing_errors_total", clean)),
        Some(1.0),
        "{second}"
    );
    // Platinum users 1 and 2 wrote the ratings below 3 that unhappy_vips passes on.
    let unhappy = sample(
        &second,
        &metric(
            "records_written_total",
            "{query_id=\"CSAS_UNHAPPY_VIPS_3\"}",
        ),
    );
    assert!(unhappy.is_some_and(|n| n > 0.0 && n < 65.0), "{second}");
    let families = check_with_prometheus_parser(&second)?;
    for family in [
        "eddy_query_records_read counter",
        "eddy_query_processing_errors counter",
        "eddy_query_consumer_lag gauge",
        "eddy_query_end_to_end_latency_seconds histogram",
    ] {
        assert!(families.contains(family), "{family} not in\n{families}");
    }

    // SHOW QUERIES reports each query's state, lag and errors.
    let listed = server.ksql_ok("SHOW QUERIES;").await?;
    let queries = listed[0]["queries"].as_array().cloned().unwrap_or_default();
    assert_eq!(queries.len(), 3, "{listed}");
    for q in &queries {
        assert_eq!(q["state"], "RUNNING", "{q}");
        assert_eq!(q["consumerLag"], json!(0), "{q}");
        let errors = if q["id"] == "CSAS_REVIEWS_CLEAN_1" {
            1
        } else {
            0
        };
        assert_eq!(q["processingErrors"], json!(errors), "{q}");
    }
    Ok(())
}

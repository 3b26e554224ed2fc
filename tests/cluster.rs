//! Servers with the same service id act as one: a statement run on one reaches the others
//! through the command log while they run, with the same query ids, and a statement on any
//! server first catches up with what the others did.

mod common;

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use common::{Broker, BrokerKind, Server};
use serde_json::{Value, json};

/// The tests of this file start up to five servers each: run together on a small machine
/// they starve each other's brokers, so they run one at a time.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The names listed by `SHOW STREAMS` on `server`.
async fn streams(server: &Server) -> Result<Vec<String>> {
    let shown = server.ksql_ok("SHOW STREAMS;").await?;
    Ok(shown[0]["streams"]
        .as_array()
        .map(|s| {
            s.iter()
                .filter_map(|s| s["name"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default())
}

/// The ids of the queries `SHOW QUERIES` lists on `server`.
async fn queries(server: &Server) -> Result<Vec<String>> {
    let shown = server.ksql_ok("SHOW QUERIES;").await?;
    Ok(shown[0]["queries"]
        .as_array()
        .map(|q| {
            q.iter()
                .filter_map(|q| q["id"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default())
}

/// Waits until `server` lists stream `name`.
async fn wait_for_stream(server: &Server, name: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let names = streams(server).await?;
        if names.iter().any(|n| n == name) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{} does not list {name} after 20 s: {names:?}", server.url);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn servers_of_one_service_execute_each_others_statements() -> Result<()> {
    let _alone = ONE_AT_A_TIME.lock().await;
    let broker = Broker::start(BrokerKind::DevKafka)?;
    let (data_a, data_b) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let a = Server::start(&broker.bootstrap, data_a.path(), "cluster_").await?;
    let b = Server::start(&broker.bootstrap, data_b.path(), "cluster_").await?;

    // Run on A while B runs: B follows, with A's query id.
    let created = a
        .ksql_ok(
            "CREATE STREAM clicks (id INT KEY, v INT) \
               WITH (KAFKA_TOPIC='clicks', VALUE_FORMAT='JSON', PARTITIONS=2);
             CREATE STREAM big_clicks AS SELECT * FROM clicks WHERE v > 1;
             CREATE TABLE clicks_per_id AS SELECT id, COUNT(*) AS n FROM clicks GROUP BY id;",
        )
        .await?;
    let sequence = created[1]["commandSequenceNumber"].as_i64().unwrap_or(-1);
    assert!(sequence > 0, "{created}");
    wait_for_stream(&b, "BIG_CLICKS").await?;
    let deadline = Instant::now() + Duration::from_secs(20);
    while queries(&b).await?.len() < 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(queries(&b).await?, queries(&a).await?);
    assert_eq!(queries(&b).await?.len(), 2);
    // B reports the outcome of A's command under ksqlDB's command id.
    let status: Value = reqwest::get(format!("{}/status/stream/BIG_CLICKS/create", b.url))
        .await?
        .json()
        .await?;
    assert_eq!(status["status"], json!("SUCCESS"), "{status}");

    // A statement on B right after one on A sees it, whatever B's follower has done.
    a.ksql_ok("CREATE STREAM from_a AS SELECT id, v FROM big_clicks;")
        .await?;
    b.ksql_ok("CREATE STREAM from_b AS SELECT * FROM from_a;")
        .await?;
    wait_for_stream(&a, "FROM_B").await?;

    // The log serialises conflicting statements: the second CREATE of a name fails.
    let ddl = "CREATE STREAM twice (id INT KEY, v INT) \
               WITH (KAFKA_TOPIC='twice', VALUE_FORMAT='JSON', PARTITIONS=1);";
    a.ksql_ok(ddl).await?;
    let (status, body) = b.ksql(ddl, json!({})).await?;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or("")
            .contains("already exists"),
        "{body}"
    );

    // commandSequenceNumber makes a server catch up before it answers.
    let dropped = a.ksql_ok("DROP STREAM twice;").await?;
    let sequence = dropped[0]["commandSequenceNumber"].as_i64().unwrap_or(-1);
    let (status, body) = b.ksql_with_sequence("SHOW STREAMS;", sequence).await?;
    assert_eq!(status, 200, "{body}");
    assert!(!body.to_string().contains("\"TWICE\""), "{body}");
    let (status, body) = b
        .ksql_with_sequence("SHOW STREAMS;", sequence + 100)
        .await?;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error_code"], json!(50301), "{body}");

    // Both servers run the queries in one consumer group: every input record is output.
    let p = common::producer(&broker.bootstrap)?;
    produce_clicks(&p, "clicks", 0..20, 1_000).await?;
    let records = common::read_topic(
        &broker.bootstrap,
        "BIG_CLICKS",
        Duration::from_secs(60),
        Duration::from_millis(500),
        |r| {
            let mut keys: Vec<&[u8]> = r.iter().filter_map(|r| r.key.as_deref()).collect();
            keys.sort();
            keys.dedup();
            keys.len() >= 20
        },
    )?;
    assert!(records.len() >= 20, "{} records", records.len());

    // A pull query gives the same answer on either server, though each counted only the
    // partitions it was assigned: both read the table's whole topic.
    let pull = |server: &Server| {
        let url = format!("{}/query", server.url);
        async move {
            let r = reqwest::Client::new()
                .post(url)
                .header("Content-Type", "application/vnd.ksql.v1+json")
                .json(&json!({"ksql": "SELECT * FROM clicks_per_id;", "streamsProperties": {}}))
                .send()
                .await?;
            let rows: Value = r.json().await?;
            let mut rows: Vec<Value> = rows
                .as_array()
                .map(|a| a.iter().filter_map(|r| r.get("row").cloned()).collect())
                .unwrap_or_default();
            rows.sort_by_key(|r| r["columns"][0].as_i64());
            Ok::<_, anyhow::Error>(rows)
        }
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (on_a, on_b) = (pull(&a).await?, pull(&b).await?);
        if on_a.len() == 20 && on_a == on_b {
            // At least once: a batch cut off by the group's rebalance may count twice.
            assert!(
                on_a.iter().all(|r| r["columns"][1].as_i64() >= Some(1)),
                "{on_a:?}"
            );
            break;
        }
        if Instant::now() > deadline {
            bail!("the servers' pull answers differ or are short: {on_a:?} / {on_b:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // /clusterStatus on A: both servers alive, and between them the query's input
    // partitions.
    let host = |s: &Server| s.url.trim_start_matches("http://").to_string();
    let query_id = queries(&a).await?.into_iter().next().unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = cluster_status(&a).await?;
        let hosts = &status["clusterStatus"];
        let alive = [host(&a), host(&b)]
            .iter()
            .all(|h| hosts[h]["hostAlive"] == json!(true));
        let partitions: usize = [host(&a), host(&b)]
            .iter()
            .map(|h| {
                hosts[h]["activeStandbyPerQuery"][&query_id]["activePartitions"]
                    .as_array()
                    .map_or(0, Vec::len)
            })
            .sum();
        if alive && partitions > 0 {
            break;
        }
        if Instant::now() > deadline {
            bail!("/clusterStatus never showed both servers and the query: {status}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The aggregation's store lags (`GET /lag`, and in `/clusterStatus`): per partition
    // each server processed, its position and the broker's end, which the broker confirms,
    // falling to 0 once the input is consumed. (A partition that moved between the servers
    // after its last record is reported by neither.)
    let aggregation = queries(&a)
        .await?
        .into_iter()
        .find(|q| q.starts_with("CTAS_CLICKS_PER_ID"))
        .unwrap_or_default();
    let store = format!("#aggregate_{aggregation}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut partitions = Vec::new();
        for server in [&a, &b] {
            partitions.extend(store_lags(server, &store).await?);
        }
        let processed: i64 = partitions.iter().map(|p| p.1).sum();
        let caught_up = partitions.iter().all(|p| p.3 == 0 && p.1 == p.2);
        assert!(processed <= 20, "{partitions:?}");
        if processed > 0 && caught_up {
            for (partition, _, end, _) in &partitions {
                assert_eq!(*end, broker_end(&broker.bootstrap, "clicks", *partition)?);
            }
            break;
        }
        if Instant::now() > deadline {
            bail!("/lag never showed {aggregation}'s stores caught up: {partitions:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let status = cluster_status(&a).await?;
    let shown = status["clusterStatus"][host(&a)]["hostStoreLags"]["stateStoreLags"]
        .as_object()
        .is_some_and(|stores| stores.keys().any(|k| k.ends_with(&store)));
    assert!(shown, "{status}");

    // Paused, the aggregation falls behind new input, and says so.
    a.ksql_ok(&format!("PAUSE {aggregation};")).await?;
    produce_clicks(&p, "clicks", 0..4, 2_000).await?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut partitions = Vec::new();
        for server in [&a, &b] {
            partitions.extend(store_lags(server, &store).await?);
        }
        let behind: i64 = partitions.iter().map(|p| p.3).sum();
        assert!(
            partitions.iter().all(|p| p.3 == p.2 - p.1),
            "{partitions:?}"
        );
        assert!(behind <= 4, "{partitions:?}");
        if behind > 0 {
            break;
        }
        if Instant::now() > deadline {
            bail!("/lag never showed the paused {aggregation} behind: {partitions:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    a.ksql_ok(&format!("RESUME {aggregation};")).await?;
    let r = reqwest::Client::new()
        .post(format!("{}/lag", a.url))
        .json(&json!({"hostInfo": {"host": "other", "port": 8088}, "lastLagUpdateMs": 1}))
        .send()
        .await?;
    assert!(r.status().is_success(), "POST /lag answered {}", r.status());

    // SHOW QUERIES counts the servers running each query (B resumes through the log).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let shown = a.ksql_ok("SHOW QUERIES;").await?;
        let counts: Vec<&Value> = shown[0]["queries"]
            .as_array()
            .map(|q| q.iter().map(|q| &q["statusCount"]).collect())
            .unwrap_or_default();
        if !counts.is_empty() && counts.iter().all(|c| **c == json!({"RUNNING": 2})) {
            break;
        }
        if Instant::now() > deadline {
            bail!("SHOW QUERIES never counted both servers running: {shown}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // B goes: A reports it dead once its announcements stop.
    let b_host = host(&b);
    let mut b = b;
    b.proc.kill9();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = cluster_status(&a).await?;
        let hosts = &status["clusterStatus"];
        if hosts[&b_host]["hostAlive"] == json!(false)
            && hosts[host(&a)]["hostAlive"] == json!(true)
        {
            assert!(
                hosts[&b_host]["lastStatusUpdateMs"].as_i64().unwrap_or(0) > 0,
                "{status}"
            );
            break;
        }
        if Instant::now() > deadline {
            bail!("/clusterStatus still shows {b_host} alive: {status}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(())
}

/// Produces a click `{"V": 5}` to `topic` for each of `ids`, at `timestamp`.
async fn produce_clicks(
    p: &rdkafka::producer::FutureProducer,
    topic: &str,
    ids: impl IntoIterator<Item = i32>,
    timestamp: i64,
) -> Result<()> {
    let value = json!({"V": 5}).to_string();
    for id in ids {
        common::produce(
            p,
            topic,
            Some(&common::int_key(id)),
            Some(&value),
            timestamp,
        )
        .await?;
    }
    Ok(())
}

/// `GET /lag` on `server`: (partition, current offset, end offset, lag) of the store whose
/// name ends with `store`.
async fn store_lags(server: &Server, store: &str) -> Result<Vec<(i32, i64, i64, i64)>> {
    let r = reqwest::get(format!("{}/lag", server.url)).await?;
    if !r.status().is_success() {
        bail!("/lag answered {}", r.status());
    }
    let report: Value = r.json().await?;
    assert!(
        report["hostInfo"]["port"].as_u64().is_some_and(|p| p > 0),
        "{report}"
    );
    let stores = report["hostStoreLags"]["stateStoreLags"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let mut out = Vec::new();
    for (_, lags) in stores.iter().filter(|(name, _)| name.ends_with(store)) {
        let by_partition = lags["lagByPartition"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        assert_eq!(lags["size"], json!(by_partition.len()), "{report}");
        for (partition, p) in by_partition {
            let number = |k: &str| p[k].as_i64().unwrap_or(-1);
            out.push((
                partition.parse().unwrap_or(-1),
                number("currentOffsetPosition"),
                number("endOffsetPosition"),
                number("offsetLag"),
            ));
        }
    }
    Ok(out)
}

/// The broker's end offset of a partition.
fn broker_end(bootstrap: &str, topic: &str, partition: i32) -> Result<i64> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer = common::client_config(bootstrap).create()?;
    let (_, high) = consumer.fetch_watermarks(topic, partition, Duration::from_secs(10))?;
    Ok(high)
}

async fn cluster_status(server: &Server) -> Result<Value> {
    let r = reqwest::get(format!("{}/clusterStatus", server.url)).await?;
    if !r.status().is_success() {
        bail!("/clusterStatus answered {}", r.status());
    }
    Ok(r.json().await?)
}

/// The partitions of a query each live server processes, by server.
type Owners = std::collections::BTreeMap<String, Vec<i64>>;

/// The partitions of `query` that `/clusterStatus` (asked of `server`) shows each host
/// processing.
async fn active_partitions(server: &Server, query: &str) -> Result<Owners> {
    let status = cluster_status(server).await?;
    let mut out = Owners::new();
    for (host, entry) in status["clusterStatus"]
        .as_object()
        .cloned()
        .unwrap_or_default()
    {
        if entry["hostAlive"] != json!(true) {
            continue;
        }
        let partitions: Vec<i64> = entry["activeStandbyPerQuery"][query]["activePartitions"]
            .as_array()
            .map(|ps| ps.iter().filter_map(|p| p["partition"].as_i64()).collect())
            .unwrap_or_default();
        out.insert(host, partitions);
    }
    Ok(out)
}

/// The count a pull query by key on `server` answers for click id `id` (None: no row).
async fn count_of(server: &Server, id: i32) -> Result<Option<i64>> {
    let rows = common::pull(
        server,
        &format!("SELECT n FROM trio_per_id WHERE id = {id};"),
    )
    .await?;
    Ok(rows.first().and_then(|r| r[0].as_i64()))
}

/// Waits until the servers of `servers` all answer the same count for each of `ids`, one
/// that `wanted` takes.
async fn await_counts(
    servers: &[&Server],
    ids: &[i32],
    wanted: impl Fn(i64) -> bool,
) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut answers = Vec::new();
        for &id in ids {
            let mut counts = Vec::new();
            for server in servers {
                counts.push(count_of(server, id).await?);
            }
            answers.push((id, counts));
        }
        let settled = answers.iter().all(|(_, counts)| {
            counts.windows(2).all(|w| w[0] == w[1]) && counts[0].is_some_and(&wanted)
        });
        if settled {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("pull queries answered {answers:?} (id, per server)");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn three_servers_share_the_partitions_and_survive_a_kill() -> Result<()> {
    let _alone = ONE_AT_A_TIME.lock().await;
    let broker = Broker::start(BrokerKind::DevKafka)?;
    let dirs = [
        tempfile::tempdir()?,
        tempfile::tempdir()?,
        tempfile::tempdir()?,
    ];
    let s1 = Server::start(&broker.bootstrap, dirs[0].path(), "trio_").await?;
    let s2 = Server::start(&broker.bootstrap, dirs[1].path(), "trio_").await?;
    let mut s3 = Server::start(&broker.bootstrap, dirs[2].path(), "trio_").await?;
    let host = |s: &Server| s.url.trim_start_matches("http://").to_string();

    // A CSAS and a CTAS created on server 1 run on 2 and 3 within 2 s, without a restart.
    s1.ksql_ok(
        "CREATE STREAM trio_clicks (id INT KEY, v INT) \
           WITH (KAFKA_TOPIC='trio_clicks', VALUE_FORMAT='JSON', PARTITIONS=4); \
         SET 'auto.offset.reset' = 'earliest'; \
         CREATE STREAM trio_big AS SELECT * FROM trio_clicks WHERE v > 1; \
         CREATE TABLE trio_per_id AS SELECT id, COUNT(*) AS n FROM trio_clicks GROUP BY id;",
    )
    .await?;
    let created = Instant::now();
    let ids_on_1 = queries(&s1).await?;
    assert_eq!(ids_on_1.len(), 2, "{ids_on_1:?}");
    for server in [&s2, &s3] {
        loop {
            let shown = server.ksql_ok("SHOW QUERIES;").await?;
            let running: Vec<String> = shown[0]["queries"]
                .as_array()
                .map(|q| {
                    q.iter()
                        .filter(|q| q["state"] == json!("RUNNING"))
                        .filter_map(|q| q["id"].as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            if running == ids_on_1 {
                break;
            }
            if created.elapsed() > Duration::from_secs(2) {
                bail!("{} runs {running:?} 2 s after the statements", server.url);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    println!(
        "servers 2 and 3 ran the new queries {:.2} s after server 1 answered",
        created.elapsed().as_secs_f64()
    );
    let ctas = ids_on_1
        .iter()
        .find(|q| q.starts_with("CTAS_TRIO_PER_ID"))
        .cloned()
        .unwrap_or_default();

    // The input's partitions are spread over all three servers. A server shows the
    // partitions it processed since the group last moved them, so clicks of ids that are
    // not counted below go in until all three show some (the group has settled).
    let p = common::producer(&broker.bootstrap)?;
    let mut filler = 1_000;
    let mut produce_filler = async |until: &dyn Fn(&Owners) -> bool| -> Result<Owners> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let owners = active_partitions(&s1, &ctas).await?;
            if until(&owners) {
                return Ok(owners);
            }
            if Instant::now() > deadline {
                bail!("{ctas}'s partitions never spread as expected: {owners:?}");
            }
            produce_clicks(&p, "trio_clicks", filler..filler + 8, 1_000).await?;
            filler += 8;
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    };
    let owners =
        produce_filler(&|owners| owners.len() == 3 && owners.values().all(|ps| !ps.is_empty()))
            .await?;
    let ids: Vec<i32> = (0..40).collect();
    produce_clicks(&p, "trio_clicks", ids.iter().copied(), 1_000).await?;
    let all = [&s1, &s2, &s3];
    await_counts(&all, &ids, |n| n == 1).await?;
    // Every server answers a pull by key with the same current value, for keys of the
    // partitions each one owns.
    let partitions = broker_partitions(&broker.bootstrap, "trio_clicks")?;
    for (owner, owned) in &owners {
        let key = ids
            .iter()
            .copied()
            .find(|id| {
                let p = eddy_topic::partition_for_key(&common::int_key(*id), partitions);
                owned.contains(&i64::from(p))
            })
            .unwrap_or(-1);
        for server in all {
            assert_eq!(
                count_of(server, key).await?,
                Some(1),
                "key {key} of {owner}"
            );
        }
    }
    for server in all {
        let alive = active_partitions(server, &ctas).await?;
        assert_eq!(alive.len(), 3, "{} sees {alive:?}", server.url);
    }

    // Server 3 dies: the others report it dead within 10 s, its partitions move to them,
    // and pull queries still answer, for its keys too: every click counted, at least
    // once (a batch cut off by the group's rebalance may count again).
    let dead = host(&s3);
    s3.proc.kill9();
    let killed = Instant::now();
    for server in [&s1, &s2] {
        loop {
            let status = cluster_status(server).await?;
            if status["clusterStatus"][&dead]["hostAlive"] == json!(false) {
                break;
            }
            if killed.elapsed() > Duration::from_secs(10) {
                bail!(
                    "{} still reports {dead} alive 10 s after it died",
                    server.url
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    println!(
        "servers 1 and 2 reported server 3 dead {:.1} s after it was killed",
        killed.elapsed().as_secs_f64()
    );
    produce_clicks(&p, "trio_clicks", ids.iter().copied(), 2_000).await?;
    await_counts(&[&s1, &s2], &ids, |n| n >= 2).await?;
    let owners = produce_filler(&|owners| {
        let covered: std::collections::BTreeSet<i64> = owners.values().flatten().copied().collect();
        covered.len() == partitions as usize
    })
    .await?;
    assert!(!owners.contains_key(&dead), "{owners:?}");
    println!("after the kill the survivors process all partitions: {owners:?}");
    Ok(())
}

/// The number of partitions of `topic` on the broker.
fn broker_partitions(bootstrap: &str, topic: &str) -> Result<i32> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer = common::client_config(bootstrap).create()?;
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    Ok(metadata
        .topics()
        .first()
        .map_or(0, |t| t.partitions().len() as i32))
}

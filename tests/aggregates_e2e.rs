//! Stateful queries end to end through Kafka: a windowed count of reviews per user per
//! minute and an average rating per user, read back with pull queries; then the server is
//! killed, its data dir deleted and the server restarted: the pull queries answer the same
//! (state rebuilt from changelogs and output topics), and new input continues the counts.

mod common;

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use common::{Broker, BrokerKind, Server, int_key, produce, producer};
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
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

/// Repeats `sql` until it answers `expected`, for up to 90 s.
async fn await_pull(server: &Server, sql: &str, expected: &[Value]) -> Result<()> {
    common::await_pull(server, sql, expected, Duration::from_secs(90)).await
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

/// A server on `broker` with `statements` deployed, reading their inputs from the start.
async fn deployed(
    broker: &Broker,
    data: &std::path::Path,
    service_id: &str,
    statements: &str,
) -> Result<Server> {
    let server = Server::start(&broker.bootstrap, data, service_id).await?;
    let (status, body) = server
        .ksql(
            statements,
            json!({"ksql.streams.auto.offset.reset": "earliest"}),
        )
        .await?;
    if status != 200 {
        bail!("deploying failed with {status}: {body}");
    }
    Ok(server)
}

#[tokio::test]
async fn aggregates_survive_a_lost_data_dir() -> Result<()> {
    let broker = Broker::start(BrokerKind::DevKafka)?;
    let data = tempfile::tempdir()?;
    let server = deployed(&broker, data.path(), "agg_test", PIPELINE).await?;

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

/// The dev broker keeps the last 5 MB of a partition, as a broker with size-based retention
/// would: a changelog that outgrew it has lost its first records, and a store rebuilt from
/// it must read what is left (offsets starting past 0) rather than wait for records that
/// are gone.
#[tokio::test]
async fn state_is_rebuilt_from_a_changelog_whose_start_the_broker_dropped() -> Result<()> {
    let broker = Broker::start(BrokerKind::DevKafka)?;
    let data = tempfile::tempdir()?;
    let server = deployed(
        &broker,
        data.path(),
        "trim_test",
        "CREATE STREAM notes (id INT KEY, userid INT, text VARCHAR)
           WITH (KAFKA_TOPIC='notes', VALUE_FORMAT='JSON', PARTITIONS=1);
         CREATE TABLE user_notes AS
           SELECT userid, COUNT(*) AS notes, COLLECT_LIST(text) AS texts FROM notes
           GROUP BY userid;",
    )
    .await?;

    // Each change of the group writes its whole list: 40 notes of 10 kB make about 8 MB
    // of changelog.
    let p = producer(&broker.bootstrap)?;
    let note = |id: i32| {
        let text = format!("{id:05}").repeat(2_000);
        json!({"userid": 1, "text": text}).to_string()
    };
    let pull_sql = "SELECT userid, notes FROM user_notes WHERE userid = 1;";
    for id in 1..=40 {
        produce(&p, "notes", Some(&int_key(id)), Some(&note(id)), 1_000).await?;
        // One change per note, so that every change is a record of its own.
        await_pull(&server, pull_sql, &[json!([1, id])]).await?;
    }

    let watermarks: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &broker.bootstrap)
        .create()?;
    let metadata = watermarks.fetch_metadata(None, Duration::from_secs(10))?;
    let changelog = metadata
        .topics()
        .iter()
        .find(|t| t.name().ends_with("-Aggregate-changelog"))
        .context("no changelog topic")?;
    // (The dev broker in its own process makes every topic with 4 partitions.) A pull query
    // answers from the store, which has a change before its changelog record is delivered:
    // wait until the broker has had all 40.
    let deadline = Instant::now() + Duration::from_secs(30);
    let (dropped, kept) = loop {
        let (mut dropped, mut kept) = (0, 0);
        for partition in changelog.partitions() {
            let (low, high) = watermarks.fetch_watermarks(
                changelog.name(),
                partition.id(),
                Duration::from_secs(10),
            )?;
            dropped += low;
            kept += high - low;
        }
        if (dropped > 0 && dropped + kept == 40) || Instant::now() > deadline {
            break (dropped, kept);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        dropped > 0 && dropped + kept == 40,
        "the broker was expected to have dropped the changelog's first records: \
         {dropped} dropped, {kept} kept"
    );

    let mut server = server;
    server.proc.kill9();
    std::fs::remove_dir_all(data.path())?;
    std::fs::create_dir_all(data.path())?;
    let server = Server::start(&broker.bootstrap, data.path(), "trim_test").await?;
    await_pull(&server, pull_sql, &[json!([1, 40])]).await?;
    produce(&p, "notes", Some(&int_key(41)), Some(&note(41)), 2_000).await?;
    await_pull(&server, pull_sql, &[json!([1, 41])]).await?;
    Ok(())
}

/// On a broker that takes topic configs (tansu here), a changelog is a compacted topic, as
/// ksqlDB's are, so the broker keeps every group's latest state however old; and its
/// records are keyed by group, which compaction needs.
#[tokio::test]
async fn changelogs_are_compacted_topics_of_keyed_records() -> Result<()> {
    let broker = Broker::start(BrokerKind::Tansu)?;
    let data = tempfile::tempdir()?;
    let server = deployed(&broker, data.path(), "compact_test", PIPELINE).await?;
    review(&broker.bootstrap, 1, 7, 4, 1_000).await?;
    await_pull(
        &server,
        "SELECT userid, reviews FROM user_ratings WHERE userid = 7;",
        &[json!([7, 1])],
    )
    .await?;

    let client: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &broker.bootstrap)
        .create()?;
    let metadata = client.fetch_metadata(None, Duration::from_secs(10))?;
    let changelogs: Vec<String> = metadata
        .topics()
        .iter()
        .map(|t| t.name().to_string())
        .filter(|t| t.ends_with("-Aggregate-changelog"))
        .collect();
    assert_eq!(
        changelogs.len(),
        2,
        "one changelog per aggregation: {changelogs:?}"
    );
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &broker.bootstrap)
        .create()?;
    for changelog in &changelogs {
        let described = admin
            .describe_configs([&ResourceSpecifier::Topic(changelog)], &AdminOptions::new())
            .await?;
        let policy = described
            .into_iter()
            .next()
            .context("no answer")?
            .map_err(|e| anyhow::anyhow!("describing {changelog}: {e:?}"))?
            .get("cleanup.policy")
            .and_then(|e| e.value.clone());
        assert_eq!(policy.as_deref(), Some("compact"), "{changelog}");
        let records = common::read_topic(
            &broker.bootstrap,
            changelog,
            Duration::from_secs(60),
            Duration::ZERO,
            |r| !r.is_empty(),
        )?;
        assert!(
            !records.is_empty() && records.iter().all(|r| r.key.is_some()),
            "{changelog}: {records:?}"
        );
    }
    Ok(())
}

/// The committed offsets of consumer group `group` on `topic`, summed over its partitions.
fn committed(bootstrap: &str, group: &str, topic: &str) -> Result<i64> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .create()?;
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let mut partitions = rdkafka::TopicPartitionList::new();
    for t in metadata.topics() {
        for p in t.partitions() {
            partitions.add_partition(topic, p.id());
        }
    }
    let offsets = consumer.committed_offsets(partitions, Duration::from_secs(10))?;
    Ok(offsets
        .elements()
        .iter()
        .filter_map(|e| match e.offset() {
            rdkafka::Offset::Offset(o) => Some(o),
            _ => None,
        })
        .sum())
}

/// A stream–stream join keeps each side's records within the window in stores with
/// changelogs: after the data dir is lost, a record arriving on one side still joins the
/// other side's record from before, which the query will not read again.
#[tokio::test]
async fn stream_join_windows_survive_a_lost_data_dir() -> Result<()> {
    const JOIN: &str = "
        CREATE STREAM orders (id INT KEY, item VARCHAR)
          WITH (KAFKA_TOPIC='orders', VALUE_FORMAT='JSON', PARTITIONS=1);
        CREATE STREAM shipments (id INT KEY, carrier VARCHAR)
          WITH (KAFKA_TOPIC='shipments', VALUE_FORMAT='JSON', PARTITIONS=1);
        CREATE STREAM shipped WITH (KAFKA_TOPIC='shipped') AS
          SELECT o.id AS id, o.item AS item, s.carrier AS carrier
          FROM orders o JOIN shipments s WITHIN 1 HOUR ON o.id = s.id;";
    let broker = Broker::start(BrokerKind::DevKafka)?;
    let data = tempfile::tempdir()?;
    let server = deployed(&broker, data.path(), "join_test", JOIN).await?;
    let shown = server.ksql_ok("SHOW QUERIES;").await?;
    let query = shown[0]["queries"][0]["id"]
        .as_str()
        .context("no query")?
        .to_string();

    let p = producer(&broker.bootstrap)?;
    let order = json!({"item": "kettle"}).to_string();
    produce(&p, "orders", Some(&int_key(1)), Some(&order), 1_000).await?;
    let first = json!({"carrier": "post"}).to_string();
    produce(&p, "shipments", Some(&int_key(1)), Some(&first), 2_000).await?;
    let output = |n: usize| {
        common::read_topic(
            &broker.bootstrap,
            "shipped",
            Duration::from_secs(60),
            Duration::from_secs(1),
            move |r| r.len() >= n,
        )
    };
    let joined = output(1)?;
    assert_eq!(joined.len(), 1, "{joined:?}");
    // Both inputs committed: the restarted query will not read them again.
    let group = format!("_eddy_join_test_query_{query}");
    common::wait_for(
        Duration::from_secs(30),
        "the inputs' offsets committed",
        || {
            Ok(committed(&broker.bootstrap, &group, "orders")? > 0
                && committed(&broker.bootstrap, &format!("{group}_right"), "shipments")? > 0)
        },
    )?;

    let mut server = server;
    server.proc.kill9();
    std::fs::remove_dir_all(data.path())?;
    std::fs::create_dir_all(data.path())?;
    let _server = Server::start(&broker.bootstrap, data.path(), "join_test").await?;
    let second = json!({"carrier": "courier"}).to_string();
    produce(&p, "shipments", Some(&int_key(1)), Some(&second), 3_000).await?;
    let joined = output(2)?;
    let values: Vec<&Value> = joined.iter().filter_map(|r| r.value.as_ref()).collect();
    assert_eq!(
        values,
        [
            &json!({"ITEM": "kettle", "CARRIER": "post"}),
            &json!({"ITEM": "kettle", "CARRIER": "courier"})
        ],
        "{joined:?}"
    );
    Ok(())
}

/// Two servers sharing a service id split a query's partitions through the consumer group.
/// When one dies, the other takes its partitions and must continue from the groups' state
/// the dead one wrote to the changelog, not from what it restored when it started: every
/// new count of a group is higher than the one before. (Delivery is at least once: a batch
/// whose commit a rebalance refused is counted again by the partitions' next owner, so
/// counts may exceed the inputs, but never fall back.)
#[tokio::test]
async fn a_server_taking_over_partitions_continues_their_groups() -> Result<()> {
    const CLICKS: &str = "
        CREATE STREAM clicks (userid INT KEY, page VARCHAR)
          WITH (KAFKA_TOPIC='clicks', VALUE_FORMAT='JSON', PARTITIONS=4);
        CREATE TABLE clicks_per_user WITH (KAFKA_TOPIC='clicks_per_user') AS
          SELECT userid, COUNT(*) AS clicks FROM clicks GROUP BY userid;";
    const USERS: i32 = 8;
    let broker = Broker::start(BrokerKind::DevKafka)?;
    let (data_a, data_b) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let mut a = deployed(&broker, data_a.path(), "pair", CLICKS).await?;
    let shown = a.ksql_ok("SHOW QUERIES;").await?;
    let group = format!(
        "_eddy_pair_query_{}",
        shown[0]["queries"][0]["id"].as_str().context("no query")?
    );
    let p = producer(&broker.bootstrap)?;
    let click = json!({"page": "/"}).to_string();
    let mut produced = 0;
    let mut round = async |n: i64| -> Result<Vec<common::Record>> {
        for user in 1..=USERS {
            produce(&p, "clicks", Some(&int_key(user)), Some(&click), n * 1_000).await?;
            produced += 1;
        }
        // Every user's count reaches `n`, and the input of it is committed.
        let reached = |records: &[common::Record]| {
            let latest = counts(records);
            latest.len() == USERS as usize && latest.values().all(|c| c.last() >= Some(&n))
        };
        let records = common::read_topic(
            &broker.bootstrap,
            "clicks_per_user",
            Duration::from_secs(90),
            Duration::ZERO,
            reached,
        )?;
        if !reached(&records) {
            bail!("round {n}: the counts are {:?}", counts(&records));
        }
        common::wait_for(Duration::from_secs(60), "the clicks committed", || {
            Ok(committed(&broker.bootstrap, &group, "clicks")? == produced)
        })?;
        Ok(records)
    };
    round(1).await?;
    // B joins: the group splits the partitions between the two servers.
    let _b = Server::start(&broker.bootstrap, data_b.path(), "pair").await?;
    round(2).await?;
    // A dies; after its session times out, B owns every partition.
    a.proc.kill9();
    let records = round(3).await?;
    for (user, counts) in counts(&records) {
        assert!(
            counts.windows(2).all(|w| w[1] > w[0]),
            "user {user:?}: the counts went {counts:?}"
        );
    }
    Ok(())
}

/// The successive `CLICKS` of each key in `records`, in the order they were written.
fn counts(records: &[common::Record]) -> std::collections::HashMap<Vec<u8>, Vec<i64>> {
    counts_of(records, "CLICKS")
}

/// The successive values of column `count` of each key in `records`, in the order they
/// were written.
fn counts_of(
    records: &[common::Record],
    count: &str,
) -> std::collections::HashMap<Vec<u8>, Vec<i64>> {
    let mut counts: std::collections::HashMap<Vec<u8>, Vec<i64>> = Default::default();
    for r in records {
        if let (Some(key), Some(count)) = (
            &r.key,
            r.value.as_ref().and_then(|v| v.get(count)?.as_i64()),
        ) {
            counts.entry(key.clone()).or_default().push(count);
        }
    }
    counts
}

/// GROUP BY on a value column while two servers share the input's partitions: each page's
/// count must come to its number of clicks, which only a repartition by page gives (each
/// server would otherwise count the clicks of its own partitions apart). Then both servers
/// die and one comes back: the counts go on from where they were.
#[tokio::test]
async fn grouping_by_a_value_column_counts_each_group_in_one_place() -> Result<()> {
    const CLICKS: &str = "
        CREATE STREAM clicks (id INT KEY, page VARCHAR)
          WITH (KAFKA_TOPIC='clicks', VALUE_FORMAT='JSON', PARTITIONS=4);
        CREATE TABLE clicks_per_page WITH (KAFKA_TOPIC='clicks_per_page') AS
          SELECT page, COUNT(*) AS clicks FROM clicks GROUP BY page;";
    const PAGES: [&str; 4] = ["/a", "/b", "/c", "/d"];
    const PER_PAGE: i64 = 12;
    let broker = Broker::start(BrokerKind::DevKafka)?;
    let (data_a, data_b) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let mut a = deployed(&broker, data_a.path(), "split", CLICKS).await?;
    watch_repartition(&a, "split").await?;
    let mut b = Server::start(&broker.bootstrap, data_b.path(), "split").await?;
    let shown = a.ksql_ok("SHOW QUERIES;").await?;
    let id = shown[0]["queries"][0]["id"]
        .as_str()
        .context("no query")?
        .to_string();
    let p = producer(&broker.bootstrap)?;
    let probe = |n: i32| json!({ "page": format!("probe-{}", n % 8) }).to_string();
    probe_until_shared((&a, &b), &p, "clicks", probe).await?;
    let mut clicks = 0;
    let mut round = async |n: i64| -> Result<()> {
        for _ in 0..PER_PAGE {
            for page in PAGES {
                clicks += 1;
                let click = json!({ "page": page }).to_string();
                produce(&p, "clicks", Some(&int_key(clicks)), Some(&click), 1_000).await?;
            }
        }
        let reached = |records: &[common::Record]| {
            let latest = counts(records);
            PAGES.iter().all(|page| {
                latest
                    .get(page.as_bytes())
                    .is_some_and(|c| c.last() >= Some(&(n * PER_PAGE)))
            })
        };
        let records = common::read_topic(
            &broker.bootstrap,
            "clicks_per_page",
            Duration::from_secs(90),
            Duration::from_secs(2),
            reached,
        )?;
        let latest = counts(&records);
        for page in PAGES {
            let page_counts = latest.get(page.as_bytes());
            assert_eq!(
                page_counts.and_then(|c| c.last()),
                Some(&(n * PER_PAGE)),
                "round {n}, page {page}: the counts went {page_counts:?}"
            );
        }
        Ok(())
    };
    round(1).await?;
    // Both servers die once the input and the repartition topic are committed; one comes
    // back with its data dir.
    let internal = format!("_eddy_splitquery_{id}-Aggregate-GroupBy-repartition");
    let groups = [
        (format!("_eddy_split_query_{id}"), "clicks".to_string()),
        (format!("_eddy_split_query_{id}_repartition"), internal),
    ];
    common::wait_for(Duration::from_secs(60), "both topics committed", || {
        for (group, topic) in &groups {
            if committed(&broker.bootstrap, group, topic)? != end_offsets(&broker.bootstrap, topic)?
            {
                return Ok(false);
            }
        }
        Ok(true)
    })?;
    a.proc.kill9();
    b.proc.kill9();
    let _a = Server::start(&broker.bootstrap, data_a.path(), "split").await?;
    round(2).await
}

/// The sum of the end offsets of `topic`'s partitions.
fn end_offsets(bootstrap: &str, topic: &str) -> Result<i64> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()?;
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let mut end = 0;
    for t in metadata.topics() {
        for p in t.partitions() {
            end += consumer
                .fetch_watermarks(topic, p.id(), Duration::from_secs(10))?
                .1;
        }
    }
    Ok(end)
}

/// GROUP BY over a table on a value column while two servers share the table's
/// partitions: users change status and leave, and each status must count the users it has
/// at the end, which needs every change's old version taken out of the group it was counted
/// in and its new one added to its own, wherever those groups are counted.
#[tokio::test]
async fn grouping_a_table_by_a_value_column_moves_rows_between_groups() -> Result<()> {
    const USERS: &str = "
        CREATE TABLE users (userid INT PRIMARY KEY, status VARCHAR)
          WITH (KAFKA_TOPIC='users', VALUE_FORMAT='JSON', PARTITIONS=4);
        CREATE TABLE users_per_status WITH (KAFKA_TOPIC='users_per_status') AS
          SELECT status, COUNT(*) AS users FROM users GROUP BY status;";
    let broker = Broker::start(BrokerKind::DevKafka)?;
    let (data_a, data_b) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let a = deployed(&broker, data_a.path(), "moves", USERS).await?;
    watch_repartition(&a, "moves").await?;
    let b = Server::start(&broker.bootstrap, data_b.path(), "moves").await?;
    let p = producer(&broker.bootstrap)?;
    let status = |s: &str| json!({ "status": s }).to_string();
    let probe = |n: i32| status(&format!("probe-{}", n % 8));
    probe_until_shared((&a, &b), &p, "users", probe).await?;
    // 24 users, Gold and Silver; then 8 become Platinum and 4 leave.
    let mut statuses = std::collections::HashMap::new();
    for id in 1..=24 {
        let s = if id % 2 == 1 { "Gold" } else { "Silver" };
        produce(&p, "users", Some(&int_key(id)), Some(&status(s)), 1_000).await?;
        statuses.insert(id, s);
    }
    for id in 1..=8 {
        produce(
            &p,
            "users",
            Some(&int_key(id)),
            Some(&status("Platinum")),
            2_000,
        )
        .await?;
        statuses.insert(id, "Platinum");
    }
    for id in 9..=12 {
        produce(&p, "users", Some(&int_key(id)), None, 3_000).await?;
        statuses.remove(&id);
    }
    let mut expected: std::collections::HashMap<&str, i64> = Default::default();
    for s in statuses.values() {
        *expected.entry(s).or_default() += 1;
    }
    assert_eq!(expected.len(), 3, "{expected:?}");
    // A status's count can pass through its final value on the way (Gold's goes up to 12
    // before it comes down to 6), and the statuses are read from different partitions: the
    // counts read so far can all be right before the last changes are read, or even
    // written. So wait until the query has committed every change, on both of its topics
    // (the input first: its changes are in the repartition topic before it is committed),
    // by which time it has written all its outputs; then read all of them.
    let shown = a.ksql_ok("SHOW QUERIES;").await?;
    let id = shown[0]["queries"][0]["id"]
        .as_str()
        .context("no query")?
        .to_string();
    let groups = [
        (format!("_eddy_moves_query_{id}"), "users".to_string()),
        (
            format!("_eddy_moves_query_{id}_repartition"),
            format!("_eddy_movesquery_{id}-Aggregate-GroupBy-repartition"),
        ),
    ];
    common::wait_for(Duration::from_secs(90), "both topics committed", || {
        for (group, topic) in &groups {
            if committed(&broker.bootstrap, group, topic)? != end_offsets(&broker.bootstrap, topic)?
            {
                return Ok(false);
            }
        }
        Ok(true)
    })?;
    let outputs = end_offsets(&broker.bootstrap, "users_per_status")?;
    let settled = |records: &[common::Record]| {
        let latest = counts_of(records, "USERS");
        records.len() as i64 >= outputs
            && expected
                .iter()
                .all(|(s, n)| latest.get(s.as_bytes()).and_then(|c| c.last()) == Some(n))
    };
    let records = common::read_topic(
        &broker.bootstrap,
        "users_per_status",
        Duration::from_secs(90),
        Duration::from_secs(2),
        settled,
    )?;
    let latest = counts_of(&records, "USERS");
    for (s, n) in &expected {
        let counts = latest.get(s.as_bytes());
        assert_eq!(
            counts.and_then(|c| c.last()),
            Some(n),
            "status {s}: the counts went {counts:?}"
        );
    }
    Ok(())
}

/// GROUP BY a column of the joined table while two servers share the stream's partitions:
/// each status must count the reviews of its users, which needs the joined rows forwarded
/// to the partition of their status.
#[tokio::test]
async fn grouping_by_a_joined_column_counts_each_group_in_one_place() -> Result<()> {
    const REVIEWS: &str = "
        CREATE STREAM reviews (id INT KEY, userid INT, rating INT)
          WITH (KAFKA_TOPIC='reviews', VALUE_FORMAT='JSON', PARTITIONS=4);
        CREATE TABLE users (userid INT PRIMARY KEY, status VARCHAR)
          WITH (KAFKA_TOPIC='users', VALUE_FORMAT='JSON');
        CREATE TABLE reviews_per_status WITH (KAFKA_TOPIC='reviews_per_status') AS
          SELECT u.status AS status, COUNT(*) AS reviews, SUM(r.rating) AS ratings
          FROM reviews r JOIN users u ON r.userid = u.userid GROUP BY u.status;";
    const STATUSES: [&str; 3] = ["Gold", "Silver", "Platinum"];
    let broker = Broker::start(BrokerKind::DevKafka)?;
    let p = producer(&broker.bootstrap)?;
    // Users -7..=0 are for probes, each with a status of its own; users 1..=9 have the
    // three statuses in turn.
    for user in -7..=9 {
        let status = if user <= 0 {
            format!("probe{user}")
        } else {
            STATUSES[user as usize % 3].to_string()
        };
        let value = json!({ "status": status }).to_string();
        produce(&p, "users", Some(&int_key(user)), Some(&value), 0).await?;
    }
    let (data_a, data_b) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let a = deployed(&broker, data_a.path(), "joins", REVIEWS).await?;
    watch_repartition(&a, "joins").await?;
    let b = Server::start(&broker.bootstrap, data_b.path(), "joins").await?;
    let review = |user: i32| json!({ "userid": user, "rating": user % 5 + 1 }).to_string();
    let probe = |n: i32| review(-(n % 8));
    probe_until_shared((&a, &b), &p, "reviews", probe).await?;
    // Each server joins a review with the users table it materialises, and waits only a
    // bounded time for that table to catch up with its topic: wait until both tables have
    // every user the counted reviews are by.
    for server in [&a, &b] {
        for user in 1..=9 {
            await_pull(
                server,
                &format!("SELECT userid, status FROM users WHERE userid = {user};"),
                &[json!([user, STATUSES[user as usize % 3]])],
            )
            .await?;
        }
    }
    let mut expected: std::collections::HashMap<&str, (i64, i64)> = Default::default();
    for id in 1..=45 {
        let user = id % 9 + 1;
        produce(
            &p,
            "reviews",
            Some(&int_key(id)),
            Some(&review(user)),
            1_000,
        )
        .await?;
        let e = expected.entry(STATUSES[user as usize % 3]).or_default();
        e.0 += 1;
        e.1 += i64::from(user % 5 + 1);
    }
    let latest = |records: &[common::Record]| {
        let mut latest: std::collections::HashMap<Vec<u8>, (i64, i64)> = Default::default();
        for r in records {
            let value = r.value.as_ref();
            let field = |f: &str| value.and_then(|v| v.get(f)?.as_i64());
            if let (Some(key), Some(n), Some(sum)) = (&r.key, field("REVIEWS"), field("RATINGS")) {
                latest.insert(key.clone(), (n, sum));
            }
        }
        latest
    };
    let settled = |records: &[common::Record]| {
        let latest = latest(records);
        expected
            .iter()
            .all(|(s, e)| latest.get(s.as_bytes()) == Some(e))
    };
    let records = common::read_topic(
        &broker.bootstrap,
        "reviews_per_status",
        Duration::from_secs(90),
        Duration::from_secs(2),
        settled,
    )?;
    let latest = latest(&records);
    for (status, e) in &expected {
        assert_eq!(
            latest.get(status.as_bytes()),
            Some(e),
            "status {status}: (reviews, sum of ratings) at the end"
        );
    }
    Ok(())
}

/// Produces probe records (keys -1, -2, …, values `value(1)`, `value(2)`, …) to the topic
/// of the same name as `source` until both servers have read some of it, and some of the
/// repartition topic of the query `a` runs: both consumer groups have split their
/// partitions between the servers. (A batch read while a group rebalances may be read
/// again by the partition's next owner, which the counts would show; the probes' groups
/// are not among those checked.) The probe values should vary the grouping column, so
/// that probes reach every partition of the repartition topic.
async fn probe_until_shared(
    (a, b): (&Server, &Server),
    producer: &rdkafka::producer::FutureProducer,
    source: &str,
    value: impl Fn(i32) -> String,
) -> Result<()> {
    let mut probes = 0;
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let mut counts = Vec::new();
        for server in [a, b] {
            for source in [source, REPARTITIONED] {
                counts.push(consumed(server, source).await?);
            }
        }
        if counts.iter().all(|&n| n > 0) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "the two servers never shared the partitions of {source} and {REPARTITIONED}: \
                 they read {counts:?} of them"
            );
        }
        for _ in 0..4 {
            probes += 1;
            produce(
                producer,
                source,
                Some(&int_key(-probes)),
                Some(&value(probes)),
                0,
            )
            .await?;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The stream [`watch_repartition`] declares.
const REPARTITIONED: &str = "repartitioned";

/// Declares a stream over the repartition topic of the one query `server` (of service
/// `service_id`) runs, so that `DESCRIBE … EXTENDED` says how much of it each server read.
/// Before the second server starts: a running server does not learn of statements another
/// server runs (it reads the command topic only when it starts).
async fn watch_repartition(server: &Server, service_id: &str) -> Result<()> {
    let shown = server.ksql_ok("SHOW QUERIES;").await?;
    let id = shown[0]["queries"][0]["id"].as_str().context("no query")?;
    let topic = format!("_eddy_{service_id}query_{id}-Aggregate-GroupBy-repartition");
    server
        .ksql_ok(&format!(
            "CREATE STREAM {REPARTITIONED} (v VARCHAR) \
             WITH (KAFKA_TOPIC='{topic}', VALUE_FORMAT='KAFKA');"
        ))
        .await?;
    Ok(())
}

/// The records of `source`'s topic that `server`'s queries have read, from `DESCRIBE
/// EXTENDED`; 0 while `server` does not know `source` yet.
async fn consumed(server: &Server, source: &str) -> Result<u64> {
    let (status, described) = server
        .ksql(&format!("DESCRIBE {source} EXTENDED;"), json!({}))
        .await?;
    if status != 200 {
        return Ok(0);
    }
    Ok(described[0]["sourceDescription"]["statistics"]
        .as_str()
        .unwrap_or("")
        .split("consumer-total-messages:")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0))
}

/// The records still to restore of store `store` of query `query`, from `/metrics`.
async fn restore_remaining(server: &Server, query: &str, store: &str) -> Result<Option<i64>> {
    let text = reqwest::get(format!("{}/metrics", server.url))
        .await?
        .text()
        .await?;
    let series =
        format!("eddy_query_restore_remaining_records{{query_id=\"{query}\",store=\"{store}\"}} ");
    Ok(text
        .lines()
        .find_map(|l| l.strip_prefix(&series))
        .and_then(|v| v.trim().parse().ok()))
}

/// A persistent query's state is restored on its own thread: while an aggregation is
/// rebuilt from a changelog of many records, `SHOW STREAMS` and a pull query on another
/// table are answered. (Proved by order, not by time: each answer came while `/metrics`
/// still showed records left to restore. The times are printed for the record.) That a
/// rebuilt aggregation goes on from its state is `aggregates_survive_a_lost_data_dir`'s.
#[tokio::test]
async fn a_restore_holds_up_no_other_statement() -> Result<()> {
    use rdkafka::producer::{FutureProducer, FutureRecord};
    let groups: i32 = std::env::var("EDDY_RESTORE_GROUPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let broker = Broker::start(BrokerKind::DevKafka)?;
    let data = tempfile::tempdir()?;
    let server = deployed(
        &broker,
        data.path(),
        "restore_test",
        "CREATE STREAM events (id INT KEY, v INT) WITH (KAFKA_TOPIC='events', VALUE_FORMAT='JSON', PARTITIONS=1);
         CREATE TABLE users (id INT PRIMARY KEY, name VARCHAR) WITH (KAFKA_TOPIC='users', VALUE_FORMAT='JSON', PARTITIONS=1);
         INSERT INTO users (id, name) VALUES (1, 'one');
         CREATE TABLE counts AS SELECT id, COUNT(*) AS n FROM events GROUP BY id;",
    )
    .await?;
    // One record per group, so the changelog gets a record per group.
    let p: FutureProducer = common::client_config(&broker.bootstrap)
        .set("linger.ms", "20")
        .set("queue.buffering.max.messages", "1000000")
        .create()?;
    let mut pending = Vec::new();
    for id in 0..groups {
        let key = int_key(id);
        let record: FutureRecord<'_, [u8], str> = FutureRecord::to("events")
            .key(&key[..])
            .payload("{\"V\":1}");
        pending.push(p.send_result(record).map_err(|(e, _)| e)?);
        if pending.len() == 50_000 {
            for delivery in pending.drain(..) {
                delivery.await?.map_err(|(e, _)| e)?;
            }
        }
    }
    for delivery in pending {
        delivery.await?.map_err(|(e, _)| e)?;
    }
    let changelog = "_eddy_restore_testquery_CTAS_COUNTS_1-Aggregate-changelog";
    let deadline = Instant::now() + Duration::from_secs(300);
    while end_offsets(&broker.bootstrap, changelog).unwrap_or(0) < i64::from(groups) {
        if Instant::now() > deadline {
            bail!("the aggregation did not write {groups} groups to {changelog}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // A new server with an empty data dir rebuilds the aggregation from its changelog. If
    // the restore is over before it can be watched, try again.
    let mut server = server;
    let mut watched = None;
    for _ in 0..3 {
        server.proc.kill9();
        std::fs::remove_dir_all(data.path())?;
        std::fs::create_dir_all(data.path())?;
        server = Server::start(&broker.bootstrap, data.path(), "restore_test").await?;
        let (mut slowest_show, mut slowest_pull) = (Duration::ZERO, Duration::ZERO);
        let mut answered = 0;
        loop {
            let asked = Instant::now();
            let shown = server.ksql_ok("SHOW STREAMS;").await?;
            let show_took = asked.elapsed();
            let asked = Instant::now();
            let rows = common::pull(&server, "SELECT name FROM users WHERE id = 1;").await?;
            let pull_took = asked.elapsed();
            assert!(shown.to_string().contains("\"EVENTS\""), "{shown}");
            let left =
                restore_remaining(&server, "CTAS_COUNTS_1", "aggregate_CTAS_COUNTS_1").await?;
            match left {
                // The table may still be reading its topic again.
                Some(left) if left > 0 && rows.is_empty() => {}
                Some(left) if left > 0 => {
                    assert_eq!(rows, [json!(["one"])]);
                    answered += 1;
                    slowest_show = slowest_show.max(show_took);
                    slowest_pull = slowest_pull.max(pull_took);
                }
                _ => break,
            }
        }
        if answered > 0 {
            watched = Some((answered, slowest_show, slowest_pull));
            break;
        }
    }
    let Some((answered, slowest_show, slowest_pull)) = watched else {
        bail!("the restore of {groups} groups was over before a statement could be sent");
    };
    println!(
        "while {groups} groups were restored: {answered} SHOW STREAMS and pull queries \
         each answered, the slowest SHOW STREAMS in {slowest_show:?}, the slowest pull query \
         in {slowest_pull:?}"
    );
    // The same requests with no restore under way, for comparison.
    let (mut slowest_show, mut slowest_pull) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..answered {
        let asked = Instant::now();
        server.ksql_ok("SHOW STREAMS;").await?;
        slowest_show = slowest_show.max(asked.elapsed());
        let asked = Instant::now();
        common::pull(&server, "SELECT name FROM users WHERE id = 1;").await?;
        slowest_pull = slowest_pull.max(asked.elapsed());
    }
    println!(
        "after the restore: the slowest SHOW STREAMS in {slowest_show:?}, the slowest pull \
         query in {slowest_pull:?}"
    );

    // The store is on disk, and what it holds in memory in front of RocksDB (once loaded,
    // after the changelog is read) stays within its 32 MiB budget (a million groups do not
    // fit: it then holds none, and remembers which keys RocksDB lacks).
    let held = "eddy_query_held_state_bytes{query_id=\"CTAS_COUNTS_1\",\
                store=\"aggregate_CTAS_COUNTS_1\"}";
    let deadline = Instant::now() + Duration::from_secs(120);
    let text = loop {
        let text = reqwest::get(format!("{}/metrics", server.url))
            .await?
            .text()
            .await?;
        if common::sample(&text, held).is_some_and(|b| b <= 32.0 * 1024.0 * 1024.0) {
            break text;
        }
        if Instant::now() > deadline {
            bail!("no held state after the restore:\n{text}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let stored = common::sample(
        &text,
        "eddy_state_store_size_bytes{store=\"aggregate_CTAS_COUNTS_1\"}",
    );
    assert!(stored.is_some(), "{text}");
    Ok(())
}

//! ksqlDB statements beyond streams, tables and queries, through the built binary's REST API
//! on `eddy dev-kafka`: variables (`DEFINE`, `UNDEFINE`, `SHOW VARIABLES`, `${name}`, the
//! `sessionVariables` of a request).

mod common;

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use common::{Broker, BrokerKind, Server};
use serde_json::{Value, json};

/// `POST path` with a JSON body; the status and the JSON answer.
async fn post(server: &Server, path: &str, body: Value) -> Result<(u16, Value)> {
    let r = reqwest::Client::new()
        .post(format!("{}/{path}", server.url))
        .header("Content-Type", "application/vnd.ksql.v1+json")
        .json(&body)
        .send()
        .await?;
    let status = r.status().as_u16();
    Ok((status, r.json().await?))
}

#[tokio::test]
async fn variables_are_defined_listed_and_substituted() -> Result<()> {
    let broker = Broker::start(BrokerKind::DevKafka)?;
    let data = tempfile::tempdir()?;
    let server = Server::start(&broker.bootstrap, data.path(), "variables_").await?;

    // A DEFINE applies to the statements after it in the request; SHOW VARIABLES lists the
    // request's variables where it stands.
    let (status, answer) = post(
        &server,
        "ksql",
        json!({"ksql": "DEFINE topic = 'var_orders'; DEFINE parts = '2'; \
                CREATE STREAM orders (id INT KEY, qty INT) WITH \
                  (KAFKA_TOPIC='${topic}', VALUE_FORMAT='JSON', PARTITIONS=${parts}); \
                SHOW VARIABLES; UNDEFINE parts; SHOW VARIABLES;"}),
    )
    .await?;
    assert_eq!(status, 200, "{answer}");
    let entities = answer.as_array().cloned().unwrap_or_default();
    assert_eq!(entities.len(), 3, "{answer}");
    assert_eq!(entities[0]["@type"], "currentStatus", "{answer}");
    assert!(
        entities[0]["statementText"]
            .as_str()
            .is_some_and(|s| s.contains("KAFKA_TOPIC='var_orders'") && s.contains("PARTITIONS=2")),
        "the statement is recorded as substituted: {answer}"
    );
    assert_eq!(entities[1]["@type"], "variables", "{answer}");
    let names = |e: &Value| -> Vec<String> {
        e["variables"]
            .as_array()
            .map(|v| v.iter().map(|v| v["name"].to_string()).collect())
            .unwrap_or_default()
    };
    assert_eq!(names(&entities[1]), ["\"PARTS\"", "\"TOPIC\""], "{answer}");
    assert_eq!(entities[1]["variables"][1]["value"], "var_orders");
    assert_eq!(names(&entities[2]), ["\"TOPIC\""], "{answer}");
    let (_, topics) = post(&server, "ksql", json!({"ksql": "SHOW TOPICS;"})).await?;
    let created = topics[0]["topics"]
        .as_array()
        .is_some_and(|t| t.iter().any(|t| t["name"] == "var_orders"));
    assert!(created, "{topics}");

    // sessionVariables: a client's variables, of any JSON type, for /ksql and /query.
    let (status, answer) = post(
        &server,
        "ksql",
        json!({"ksql": "CREATE STREAM big AS SELECT * FROM ${source} WHERE qty > ${min};",
               "sessionVariables": {"source": "orders", "min": 5}}),
    )
    .await?;
    assert_eq!(status, 200, "{answer}");
    assert!(
        answer[0]["statementText"]
            .as_str()
            .is_some_and(|s| s.contains("FROM orders WHERE qty > 5")),
        "{answer}"
    );
    let (status, answer) = post(
        &server,
        "query",
        json!({"ksql": "SELECT * FROM ${s};", "sessionVariables": {"s": "big"}}),
    )
    .await?;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer[0]["header"]["schema"], "`ID` INTEGER, `QTY` INTEGER",
        "{answer}"
    );

    // A variable that is not defined is a clear error, and nothing runs.
    let (status, answer) = post(
        &server,
        "ksql",
        json!({"ksql": "DEFINE a = 'x'; CREATE STREAM never AS SELECT * FROM ${missing};"}),
    )
    .await?;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .is_some_and(|m| m.contains("The variable 'missing' is not defined")),
        "{answer}"
    );
    let (_, streams) = post(&server, "ksql", json!({"ksql": "SHOW STREAMS;"})).await?;
    assert!(!streams.to_string().contains("NEVER"), "{streams}");
    Ok(())
}

/// The ids in stream `name`, by pull query (the stream's records up to now).
async fn ids(server: &Server, name: &str) -> Result<Vec<i64>> {
    let mut ids: Vec<i64> = common::pull(server, &format!("SELECT id FROM {name};"))
        .await?
        .iter()
        .filter_map(|row| row[0].as_i64())
        .collect();
    ids.sort_unstable();
    Ok(ids)
}

/// Waits until stream `name` holds exactly `expected` ids; fails after `timeout`.
async fn await_ids(server: &Server, name: &str, expected: &[i64], timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let got = ids(server, name).await?;
        if got == expected {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{name} holds {got:?}, expected {expected:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Checks for `window` that stream `name` keeps holding `expected`, no more.
async fn holds_still(
    server: &Server,
    name: &str,
    expected: &[i64],
    window: Duration,
) -> Result<()> {
    let until = Instant::now() + window;
    while Instant::now() < until {
        let got = ids(server, name).await?;
        if got != expected {
            bail!("{name} changed to {got:?} while its query was paused (expected {expected:?})");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}

/// The state `SHOW QUERIES` gives the query writing `sink`.
async fn query_state(server: &Server, sink: &str) -> Result<(String, String)> {
    let (_, answer) = post(server, "ksql", json!({"ksql": "SHOW QUERIES;"})).await?;
    let query = answer[0]["queries"]
        .as_array()
        .and_then(|q| q.iter().find(|q| q["sinks"][0] == sink))
        .cloned()
        .unwrap_or_default();
    Ok((
        query["id"].as_str().unwrap_or_default().to_string(),
        query["state"].as_str().unwrap_or_default().to_string(),
    ))
}

#[tokio::test]
async fn paused_queries_process_nothing_until_resumed_also_after_a_restart() -> Result<()> {
    let broker = Broker::start(BrokerKind::DevKafka)?;
    let data = tempfile::tempdir()?;
    let mut server = Server::start(&broker.bootstrap, data.path(), "pause_").await?;
    server
        .ksql_ok(
            "CREATE STREAM events (id INT KEY, v INT) WITH (KAFKA_TOPIC='events', VALUE_FORMAT='JSON', PARTITIONS=1); \
             INSERT INTO events (id, v) VALUES (1, 10); \
             SET 'auto.offset.reset' = 'earliest'; \
             CREATE STREAM copied AS SELECT * FROM events;",
        )
        .await?;
    await_ids(&server, "copied", &[1], Duration::from_secs(60)).await?;
    let (id, state) = query_state(&server, "COPIED").await?;
    assert_eq!(state, "RUNNING");

    let (status, answer) = post(&server, "ksql", json!({"ksql": format!("PAUSE {id};")})).await?;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer[0]["commandStatus"]["message"], "Query paused.",
        "{answer}"
    );
    assert_eq!(query_state(&server, "COPIED").await?.1, "PAUSED");
    server
        .ksql_ok("INSERT INTO events (id, v) VALUES (2, 20);")
        .await?;
    await_ids(&server, "events", &[1, 2], Duration::from_secs(30)).await?;
    holds_still(&server, "copied", &[1], Duration::from_secs(3)).await?;

    // The pause is in the command log: a restarted server starts the query paused.
    server.proc.kill9();
    let server = Server::start(&broker.bootstrap, data.path(), "pause_").await?;
    assert_eq!(query_state(&server, "COPIED").await?.1, "PAUSED");
    holds_still(&server, "copied", &[1], Duration::from_secs(3)).await?;

    let (status, answer) = post(&server, "ksql", json!({"ksql": "RESUME ALL;"})).await?;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(query_state(&server, "COPIED").await?.1, "RUNNING");
    await_ids(&server, "copied", &[1, 2], Duration::from_secs(60)).await?;

    // An unknown query is an error naming it.
    let (status, answer) = post(&server, "ksql", json!({"ksql": "PAUSE CSAS_NOPE_9;"})).await?;
    assert_eq!(status, 404, "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .is_some_and(|m| m.contains("CSAS_NOPE_9")),
        "{answer}"
    );
    Ok(())
}

#[tokio::test]
async fn assert_topic_waits_for_what_it_asserts() -> Result<()> {
    let broker = Broker::start(BrokerKind::DevKafka)?;
    let data = tempfile::tempdir()?;
    let server = Server::start(&broker.bootstrap, data.path(), "assert_").await?;
    server
        .ksql_ok("CREATE STREAM s (id INT KEY) WITH (KAFKA_TOPIC='asserted', VALUE_FORMAT='JSON', PARTITIONS=1);")
        .await?;
    let ksql = |sql: &str| post(&server, "ksql", json!({ "ksql": sql }));

    let (status, answer) = ksql("ASSERT TOPIC 'asserted' TIMEOUT 2 SECONDS;").await?;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer[0],
        json!({"@type": "assert_topic", "statementText": "ASSERT TOPIC 'asserted' TIMEOUT 2 SECONDS",
               "topicName": "asserted", "exists": true, "warnings": []})
    );
    let (status, answer) = ksql("ASSERT NOT EXISTS TOPIC 'nope';").await?;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer[0]["exists"], false, "{answer}");

    // A failing assertion answers 417 (41700) after its timeout, naming what did not hold.
    let asked = Instant::now();
    let (status, answer) = ksql("ASSERT TOPIC 'nope' TIMEOUT 1500 MILLISECONDS;").await?;
    assert_eq!(status, 417, "{answer}");
    assert_eq!(answer["error_code"], 41700, "{answer}");
    assert_eq!(answer["message"], "Topic nope does not exist.", "{answer}");
    assert!(asked.elapsed() >= Duration::from_millis(1500), "it waited");
    let (status, answer) = ksql("ASSERT NOT EXISTS TOPIC 'asserted';").await?;
    assert_eq!(status, 417, "{answer}");
    assert_eq!(answer["message"], "Topic asserted exists.", "{answer}");
    let (status, answer) = ksql("ASSERT TOPIC 'asserted' WITH (PARTITIONS=3);").await?;
    assert_eq!(status, 417, "{answer}");
    assert!(
        answer["message"].as_str().is_some_and(|m| m.starts_with(
            "Mismatched configuration for topic asserted: For config partitions, expected 3 got"
        )),
        "{answer}"
    );

    // A topic that appears while the assertion waits satisfies it.
    let late = tokio::spawn({
        let url = server.url.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            reqwest::Client::new()
                .post(format!("{url}/ksql"))
                .json(&json!({"ksql": "CREATE STREAM late (id INT KEY) WITH (KAFKA_TOPIC='late', VALUE_FORMAT='JSON', PARTITIONS=1);"}))
                .send()
                .await
                .map(|r| r.status().as_u16())
        }
    });
    let (status, answer) = ksql("ASSERT TOPIC 'late' TIMEOUT 30 SECONDS;").await?;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(late.await??, 200);

    // ASSERT SCHEMA needs a schema registry; ASSERT of anything else is a syntax error.
    let (status, answer) = ksql("ASSERT SCHEMA SUBJECT 'x';").await?;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .is_some_and(|m| m.contains("schema registry")),
        "{answer}"
    );
    let (status, answer) = ksql("ASSERT VALUES foo (id INT) VALUES (123);").await?;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .is_some_and(|m| m.contains("Syntax error at or near 'VALUES' at line 1:8")),
        "{answer}"
    );
    Ok(())
}

#[tokio::test]
async fn alter_adds_columns_and_describe_function_describes() -> Result<()> {
    let broker = Broker::start(BrokerKind::DevKafka)?;
    let data = tempfile::tempdir()?;
    let server = Server::start(&broker.bootstrap, data.path(), "alter_").await?;
    server
        .ksql_ok(
            "CREATE STREAM s (id INT KEY, a INT) WITH (KAFKA_TOPIC='altered', VALUE_FORMAT='JSON', PARTITIONS=1); \
             INSERT INTO s (id, a) VALUES (1, 10); \
             CREATE STREAM derived AS SELECT * FROM s;",
        )
        .await?;
    let ksql = |sql: &str| post(&server, "ksql", json!({ "ksql": sql }));

    let (status, answer) = ksql("ALTER STREAM s ADD COLUMN b VARCHAR, ADD c ARRAY<INT>;").await?;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer[0]["commandStatus"]["message"], "Stream altered",
        "{answer}"
    );
    server
        .ksql_ok("INSERT INTO s (id, a, b, c) VALUES (2, 20, 'x', ARRAY[1, 2]);")
        .await?;
    let rows = |rows: Vec<Value>| {
        let mut rows = rows;
        rows.sort_by_key(|r| r[0].as_i64());
        rows
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = rows(common::pull(&server, "SELECT * FROM s;").await?);
        if got == [json!([1, 10, null, null]), json!([2, 20, "x", [1, 2]])] {
            break;
        }
        if Instant::now() > deadline {
            bail!("SELECT * FROM s answered {got:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (_, described) = ksql("DESCRIBE s;").await?;
    let fields: Vec<String> = described[0]["sourceDescription"]["fields"]
        .as_array()
        .map(|f| {
            f.iter()
                .map(|f| f["name"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(fields, ["ID", "A", "B", "C"], "{described}");

    // Refused: a column that exists, a stream a query writes, the wrong kind.
    let (status, answer) = ksql("ALTER STREAM s ADD COLUMN a INT;").await?;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .is_some_and(|m| m.contains("A column with the same name already exists")),
        "{answer}"
    );
    let (status, answer) = ksql("ALTER STREAM derived ADD COLUMN z INT;").await?;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .is_some_and(|m| m.contains("not supported for CREATE ... AS SELECT")),
        "{answer}"
    );
    let (status, answer) = ksql("ALTER TABLE s ADD COLUMN z INT;").await?;
    assert_eq!(status, 400, "{answer}");

    // DESCRIBE FUNCTION: kind, category and variations; an unknown name is an error.
    let (status, answer) = ksql("DESCRIBE FUNCTION substring;").await?;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer[0]["@type"], "describe_function", "{answer}");
    assert_eq!(answer[0]["name"], "SUBSTRING", "{answer}");
    assert_eq!(answer[0]["type"], "SCALAR", "{answer}");
    assert!(
        answer[0]["functions"]
            .as_array()
            .is_some_and(|v| v.len() >= 2),
        "SUBSTRING has a variation with and one without a length: {answer}"
    );
    let (status, answer) = ksql("DESCRIBE FUNCTION no_such_function;").await?;
    assert_eq!(status, 404, "{answer}");
    assert_eq!(
        answer["message"],
        "Can't find any functions with the name 'NO_SUCH_FUNCTION'"
    );
    Ok(())
}

#[tokio::test]
async fn explain_describe_extended_and_read_only_sources() -> Result<()> {
    let broker = Broker::start(BrokerKind::DevKafka)?;
    let data = tempfile::tempdir()?;
    let server = Server::start(&broker.bootstrap, data.path(), "explain_").await?;
    server
        .ksql_ok(
            "CREATE STREAM orders (id INT KEY, qty INT) WITH (KAFKA_TOPIC='orders', VALUE_FORMAT='JSON', PARTITIONS=1); \
             CREATE SOURCE TABLE items (id INT PRIMARY KEY, name VARCHAR) WITH (KAFKA_TOPIC='items', VALUE_FORMAT='JSON', PARTITIONS=1);",
        )
        .await?;
    let ksql = |sql: &str| post(&server, "ksql", json!({ "ksql": sql }));

    // EXPLAIN a statement: planned, not run.
    let (status, answer) = ksql(
        "EXPLAIN CREATE STREAM big AS SELECT id, qty * 2 AS double_qty FROM orders WHERE qty > 1;",
    )
    .await?;
    assert_eq!(status, 200, "{answer}");
    let d = &answer[0]["queryDescription"];
    assert_eq!(answer[0]["@type"], "queryDescription", "{answer}");
    assert_eq!(d["queryType"], "PERSISTENT", "{answer}");
    assert_eq!(d["sources"], json!(["ORDERS"]), "{answer}");
    assert_eq!(d["sinks"], json!(["BIG"]), "{answer}");
    let fields: Vec<(String, Value)> = d["fields"]
        .as_array()
        .map(|f| {
            f.iter()
                .map(|f| {
                    (
                        f["name"].as_str().unwrap_or_default().to_string(),
                        f["type"].clone(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        fields,
        [
            ("ID".to_string(), json!("KEY")),
            ("DOUBLE_QTY".to_string(), Value::Null)
        ],
        "{answer}"
    );
    let (_, streams) = ksql("SHOW STREAMS;").await?;
    assert!(
        !streams.to_string().contains("\"BIG\""),
        "EXPLAIN created nothing: {streams}"
    );
    let (status, answer) = ksql("EXPLAIN SELECT * FROM orders EMIT CHANGES;").await?;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer[0]["queryDescription"]["queryType"], "PUSH",
        "{answer}"
    );
    let (status, answer) = ksql("EXPLAIN DROP STREAM orders;").await?;
    assert_eq!(status, 400, "{answer}");

    // DESCRIBE STREAMS EXTENDED: every stream described.
    let (status, answer) = ksql("DESCRIBE STREAMS EXTENDED;").await?;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer[0]["@type"], "source_descriptions", "{answer}");
    let names: Vec<&str> = answer[0]["sourceDescriptions"]
        .as_array()
        .map(|d| d.iter().filter_map(|d| d["name"].as_str()).collect())
        .unwrap_or_default();
    assert!(names.contains(&"ORDERS"), "{answer}");
    assert!(
        !names.contains(&"ITEMS"),
        "tables are not streams: {answer}"
    );
    let (_, answer) = ksql("SHOW TABLES EXTENDED;").await?;
    assert_eq!(
        answer[0]["sourceDescriptions"][0]["name"], "ITEMS",
        "{answer}"
    );

    // A join of three tables is refused (its intermediate has no store to join with), not
    // an internal error when it starts.
    let (status, answer) = ksql(
        "CREATE TABLE t1 (id INT PRIMARY KEY, a INT) WITH (KAFKA_TOPIC='t1', VALUE_FORMAT='JSON', PARTITIONS=1); \
         CREATE TABLE t2 (id INT PRIMARY KEY, b INT) WITH (KAFKA_TOPIC='t2', VALUE_FORMAT='JSON', PARTITIONS=1); \
         CREATE TABLE t3 (id INT PRIMARY KEY, c INT) WITH (KAFKA_TOPIC='t3', VALUE_FORMAT='JSON', PARTITIONS=1); \
         CREATE TABLE joined AS SELECT t1.id, a, b, c FROM t1 JOIN t2 ON t1.id = t2.id JOIN t3 ON t1.id = t3.id;",
    )
    .await?;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .is_some_and(|m| m.contains("joins of three or more tables")),
        "{answer}"
    );

    // A SOURCE table is read-only.
    let (status, answer) = ksql("INSERT INTO items (id, name) VALUES (1, 'pen');").await?;
    assert_eq!(status, 400, "{answer}");
    Ok(())
}

/// A topic config as the broker describes it.
async fn topic_config(bootstrap: &str, topic: &str, name: &str) -> Result<Option<String>> {
    use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
    use rdkafka::client::DefaultClientContext;
    let admin: AdminClient<DefaultClientContext> = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()?;
    let described = admin
        .describe_configs([&ResourceSpecifier::Topic(topic)], &AdminOptions::new())
        .await?;
    let Some(Ok(resource)) = described.into_iter().next() else {
        bail!("the broker did not describe {topic}");
    };
    Ok(resource.get(name).and_then(|e| e.value.clone()))
}

#[tokio::test]
async fn created_topics_get_the_configs_ksqldb_gives_them() -> Result<()> {
    let broker = Broker::start(BrokerKind::Tansu)?;
    let data = tempfile::tempdir()?;
    let server = Server::start(&broker.bootstrap, data.path(), "configs_").await?;
    server
        .ksql_ok(
            "CREATE STREAM events (id INT KEY, v INT) WITH (KAFKA_TOPIC='cfg_events', VALUE_FORMAT='JSON', PARTITIONS=1, RETENTION_MS=3600000); \
             CREATE STREAM kept (id INT KEY, v INT) WITH (KAFKA_TOPIC='cfg_kept', VALUE_FORMAT='JSON', PARTITIONS=1, CLEANUP_POLICY='compact'); \
             CREATE TABLE users (id INT PRIMARY KEY, name VARCHAR) WITH (KAFKA_TOPIC='cfg_users', VALUE_FORMAT='JSON', PARTITIONS=1); \
             CREATE TABLE counts WITH (KAFKA_TOPIC='cfg_counts') AS SELECT id, COUNT(*) AS n FROM events GROUP BY id;",
        )
        .await?;
    let policy = |topic: &'static str| topic_config(&broker.bootstrap, topic, "cleanup.policy");
    assert_eq!(
        topic_config(&broker.bootstrap, "cfg_events", "retention.ms")
            .await?
            .as_deref(),
        Some("3600000")
    );
    assert_ne!(policy("cfg_events").await?.as_deref(), Some("compact"));
    assert_eq!(policy("cfg_kept").await?.as_deref(), Some("compact"));
    assert_eq!(policy("cfg_users").await?.as_deref(), Some("compact"));
    assert_eq!(
        policy("cfg_counts").await?.as_deref(),
        Some("compact"),
        "a CTAS sink is compacted"
    );

    let (status, answer) = post(
        &server,
        "ksql",
        json!({"ksql": "CREATE STREAM bad (id INT KEY) WITH (KAFKA_TOPIC='cfg_bad', VALUE_FORMAT='JSON', PARTITIONS=1, CLEANUP_POLICY='sometimes');"}),
    )
    .await?;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .is_some_and(|m| m.contains("CLEANUP_POLICY")),
        "{answer}"
    );

    // SHOW TOPICS EXTENDED adds each topic's consumers and consumer groups (tansu lists no
    // groups, so both are 0 here; the engine's tests count them over in-memory topics).
    let (status, answer) = post(&server, "ksql", json!({"ksql": "SHOW TOPICS EXTENDED;"})).await?;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer[0]["@type"], "kafka_topics_extended", "{answer}");
    let events = answer[0]["topics"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["name"] == "cfg_events"))
        .cloned()
        .unwrap_or_default();
    assert!(
        events["consumerCount"].is_u64() && events["consumerGroupCount"].is_u64(),
        "{answer}"
    );
    assert_eq!(events["replicaInfo"], json!([1]), "{answer}");
    Ok(())
}

#[tokio::test]
async fn named_types_are_created_used_listed_dropped_and_replayed() -> Result<()> {
    let broker = Broker::start(BrokerKind::DevKafka)?;
    let data = tempfile::tempdir()?;
    let mut server = Server::start(&broker.bootstrap, data.path(), "types_").await?;
    // One request: the type is known to the statements after it.
    server
        .ksql_ok(
            "CREATE TYPE address AS STRUCT<number INT, city VARCHAR>; \
             CREATE TYPE person AS STRUCT<name VARCHAR, home ADDRESS>; \
             CREATE STREAM people (id INT KEY, p PERSON) WITH (KAFKA_TOPIC='people', VALUE_FORMAT='JSON', PARTITIONS=1); \
             INSERT INTO people (id, p) VALUES (1, STRUCT(name := 'jay', home := STRUCT(number := 899, city := 'Mountain View')));",
        )
        .await?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let rows = common::pull(&server, "SELECT p->home->city FROM people;").await?;
        if rows == [json!(["Mountain View"])] {
            break;
        }
        if Instant::now() > deadline {
            bail!("people answered {rows:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (_, answer) = post(&server, "ksql", json!({"ksql": "SHOW TYPES;"})).await?;
    assert_eq!(answer[0]["@type"], "type_list", "{answer}");
    assert_eq!(answer[0]["types"]["ADDRESS"]["type"], "STRUCT", "{answer}");
    assert!(answer[0]["types"]["PERSON"].is_object(), "{answer}");

    // Registering a name twice is an error; IF NOT EXISTS is not.
    let (status, answer) = post(
        &server,
        "ksql",
        json!({"ksql": "CREATE TYPE address AS INT;"}),
    )
    .await?;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .is_some_and(|m| m.contains("already registered")),
        "{answer}"
    );
    let (status, _) = post(
        &server,
        "ksql",
        json!({"ksql": "CREATE TYPE IF NOT EXISTS address AS INT;"}),
    )
    .await?;
    assert_eq!(status, 200);

    // The command log replays the types before the statements that use them.
    server.proc.kill9();
    let server = Server::start(&broker.bootstrap, data.path(), "types_").await?;
    let (_, described) = post(&server, "ksql", json!({"ksql": "DESCRIBE people;"})).await?;
    assert_eq!(
        described[0]["sourceDescription"]["fields"][1]["schema"]["type"], "STRUCT",
        "{described}"
    );
    let (status, answer) = post(
        &server,
        "ksql",
        json!({"ksql": "DROP TYPE person; SHOW TYPES;"}),
    )
    .await?;
    assert_eq!(status, 200, "{answer}");
    assert!(answer[1]["types"]["PERSON"].is_null(), "{answer}");
    let (status, answer) = post(
        &server,
        "ksql",
        json!({"ksql": "CREATE STREAM later (id INT KEY, p PERSON) WITH (KAFKA_TOPIC='later', VALUE_FORMAT='JSON', PARTITIONS=1);"}),
    )
    .await?;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .is_some_and(|m| m.contains("Unknown type: PERSON")),
        "{answer}"
    );
    Ok(())
}

/// Headers of a record: `(key, value)` in order.
type Headers = Vec<(String, Option<Vec<u8>>)>;

/// Produces one JSON record with an INT key and headers to `topic`.
async fn produce_with_headers(
    producer: &rdkafka::producer::FutureProducer,
    topic: &str,
    key: i32,
    value: &str,
    headers: &[(&str, Option<&[u8]>)],
) -> Result<()> {
    use rdkafka::message::{Header, OwnedHeaders};
    let key = common::int_key(key);
    let owned = headers.iter().fold(OwnedHeaders::new(), |all, (k, v)| {
        all.insert(Header { key: k, value: *v })
    });
    let record = rdkafka::producer::FutureRecord::to(topic)
        .key(&key[..])
        .payload(value)
        .headers(owned);
    producer
        .send(record, Duration::from_secs(30))
        .await
        .map_err(|(e, _)| anyhow::anyhow!("producing to {topic}: {e}"))?;
    Ok(())
}

/// Reads `topic` from the start until `n` records came (or `timeout` passed): each
/// record's JSON value and headers.
fn read_with_headers(
    bootstrap: &str,
    topic: &str,
    n: usize,
    timeout: Duration,
) -> Result<Vec<(Value, Headers)>> {
    use rdkafka::Message;
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::Headers as _;
    let consumer: BaseConsumer = common::client_config(bootstrap)
        .set(
            "group.id",
            format!("headers-reader-{}", common::free_port()),
        )
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()?;
    consumer.subscribe(&[topic])?;
    let deadline = Instant::now() + timeout;
    let mut out = Vec::new();
    while out.len() < n && Instant::now() < deadline {
        let Some(message) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let message = message?;
        let value = serde_json::from_slice(message.payload().unwrap_or_default())?;
        let headers = message
            .headers()
            .map(|hs| {
                hs.iter()
                    .map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec)))
                    .collect()
            })
            .unwrap_or_default();
        out.push((value, headers));
    }
    Ok(out)
}

#[tokio::test]
async fn header_columns_read_the_headers_a_kafka_client_wrote() -> Result<()> {
    let broker = Broker::start(BrokerKind::Tansu)?;
    let data = tempfile::tempdir()?;
    let server = Server::start(&broker.bootstrap, data.path(), "headers_").await?;

    // A header column of the wrong type, and an INSERT into one, are refused.
    let (status, answer) = post(
        &server,
        "ksql",
        json!({"ksql": "CREATE STREAM bad (id INT KEY, h INT HEADER('trace')) WITH \
                (KAFKA_TOPIC='hdr_bad', VALUE_FORMAT='JSON', PARTITIONS=1);"}),
    )
    .await?;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .is_some_and(|m| m
                .contains("Invalid type for HEADER('trace') column: expected BYTES, got INTEGER")),
        "{answer}"
    );
    server
        .ksql_ok(
            "CREATE STREAM hdr_in (id INT KEY, v INT, \
               all_headers ARRAY<STRUCT<key STRING, value BYTES>> HEADERS, \
               trace BYTES HEADER('trace')) \
             WITH (KAFKA_TOPIC='hdr_in', VALUE_FORMAT='JSON', PARTITIONS=1); \
             SET 'auto.offset.reset' = 'earliest'; \
             CREATE STREAM hdr_out AS SELECT id, v, FROM_BYTES(trace, 'utf8') AS trace, \
               ARRAY_LENGTH(all_headers) AS n FROM hdr_in WHERE v > 0;",
        )
        .await?;
    let (status, answer) = post(
        &server,
        "ksql",
        json!({"ksql": "INSERT INTO hdr_in (id, v, trace) VALUES (9, 9, TO_BYTES('x', 'utf8'));"}),
    )
    .await?;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .is_some_and(|m| m.contains("Cannot insert into HEADER columns: TRACE")),
        "{answer}"
    );
    let (_, described) = post(&server, "ksql", json!({"ksql": "DESCRIBE hdr_in;"})).await?;
    let fields = &described[0]["sourceDescription"]["fields"];
    assert_eq!(fields[2]["type"], "HEADER", "{described}");
    assert_eq!(fields[3]["headerKey"], "trace", "{described}");

    let producer = common::producer(&broker.bootstrap)?;
    produce_with_headers(
        &producer,
        "hdr_in",
        1,
        r#"{"V": 10}"#,
        &[("trace", Some(b"first")), ("other", None)],
    )
    .await?;
    produce_with_headers(
        &producer,
        "hdr_in",
        2,
        r#"{"V": 0}"#,
        &[("trace", Some(b"no"))],
    )
    .await?;
    produce_with_headers(&producer, "hdr_in", 3, r#"{"V": 30}"#, &[]).await?;
    produce_with_headers(
        &producer,
        "hdr_in",
        4,
        r#"{"V": 40}"#,
        &[("trace", Some(b"old")), ("trace", Some(b"new"))],
    )
    .await?;

    // The columns hold the headers; the outputs carry their input's headers, as Kafka
    // Streams forwards them; the filtered record leaves nothing.
    let out = read_with_headers(&broker.bootstrap, "HDR_OUT", 3, Duration::from_secs(60))?;
    let values: Vec<&Value> = out.iter().map(|(v, _)| v).collect();
    assert_eq!(
        values,
        [
            &json!({"V": 10, "TRACE": "first", "N": 2}),
            &json!({"V": 30, "TRACE": null, "N": 0}),
            &json!({"V": 40, "TRACE": "new", "N": 2}),
        ],
        "{out:?}"
    );
    let header = |k: &str, v: Option<&[u8]>| (k.to_string(), v.map(<[u8]>::to_vec));
    assert_eq!(
        out[0].1,
        [header("trace", Some(b"first")), header("other", None)]
    );
    assert!(out[1].1.is_empty(), "{out:?}");
    assert_eq!(
        out[2].1,
        [header("trace", Some(b"old")), header("trace", Some(b"new"))]
    );

    // A pull query over the stream shows the HEADERS column as ksqlDB's REST API does.
    let rows = common::pull(&server, "SELECT id, all_headers FROM hdr_in WHERE id = 1;").await?;
    assert_eq!(
        rows,
        [json!([1, [{"KEY": "trace", "VALUE": "Zmlyc3Q="}, {"KEY": "other", "VALUE": null}]])],
        "{rows:?}"
    );
    Ok(())
}

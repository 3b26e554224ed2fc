//! The REST API against the built binary on `eddy dev-kafka`: every endpoint's exact JSON
//! shapes and error codes, push queries over HTTP/1.1 and HTTP/2 cleartext, closing and
//! abandoning push queries, and the command log surviving a restart.

mod common;

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use common::{Broker, BrokerKind, Server, check_with_prometheus_parser, sample};
use serde_json::{Value, json};

/// Statements to set up the stream every test reads.
const SETUP: &str = "
CREATE STREAM orders (id INT KEY, item VARCHAR, qty INT)
  WITH (KAFKA_TOPIC='orders', VALUE_FORMAT='JSON');
INSERT INTO orders (id, item, qty) VALUES (1, 'apple', 3);
INSERT INTO orders (id, item, qty) VALUES (2, 'pear', 5);
INSERT INTO orders (id, item, qty) VALUES (3, 'fig', 7);
";

fn http1() -> reqwest::Client {
    reqwest::Client::new()
}

fn h2c() -> Result<reqwest::Client> {
    Ok(reqwest::Client::builder().http2_prior_knowledge().build()?)
}

async fn post(
    client: &reqwest::Client,
    url: &str,
    content_type: &str,
    body: String,
) -> Result<(u16, Value)> {
    let r = client
        .post(url)
        .header("Content-Type", content_type)
        .body(body)
        .send()
        .await?;
    let status = r.status().as_u16();
    let text = r.text().await?;
    let value = if text.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    Ok((status, value))
}

/// Reads a streamed response until `done(text so far)` or the deadline; returns the text.
async fn read_stream(
    response: &mut reqwest::Response,
    timeout: Duration,
    done: impl Fn(&str) -> bool,
) -> Result<String> {
    let deadline = Instant::now() + timeout;
    let mut text = String::new();
    while !done(&text) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            bail!("timed out after {timeout:?} reading a push query; got {text:?}");
        }
        match tokio::time::timeout(left, response.chunk()).await {
            Ok(Ok(Some(chunk))) => text.push_str(&String::from_utf8_lossy(&chunk)),
            Ok(Ok(None)) => break,
            Ok(Err(e)) => bail!("reading a push query: {e}; got {text:?}"),
            Err(_) => bail!("timed out after {timeout:?} reading a push query; got {text:?}"),
        }
    }
    Ok(text)
}

/// Sends `request` as it is to the server at `url` and returns everything it answers
/// until it closes the connection.
async fn raw_http(url: &str, request: &str) -> Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await?;
    stream.write_all(request.as_bytes()).await?;
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut answer)).await??;
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

/// Asserts `r` is a successful HTTP/2 answer in ksqlDB's delimited format.
fn assert_delimited_over_h2(r: &reqwest::Response) {
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(
        r.headers()["content-type"],
        "application/vnd.ksqlapi.delimited.v1"
    );
}

/// The non-empty lines of a delimited answer.
fn lines(text: &str) -> Vec<Value> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or(Value::String(l.to_string())))
        .collect()
}

fn without_query_id(mut v: Value) -> Value {
    if let Some(h) = v.get_mut("header").and_then(Value::as_object_mut) {
        h.remove("queryId");
    }
    if let Some(o) = v.as_object_mut() {
        o.remove("queryId");
    }
    v
}

#[tokio::test]
async fn statements_errors_and_status() -> Result<()> {
    let broker = Broker::start(BrokerKind::DevKafka)?;
    let data = tempfile::tempdir()?;
    let server = Server::start(&broker.bootstrap, data.path(), "api_test").await?;
    let ksql = format!("{}/ksql", server.url);

    // /info and /healthcheck.
    let info: Value = http1()
        .get(format!("{}/info", server.url))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(
        info["KsqlServerInfo"]["ksqlServiceId"], "api_test",
        "{info}"
    );
    assert_eq!(info["KsqlServerInfo"]["serverStatus"], "RUNNING", "{info}");
    assert!(info["KsqlServerInfo"]["version"].is_string(), "{info}");
    let health: Value = http1()
        .get(format!("{}/healthcheck", server.url))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(
        health,
        json!({"isHealthy": true, "details": {"metastore": {"isHealthy": true},
            "kafka": {"isHealthy": true}, "commandRunner": {"isHealthy": true}},
            "serverState": "RUNNING"})
    );

    // A CREATE, with both content types; the sequence number is the command's offset.
    let create = "CREATE STREAM orders (id INT KEY, item VARCHAR, qty INT) \
                  WITH (KAFKA_TOPIC='orders', VALUE_FORMAT='JSON');";
    let (status, body) = post(
        &http1(),
        &ksql,
        "application/json",
        json!({"ksql": create, "streamsProperties": {}, "unknownField": 1}).to_string(),
    )
    .await?;
    assert_eq!(status, 200, "{body}");
    let seq = body[0]["commandSequenceNumber"].as_i64().unwrap_or(-1);
    assert!(seq >= 0, "{body}");
    assert_eq!(
        body,
        json!([{
            "@type": "currentStatus",
            "statementText": create.trim_end_matches(';'),
            "commandId": "stream/`ORDERS`/create",
            "commandStatus": {"status": "SUCCESS", "message": "Stream created", "queryId": null},
            "commandSequenceNumber": seq,
            "warnings": []
        }])
    );
    let (status, body) = post(
        &http1(),
        &ksql,
        "application/vnd.ksql.v1+json",
        json!({"ksql": "CREATE STREAM big_orders AS SELECT * FROM orders WHERE qty > 4;"})
            .to_string(),
    )
    .await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body[0]["commandStatus"],
        json!({"status": "SUCCESS", "message": "Created query with ID CSAS_BIG_ORDERS_1",
               "queryId": "CSAS_BIG_ORDERS_1"})
    );
    assert_eq!(body[0]["commandSequenceNumber"], json!(seq + 1), "{body}");

    // EXPLAIN, SHOW QUERIES EXTENDED and DESCRIBE … EXTENDED.
    let body = server
        .ksql_ok("EXPLAIN CSAS_BIG_ORDERS_1; SHOW QUERIES EXTENDED; DESCRIBE orders EXTENDED;")
        .await?;
    assert_eq!(body[0]["@type"], "queryDescription", "{body}");
    let explained = &body[0]["queryDescription"];
    assert_eq!(explained["id"], "CSAS_BIG_ORDERS_1", "{body}");
    assert_eq!(
        explained["statementText"],
        "CREATE STREAM big_orders AS SELECT * FROM orders WHERE qty > 4"
    );
    assert_eq!(explained["sources"], json!(["ORDERS"]));
    assert_eq!(explained["sinks"], json!(["BIG_ORDERS"]));
    assert_eq!(explained["queryType"], "PERSISTENT");
    assert_eq!(explained["state"], "RUNNING");
    assert_eq!(explained["windowType"], Value::Null);
    assert_eq!(
        explained["fields"],
        json!([
            {"name": "ID", "schema": {"type": "INTEGER", "fields": null, "memberSchema": null}, "type": "KEY"},
            {"name": "ITEM", "schema": {"type": "STRING", "fields": null, "memberSchema": null}},
            {"name": "QTY", "schema": {"type": "INTEGER", "fields": null, "memberSchema": null}},
        ])
    );
    for field in [
        "topology",
        "executionPlan",
        "overriddenProperties",
        "ksqlHostQueryStatus",
        "queryErrors",
        "tasksMetadata",
    ] {
        assert!(explained.get(field).is_some(), "{field} missing: {body}");
    }
    assert_eq!(body[1]["@type"], "queryDescription_list", "{body}");
    assert_eq!(body[1]["queryDescriptions"][0], *explained, "{body}");
    assert_eq!(body[2]["@type"], "sourceDescription", "{body}");
    let described = &body[2]["sourceDescription"];
    assert_eq!(described["extended"], true, "{body}");
    assert_eq!(described["name"], "ORDERS", "{body}");
    assert_eq!(
        described["readQueries"][0]["id"], "CSAS_BIG_ORDERS_1",
        "{body}"
    );
    assert_eq!(described["writeQueries"], json!([]), "{body}");
    let (status, body) = server.ksql("EXPLAIN NO_SUCH_QUERY;", json!({})).await?;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error_code"], 40400, "{body}");

    // 40001: a statement that does not parse.
    let (status, body) = server.ksql("CREATE STREAM ;", json!({})).await?;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["@type"], "statement_error", "{body}");
    assert_eq!(body["error_code"], 40001, "{body}");
    assert_eq!(body["statementText"], "CREATE STREAM ;", "{body}");
    assert_eq!(body["entities"], json!([]), "{body}");
    assert!(body["message"].is_string(), "{body}");

    // 40002: a push query sent to /ksql.
    let (status, body) = server
        .ksql("SELECT * FROM orders EMIT CHANGES;", json!({}))
        .await?;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error_code"], 40002, "{body}");
    assert!(
        body["message"].as_str().unwrap_or("").contains("/query"),
        "{body}"
    );

    // 40400: something named does not exist; earlier statements' entities come along.
    let (status, body) = server
        .ksql("SHOW STREAMS; DESCRIBE nothing_here;", json!({}))
        .await?;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error_code"], 40400, "{body}");
    assert_eq!(body["statementText"], "DESCRIBE nothing_here", "{body}");
    assert_eq!(body["entities"][0]["@type"], "streams", "{body}");

    // 400: no `ksql` field, or no JSON at all.
    let (status, body) = post(&http1(), &ksql, "application/json", "{}".into()).await?;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body,
        json!({"@type": "generic_error", "error_code": 40000,
               "message": "The request body has no 'ksql' field (the statements to run)."})
    );
    let (status, body) = post(&http1(), &ksql, "application/json", "not json".into()).await?;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error_code"], 40000, "{body}");

    // 413: a body over the limit (1 MiB by default).
    let huge = json!({"ksql": format!("SHOW STREAMS; -- {}", "x".repeat(2 << 20))}).to_string();
    let (status, body) = post(&http1(), &ksql, "application/json", huge).await?;
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["@type"], "generic_error", "{body}");
    assert_eq!(body["error_code"], 41300, "{body}");

    // /status lists every recorded command; one command by its id.
    let statuses: Value = http1()
        .get(format!("{}/status", server.url))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(
        statuses,
        json!({"commandStatuses": {"stream/`BIG_ORDERS`/create": "SUCCESS",
                                   "stream/`ORDERS`/create": "SUCCESS"}})
    );
    let one: Value = http1()
        .get(format!("{}/status/stream/%60ORDERS%60/create", server.url))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(
        one,
        json!({"status": "SUCCESS", "message": "Stream created"})
    );
    // The command id pasted into the path as /ksql returned it, backticks and all, sent
    // byte for byte on one keep-alive connection (twice, after a request with a body).
    let raw = raw_http(
        &server.url,
        "GET /status/stream/`ORDERS`/create HTTP/1.1\r\nHost: eddy\r\n\r\n\
         POST /ksql HTTP/1.1\r\nHost: eddy\r\nContent-Type: application/vnd.ksql.v1+json\r\n\
         Content-Length: 30\r\n\r\n{\"ksql\": \"DESCRIBE `ORDERS`;\"}\
         GET /status/stream/`BIG_ORDERS`/create HTTP/1.1\r\nHost: eddy\r\nConnection: close\r\n\r\n",
    )
    .await?;
    // The body's backticks reached the statement untouched: it describes ORDERS.
    assert_eq!(raw.matches("HTTP/1.1 200 OK").count(), 3, "{raw}");
    assert!(raw.contains("\"name\":\"ORDERS\""), "{raw}");
    assert!(
        raw.contains("{\"status\":\"SUCCESS\",\"message\":\"Stream created\"}"),
        "{raw}"
    );
    assert!(raw.contains("\"queryId\":\"CSAS_BIG_ORDERS_"), "{raw}");
    let r = http1()
        .get(format!("{}/status/stream/NOPE/create", server.url))
        .send()
        .await?;
    assert_eq!(r.status().as_u16(), 404);
    let body: Value = r.json().await?;
    assert_eq!(body["error_code"], 40400, "{body}");

    // SHOW FUNCTIONS: ksqlDB's library with its types and categories, and nothing else.
    let shown = server.ksql_ok("SHOW FUNCTIONS;").await?;
    assert_eq!(shown[0]["@type"], "function_names", "{shown}");
    let functions = shown[0]["functions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let find = |name: &str| functions.iter().find(|f| f["name"] == name).cloned();
    assert_eq!(
        find("JSON_KEYS"),
        Some(json!({"name": "JSON_KEYS", "type": "SCALAR", "category": "JSON"}))
    );
    assert_eq!(
        find("CORRELATION"),
        Some(json!({"name": "CORRELATION", "type": "AGGREGATE", "category": "AGGREGATE"}))
    );
    assert_eq!(
        find("CUBE_EXPLODE"),
        Some(json!({"name": "CUBE_EXPLODE", "type": "TABLE", "category": "TABLE"}))
    );
    assert_eq!(
        find("TRANSFORM").map(|f| f["category"].clone()),
        Some(json!("LAMBDA"))
    );
    assert_eq!(
        find("STARTS_WITH"),
        None,
        "a DataFusion function ksqlDB lacks"
    );
    assert!(functions.len() > 140, "{} functions", functions.len());

    // A restart replays the command log: same catalog, same query ids, and the sequence
    // numbers go on.
    let mut server = server;
    server.proc.kill9();
    let server = Server::start(&broker.bootstrap, data.path(), "api_test").await?;
    let shown = server.ksql_ok("SHOW STREAMS; SHOW QUERIES;").await?;
    let names: Vec<&str> = shown[0]["streams"]
        .as_array()
        .map(|a| a.iter().filter_map(|s| s["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names, vec!["BIG_ORDERS", "EDDY_PROCESSING_LOG", "ORDERS"]);
    assert_eq!(shown[1]["queries"][0]["id"], "CSAS_BIG_ORDERS_1", "{shown}");
    let body = server
        .ksql_ok("CREATE STREAM small_orders AS SELECT * FROM orders WHERE qty < 4;")
        .await?;
    assert_eq!(
        body[0]["commandStatus"]["queryId"], "CSAS_SMALL_ORDERS_2",
        "{body}"
    );
    assert!(
        body[0]["commandSequenceNumber"].as_i64().unwrap_or(-1) > seq + 1,
        "{body}"
    );
    // A failed statement was not recorded; DROP and TERMINATE are.
    let (status, _) = server
        .ksql(
            "CREATE STREAM broken AS SELECT nope FROM orders;",
            json!({}),
        )
        .await?;
    assert_eq!(status, 400);
    server
        .ksql_ok("TERMINATE CSAS_SMALL_ORDERS_2; DROP STREAM small_orders;")
        .await?;
    let mut server = server;
    server.proc.kill9();
    let server = Server::start(&broker.bootstrap, data.path(), "api_test").await?;
    let shown = server.ksql_ok("SHOW STREAMS; SHOW QUERIES;").await?;
    let names: Vec<&str> = shown[0]["streams"]
        .as_array()
        .map(|a| a.iter().filter_map(|s| s["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names, vec!["BIG_ORDERS", "EDDY_PROCESSING_LOG", "ORDERS"]);
    let ids: Vec<&str> = shown[1]["queries"]
        .as_array()
        .map(|a| a.iter().filter_map(|q| q["id"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(ids, vec!["CSAS_BIG_ORDERS_1"]);
    Ok(())
}

#[tokio::test]
async fn push_queries() -> Result<()> {
    let broker = Broker::start(BrokerKind::DevKafka)?;
    let data = tempfile::tempdir()?;
    let server = Server::start(&broker.bootstrap, data.path(), "push_test").await?;
    server.ksql_ok(SETUP).await?;
    let earliest = json!({"ksql.streams.auto.offset.reset": "earliest"});

    // /query over HTTP/1.1: header, rows, final message, as one JSON array.
    let mut r = http1()
        .post(format!("{}/query", server.url))
        .header("Content-Type", "application/vnd.ksql.v1+json")
        .json(
            &json!({"ksql": "SELECT * FROM orders EMIT CHANGES LIMIT 3;",
                      "streamsProperties": earliest}),
        )
        .send()
        .await?;
    assert_eq!(r.status().as_u16(), 200);
    let text = read_stream(&mut r, Duration::from_secs(60), |_| false).await?;
    let parsed: Value = serde_json::from_str(&text)?;
    let id = parsed[0]["header"]["queryId"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(id.starts_with("transient_ORDERS_"), "{text}");
    let mut rows: Vec<Value> = parsed
        .as_array()
        .map(|a| a[1..4].to_vec())
        .unwrap_or_default();
    rows.sort_by_key(|r| r["row"]["columns"][0].as_i64());
    assert_eq!(
        without_query_id(parsed[0].clone()),
        json!({"header": {"schema": "`ID` INTEGER, `ITEM` STRING, `QTY` INTEGER"}})
    );
    assert_eq!(
        rows,
        vec![
            json!({"row": {"columns": [1, "apple", 3]}}),
            json!({"row": {"columns": [2, "pear", 5]}}),
            json!({"row": {"columns": [3, "fig", 7]}}),
        ]
    );
    assert_eq!(
        parsed[4],
        json!({"finalMessage": "Limit Reached"}),
        "{text}"
    );
    assert_eq!(parsed.as_array().map(Vec::len), Some(5), "{text}");

    // /query-stream over HTTP/2 cleartext, delimited.
    let mut r = h2c()?
        .post(format!("{}/query-stream", server.url))
        .header("Accept", "application/vnd.ksqlapi.delimited.v1")
        .json(&json!({"sql": "SELECT id, qty * 2 AS twice FROM orders WHERE qty > 4 EMIT CHANGES LIMIT 2;",
                      "properties": {"auto.offset.reset": "earliest"}}))
        .send()
        .await?;
    assert_delimited_over_h2(&r);
    let text = read_stream(&mut r, Duration::from_secs(60), |_| false).await?;
    let got = lines(&text);
    assert_eq!(got.len(), 3, "{text}");
    assert_eq!(
        without_query_id(got[0].clone()),
        json!({"columnNames": ["ID", "TWICE"], "columnTypes": ["INTEGER", "INTEGER"]})
    );
    let mut rows = got[1..].to_vec();
    rows.sort_by_key(|r| r[0].as_i64());
    assert_eq!(rows, vec![json!([2, 10]), json!([3, 14])]);

    // /query-stream as application/json over HTTP/1.1.
    let mut r = http1()
        .post(format!("{}/query-stream", server.url))
        .header("Accept", "application/json")
        .json(
            &json!({"sql": "SELECT item FROM orders WHERE id = 1 EMIT CHANGES LIMIT 1;",
                      "properties": {"auto.offset.reset": "earliest"}}),
        )
        .send()
        .await?;
    let text = read_stream(&mut r, Duration::from_secs(60), |_| false).await?;
    let parsed: Value = serde_json::from_str(&text)?;
    assert_eq!(
        parsed.as_array().map(|a| without_query_id(a[0].clone())),
        Some(json!({"columnNames": ["ITEM"], "columnTypes": ["STRING"]}))
    );
    assert_eq!(parsed[1], json!(["apple"]), "{text}");

    // A pull query on a table: its current rows, then the end of the array.
    server
        .ksql_ok(
            "CREATE TABLE stock (item VARCHAR PRIMARY KEY, n INT) \
               WITH (KAFKA_TOPIC='stock', VALUE_FORMAT='JSON');
             INSERT INTO stock (item, n) VALUES ('apple', 10);
             INSERT INTO stock (item, n) VALUES ('pear', 20);",
        )
        .await?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let pulled = loop {
        let (status, body) = post(
            &http1(),
            &format!("{}/query", server.url),
            "application/json",
            json!({"ksql": "SELECT * FROM stock WHERE item = 'pear';"}).to_string(),
        )
        .await?;
        assert_eq!(status, 200, "{body}");
        if body.as_array().is_some_and(|a| a.len() > 1) || Instant::now() > deadline {
            break body;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        pulled.as_array().map(|a| a[1..].to_vec()),
        Some(vec![json!({"row": {"columns": ["pear", 20]}})]),
        "{pulled}"
    );
    assert_eq!(
        without_query_id(pulled[0].clone()),
        json!({"header": {"schema": "`ITEM` STRING KEY, `N` INTEGER"}})
    );
    // The table may apply its partitions in any order: ask until 'apple' is there too.
    let (text, got) = loop {
        let mut r = h2c()?
            .post(format!("{}/query-stream", server.url))
            .json(&json!({"sql": "SELECT n FROM stock WHERE item = 'apple';", "properties": {}}))
            .send()
            .await?;
        let text = read_stream(&mut r, Duration::from_secs(30), |_| false).await?;
        let got = lines(&text);
        if got.len() > 1 || Instant::now() > deadline {
            break (text, got);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        got.iter().skip(1).cloned().collect::<Vec<_>>(),
        vec![json!([10])],
        "{text}"
    );
    assert_eq!(got[0]["columnNames"], json!(["N"]), "{text}");

    // A push query on a table shows its changes, deletions as tombstones.
    let mut r = http1()
        .post(format!("{}/query", server.url))
        .json(&json!({"ksql": "SELECT * FROM stock EMIT CHANGES LIMIT 3;",
                      "streamsProperties": {"auto.offset.reset": "earliest"}}))
        .send()
        .await?;
    read_stream(&mut r, Duration::from_secs(60), |t| t.contains("pear")).await?;
    let p = common::producer(&broker.bootstrap)?;
    common::produce(&p, "stock", Some(b"apple"), None, 5000).await?;
    let text = read_stream(&mut r, Duration::from_secs(60), |_| false).await?;
    assert!(
        text.contains(r#"{"row":{"columns":["apple",null],"tombstone":true}}"#),
        "{text}"
    );

    // PRINT over /query: the formats it guessed, then one line per record.
    let mut r = http1()
        .post(format!("{}/query", server.url))
        .json(&json!({"ksql": "PRINT 'orders' FROM BEGINNING LIMIT 3;", "streamsProperties": {}}))
        .send()
        .await?;
    assert_eq!(r.status().as_u16(), 200);
    let text = read_stream(&mut r, Duration::from_secs(60), |_| false).await?;
    let printed: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(printed.len(), 5, "{text}");
    assert_eq!(printed[0], "Key format: KAFKA_INT", "{text}");
    assert_eq!(printed[1], "Value format: JSON", "{text}");
    let mut records: Vec<String> = printed[2..]
        .iter()
        .map(|l| {
            assert!(l.starts_with("rowtime: 20"), "{l}");
            assert!(l.contains(" Z, key: "), "{l}");
            l.split(" Z, ").nth(1).unwrap_or("").to_string()
        })
        .collect();
    records.sort();
    let partition = |l: &str| l.rsplit("partition: ").next().unwrap_or("").to_string();
    assert_eq!(
        records
            .iter()
            .map(|l| l
                .rsplit_once(", partition: ")
                .map(|(a, _)| a.to_string())
                .unwrap_or_default())
            .collect::<Vec<_>>(),
        vec![
            r#"key: 1, value: {"ITEM":"apple","QTY":3}"#,
            r#"key: 2, value: {"ITEM":"pear","QTY":5}"#,
            r#"key: 3, value: {"ITEM":"fig","QTY":7}"#,
        ]
    );
    assert!(
        records.iter().all(|l| partition(l).parse::<i32>().is_ok()),
        "{text}"
    );
    // INTERVAL 2 prints every other record: the first and third of three.
    let mut r = http1()
        .post(format!("{}/query", server.url))
        .json(&json!({"ksql": "PRINT 'orders' FROM BEGINNING INTERVAL 2 LIMIT 2;"}))
        .send()
        .await?;
    let text = read_stream(&mut r, Duration::from_secs(60), |_| false).await?;
    assert_eq!(
        text.lines().filter(|l| l.starts_with("rowtime: ")).count(),
        2,
        "{text}"
    );
    let (status, body) = post(
        &http1(),
        &format!("{}/query", server.url),
        "application/json",
        json!({"ksql": "PRINT 'no_such_topic';"}).to_string(),
    )
    .await?;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error_code"], 40400, "{body}");

    // Errors: a pull query ksqlDB refuses, a statement that is not a query, SQL that does
    // not parse.
    for (endpoint, body, code) in [
        (
            "query",
            json!({"ksql": "SELECT * FROM orders WINDOW TUMBLING (SIZE 1 SECOND);"}),
            40001,
        ),
        ("query", json!({"ksql": "SHOW STREAMS;"}), 40001),
        ("query-stream", json!({"sql": "SELEC 1;"}), 40001),
        ("query-stream", json!({"ksql": "SELECT 1;"}), 40000),
    ] {
        let (status, answer) = post(
            &http1(),
            &format!("{}/{endpoint}", server.url),
            "application/json",
            body.to_string(),
        )
        .await?;
        assert_eq!(status, 400, "{endpoint} {body}: {answer}");
        assert_eq!(answer["error_code"], code, "{endpoint} {body}: {answer}");
    }

    // Many push queries at once, multiplexed on one HTTP/2 connection, each with its own
    // consumer and thread.
    let client = h2c()?;
    let mut running = Vec::new();
    for _ in 0..8 {
        let client = client.clone();
        let url = format!("{}/query-stream", server.url);
        running.push(tokio::spawn(async move {
            let mut r = client
                .post(url)
                .json(
                    &json!({"sql": "SELECT id FROM orders EMIT CHANGES LIMIT 3;",
                              "properties": {"auto.offset.reset": "earliest"}}),
                )
                .send()
                .await?;
            let text = read_stream(&mut r, Duration::from_secs(90), |_| false).await?;
            anyhow::Ok(lines(&text).len())
        }));
    }
    for r in running {
        assert_eq!(r.await??, 4);
    }

    // A push query without LIMIT runs until closed with /close-query …
    let mut r = h2c()?
        .post(format!("{}/query-stream", server.url))
        .json(&json!({"sql": "SELECT * FROM orders EMIT CHANGES;",
                      "properties": {"auto.offset.reset": "earliest"}}))
        .send()
        .await?;
    let text = read_stream(&mut r, Duration::from_secs(60), |t| lines(t).len() >= 4).await?;
    let id = lines(&text)[0]["queryId"]
        .as_str()
        .unwrap_or("")
        .to_string();
    // … and sees records written after it started.
    server
        .ksql_ok("INSERT INTO orders (id, item, qty) VALUES (4, 'kiwi', 1);")
        .await?;
    let text = read_stream(&mut r, Duration::from_secs(30), |t| {
        lines(t).iter().any(|l| l[0] == 4)
    })
    .await?;
    assert!(text.contains("[4,\"kiwi\",1]"), "{text}");
    let (status, body) = post(
        &http1(),
        &format!("{}/close-query", server.url),
        "application/json",
        json!({"queryId": id}).to_string(),
    )
    .await?;
    assert_eq!(status, 200, "{body}");
    let started = Instant::now();
    read_stream(&mut r, Duration::from_secs(5), |_| false).await?;
    assert!(started.elapsed() < Duration::from_secs(2));
    let (status, body) = post(
        &http1(),
        &format!("{}/close-query", server.url),
        "application/json",
        json!({"queryId": id}).to_string(),
    )
    .await?;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["@type"], "generic_error", "{body}");

    // TERMINATE over /ksql stops a push query too (any case of its id).
    let mut r = h2c()?
        .post(format!("{}/query-stream", server.url))
        .json(&json!({"sql": "SELECT * FROM orders EMIT CHANGES;",
                      "properties": {"auto.offset.reset": "earliest"}}))
        .send()
        .await?;
    let text = read_stream(&mut r, Duration::from_secs(60), |t| !lines(t).is_empty()).await?;
    let id = lines(&text)[0]["queryId"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let body = server.ksql_ok(&format!("TERMINATE {id};")).await?;
    assert_eq!(
        body[0]["commandStatus"],
        json!({"status": "SUCCESS", "message": "Query terminated.", "queryId": id})
    );
    read_stream(&mut r, Duration::from_secs(5), |_| false).await?;

    // A client that goes away stops its query within a second.
    let mut r = http1()
        .post(format!("{}/query", server.url))
        .json(&json!({"ksql": "SELECT * FROM orders EMIT CHANGES;",
                      "streamsProperties": earliest}))
        .send()
        .await?;
    let text = read_stream(&mut r, Duration::from_secs(60), |t| t.contains("fig")).await?;
    let parsed: Value =
        serde_json::from_str(&format!("{}]", text.trim_end().trim_end_matches(',')))?;
    let id = parsed[0]["header"]["queryId"]
        .as_str()
        .unwrap_or("")
        .to_string();
    // The push queries and PRINTs before this one end their threads only after their
    // answers ended, once their consumers are closed: wait until this query is the only one
    // listed and the only one with a thread.
    let listed = |shown: &Value| {
        shown[0]["queries"]
            .as_array()
            .map_or(0, |a| a.iter().filter(|q| q["queryType"] == "PUSH").count())
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let (shown, threads) = loop {
        let shown = server.ksql_ok("SHOW QUERIES;").await?;
        let threads = push_threads(&server);
        if (listed(&shown) == 1 && threads == 1) || Instant::now() > deadline {
            break (shown, threads);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let push: Vec<&Value> = shown[0]["queries"]
        .as_array()
        .map(|a| a.iter().filter(|q| q["queryType"] == "PUSH").collect())
        .unwrap_or_default();
    assert_eq!(push.len(), 1, "{shown}");
    assert_eq!(push[0]["id"], id.as_str(), "{shown}");
    assert_eq!(
        push[0]["queryString"], "SELECT * FROM orders EMIT CHANGES",
        "{shown}"
    );
    assert_eq!(push[0]["state"], "RUNNING", "{shown}");
    assert_eq!(threads, 1);
    drop(r);
    // Gone from SHOW QUERIES, and its thread (which closes its consumer) has ended.
    let gone_by = Instant::now() + Duration::from_secs(1);
    loop {
        let shown = server.ksql_ok("SHOW QUERIES;").await?;
        let listed = shown[0]["queries"]
            .as_array()
            .is_some_and(|a| a.iter().any(|q| q["id"] == id.as_str()));
        if !listed && push_threads(&server) == 0 {
            break;
        }
        if Instant::now() > gone_by {
            bail!("push query {id} still running a second after its client left: {shown}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

#[tokio::test]
async fn push_queries_over_two_sided_joins() -> Result<()> {
    let broker = Broker::start(BrokerKind::DevKafka)?;
    let data = tempfile::tempdir()?;
    let server = Server::start(&broker.bootstrap, data.path(), "push_join_test").await?;
    server
        .ksql_ok(
            "CREATE STREAM l (id INT KEY, v VARCHAR) WITH (KAFKA_TOPIC='l', VALUE_FORMAT='JSON', PARTITIONS=1);
             CREATE STREAM r (id INT KEY, w VARCHAR) WITH (KAFKA_TOPIC='r', VALUE_FORMAT='JSON', PARTITIONS=1);
             CREATE TABLE tl (id INT PRIMARY KEY, x VARCHAR) WITH (KAFKA_TOPIC='tl', VALUE_FORMAT='JSON', PARTITIONS=1);
             CREATE TABLE tr (id INT PRIMARY KEY, y VARCHAR) WITH (KAFKA_TOPIC='tr', VALUE_FORMAT='JSON', PARTITIONS=1);
             INSERT INTO l (id, v) VALUES (1, 'l1');
             INSERT INTO r (id, w) VALUES (1, 'r1');
             INSERT INTO r (id, w) VALUES (2, 'r2');
             INSERT INTO tl (id, x) VALUES (1, 'x1');
             INSERT INTO tr (id, y) VALUES (1, 'y1');",
        )
        .await?;
    let push = |sql: &str| {
        h2c().map(|client| {
            client
                .post(format!("{}/query-stream", server.url))
                .json(&json!({"sql": sql, "properties": {"auto.offset.reset": "earliest"}}))
                .send()
        })
    };

    // Stream–stream: a record of either side meets the other side's records in the window.
    let mut answer =
        push("SELECT l.id AS id, v, w FROM l JOIN r WITHIN 1 HOUR ON l.id = r.id EMIT CHANGES;")?
            .await?;
    assert_delimited_over_h2(&answer);
    let text = read_stream(&mut answer, Duration::from_secs(60), |t| {
        lines(t).len() >= 2
    })
    .await?;
    assert_eq!(lines(&text)[1..], [json!([1, "l1", "r1"])], "{text}");
    server
        .ksql_ok("INSERT INTO l (id, v) VALUES (2, 'l2');")
        .await?;
    let text = read_stream(&mut answer, Duration::from_secs(60), |t| {
        !lines(t).is_empty()
    })
    .await?;
    assert_eq!(lines(&text), [json!([2, "l2", "r2"])], "{text}");
    drop(answer);

    // Table–table: a change of the right table changes the joined row. (Each side's
    // first record may find the other's row already materialised, so the first joined
    // row can come twice.)
    let mut answer =
        push("SELECT tl.id AS id, x, y FROM tl JOIN tr ON tl.id = tr.id EMIT CHANGES;")?.await?;
    assert_delimited_over_h2(&answer);
    let text = read_stream(&mut answer, Duration::from_secs(60), |t| {
        lines(t).len() >= 2
    })
    .await?;
    assert_eq!(lines(&text)[1], json!([1, "x1", "y1"]), "{text}");
    server
        .ksql_ok("INSERT INTO tr (id, y) VALUES (1, 'y2');")
        .await?;
    let text = read_stream(&mut answer, Duration::from_secs(60), |t| t.contains("y2")).await?;
    let rows = lines(&text);
    assert_eq!(rows.last(), Some(&json!([1, "x1", "y2"])), "{text}");
    assert!(
        rows[..rows.len() - 1]
            .iter()
            .all(|r| r == &json!([1, "x1", "y1"])),
        "{text}"
    );
    Ok(())
}

/// Push queries of every shape a persistent query has (built by the same planner): joins
/// of each kind, aggregations over a stream and over a table, EMIT FINAL, PARTITION BY and
/// EXPLODE. Each answers 200 and streams the rows ksqlDB gives.
#[tokio::test]
async fn push_queries_of_every_shape() -> Result<()> {
    let broker = Broker::start(BrokerKind::DevKafka)?;
    let data = tempfile::tempdir()?;
    let server = Server::start(&broker.bootstrap, data.path(), "push_shapes_test").await?;
    server
        .ksql_ok(
            "CREATE STREAM l (id INT KEY, v VARCHAR) WITH (KAFKA_TOPIC='l', VALUE_FORMAT='JSON', PARTITIONS=1);
             CREATE STREAM w (id INT KEY, v VARCHAR) WITH (KAFKA_TOPIC='w', VALUE_FORMAT='JSON', PARTITIONS=1);
             CREATE TABLE tl (id INT PRIMARY KEY, x VARCHAR) WITH (KAFKA_TOPIC='tl', VALUE_FORMAT='JSON', PARTITIONS=1);
             CREATE TABLE tr (id INT PRIMARY KEY, y VARCHAR) WITH (KAFKA_TOPIC='tr', VALUE_FORMAT='JSON', PARTITIONS=1);
             INSERT INTO l (id, v) VALUES (1, 'a');
             INSERT INTO l (id, v) VALUES (5, 'b');
             INSERT INTO tl (id, x) VALUES (1, 'x1');
             INSERT INTO tr (id, y) VALUES (1, 'y1');
             INSERT INTO tr (id, y) VALUES (3, 'y3');
             INSERT INTO w (ROWTIME, id, v) VALUES (60000, 9, 'p');
             INSERT INTO w (ROWTIME, id, v) VALUES (61000, 9, 'q');
             CREATE TABLE ord (oid INT PRIMARY KEY, tid INT) WITH (KAFKA_TOPIC='ord', VALUE_FORMAT='JSON', PARTITIONS=1);
             INSERT INTO ord (oid, tid) VALUES (100, 1);",
        )
        .await?;
    let client = h2c()?;
    let push = |sql: &'static str| {
        client
            .post(format!("{}/query-stream", server.url))
            .json(&json!({"sql": sql, "properties": {"auto.offset.reset": "earliest"}}))
            .send()
    };
    // The rows (after the header) once `done` holds for them, sorted.
    async fn rows(
        response: reqwest::Response,
        done: impl Fn(&[Value]) -> bool,
    ) -> Result<Vec<Value>> {
        let mut response = response;
        assert_delimited_over_h2(&response);
        let text = read_stream(&mut response, Duration::from_secs(60), |t| {
            let l = lines(t);
            l.len() > 1 && done(&l[1..])
        })
        .await?;
        // Rows of different keys may come from different partitions, in any order.
        let mut rows = lines(&text)[1..].to_vec();
        rows.sort_by_key(|r| r.to_string());
        Ok(rows)
    }

    // Stream–table, LEFT: a stream row without a table row keeps nulls.
    let got = rows(
        push("SELECT l.id AS id, v, x FROM l LEFT JOIN tl ON l.id = tl.id EMIT CHANGES;").await?,
        |r| r.len() >= 2,
    )
    .await?;
    assert_eq!(got, [json!([1, "a", "x1"]), json!([5, "b", null])]);

    // Table–table, FULL: a right row without a left row is a result too.
    let got = rows(
        push("SELECT tl.id AS lid, tr.id AS rid, x, y FROM tl FULL JOIN tr ON tl.id = tr.id EMIT CHANGES;")
            .await?,
        |r| r.contains(&json!([null, 3, null, "y3"])) && r.contains(&json!([1, 1, "x1", "y1"])),
    )
    .await?;
    assert!(
        got.iter().all(|r| r == &json!([null, 3, null, "y3"])
            || r == &json!([1, 1, "x1", "y1"])
            || r == &json!([1, null, "x1", null])),
        "{got:?}"
    );

    // Foreign-key table–table join: keyed by the left table's key; a new left row joins
    // the right row its foreign key names.
    let mut answer =
        push("SELECT ord.oid AS oid, x FROM ord JOIN tl ON ord.tid = tl.id EMIT CHANGES;").await?;
    assert_delimited_over_h2(&answer);
    let text = read_stream(&mut answer, Duration::from_secs(60), |t| {
        lines(t).len() >= 2
    })
    .await?;
    assert_eq!(lines(&text)[1..], [json!([100, "x1"])], "{text}");
    server
        .ksql_ok("INSERT INTO ord (oid, tid) VALUES (101, 1);")
        .await?;
    let text = read_stream(&mut answer, Duration::from_secs(60), |t| {
        !lines(t).is_empty()
    })
    .await?;
    assert_eq!(lines(&text), [json!([101, "x1"])], "{text}");
    drop(answer);

    // Aggregation over a stream.
    let got = rows(
        push("SELECT v, COUNT(*) AS n FROM l GROUP BY v EMIT CHANGES;").await?,
        |r| r.len() >= 2,
    )
    .await?;
    assert_eq!(got, [json!(["a", 1]), json!(["b", 1])]);

    // Aggregation over a table: a row that changes group leaves its old group.
    let mut answer = push("SELECT x, COUNT(*) AS n FROM tl GROUP BY x EMIT CHANGES;").await?;
    assert_delimited_over_h2(&answer);
    let text = read_stream(&mut answer, Duration::from_secs(60), |t| {
        lines(t).len() >= 2
    })
    .await?;
    assert_eq!(lines(&text)[1..], [json!(["x1", 1])], "{text}");
    server
        .ksql_ok("INSERT INTO tl (id, x) VALUES (2, 'x1');")
        .await?;
    let text = read_stream(&mut answer, Duration::from_secs(60), |t| {
        !lines(t).is_empty()
    })
    .await?;
    assert_eq!(lines(&text), [json!(["x1", 2])], "{text}");
    server
        .ksql_ok("INSERT INTO tl (id, x) VALUES (2, 'x2');")
        .await?;
    let text = read_stream(&mut answer, Duration::from_secs(60), |t| {
        lines(t).len() >= 2
    })
    .await?;
    assert_eq!(lines(&text), [json!(["x1", 1]), json!(["x2", 1])], "{text}");
    drop(answer);

    // EMIT FINAL: a window's one result, once a later record closes it.
    let mut answer = push(
        "SELECT id, COUNT(*) AS n FROM w WINDOW TUMBLING (SIZE 1 MINUTE, GRACE PERIOD 0 SECONDS) \
         GROUP BY id EMIT FINAL;",
    )
    .await?;
    assert_delimited_over_h2(&answer);
    read_stream(&mut answer, Duration::from_secs(60), |t| {
        !lines(t).is_empty()
    })
    .await?;
    server
        .ksql_ok("INSERT INTO w (ROWTIME, id, v) VALUES (200000, 9, 'r');")
        .await?;
    let text = read_stream(&mut answer, Duration::from_secs(60), |t| {
        !lines(t).is_empty()
    })
    .await?;
    assert_eq!(lines(&text), [json!([9, 2])], "{text}");
    drop(answer);

    // PARTITION BY: the rows, rekeyed.
    let got = rows(
        push("SELECT v, id FROM l PARTITION BY v EMIT CHANGES;").await?,
        |r| r.len() >= 2,
    )
    .await?;
    assert_eq!(got, [json!(["a", 1]), json!(["b", 5])]);

    // EXPLODE: a row per element.
    let got = rows(
        push("SELECT id, EXPLODE(ARRAY[10, 20]) AS e FROM l EMIT CHANGES;").await?,
        |r| r.len() >= 4,
    )
    .await?;
    assert_eq!(
        got,
        [
            json!([1, 10]),
            json!([1, 20]),
            json!([5, 10]),
            json!([5, 20])
        ]
    );
    Ok(())
}

/// The foreign-key join of issue 17, as a new user tries it, through a real broker: keyed
/// by the order, joined on the order's customer, following changes of either side.
#[tokio::test]
async fn a_foreign_key_join_through_the_broker() -> Result<()> {
    let broker = Broker::start(BrokerKind::DevKafka)?;
    let data = tempfile::tempdir()?;
    let server = Server::start(&broker.bootstrap, data.path(), "fk_test").await?;
    server
        .ksql_ok(
            "CREATE TABLE orders (oid INT PRIMARY KEY, cid INT, amt INT) WITH (KAFKA_TOPIC='orders', VALUE_FORMAT='JSON', PARTITIONS=1);
             CREATE TABLE cust (cid INT PRIMARY KEY, name VARCHAR) WITH (KAFKA_TOPIC='cust', VALUE_FORMAT='JSON', PARTITIONS=1);
             INSERT INTO cust (cid, name) VALUES (7, 'seven');
             INSERT INTO cust (cid, name) VALUES (1, 'one');
             INSERT INTO orders (oid, cid, amt) VALUES (1, 7, 100);",
        )
        .await?;
    let (status, body) = server
        .ksql(
            "CREATE TABLE oc AS SELECT o.oid, o.cid, o.amt, c.name FROM orders o JOIN cust c ON o.cid = c.cid;",
            json!({"ksql.streams.auto.offset.reset": "earliest"}),
        )
        .await?;
    assert_eq!(status, 200, "{body}");
    common::await_pull(
        &server,
        "SELECT * FROM oc;",
        &[json!([1, 7, 100, "seven"])],
        Duration::from_secs(60),
    )
    .await?;
    // The customer changes: the order's row follows.
    server
        .ksql_ok("INSERT INTO cust (cid, name) VALUES (7, 'SEVEN');")
        .await?;
    common::await_pull(
        &server,
        "SELECT * FROM oc;",
        &[json!([1, 7, 100, "SEVEN"])],
        Duration::from_secs(60),
    )
    .await?;
    // The order moves to another customer: the old match is left.
    server
        .ksql_ok("INSERT INTO orders (oid, cid, amt) VALUES (1, 1, 100);")
        .await?;
    common::await_pull(
        &server,
        "SELECT * FROM oc;",
        &[json!([1, 1, 100, "one"])],
        Duration::from_secs(60),
    )
    .await?;
    server
        .ksql_ok("INSERT INTO cust (cid, name) VALUES (7, 'not order 1''s');")
        .await?;
    server
        .ksql_ok("INSERT INTO orders (oid, cid, amt) VALUES (2, 1, 5);")
        .await?;
    common::await_pull(
        &server,
        "SELECT * FROM oc;",
        &[json!([1, 1, 100, "one"]), json!([2, 1, 5, "one"])],
        Duration::from_secs(60),
    )
    .await?;
    Ok(())
}

/// A join of three sources in one query, through a real broker: clicks and views of the
/// same page within an hour, with the clicking user's name from a table. Checks the
/// output topic's exact records, and that the query shows its three sources.
#[tokio::test]
async fn a_three_way_join_through_the_broker() -> Result<()> {
    let broker = Broker::start(BrokerKind::DevKafka)?;
    let data = tempfile::tempdir()?;
    let server = Server::start(&broker.bootstrap, data.path(), "three_way_test").await?;
    server
        .ksql_ok(
            "CREATE STREAM clicks (id INT KEY, userid INT, url VARCHAR) WITH (KAFKA_TOPIC='clicks', VALUE_FORMAT='JSON', PARTITIONS=1);
             CREATE STREAM views (id INT KEY, secs INT) WITH (KAFKA_TOPIC='views', VALUE_FORMAT='JSON', PARTITIONS=1);
             CREATE TABLE users (userid INT PRIMARY KEY, name VARCHAR) WITH (KAFKA_TOPIC='users', VALUE_FORMAT='JSON', PARTITIONS=1);
             INSERT INTO users (userid, name) VALUES (7, 'ada');",
        )
        .await?;
    let (status, body) = server
        .ksql(
            "CREATE STREAM visits AS SELECT c.userid AS userid, c.id AS id, url, secs, name \
             FROM clicks c JOIN views v WITHIN 1 HOUR ON c.id = v.id \
             JOIN users u ON c.userid = u.userid;",
            json!({"ksql.streams.auto.offset.reset": "earliest"}),
        )
        .await?;
    assert_eq!(status, 200, "{body}");
    for (i, statement) in [
        "INSERT INTO clicks (id, userid, url, ROWTIME) VALUES (1, 7, '/a', 10000);",
        "INSERT INTO views (id, secs, ROWTIME) VALUES (1, 30, 20000);",
        "INSERT INTO views (id, secs, ROWTIME) VALUES (2, 5, 30000);",
        "INSERT INTO clicks (id, userid, url, ROWTIME) VALUES (3, 8, '/b', 40000);",
        "INSERT INTO views (id, secs, ROWTIME) VALUES (3, 1, 50000);",
        "INSERT INTO clicks (id, userid, url, ROWTIME) VALUES (4, 7, '/c', 60000);",
        "INSERT INTO views (id, secs, ROWTIME) VALUES (4, 2, 7260000);",
    ]
    .iter()
    .enumerate()
    {
        server
            .ksql_ok(statement)
            .await
            .map_err(|e| e.context(format!("input {i}")))?;
    }
    // Click 1 meets view 1 and user 7; view 2 has no click, click 3 no user, and view 4
    // comes two hours after click 4.
    let records = common::read_topic(
        &broker.bootstrap,
        "VISITS",
        Duration::from_secs(60),
        Duration::from_secs(3),
        |r| !r.is_empty(),
    )?;
    assert_eq!(
        records,
        [common::Record {
            key: Some(common::int_key(7)),
            value: Some(json!({"ID": 1, "URL": "/a", "SECS": 30, "NAME": "ada"})),
            timestamp: 20000,
        }]
    );
    let (_, shown) = server.ksql("SHOW QUERIES;", json!({})).await?;
    let query = &shown[0]["queries"][0];
    assert_eq!(query["sinks"], json!(["VISITS"]), "{shown}");
    assert!(
        query["queryString"]
            .as_str()
            .is_some_and(|q| q.contains("JOIN users")),
        "{shown}"
    );
    Ok(())
}

#[tokio::test]
async fn health_tells_the_truth_while_the_broker_is_cut_off() -> Result<()> {
    let broker = Broker::start(BrokerKind::DevKafka)?;
    let data = tempfile::tempdir()?;
    let server = Server::start(&broker.bootstrap, data.path(), "outage_test").await?;
    let (status, body) = server
        .ksql(
            "CREATE STREAM src (id INT KEY, v INT) WITH (KAFKA_TOPIC='src', VALUE_FORMAT='JSON', PARTITIONS=1);
             CREATE STREAM dst AS SELECT * FROM src;",
            json!({"ksql.streams.auto.offset.reset": "earliest"}),
        )
        .await?;
    assert_eq!(status, 200, "{body}");
    let producer = common::producer(&broker.bootstrap)?;
    let send = |id: i32| {
        let producer = producer.clone();
        async move {
            let value = json!({"v": id}).to_string();
            common::produce(
                &producer,
                "src",
                Some(&common::int_key(id)),
                Some(&value),
                1000,
            )
            .await
        }
    };
    for id in 1..=5 {
        send(id).await?;
    }
    let ids = |records: &[common::Record]| -> Vec<i64> {
        let mut ids: Vec<i64> = records
            .iter()
            .filter_map(|r| r.value.as_ref().and_then(|v| v["V"].as_i64()))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    };
    let read = |n: usize| {
        let bootstrap = broker.bootstrap.clone();
        tokio::task::spawn_blocking(move || {
            common::read_topic(
                &bootstrap,
                "DST",
                Duration::from_secs(60),
                Duration::ZERO,
                |r| ids(r).len() >= n,
            )
        })
    };
    assert_eq!(ids(&read(5).await??), (1..=5).collect::<Vec<_>>());

    // Cut off (stopped, its data kept): the health check still answers within a second.
    broker.signal("STOP")?;
    let health = format!("{}/healthcheck", server.url);
    let answer = http1()
        .get(&health)
        .timeout(Duration::from_secs(1))
        .send()
        .await;
    // Records written meanwhile wait in the producer until the broker is back.
    let meanwhile: Vec<_> = (6..=8).map(|id| tokio::spawn(send(id))).collect();
    let resumed = broker.signal("CONT");
    let answer = answer?;
    resumed?;
    for sent in meanwhile {
        sent.await??;
    }
    assert_eq!(answer.status().as_u16(), 503);
    let body: Value = answer.json().await?;
    assert_eq!(body["details"]["kafka"]["isHealthy"], false, "{body}");
    assert_eq!(body["isHealthy"], false, "{body}");

    // Back: healthy again, and the query goes on without a restart, losing nothing.
    let deadline = Instant::now() + Duration::from_secs(60);
    while http1().get(&health).send().await?.status().as_u16() != 200 {
        if Instant::now() > deadline {
            bail!("the server never became healthy again after the broker came back");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for id in 9..=10 {
        send(id).await?;
    }
    assert_eq!(ids(&read(10).await??), (1..=10).collect::<Vec<_>>());
    Ok(())
}

/// Threads of push queries in the server process (Linux names them `eddy-transient_…`,
/// cut to 15 bytes).
fn push_threads(server: &Server) -> usize {
    let dir = format!("/proc/{}/task", server.proc.child.id());
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter(|e| {
                    std::fs::read_to_string(e.path().join("comm"))
                        .is_ok_and(|c| c.starts_with("eddy-transient"))
                })
                .count()
        })
        .unwrap_or(0)
}

#[tokio::test]
async fn healthy_only_after_replay() -> Result<()> {
    let broker = Broker::start(BrokerKind::DevKafka)?;
    let data = tempfile::tempdir()?;
    let mut server = Server::start(&broker.bootstrap, data.path(), "replay_test").await?;
    server.ksql_ok(SETUP).await?;
    server.proc.kill9();

    // Started by hand, to watch it while it replays. Replay is short: it may be over before
    // the first answer, or end between the healthcheck and the statement sent after it. A
    // start that could not be watched while STARTING is killed and started again.
    let mut watched = None;
    for _ in 0..5 {
        let port = common::free_port();
        let proc = common::Proc {
            child: std::process::Command::new(common::eddy_bin())
                .args([
                    "server",
                    "--bootstrap-servers",
                    &broker.bootstrap,
                    "--listen",
                    &format!("127.0.0.1:{port}"),
                    "--data-dir",
                    &data.path().display().to_string(),
                    "--service-id",
                    "replay_test",
                ])
                .env("RUST_LOG", "warn,librdkafka=error,rdkafka=error")
                .stdout(std::process::Stdio::null())
                .spawn()?,
            name: "eddy server".into(),
        };
        let url = format!("http://127.0.0.1:{port}");
        if let Some((starting, healthy)) = watch_replay(&url).await? {
            watched = Some((proc, url, starting, healthy));
            break;
        }
    }
    let Some((_proc, url, (status, body, code, refused), healthy)) = watched else {
        bail!("the server was healthy before it could have replayed its command log");
    };
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["isHealthy"], false, "{body}");
    assert_eq!(body["serverState"], "STARTING", "{body}");
    assert_eq!(
        body["details"]["commandRunner"]["isHealthy"], false,
        "{body}"
    );
    assert_eq!(code, 503, "{refused}");
    assert_eq!(refused["@type"], "generic_error", "{refused}");
    assert_eq!(refused["error_code"], 50300, "{refused}");
    assert_eq!(healthy["serverState"], "RUNNING", "{healthy}");
    // Replayed before it said so.
    let (_, shown) = post(
        &http1(),
        &format!("{url}/ksql"),
        "application/json",
        json!({"ksql": "SHOW STREAMS;"}).to_string(),
    )
    .await?;
    assert!(shown.to_string().contains("\"ORDERS\""), "{shown}");
    Ok(())
}

/// What a starting server answered: the healthcheck's status and body, then the status and
/// body of a statement sent while it was still starting.
type Starting = (u16, Value, u16, Value);

/// Polls the healthcheck of the server at `url` until it is healthy; returns what it
/// answered while STARTING and its first healthy answer. `None` if it was healthy before a
/// statement could be sent, and answered, while it was still starting: a statement counts
/// only if a healthcheck after its answer still says STARTING.
async fn watch_replay(url: &str) -> Result<Option<(Starting, Value)>> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut sent: Option<Starting> = None;
    let mut starting = None;
    loop {
        if Instant::now() > deadline {
            bail!("the restarted server never became healthy");
        }
        let Ok(r) = http1().get(format!("{url}/healthcheck")).send().await else {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        let status = r.status().as_u16();
        let body: Value = r.json().await?;
        if status == 200 {
            return Ok(starting.map(|s| (s, body)));
        }
        if starting.is_none() {
            match sent.take() {
                // Still starting after the statement's answer: it was sent while starting.
                Some(s) => starting = Some(s),
                None => {
                    let (code, refused) = post(
                        &http1(),
                        &format!("{url}/ksql"),
                        "application/json",
                        json!({"ksql": "SHOW STREAMS;"}).to_string(),
                    )
                    .await?;
                    sent = Some((status, body, code, refused));
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn inserts_stream_writes_rows_and_acknowledges_each() -> Result<()> {
    let broker = Broker::start(BrokerKind::DevKafka)?;
    let data = tempfile::tempdir()?;
    let server = Server::start(&broker.bootstrap, data.path(), "inserts_test").await?;
    server
        .ksql_ok(
            "CREATE STREAM ins (id INT KEY, item VARCHAR, qty INT) \
               WITH (KAFKA_TOPIC='ins', VALUE_FORMAT='JSON', PARTITIONS=1);
             CREATE TABLE tab (id INT PRIMARY KEY, v INT) \
               WITH (KAFKA_TOPIC='tab', VALUE_FORMAT='JSON', PARTITIONS=1);",
        )
        .await?;
    let url = format!("{}/inserts-stream", server.url);

    // A good row, a bad one, lower-case names, a blank line, a line that is not JSON, and
    // a last row without a newline.
    let body = "{\"target\": \"ins\"}\n\
                {\"ID\": 1, \"ITEM\": \"apple\", \"QTY\": 3}\n\
                {\"ID\": 2, \"ITEM\": \"pear\", \"QTY\": \"many\"}\n\
                \n\
                {\"id\": 3, \"item\": \"fig\", \"qty\": 7}\n\
                not json\n\
                {\"ID\": 4, \"ITEM\": \"kiwi\"}";
    let r = h2c()?
        .post(&url)
        .header("Content-Type", "application/vnd.ksqlapi.delimited.v1")
        .body(body)
        .send()
        .await?;
    assert_delimited_over_h2(&r);
    let acks = lines(&r.text().await?);
    assert_eq!(acks.len(), 5, "{acks:?}");
    for (seq, ok) in [(0, true), (1, false), (2, true), (3, false), (4, true)] {
        let ack = &acks[seq];
        assert_eq!(ack["seq"], json!(seq), "{ack}");
        if ok {
            assert_eq!(ack, &json!({"status": "ok", "seq": seq}));
        } else {
            assert_eq!(ack["status"], "error", "{ack}");
            assert_eq!(ack["error_code"], 40000, "{ack}");
        }
    }
    assert!(
        acks[1]["message"].as_str().unwrap_or("").contains("QTY"),
        "{}",
        acks[1]
    );

    // The rows that were acknowledged are in the stream; the others are not.
    let mut r = h2c()?
        .post(format!("{}/query-stream", server.url))
        .json(&json!({"sql": "SELECT * FROM ins EMIT CHANGES LIMIT 3;",
                      "properties": {"auto.offset.reset": "earliest"}}))
        .send()
        .await?;
    let text = read_stream(&mut r, Duration::from_secs(60), |_| false).await?;
    let mut rows = lines(&text)[1..].to_vec();
    rows.sort_by_key(|r| r[0].as_i64());
    assert_eq!(
        rows,
        vec![
            json!([1, "apple", 3]),
            json!([3, "fig", 7]),
            json!([4, "kiwi", null])
        ]
    );

    // Each row is acknowledged as soon as it is written, while the body is still open.
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Vec<u8>>>(4);
    let body = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    });
    tx.send(Ok(
        b"{\"target\": \"ins\"}\n{\"ID\": 5, \"ITEM\": \"plum\"}\n".to_vec(),
    ))
    .await?;
    let mut r = h2c()?
        .post(&url)
        .body(reqwest::Body::wrap_stream(body))
        .send()
        .await?;
    assert_delimited_over_h2(&r);
    let first = read_stream(&mut r, Duration::from_secs(30), |t| t.contains('\n')).await?;
    assert_eq!(lines(&first), vec![json!({"status": "ok", "seq": 0})]);
    tx.send(Ok(b"{\"ID\": 6, \"ITEM\": \"lime\"}\n".to_vec()))
        .await?;
    drop(tx);
    let rest = read_stream(&mut r, Duration::from_secs(30), |_| false).await?;
    assert_eq!(lines(&rest), vec![json!({"status": "ok", "seq": 1})]);

    // DESCRIBE EXTENDED reports what this server's queries read and wrote.
    let (status, body) = server
        .ksql(
            "CREATE STREAM big AS SELECT * FROM ins WHERE qty > 0;",
            json!({"ksql.streams.auto.offset.reset": "earliest"}),
        )
        .await?;
    assert_eq!(status, 200, "{body}");
    let statistics = |v: &Value| {
        v[0]["sourceDescription"]["statistics"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    let consumed = |read: &str| -> u64 {
        read.split("consumer-total-messages:")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    // The two outputs can be written before the query has read every partition of the
    // input, so wait for both counts: the outputs, and the five rows read.
    let deadline = Instant::now() + Duration::from_secs(60);
    let (read, written) = loop {
        let read = statistics(&server.ksql_ok("DESCRIBE ins EXTENDED;").await?);
        let written = statistics(&server.ksql_ok("DESCRIBE big EXTENDED;").await?);
        if written.contains("total-messages:         2") && consumed(&read) >= 5 {
            break (read, written);
        }
        if Instant::now() > deadline {
            bail!(
                "DESCRIBE EXTENDED never counted the query's input and output: {read:?} {written:?}"
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // The query read the five rows; the push query above read some of them too.
    assert!((5..=10).contains(&consumed(&read)), "{read}");
    assert!(read.contains("last-message: 20"), "{read}");
    assert!(written.contains("messages-per-sec:"), "{written}");
    assert_eq!(statistics(&server.ksql_ok("DESCRIBE big;").await?), "");

    // Refused before any row is read: no target, a table, a stream that does not exist,
    // over HTTP/1.1 as well.
    for (body, status, says) in [
        ("{\"into\": \"ins\"}\n{\"ID\": 9}", 400, "target"),
        ("[1]", 400, "JSON object"),
        ("", 400, "empty"),
        ("{\"target\": \"tab\"}\n{\"ID\": 9, \"V\": 1}", 400, "table"),
        ("{\"target\": \"nope\"}\n{\"ID\": 9}", 404, "unknown stream"),
    ] {
        let (code, answer) = post(&http1(), &url, "application/json", body.to_string()).await?;
        assert_eq!(code, status, "{body}: {answer}");
        assert!(
            answer["message"].as_str().unwrap_or("").contains(says),
            "{body}: {answer}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn the_server_runs_with_two_malloc_arenas() -> Result<()> {
    let broker = Broker::start(BrokerKind::DevKafka)?;
    let data = tempfile::tempdir()?;
    let server = Server::start(&broker.bootstrap, data.path(), "arenas_test").await?;
    // Restarted in place: same pid, now with the setting glibc reads at start.
    let environ = std::fs::read(format!("/proc/{}/environ", server.proc.child.id()))?;
    let vars: Vec<&[u8]> = environ.split(|b| *b == 0).collect();
    assert!(
        vars.contains(&&b"MALLOC_ARENA_MAX=2"[..]),
        "{}",
        String::from_utf8_lossy(&environ)
    );
    Ok(())
}

/// The topics the broker has.
fn topic_names(bootstrap: &str) -> Result<Vec<String>> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer = common::client_config(bootstrap).create()?;
    let metadata = consumer.fetch_metadata(None, Duration::from_secs(10))?;
    Ok(metadata
        .topics()
        .iter()
        .map(|t| t.name().to_string())
        .collect())
}

#[tokio::test]
async fn valid_properties_and_json_acks() -> Result<()> {
    let broker = Broker::start(BrokerKind::DevKafka)?;
    let data = tempfile::tempdir()?;
    let server = Server::start_with_env(
        &broker.bootstrap,
        data.path(),
        "surface_",
        &[(
            "KSQL_KSQL_PROPERTIES_OVERRIDES_DENYLIST",
            "ksql.streams.num.stream.threads",
        )],
    )
    .await?;
    let client = http1();

    // /is_valid_property: true, or the denylist's error; the same error for a request
    // property and for SET.
    let valid = client
        .get(format!(
            "{}/is_valid_property/auto.offset.reset",
            server.url
        ))
        .send()
        .await?;
    assert_eq!(valid.status(), 200);
    assert_eq!(valid.json::<Value>().await?, json!(true));
    let denied = "One or more properties overrides set locally are prohibited by the KSQL \
                  server (use UNSET to reset their default value): \
                  [ksql.streams.num.stream.threads]";
    let invalid = client
        .get(format!(
            "{}/is_valid_property/ksql.streams.num.stream.threads",
            server.url
        ))
        .send()
        .await?;
    assert_eq!(invalid.status(), 400);
    assert_eq!(
        invalid.json::<Value>().await?,
        json!({"@type": "generic_error", "error_code": 40000, "message": denied})
    );
    let (status, body) = server
        .ksql(
            "SHOW STREAMS;",
            json!({"ksql.streams.num.stream.threads": "4"}),
        )
        .await?;
    assert_eq!((status, &body["message"]), (400, &json!(denied)), "{body}");
    let (status, body) = server
        .ksql(
            "SET 'ksql.streams.num.stream.threads'='4'; SHOW STREAMS;",
            json!({}),
        )
        .await?;
    assert_eq!((status, &body["message"]), (400, &json!(denied)), "{body}");

    // /inserts-stream answers one JSON array to a client that asks for JSON, over HTTP/2.
    server
        .ksql_ok(
            "CREATE STREAM acks (id INT KEY, qty INT) \
               WITH (KAFKA_TOPIC='acks', VALUE_FORMAT='JSON', PARTITIONS=1);
             CREATE STREAM big_acks AS SELECT * FROM acks WHERE qty > 1;
             CREATE STREAM kept AS SELECT * FROM acks;",
        )
        .await?;
    let r = h2c()?
        .post(format!("{}/inserts-stream", server.url))
        .header("Accept", "application/json")
        .body(
            "{\"target\": \"acks\"}\n{\"ID\": 1, \"QTY\": 2}\n{\"ID\": 2, \"QTY\": \"x\"}\n\
             {\"ID\": 3, \"QTY\": 4}\n",
        )
        .send()
        .await?;
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    assert_eq!(r.headers()["content-type"], "application/json");
    let acks: Value = serde_json::from_str(&r.text().await?)?;
    let acks = acks.as_array().cloned().unwrap_or_default();
    assert_eq!(acks.len(), 3, "{acks:?}");
    assert_eq!(acks[0], json!({"status": "ok", "seq": 0}));
    assert_eq!(
        (&acks[1]["status"], &acks[1]["seq"]),
        (&json!("error"), &json!(1))
    );
    assert_eq!(acks[2], json!({"status": "ok", "seq": 2}));
    // Without rows the array is empty.
    let r = h2c()?
        .post(format!("{}/inserts-stream", server.url))
        .header("Accept", "application/json")
        .body("{\"target\": \"acks\"}\n")
        .send()
        .await?;
    assert_eq!(serde_json::from_str::<Value>(&r.text().await?)?, json!([]));

    // The dev broker cannot delete topics: TERMINATE CLUSTER is refused and changes
    // nothing.
    let (status, body) = post(
        &client,
        &format!("{}/ksql/terminate", server.url),
        "application/vnd.ksql.v1+json",
        "{}".to_string(),
    )
    .await?;
    assert_eq!(status, 500, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or("")
            .contains("DeleteTopics"),
        "{body}"
    );
    server.ksql_ok("SHOW STREAMS;").await?;
    Ok(())
}

#[tokio::test]
async fn terminating_the_cluster() -> Result<()> {
    // tansu deletes topics (the dev broker cannot).
    let broker = Broker::start(BrokerKind::Tansu)?;
    let data = tempfile::tempdir()?;
    let server = Server::start(&broker.bootstrap, data.path(), "surface_").await?;
    let client = http1();
    server
        .ksql_ok(
            "CREATE STREAM acks (id INT KEY, qty INT) \
               WITH (KAFKA_TOPIC='acks', VALUE_FORMAT='JSON', PARTITIONS=1);
             CREATE STREAM big_acks AS SELECT * FROM acks WHERE qty > 1;
             CREATE STREAM kept AS SELECT * FROM acks;",
        )
        .await?;

    // A bad deleteTopicList changes nothing.
    let (status, body) = post(
        &client,
        &format!("{}/ksql/terminate", server.url),
        "application/vnd.ksql.v1+json",
        json!({"deleteTopicList": ["BIG_ACKS", "(unclosed"]}).to_string(),
    )
    .await?;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"].as_str().unwrap_or("").contains("(unclosed"),
        "{body}"
    );
    server.ksql_ok("SHOW STREAMS;").await?;

    // TERMINATE CLUSTER: queries gone, the listed query topics and the command topic
    // deleted, other topics kept, and no statement accepted afterwards.
    let (status, body) = post(
        &client,
        &format!("{}/ksql/terminate", server.url),
        "application/vnd.ksql.v1+json",
        json!({"deleteTopicList": ["BIG_.*", "acks"]}).to_string(),
    )
    .await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body[0]["commandStatus"]["status"],
        json!("SUCCESS"),
        "{body}"
    );
    let topics = topic_names(&broker.bootstrap)?;
    assert!(!topics.contains(&"BIG_ACKS".to_string()), "{topics:?}");
    assert!(
        !topics.contains(&"_eddy_surface__commands".to_string()),
        "{topics:?}"
    );
    // KEPT was not listed, and `acks` was written by no query.
    assert!(topics.contains(&"KEPT".to_string()), "{topics:?}");
    assert!(topics.contains(&"acks".to_string()), "{topics:?}");
    let (status, body) = server.ksql("SHOW STREAMS;", json!({})).await?;
    assert_eq!(status, 503, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or("")
            .contains("terminated"),
        "{body}"
    );

    // A restarted server starts empty.
    let mut server = server;
    server.proc.kill9();
    let server = Server::start(&broker.bootstrap, data.path(), "surface_").await?;
    let body = server.ksql_ok("SHOW STREAMS;").await?;
    let names: Vec<&str> = body[0]["streams"]
        .as_array()
        .map(|s| s.iter().filter_map(|s| s["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names, ["EDDY_PROCESSING_LOG"], "{body}");
    Ok(())
}

#[tokio::test]
async fn metrics_for_prometheus() -> Result<()> {
    let broker = Broker::start(BrokerKind::DevKafka)?;
    let data = tempfile::tempdir()?;
    let server = Server::start(&broker.bootstrap, data.path(), "metrics_test").await?;
    let (status, created) = server
        .ksql(
            "CREATE STREAM m_in (id INT KEY, v INT) \
               WITH (KAFKA_TOPIC='m_in', VALUE_FORMAT='JSON', PARTITIONS=1);
             CREATE STREAM m_out AS SELECT id, v * 2 AS w FROM m_in WHERE v > 0;
             CREATE TABLE m_counts AS SELECT id, COUNT(*) AS n FROM m_in GROUP BY id;",
            json!({"ksql.streams.auto.offset.reset": "earliest"}),
        )
        .await?;
    assert_eq!(status, 200, "{created}");
    let query_id = created[1]["commandStatus"]["queryId"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(query_id.starts_with("CSAS_M_OUT"), "{created}");
    // Three good records, one filtered out, one the query cannot read.
    let p = common::producer(&broker.bootstrap)?;
    for (id, value) in [
        (1, "{\"V\": 1}"),
        (2, "{\"V\": 2}"),
        (3, "{\"V\": 0}"),
        (4, "not json"),
        (5, "{\"V\": 5}"),
    ] {
        common::produce(&p, "m_in", Some(&common::int_key(id)), Some(value), 1_000).await?;
    }
    let labels = format!("{{query_id=\"{query_id}\"}}");
    let deadline = Instant::now() + Duration::from_secs(60);
    let text = loop {
        let r = http1()
            .get(format!("{}/metrics", server.url))
            .send()
            .await?;
        assert_eq!(r.status(), 200);
        assert!(
            r.headers()["content-type"]
                .to_str()?
                .starts_with("application/openmetrics-text"),
            "{:?}",
            r.headers()
        );
        let text = r.text().await?;
        let held = "eddy_query_held_state_bytes{query_id=\"CTAS_M_COUNTS_2\",\
                    store=\"aggregate_CTAS_M_COUNTS_2\"}";
        if sample(&text, &format!("eddy_query_records_read_total{labels}")) == Some(5.0)
            && text.contains(&format!("eddy_query_consumer_lag{{query_id=\"{query_id}\""))
            && sample(&text, held).is_some_and(|b| b > 0.0)
        {
            break text;
        }
        if Instant::now() > deadline {
            bail!("the query's batch never showed in the metrics:\n{text}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        sample(&text, &format!("eddy_query_records_written_total{labels}")),
        Some(3.0),
        "{text}"
    );
    // Three records of JSON {"W":…} values and 4-byte keys.
    assert!(
        sample(&text, &format!("eddy_query_written_bytes_total{labels}"))
            .is_some_and(|b| b >= 3.0 * (4.0 + 7.0)),
        "{text}"
    );
    assert!(
        sample(
            &text,
            "eddy_state_store_size_bytes{store=\"aggregate_CTAS_M_COUNTS_2\"}"
        )
        .is_some(),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            &format!("eddy_query_processing_errors_total{labels}")
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            &format!(
                "eddy_query_consumer_lag{{query_id=\"{query_id}\",topic=\"m_in\",partition=\"0\"}}"
            )
        ),
        Some(0.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            &format!("eddy_query_state{{query_id=\"{query_id}\",state=\"RUNNING\"}}")
        ),
        Some(1.0),
        "{text}"
    );
    assert!(
        sample(
            &text,
            &format!("eddy_query_batch_duration_seconds_count{labels}")
        )
        .is_some_and(|n| n >= 1.0),
        "{text}"
    );
    assert!(
        sample(
            &text,
            "eddy_http_requests_total{endpoint=\"/ksql\",method=\"POST\",status=\"200\"}"
        )
        .is_some_and(|n| n >= 1.0),
        "{text}"
    );
    assert!(
        sample(&text, "eddy_process_resident_memory_bytes").is_some_and(|b| b > 1e6),
        "{text}"
    );
    assert!(
        sample(&text, "eddy_command_log_position").is_some_and(|p| p >= 1.0),
        "{text}"
    );
    // Prometheus' own parser reads it, and every name keeps Prometheus' rules.
    let families = check_with_prometheus_parser(&text)?;
    for family in [
        "eddy_query_records_read counter",
        "eddy_query_consumer_lag gauge",
        "eddy_query_batch_duration_seconds histogram",
        "eddy_http_requests counter",
        "eddy_process_cpu_seconds counter",
    ] {
        assert!(families.contains(family), "{family} not in\n{families}");
    }

    // DESCRIBE … EXTENDED shows where the query's consumer stands, as ksqlDB does.
    let described = server.ksql_ok("DESCRIBE m_out EXTENDED;").await?;
    let summaries = &described[0]["sourceDescription"]["queryOffsetSummaries"];
    assert_eq!(
        summaries[0]["groupId"],
        json!(format!("_eddy_metrics_test_query_{query_id}")),
        "{described}"
    );
    let topic = &summaries[0]["topicSummaries"][0];
    assert_eq!(topic["kafkaTopic"], json!("m_in"), "{described}");
    // Every record read (the dev broker spreads them over its own partition count).
    let offsets = topic["offsets"].as_array().cloned().unwrap_or_default();
    let end: i64 = offsets
        .iter()
        .filter_map(|p| p["logEndOffset"].as_i64())
        .sum();
    assert_eq!(end, 5, "{described}");
    assert!(
        offsets
            .iter()
            .all(|p| p["consumerOffset"] == p["logEndOffset"] && p["logStartOffset"] == json!(0)),
        "{described}"
    );

    // A terminated query's series go.
    server.ksql_ok(&format!("TERMINATE {query_id};")).await?;
    let text = http1()
        .get(format!("{}/metrics", server.url))
        .send()
        .await?
        .text()
        .await?;
    assert!(!text.contains(&query_id), "{text}");
    Ok(())
}

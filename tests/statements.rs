//! ksqlDB statements beyond streams, tables and queries, through the built binary's REST API
//! on `eddy dev-kafka`: variables (`DEFINE`, `UNDEFINE`, `SHOW VARIABLES`, `${name}`, the
//! `sessionVariables` of a request).

mod common;

use anyhow::Result;
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

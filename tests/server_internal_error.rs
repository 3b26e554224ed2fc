//! Error code 50000: a statement the broker cannot carry out is a server-side error with
//! ksqlDB's shape, and (like every failed statement) changes nothing.

mod common;

use anyhow::Result;
use common::{Broker, BrokerKind, Server};
use serde_json::json;

#[tokio::test]
async fn a_broker_refusal_is_a_50000_and_changes_nothing() -> Result<()> {
    // `eddy dev-kafka` (librdkafka's mock cluster) does not implement DeleteTopics.
    let broker = Broker::start(BrokerKind::DevKafka)?;
    let data = tempfile::tempdir()?;
    let server = Server::start(&broker.bootstrap, data.path(), "err_test").await?;
    server
        .ksql_ok("CREATE STREAM s (id INT KEY, v INT) WITH (KAFKA_TOPIC='s', VALUE_FORMAT='JSON');")
        .await?;

    let (status, body) = server
        .ksql("DROP STREAM s DELETE TOPIC;", json!({}))
        .await?;
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["@type"], "statement_error", "{body}");
    assert_eq!(body["error_code"], 50000, "{body}");
    assert_eq!(
        body["statementText"], "DROP STREAM s DELETE TOPIC",
        "{body}"
    );
    assert_eq!(body["entities"], json!([]), "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.contains("DeleteTopics"), "{message}");

    // The stream is still there.
    let shown = server.ksql_ok("SHOW STREAMS;").await?;
    let names: Vec<&str> = shown[0]["streams"]
        .as_array()
        .map(|a| a.iter().filter_map(|s| s["name"].as_str()).collect())
        .unwrap_or_default();
    assert!(
        names.contains(&"S"),
        "SHOW STREAMS after the failed DROP: {shown}"
    );
    Ok(())
}

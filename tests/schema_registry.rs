//! AVRO, PROTOBUF and JSON_SR with Confluent's own client library (`confluent-kafka` for
//! Python, installed by `.ci/run`) against the server's built-in schema registry, through a
//! real broker: `tests/python/registry_clients.py` produces with AvroSerializer, declares a
//! stream without columns, filters it, reads the output with AvroDeserializer, joins it with
//! a table produced with ProtobufSerializer into a stream read with ProtobufDeserializer,
//! copies a JSONSerializer stream into one read with JSONDeserializer, and checks that a
//! record with an unknown schema id goes to the processing log. A missing package fails the
//! test.

mod common;

use std::process::Command;

use anyhow::{Context, Result, bail};
use common::{Broker, BrokerKind, Server, free_port};

/// The column names a `DESCRIBE` answer lists.
fn described_fields(described: &serde_json::Value) -> Vec<&str> {
    described[0]["sourceDescription"]["fields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["name"].as_str())
        .collect()
}

#[tokio::test]
async fn confluent_clients_read_and_write_through_the_built_in_registry() -> Result<()> {
    let probe = Command::new("python3")
        .args([
            "-c",
            "import confluent_kafka.schema_registry.avro, confluent_kafka.schema_registry.protobuf, \
             confluent_kafka.schema_registry.json_schema, fastavro, google.protobuf, jsonschema",
        ])
        .output()
        .context("running python3")?;
    if !probe.status.success() {
        bail!(
            "the Python package confluent-kafka with its Avro, Protobuf and JSON extras is not \
             installed (pip install 'confluent-kafka[avro,protobuf,json,schemaregistry]'; \
             .ci/run does it): {}",
            String::from_utf8_lossy(&probe.stderr)
        );
    }
    let broker = Broker::start(BrokerKind::DevKafka)?;
    let data = tempfile::tempdir()?;
    let registry_port = free_port();
    let listen = format!("127.0.0.1:{registry_port}");
    let service = "avro_test_";
    let server = Server::start_with_env(
        &broker.bootstrap,
        data.path(),
        service,
        &[("EDDY_SCHEMA_REGISTRY_LISTEN", listen.as_str())],
    )
    .await?;
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/python/registry_clients.py"
    );
    let args = [
        script.to_string(),
        broker.bootstrap.clone(),
        server.url.clone(),
        format!("http://{listen}"),
        format!("{service}ksql_processing_log"),
    ];
    let out =
        tokio::task::spawn_blocking(move || Command::new("python3").args(args).output()).await??;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    if !out.status.success() {
        bail!("the confluent-kafka script failed:\n{stdout}\n{stderr}");
    }
    assert!(stdout.contains("all checks passed"), "{stdout}");
    Ok(())
}

/// `sql-examples/reviews-avro.sql` with the sample data of `reviews-data.sql`, on a server
/// with nothing but the dev broker: the pipeline's output is AVRO whose schema the built-in
/// registry serves under the output topic's subject.
#[tokio::test]
async fn the_avro_reviews_pipeline_needs_no_other_service() -> Result<()> {
    let broker = Broker::start(BrokerKind::DevKafka)?;
    let data = tempfile::tempdir()?;
    let listen = format!("127.0.0.1:{}", free_port());
    let server = Server::start_with_env(
        &broker.bootstrap,
        data.path(),
        "avro_reviews",
        &[("EDDY_SCHEMA_REGISTRY_LISTEN", listen.as_str())],
    )
    .await?;
    let read = |name: &str| {
        std::fs::read_to_string(format!(
            "{}/sql-examples/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
    };
    server.ksql_ok(&read("reviews-avro.sql")?).await?;
    server.ksql_ok(&read("reviews-data.sql")?).await?;

    let response = reqwest::Client::new()
        .post(format!("{}/query", server.url))
        .header("Content-Type", "application/vnd.ksql.v1+json")
        .json(&serde_json::json!({
            "ksql": "SELECT ID, USERID, RATING, NAME FROM unhappy_vips EMIT CHANGES LIMIT 1;",
            "streamsProperties": {"auto.offset.reset": "earliest"},
        }))
        .timeout(std::time::Duration::from_secs(60))
        .send()
        .await?;
    let body: serde_json::Value = response.json().await?;
    let rows: Vec<&serde_json::Value> = body
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i.get("row").map(|r| &r["columns"]))
        .collect();
    assert_eq!(rows, [&serde_json::json!([101, 2, 1, "Grace"])], "{body}");

    let latest: serde_json::Value = reqwest::get(format!(
        "http://{listen}/subjects/UNHAPPY_VIPS-value/versions/latest"
    ))
    .await?
    .json()
    .await?;
    let schema: serde_json::Value =
        serde_json::from_str(latest["schema"].as_str().unwrap_or_default())?;
    let fields: Vec<&str> = schema["fields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["name"].as_str())
        .collect();
    // The join re-keys by USERID, so ID is a value column.
    assert_eq!(
        fields,
        ["ID", "RATING", "TEXT", "NAME", "STATUS"],
        "{latest}"
    );
    let id = latest["id"].as_u64().unwrap_or_default();
    assert!(id > 0, "{latest}");
    let key: serde_json::Value = reqwest::get(format!(
        "http://{listen}/subjects/UNHAPPY_VIPS-key/versions/latest"
    ))
    .await?
    .json()
    .await?;
    assert_eq!(key["schema"], r#"["null","int"]"#, "{key}");
    Ok(())
}

/// A server given `--schema-registry-url` registers and fetches its schemas there (here: the
/// built-in registry of another server, over its REST API) and serves none itself.
#[tokio::test]
async fn a_server_with_a_registry_url_uses_that_registry() -> Result<()> {
    let broker = Broker::start(BrokerKind::DevKafka)?;
    let (data_a, data_b) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let listen = format!("127.0.0.1:{}", free_port());
    let _serving = Server::start_with_env(
        &broker.bootstrap,
        data_a.path(),
        "registry_a",
        &[("EDDY_SCHEMA_REGISTRY_LISTEN", listen.as_str())],
    )
    .await?;
    let url = format!("http://{listen}");
    let unused = format!("127.0.0.1:{}", free_port());
    let server = Server::start_with_env(
        &broker.bootstrap,
        data_b.path(),
        "registry_b",
        &[
            ("EDDY_SCHEMA_REGISTRY_URL", url.as_str()),
            ("EDDY_SCHEMA_REGISTRY_LISTEN", unused.as_str()),
        ],
    )
    .await?;
    server
        .ksql_ok(
            "CREATE STREAM pings (id INT KEY, n INT) \
               WITH (KAFKA_TOPIC='pings', FORMAT='AVRO', PARTITIONS=1);\n\
             INSERT INTO pings (id, n) VALUES (1, 10);\n\
             INSERT INTO pings (id, n) VALUES (2, 1);\n\
             CREATE STREAM big AS SELECT * FROM pings WHERE n > 5;\n\
             CREATE STREAM again WITH (KAFKA_TOPIC='BIG', FORMAT='AVRO');",
        )
        .await?;
    let subjects: serde_json::Value = reqwest::get(format!("{url}/subjects"))
        .await?
        .json()
        .await?;
    for subject in ["pings-key", "pings-value", "BIG-key", "BIG-value"] {
        assert!(
            subjects
                .as_array()
                .is_some_and(|s| s.contains(&serde_json::json!(subject))),
            "{subject} not in {subjects}"
        );
    }
    // The stream declared without columns got them from that registry.
    let (_, described) = server
        .ksql("DESCRIBE again;", serde_json::json!({}))
        .await?;
    let fields = described_fields(&described);
    assert_eq!(fields, ["ROWKEY", "N"], "{described}");
    // The server serves no registry of its own.
    assert!(
        reqwest::get(format!("http://{unused}/subjects"))
            .await
            .is_err()
    );
    Ok(())
}

/// Schemas kept by the built-in registry survive a restart (they are in the broker's
/// `_schemas` topic), and so does a stream declared without columns, whose statement the
/// restarted server replays against them.
#[tokio::test]
async fn registered_schemas_and_inferred_streams_survive_a_restart() -> Result<()> {
    let broker = Broker::start(BrokerKind::DevKafka)?;
    let data = tempfile::tempdir()?;
    let listen = format!("127.0.0.1:{}", free_port());
    let env = [("EDDY_SCHEMA_REGISTRY_LISTEN", listen.as_str())];
    let mut server =
        Server::start_with_env(&broker.bootstrap, data.path(), "avro_restart", &env).await?;
    let schema = r#"{"type":"record","name":"Click","fields":[{"name":"page","type":"string"},{"name":"ms","type":"long"}]}"#;
    let registered: serde_json::Value = reqwest::Client::new()
        .post(format!("http://{listen}/subjects/clicks-value/versions"))
        .header("Content-Type", "application/vnd.schemaregistry.v1+json")
        .json(&serde_json::json!({ "schema": schema }))
        .send()
        .await?
        .json()
        .await?;
    let id = registered["id"].as_u64().context("no id")?;
    server
        .ksql_ok("CREATE STREAM clicks WITH (KAFKA_TOPIC='clicks', VALUE_FORMAT='AVRO');")
        .await?;
    server.proc.kill9();
    let server =
        Server::start_with_env(&broker.bootstrap, data.path(), "avro_restart", &env).await?;
    let by_id: serde_json::Value = reqwest::get(format!("http://{listen}/schemas/ids/{id}"))
        .await?
        .json()
        .await?;
    assert_eq!(by_id["schema"], schema, "{by_id}");
    let (_, described) = server
        .ksql("DESCRIBE clicks;", serde_json::json!({}))
        .await?;
    let fields = described_fields(&described);
    assert_eq!(fields, ["PAGE", "MS"], "{described}");
    Ok(())
}

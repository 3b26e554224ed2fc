//! The migrations metadata on the server, kept as ksqlDB's tool keeps it: every state
//! change of a migration is an event in a stream (`MIGRATION_EVENTS`), written twice, under
//! its version and under `CURRENT`; a table (`MIGRATION_SCHEMA_VERSIONS`) keeps the latest
//! event of each key, and is read with pull queries.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

use super::config::MigrationConfig;
use crate::client::Client;
use crate::error::ShellError;
use crate::query_stream::QueryMessage;

/// The key of the event that records the latest migration.
pub const CURRENT: &str = "CURRENT";

/// `previous` of the first migration.
pub const NONE: &str = "<none>";

/// How long a written event may take to reach the table before the tool gives up.
const TABLE_DEADLINE: Duration = Duration::from_secs(60);

/// The state of a migration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MigrationState {
    /// Being applied.
    Running,
    /// Applied.
    Migrated,
    /// A statement failed.
    Error,
}

impl MigrationState {
    /// As written in the metadata.
    pub fn as_str(self) -> &'static str {
        match self {
            MigrationState::Running => "RUNNING",
            MigrationState::Migrated => "MIGRATED",
            MigrationState::Error => "ERROR",
        }
    }
}

/// One row of the metadata table: the latest event of a version (or of `CURRENT`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MigrationRecord {
    /// The version, or `CURRENT`.
    pub version_key: String,
    /// The version.
    pub version: String,
    /// The migration's name (the file's description).
    pub name: String,
    /// `RUNNING`, `MIGRATED` or `ERROR`.
    pub state: String,
    /// The MD5 of the file, in hex.
    pub checksum: String,
    /// When it started, in milliseconds since the epoch.
    pub started_on: String,
    /// When it ended, in milliseconds since the epoch (empty while running).
    pub completed_on: String,
    /// The version applied before it, or `<none>`.
    pub previous: String,
    /// Why it failed (empty unless it did).
    pub error_reason: String,
}

/// The columns of the stream, in order.
const COLUMNS: [&str; 9] = [
    "VERSION_KEY",
    "VERSION",
    "NAME",
    "STATE",
    "CHECKSUM",
    "STARTED_ON",
    "COMPLETED_ON",
    "PREVIOUS",
    "ERROR_REASON",
];

impl MigrationRecord {
    fn values(&self) -> [&str; 9] {
        [
            &self.version_key,
            &self.version,
            &self.name,
            &self.state,
            &self.checksum,
            &self.started_on,
            &self.completed_on,
            &self.previous,
            &self.error_reason,
        ]
    }

    fn from_row(columns: &[String], row: &[Value]) -> MigrationRecord {
        let get = |name: &str| {
            columns
                .iter()
                .position(|c| c.eq_ignore_ascii_case(name))
                .and_then(|i| row.get(i))
                .map(|v| match v {
                    Value::String(s) => s.clone(),
                    Value::Null => String::new(),
                    other => other.to_string(),
                })
                .unwrap_or_default()
        };
        MigrationRecord {
            version_key: get("VERSION_KEY"),
            version: get("VERSION"),
            name: get("NAME"),
            state: get("STATE"),
            checksum: get("CHECKSUM"),
            started_on: get("STARTED_ON"),
            completed_on: get("COMPLETED_ON"),
            previous: get("PREVIOUS"),
            error_reason: get("ERROR_REASON"),
        }
    }

    /// Its version as a number, if it has one.
    pub fn version_number(&self) -> Option<u32> {
        self.version.parse().ok()
    }
}

/// The metadata of one project on one server.
pub struct Metadata<'a> {
    client: &'a Client,
    config: &'a MigrationConfig,
}

impl<'a> Metadata<'a> {
    /// The metadata named by `config` on the server of `client`.
    pub fn new(client: &'a Client, config: &'a MigrationConfig) -> Metadata<'a> {
        Metadata { client, config }
    }

    /// Creates the stream and the table (those that do not exist yet).
    ///
    /// # Errors
    ///
    /// The server's error.
    pub async fn initialize(&self) -> Result<(), ShellError> {
        let service_id = self.client.info().await?.service_id;
        let topic = |configured: &Option<String>, name: &str| {
            configured
                .clone()
                .unwrap_or_else(|| format!("{service_id}ksql_{name}"))
        };
        let (stream, table) = (&self.config.stream_name, &self.config.table_name);
        println!("Creating stream: {stream}");
        self.execute(&format!(
            "CREATE STREAM IF NOT EXISTS {stream} (\n  VERSION_KEY STRING KEY,\n  \
             VERSION STRING,\n  NAME STRING,\n  STATE STRING,\n  CHECKSUM STRING,\n  \
             STARTED_ON STRING,\n  COMPLETED_ON STRING,\n  PREVIOUS STRING,\n  \
             ERROR_REASON STRING\n) WITH (KAFKA_TOPIC='{}', VALUE_FORMAT='JSON', \
             PARTITIONS=1, REPLICAS={})",
            topic(&self.config.stream_topic, stream),
            self.config.replicas
        ))
        .await?;
        println!("Creating table: {table}");
        let latest: Vec<String> = COLUMNS[1..]
            .iter()
            .map(|c| format!("  LATEST_BY_OFFSET({c}) AS {c}"))
            .collect();
        self.execute(&format!(
            "CREATE TABLE IF NOT EXISTS {table} WITH (KAFKA_TOPIC='{}', VALUE_FORMAT='JSON', \
             PARTITIONS=1, REPLICAS={}) AS SELECT\n  VERSION_KEY,\n{}\nFROM {stream} GROUP BY \
             VERSION_KEY",
            topic(&self.config.table_topic, table),
            self.config.replicas,
            latest.join(",\n")
        ))
        .await?;
        Ok(())
    }

    /// Whether the stream and the table exist.
    ///
    /// # Errors
    ///
    /// The server's error.
    pub async fn exists(&self) -> Result<(bool, bool), ShellError> {
        let names = |entities: Vec<Value>, list: &str| -> Vec<String> {
            entities
                .iter()
                .flat_map(|e| e[list].as_array().cloned().unwrap_or_default())
                .filter_map(|s| s["name"].as_str().map(str::to_string))
                .collect()
        };
        let streams = names(self.execute("SHOW STREAMS").await?, "streams");
        let tables = names(self.execute("SHOW TABLES").await?, "tables");
        Ok((
            streams.contains(&self.config.stream_name),
            tables.contains(&self.config.table_name),
        ))
    }

    /// Fails unless the stream and the table exist, saying how to create them.
    ///
    /// # Errors
    ///
    /// [`ShellError::Usage`] when they do not; the server's error.
    pub async fn require(&self) -> Result<(), ShellError> {
        if self.exists().await? != (true, true) {
            return Err(ShellError::Usage(format!(
                "the migrations metadata ({} and {}) is not on the server at {}: run \
                 `eddy migrate --config-file … initialize-metadata` first",
                self.config.stream_name, self.config.table_name, self.config.server_url
            )));
        }
        Ok(())
    }

    /// Every row of the table, by key.
    ///
    /// # Errors
    ///
    /// The server's error.
    pub async fn records(&self) -> Result<BTreeMap<String, MigrationRecord>, ShellError> {
        let response = self
            .client
            .query(
                &format!("SELECT * FROM {}", self.config.table_name),
                &Map::new(),
                &Map::new(),
            )
            .await?;
        let bytes = response.bytes().await?;
        let body: Value = serde_json::from_slice(&bytes).map_err(|e| {
            ShellError::Protocol(format!("the pull query's answer is not JSON: {e}"))
        })?;
        let mut columns = Vec::new();
        let mut records = BTreeMap::new();
        for element in body.as_array().into_iter().flatten() {
            match QueryMessage::from_element(element)? {
                QueryMessage::Header { columns: c, .. } => columns = c,
                QueryMessage::Row(row) => {
                    let record = MigrationRecord::from_row(&columns, &row);
                    records.insert(record.version_key.clone(), record);
                }
                QueryMessage::Error(message) => {
                    return Err(ShellError::Server {
                        code: None,
                        message,
                    });
                }
                QueryMessage::Final(_) | QueryMessage::Text(_) => {}
            }
        }
        Ok(records)
    }

    /// Records `record` under its version and under `CURRENT`, and waits until the table
    /// shows it, so the next command reads what this one wrote.
    ///
    /// # Errors
    ///
    /// The server's error; [`ShellError::Protocol`] if the table does not show the event
    /// within a minute.
    pub async fn record(&self, record: &MigrationRecord) -> Result<(), ShellError> {
        for key in [record.version.as_str(), CURRENT] {
            let event = MigrationRecord {
                version_key: key.to_string(),
                ..record.clone()
            };
            let values: Vec<String> = event.values().iter().map(|v| quote(v)).collect();
            self.execute(&format!(
                "INSERT INTO {} ({}) VALUES ({})",
                self.config.stream_name,
                COLUMNS.join(", "),
                values.join(", ")
            ))
            .await?;
        }
        let deadline = Instant::now() + TABLE_DEADLINE;
        loop {
            let records = self.records().await?;
            let shown = |key: &str| {
                records
                    .get(key)
                    .is_some_and(|r| r.version == record.version && r.state == record.state)
            };
            if shown(CURRENT) && shown(&record.version) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(ShellError::Protocol(format!(
                    "the migrations table {} did not show version {} as {} within {} s",
                    self.config.table_name,
                    record.version,
                    record.state,
                    TABLE_DEADLINE.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Terminates the queries writing the table, then drops the table and the stream
    /// with their topics.
    ///
    /// # Errors
    ///
    /// The server's error.
    pub async fn destroy(&self) -> Result<(), ShellError> {
        let (stream, table) = self.exists().await?;
        if table {
            for entity in self.execute("SHOW QUERIES").await? {
                for query in entity["queries"].as_array().into_iter().flatten() {
                    let writes_table = query["sinks"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|s| s.as_str() == Some(self.config.table_name.as_str()));
                    if let (true, Some(id)) = (writes_table, query["id"].as_str()) {
                        println!("Terminating query with ID: {id}");
                        self.execute(&format!("TERMINATE {id}")).await?;
                    }
                }
            }
            println!(
                "Dropping migrations metadata table: {}",
                self.config.table_name
            );
            self.execute(&format!(
                "DROP TABLE {} DELETE TOPIC",
                self.config.table_name
            ))
            .await?;
        } else {
            println!(
                "Metadata table {} does not exist; skipping.",
                self.config.table_name
            );
        }
        if stream {
            println!(
                "Dropping migrations metadata stream: {}",
                self.config.stream_name
            );
            self.execute(&format!(
                "DROP STREAM {} DELETE TOPIC",
                self.config.stream_name
            ))
            .await?;
        } else {
            println!(
                "Metadata stream {} does not exist; skipping.",
                self.config.stream_name
            );
        }
        Ok(())
    }

    async fn execute(&self, statement: &str) -> Result<Vec<Value>, ShellError> {
        let mut properties = Map::new();
        properties.insert("auto.offset.reset".into(), json!("earliest"));
        self.client.ksql(statement, &properties, &Map::new()).await
    }
}

/// A string literal.
fn quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

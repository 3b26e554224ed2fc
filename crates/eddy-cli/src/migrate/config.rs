//! `ksql-migrations.properties`: the migrations tool's configuration, with ksqlDB's keys.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::client::ConnectOptions;
use crate::error::ShellError;

/// The keys ksqlDB's migrations tool reads; any other key is refused, so a misspelt one
/// does not silently fall back to a default.
const KEYS: &[&str] = &[
    SERVER_URL,
    "ksql.auth.basic.username",
    "ksql.auth.basic.password",
    "ksql.migrations.stream.name",
    "ksql.migrations.table.name",
    "ksql.migrations.stream.topic.name",
    "ksql.migrations.table.topic.name",
    "ksql.migrations.topic.replicas",
    "ksql.migrations.dir.override",
    "ssl.truststore.location",
    "ssl.truststore.password",
    "ssl.keystore.location",
    "ssl.keystore.password",
    "ssl.key.password",
    "ssl.key.alias",
    "ssl.alpn",
    "ssl.verify.host",
];

/// `ksql.server.url`, the one required key.
pub const SERVER_URL: &str = "ksql.server.url";

/// What a migrations command needs to know.
#[derive(Debug, Clone)]
pub struct MigrationConfig {
    /// The server's URL.
    pub server_url: String,
    /// How to connect to it (Basic login, TLS material).
    pub connect: ConnectOptions,
    /// The migrations metadata stream, `MIGRATION_EVENTS` by default.
    pub stream_name: String,
    /// The migrations metadata table, `MIGRATION_SCHEMA_VERSIONS` by default.
    pub table_name: String,
    /// The stream's topic; `<service id>ksql_<stream name>` when not set.
    pub stream_topic: Option<String>,
    /// The table's topic; `<service id>ksql_<table name>` when not set.
    pub table_topic: Option<String>,
    /// Replicas of the two topics.
    pub replicas: u16,
    /// The directory of migration files: `migrations/` beside the config file.
    pub migrations_dir: PathBuf,
}

impl MigrationConfig {
    /// Reads the config file at `path`.
    ///
    /// # Errors
    ///
    /// [`ShellError::Script`] if it cannot be read, [`ShellError::Usage`] for an unknown
    /// key, a missing `ksql.server.url` or a value that is not valid.
    pub fn load(path: &Path) -> Result<MigrationConfig, ShellError> {
        let text = std::fs::read(path).map_err(|source| ShellError::Script {
            path: path.to_path_buf(),
            source,
        })?;
        let properties = java_properties::read(text.as_slice()).map_err(|e| {
            ShellError::Usage(format!("{} is not a properties file: {e}", path.display()))
        })?;
        let mut unknown: Vec<&String> = properties
            .keys()
            .filter(|k| !KEYS.contains(&k.as_str()))
            .collect();
        unknown.sort();
        if let Some(key) = unknown.first() {
            return Err(ShellError::Usage(format!(
                "{}: unknown migrations setting {key:?} (known: {})",
                path.display(),
                KEYS.join(", ")
            )));
        }
        let get = |key: &str| properties.get(key).filter(|v| !v.trim().is_empty());
        let server_url = get(SERVER_URL)
            .ok_or_else(|| {
                ShellError::Usage(format!("{}: {SERVER_URL} is not set", path.display()))
            })?
            .trim()
            .to_string();
        let connect = ConnectOptions::from_properties(&properties)?;
        let login = get("ksql.auth.basic.username")
            .cloned()
            .zip(get("ksql.auth.basic.password").cloned());
        let replicas = match get("ksql.migrations.topic.replicas") {
            None => 1,
            Some(v) => v.trim().parse().map_err(|_| {
                ShellError::Usage(format!(
                    "{}: ksql.migrations.topic.replicas must be a positive number, not {v:?}",
                    path.display()
                ))
            })?,
        };
        let base = path.parent().unwrap_or(Path::new("."));
        let migrations_dir = match get("ksql.migrations.dir.override") {
            Some(dir) => base.join(dir.trim()),
            None => base.join("migrations"),
        };
        Ok(MigrationConfig {
            server_url,
            connect: ConnectOptions { login, ..connect },
            stream_name: name_or(
                &properties,
                "ksql.migrations.stream.name",
                "MIGRATION_EVENTS",
            ),
            table_name: name_or(
                &properties,
                "ksql.migrations.table.name",
                "MIGRATION_SCHEMA_VERSIONS",
            ),
            stream_topic: get("ksql.migrations.stream.topic.name").cloned(),
            table_topic: get("ksql.migrations.table.topic.name").cloned(),
            replicas,
            migrations_dir,
        })
    }
}

fn name_or(properties: &HashMap<String, String>, key: &str, default: &str) -> String {
    properties
        .get(key)
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
        .unwrap_or(default)
        .to_ascii_uppercase()
}

/// The config file `new-project` writes: the server URL set, every other key documented
/// and commented out with its default.
pub fn template(server_url: &str) -> String {
    format!(
        "# The migrations tool's settings (ksqlDB's `ksql-migrations.properties` keys).
{SERVER_URL}={server_url}

# HTTP Basic authentication
# ksql.auth.basic.username=
# ksql.auth.basic.password=

# The metadata stream and table that record which migrations were applied
# ksql.migrations.stream.name=MIGRATION_EVENTS
# ksql.migrations.table.name=MIGRATION_SCHEMA_VERSIONS
# ksql.migrations.stream.topic.name=
# ksql.migrations.table.topic.name=
# ksql.migrations.topic.replicas=1

# Where the migration files are, if not in migrations/ beside this file
# ksql.migrations.dir.override=

# TLS, for an https:// server
# ssl.truststore.location=
# ssl.truststore.password=
# ssl.keystore.location=
# ssl.keystore.password=
# ssl.key.password=
# ssl.key.alias=
# ssl.alpn=false
# ssl.verify.host=true
"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_keys_and_refuses_unknown_ones() -> Result<(), ShellError> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("ksql-migrations.properties");
        std::fs::write(&path, template("http://localhost:8088"))?;
        let config = MigrationConfig::load(&path)?;
        assert_eq!(config.server_url, "http://localhost:8088");
        assert_eq!(config.stream_name, "MIGRATION_EVENTS");
        assert_eq!(config.table_name, "MIGRATION_SCHEMA_VERSIONS");
        assert_eq!(config.migrations_dir, dir.path().join("migrations"));
        assert_eq!(config.replicas, 1);
        assert!(config.connect.login.is_none());

        std::fs::write(
            &path,
            "ksql.server.url=http://h:1\nksql.migrations.stream.name=events\n\
             ksql.auth.basic.username=u\nksql.auth.basic.password=p\n",
        )?;
        let config = MigrationConfig::load(&path)?;
        assert_eq!(config.stream_name, "EVENTS");
        assert_eq!(config.connect.login, Some(("u".into(), "p".into())));

        std::fs::write(&path, "ksql.server.url=http://h:1\nksql.migration.dir=x\n")?;
        let e = MigrationConfig::load(&path).err().map(|e| e.to_string());
        assert!(
            e.as_deref()
                .is_some_and(|e| e.contains("unknown migrations setting \"ksql.migration.dir\"")),
            "{e:?}"
        );
        std::fs::write(&path, "# nothing\n")?;
        let e = MigrationConfig::load(&path).err().map(|e| e.to_string());
        assert!(
            e.as_deref()
                .is_some_and(|e| e.contains("ksql.server.url is not set")),
            "{e:?}"
        );
        Ok(())
    }
}

//! The server's configuration, in ksqlDB's property names: read from a properties file
//! (`--config`, as `ksql-server.properties`), from `KSQL_*` environment variables (the
//! Docker image convention: `KSQL_KSQL_SERVICE_ID` is `ksql.service.id`) and from flags
//! (and their `EDDY_*` variables), into one typed tree, [`Settings`].
//!
//! Override order: flags > environment > file > defaults. [`KEYS`] lists every key Eddy
//! reads with its default; besides them, `ksql.streams.*` (with `producer.` and `consumer.`
//! forms), `security.protocol`, `sasl.*` and `ssl.*` reach the Kafka clients. Any other key
//! stops the start, naming the key and where it was set.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use eddy_server::{BasicAuthConfig, ClientAuthentication, TlsConfig};

/// Every key with a meaning of its own and its default ("" for none); the README's
/// configuration table says what each does (a test keeps the two in step).
pub const KEYS: &[(&str, &str)] = &[
    ("listeners", "http://127.0.0.1:8088"),
    ("bootstrap.servers", ""),
    ("ksql.service.id", "default_"),
    ("ksql.streams.state.dir", "eddy-data"),
    ("ksql.streams.auto.offset.reset", "latest"),
    ("ksql.internal.topic.replicas", "1"),
    ("ksql.sink.replicas", "1"),
    ("ksql.schema.registry.url", ""),
    ("ksql.schema.registry.basic.auth.credentials.source", ""),
    ("ksql.schema.registry.basic.auth.user.info", ""),
    ("ksql.schema.registry.ssl.truststore.location", ""),
    ("eddy.schema.registry.listen", "127.0.0.1:8081"),
    ("ksql.advertised.listener", ""),
    ("ksql.properties.overrides.denylist", ""),
    ("ksql.queries.file", ""),
    ("authentication.method", "NONE"),
    ("authentication.realm", "KsqlServer-Props"),
    ("authentication.roles", "**"),
    ("authentication.skip.paths", ""),
    ("java.security.auth.login.config", ""),
    ("ssl.keystore.location", ""),
    ("ssl.keystore.password", ""),
    ("ssl.keystore.type", ""),
    ("ssl.key.password", ""),
    ("ssl.truststore.location", ""),
    ("ssl.truststore.password", ""),
    ("ssl.truststore.type", ""),
    ("ssl.client.authentication", "NONE"),
    ("ssl.cipher.suites", ""),
    ("security.protocol", "PLAINTEXT"),
    ("eddy.state.block.cache.mb", "32"),
    ("eddy.rest.max.request.bytes", "1048576"),
];

/// Kafka Streams settings that mean nothing to Eddy's engine but are common in ksqlDB
/// files: accepted, reported, not passed to the Kafka clients.
const STREAMS_TUNING: &[&str] = &[
    "num.stream.threads",
    "commit.interval.ms",
    "cache.max.bytes.buffering",
    "statestore.cache.max.bytes",
];

/// Where a value came from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// [`KEYS`]' default.
    Default,
    /// A line of the configuration file.
    File(PathBuf, usize),
    /// An environment variable.
    Env(String),
    /// A flag.
    Flag(&'static str),
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Default => f.write_str("default"),
            Origin::File(path, line) => write!(f, "{} line {line}", path.display()),
            Origin::Env(var) => write!(f, "environment variable {var}"),
            Origin::Flag(flag) => write!(f, "flag {flag}"),
        }
    }
}

/// Values by key with their origins, later layers overriding earlier ones.
#[derive(Debug, Default)]
pub struct Layers {
    values: BTreeMap<String, (String, Origin)>,
}

impl Layers {
    /// Sets `key` (overriding what an earlier layer set).
    pub fn set(&mut self, key: &str, value: impl Into<String>, origin: Origin) {
        self.values.insert(key.to_string(), (value.into(), origin));
    }

    /// Reads a Java properties file.
    pub fn read_file(&mut self, path: &Path) -> anyhow::Result<()> {
        let file = std::fs::File::open(path)
            .with_context(|| format!("reading the configuration file {}", path.display()))?;
        for line in java_properties::PropertiesIter::new(std::io::BufReader::new(file)) {
            let line = line.with_context(|| format!("{} is malformed", path.display()))?;
            let number = line.line_number();
            if let java_properties::LineContent::KVPair(key, value) = line.consume_content() {
                self.set(key.trim(), value, Origin::File(path.to_path_buf(), number));
            }
        }
        Ok(())
    }

    /// Reads `KSQL_*` variables as the Docker images do: `KSQL_` dropped, lower case, `_`
    /// as `.`, `__` as `-`, `___` as `_`. `KSQL_OPTS` gives `-Dkey=value` settings; the
    /// JVM's other variables are ignored.
    pub fn read_env(&mut self, vars: impl IntoIterator<Item = (String, String)>) {
        const JVM: &[&str] = &[
            "KSQL_HEAP_OPTS",
            "KSQL_JVM_PERFORMANCE_OPTS",
            "KSQL_LOG4J_OPTS",
            "KSQL_JMX_OPTS",
            "KSQL_CLASSPATH",
            "KSQL_CONFIG_DIR",
            "KSQL_LOG_DIR",
        ];
        for (var, value) in vars {
            let Some(rest) = var.strip_prefix("KSQL_") else {
                continue;
            };
            if var == "KSQL_OPTS" {
                for option in value.split_whitespace() {
                    if let Some((key, v)) =
                        option.strip_prefix("-D").and_then(|o| o.split_once('='))
                    {
                        self.set(key, v, Origin::Env(var.clone()));
                    }
                }
                continue;
            }
            if JVM.contains(&var.as_str()) {
                continue;
            }
            let key = rest
                .to_ascii_lowercase()
                .replace("___", "\u{0}")
                .replace("__", "-")
                .replace('_', ".")
                .replace('\u{0}', "_");
            self.set(&key, value, Origin::Env(var));
        }
    }

    fn get(&self, key: &str) -> Option<&(String, Origin)> {
        self.values.get(key)
    }
}

/// The server's effective configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where the REST API listens (`HOST:PORT`).
    pub listen: String,
    /// HTTPS key material when `listeners` is `https://…`.
    pub tls: Option<TlsConfig>,
    /// Basic authentication, when `authentication.method=BASIC`.
    pub basic_auth: Option<BasicAuthConfig>,
    /// Kafka's bootstrap servers; `None` for the embedded dev broker.
    pub bootstrap_servers: Option<String>,
    /// `ksql.service.id`.
    pub service_id: String,
    /// `ksql.streams.state.dir`.
    pub state_dir: PathBuf,
    /// Whether new queries start at the earliest offsets.
    pub earliest: bool,
    /// `ksql.internal.topic.replicas`.
    pub internal_replicas: i16,
    /// `ksql.sink.replicas`.
    pub sink_replicas: i16,
    /// RocksDB block cache in MiB.
    pub block_cache_mb: usize,
    /// Largest request body.
    pub max_request_bytes: usize,
    /// Kafka client properties for every client, in Java's naming.
    pub kafka_common: Vec<(String, String)>,
    /// Kafka properties for producers only.
    pub kafka_producer: Vec<(String, String)>,
    /// Kafka properties for consumers only.
    pub kafka_consumer: Vec<(String, String)>,
    /// `ksql.properties.overrides.denylist`: properties requests may not set.
    pub denied_properties: Vec<String>,
    /// `ksql.queries.file`: headless mode's SQL file.
    pub queries_file: Option<PathBuf>,
    /// `ksql.advertised.listener`: the URL other servers reach this one at.
    pub advertised_listener: Option<String>,
    /// `ksql.schema.registry.url` and its credentials and CA: an external schema registry.
    pub schema_registry: Option<eddy_registry::HttpRegistryConfig>,
    /// `eddy.schema.registry.listen`: where the built-in registry serves its REST API, and
    /// whether that address was asked for (rather than the default).
    pub schema_registry_listen: (String, bool),
    /// Every set or defaulted key with its value, secrets masked, for `SHOW PROPERTIES`.
    pub shown: Vec<(String, String)>,
}

/// Whether a key's value must not be shown.
pub fn is_secret(key: &str) -> bool {
    [
        "password",
        "jaas.config",
        "secret",
        "user.info",
        "oauthbearer.config",
    ]
    .iter()
    .any(|s| key.contains(s))
}

impl Settings {
    /// Resolves the layers into the typed tree, refusing unknown and malformed keys.
    pub fn resolve(layers: &Layers) -> anyhow::Result<Self> {
        let mut kafka_common = Vec::new();
        let mut kafka_producer = Vec::new();
        let mut kafka_consumer = Vec::new();
        let mut kafka_ssl = Vec::new();
        let mut shown = Vec::new();
        for (key, (value, origin)) in &layers.values {
            shown.push((
                key.clone(),
                if is_secret(key) {
                    "[hidden]".to_string()
                } else {
                    value.clone()
                },
            ));
            if KEYS.iter().any(|(k, _)| k == key) && !key.starts_with("security.") {
                if key.starts_with("ssl.") {
                    kafka_ssl.push((key.clone(), value.clone()));
                }
                continue;
            }
            if let Some(rest) = key.strip_prefix("ksql.streams.producer.") {
                kafka_producer.push((rest.to_string(), value.clone()));
            } else if let Some(rest) = key.strip_prefix("ksql.streams.consumer.") {
                kafka_consumer.push((rest.to_string(), value.clone()));
            } else if let Some(rest) = key.strip_prefix("ksql.streams.") {
                if rest == "processing.guarantee" && !value.eq_ignore_ascii_case("at_least_once") {
                    bail!(
                        "{key}={value} ({origin}): Eddy delivers at least once; exactly-once \
                         processing is not supported yet"
                    );
                }
                if !STREAMS_TUNING.contains(&rest) && rest != "processing.guarantee" {
                    kafka_common.push((rest.to_string(), value.clone()));
                }
            } else if key == "security.protocol" || key.starts_with("sasl.") {
                kafka_common.push((key.clone(), value.clone()));
            } else if key.starts_with("ssl.") {
                kafka_ssl.push((key.clone(), value.clone()));
            } else {
                bail!(
                    "unknown configuration key '{key}' ({origin}); Eddy reads the keys listed \
                     in the README's configuration table, ksql.streams.*, security.protocol, \
                     sasl.* and ssl.*"
                );
            }
        }
        for (name, default) in KEYS {
            if layers.get(name).is_none() && !default.is_empty() {
                shown.push((name.to_string(), default.to_string()));
            }
        }
        shown.sort();
        let text = |name: &str| -> (String, Origin) {
            layers.get(name).cloned().unwrap_or_else(|| {
                let default = KEYS
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map_or("", |(_, d)| *d);
                (default.to_string(), Origin::Default)
            })
        };
        let optional = |name: &str| Some(text(name).0).filter(|v| !v.trim().is_empty());
        let number = |name: &str| -> anyhow::Result<i64> {
            let (value, origin) = text(name);
            value
                .trim()
                .parse::<i64>()
                .ok()
                .filter(|n| *n > 0)
                .with_context(|| format!("{name}={value} ({origin}): expected a positive integer"))
        };
        let replicas = |name: &str| -> anyhow::Result<i16> {
            let n = number(name)?;
            i16::try_from(n).with_context(|| format!("{name}={n}: at most {}", i16::MAX))
        };
        let security = text("security.protocol").0.to_ascii_uppercase();
        if security.contains("SSL") {
            // Top-level ssl.* serve Kafka too, under the ksql.streams.ssl.* overrides.
            kafka_common.splice(0..0, kafka_ssl);
        }
        let (listeners, listeners_origin) = text("listeners");
        let (https, listen) = parse_listener(&listeners)
            .with_context(|| format!("listeners={listeners} ({listeners_origin})"))?;
        let tls = https
            .then(|| -> anyhow::Result<TlsConfig> {
                let key_store = optional("ssl.keystore.location").with_context(|| {
                    format!("listeners={listeners} is HTTPS but ssl.keystore.location is not set")
                })?;
                let (auth, auth_origin) = text("ssl.client.authentication");
                Ok(TlsConfig {
                    key_store: key_store.into(),
                    key_store_type: optional("ssl.keystore.type"),
                    key_store_password: optional("ssl.keystore.password"),
                    key_password: optional("ssl.key.password"),
                    trust_store: optional("ssl.truststore.location").map(PathBuf::from),
                    trust_store_password: optional("ssl.truststore.password"),
                    client_authentication: match auth.to_ascii_uppercase().as_str() {
                        "NONE" => ClientAuthentication::None,
                        "REQUESTED" => ClientAuthentication::Requested,
                        "REQUIRED" => ClientAuthentication::Required,
                        _ => bail!(
                            "ssl.client.authentication={auth} ({auth_origin}): expected NONE, \
                             REQUESTED or REQUIRED"
                        ),
                    },
                    cipher_suites: optional("ssl.cipher.suites"),
                })
            })
            .transpose()?;
        let (method, method_origin) = text("authentication.method");
        let list = |name: &str| -> Vec<String> {
            text(name)
                .0
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        };
        let basic_auth = match method.to_ascii_uppercase().as_str() {
            "NONE" => None,
            "BASIC" => Some(BasicAuthConfig {
                jaas_config: optional("java.security.auth.login.config")
                    .context(
                        "authentication.method=BASIC needs the JAAS file: set \
                         java.security.auth.login.config (or -Djava.security.auth.login.config \
                         in KSQL_OPTS)",
                    )?
                    .into(),
                realm: text("authentication.realm").0,
                roles: list("authentication.roles"),
                skip_paths: list("authentication.skip.paths"),
            }),
            _ => bail!("authentication.method={method} ({method_origin}): expected NONE or BASIC"),
        };
        let (reset, reset_origin) = text("ksql.streams.auto.offset.reset");
        let earliest = match reset.to_ascii_lowercase().as_str() {
            "earliest" => true,
            "latest" => false,
            _ => bail!(
                "ksql.streams.auto.offset.reset={reset} ({reset_origin}): expected earliest or \
                 latest"
            ),
        };
        Ok(Settings {
            listen,
            tls,
            basic_auth,
            bootstrap_servers: optional("bootstrap.servers"),
            service_id: text("ksql.service.id").0,
            state_dir: text("ksql.streams.state.dir").0.into(),
            earliest,
            internal_replicas: replicas("ksql.internal.topic.replicas")?,
            sink_replicas: replicas("ksql.sink.replicas")?,
            block_cache_mb: number("eddy.state.block.cache.mb")? as usize,
            max_request_bytes: number("eddy.rest.max.request.bytes")? as usize,
            kafka_common,
            kafka_producer,
            kafka_consumer,
            denied_properties: list("ksql.properties.overrides.denylist"),
            queries_file: optional("ksql.queries.file").map(PathBuf::from),
            advertised_listener: optional("ksql.advertised.listener"),
            schema_registry: optional("ksql.schema.registry.url").map(|url| {
                eddy_registry::HttpRegistryConfig {
                    url,
                    user_info: optional("ksql.schema.registry.basic.auth.user.info"),
                    ca_file: optional("ksql.schema.registry.ssl.truststore.location")
                        .map(PathBuf::from),
                }
            }),
            schema_registry_listen: {
                let (listen, origin) = text("eddy.schema.registry.listen");
                (listen, origin != Origin::Default)
            },
            shown,
        })
    }
}

impl Settings {
    /// Whether the user set the consumers' `fetch.wait.max.ms`.
    pub fn sets_fetch_wait(&self) -> bool {
        self.kafka_common
            .iter()
            .chain(&self.kafka_consumer)
            .any(|(k, _)| k == "fetch.wait.max.ms")
    }
}

/// `http://HOST:PORT` or `https://HOST:PORT` (or a bare `HOST:PORT`, HTTP): whether it is
/// HTTPS, and the address.
fn parse_listener(text: &str) -> anyhow::Result<(bool, String)> {
    let text = text.trim();
    if text.contains(',') {
        bail!("Eddy serves one listener; give one URL");
    }
    let (https, address) = if let Some(rest) = text.strip_prefix("https://") {
        (true, rest)
    } else if let Some(rest) = text.strip_prefix("http://") {
        (false, rest)
    } else if text.contains("://") {
        bail!("expected http:// or https://");
    } else {
        (false, text)
    };
    let address = address.trim_end_matches('/');
    if address
        .rsplit_once(':')
        .is_none_or(|(_, port)| port.parse::<u16>().is_err())
    {
        bail!("expected HOST:PORT");
    }
    Ok((https, address.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(entries: &[(&str, &str)]) -> anyhow::Result<Settings> {
        let mut layers = Layers::default();
        for (k, v) in entries {
            layers.set(k, *v, Origin::Default);
        }
        Settings::resolve(&layers)
    }

    #[test]
    fn docker_variables_become_keys() {
        let mut layers = Layers::default();
        layers.read_env([
            ("KSQL_KSQL_SERVICE_ID".to_string(), "svc_".to_string()),
            (
                "KSQL_LISTENERS".to_string(),
                "http://0.0.0.0:9000".to_string(),
            ),
            ("KSQL_SSL_KEY___X__Y".to_string(), "v".to_string()),
            ("KSQL_HEAP_OPTS".to_string(), "-Xmx1g".to_string()),
            (
                "KSQL_OPTS".to_string(),
                "-Djava.security.auth.login.config=/j.conf -Xss1m".to_string(),
            ),
            ("PATH".to_string(), "/bin".to_string()),
        ]);
        let keys: Vec<&str> = layers.values.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "java.security.auth.login.config",
                "ksql.service.id",
                "listeners",
                "ssl.key_x-y"
            ]
        );
    }

    #[test]
    fn keys_are_typed_and_kafka_keys_are_sorted_out() -> anyhow::Result<()> {
        let s = resolve(&[
            ("listeners", "http://0.0.0.0:9000"),
            ("ksql.internal.topic.replicas", "3"),
            ("security.protocol", "SASL_SSL"),
            (
                "sasl.jaas.config",
                "x required username=\"u\" password=\"p\";",
            ),
            ("ssl.truststore.location", "/ca.pem"),
            ("ksql.streams.producer.linger.ms", "7"),
            ("ksql.streams.consumer.fetch.wait.max.ms", "5"),
            ("ksql.streams.num.stream.threads", "4"),
        ])?;
        assert_eq!(s.listen, "0.0.0.0:9000");
        assert!(s.tls.is_none());
        assert_eq!((s.internal_replicas, s.sink_replicas), (3, 1));
        assert_eq!(
            s.kafka_producer,
            [("linger.ms".to_string(), "7".to_string())]
        );
        assert!(s.sets_fetch_wait());
        let common: Vec<&str> = s.kafka_common.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            common,
            [
                "ssl.truststore.location",
                "sasl.jaas.config",
                "security.protocol"
            ]
        );
        let shown: BTreeMap<_, _> = s.shown.into_iter().collect();
        assert_eq!(shown["sasl.jaas.config"], "[hidden]");
        assert_eq!(shown["ksql.service.id"], "default_");
        Ok(())
    }

    #[test]
    fn bad_keys_and_values_name_themselves() {
        let message = |entries: &[(&str, &str)]| {
            resolve(entries)
                .err()
                .map(|e| format!("{e:#}"))
                .unwrap_or_default()
        };
        assert!(message(&[("ksql.servce.id", "x")]).contains("'ksql.servce.id'"));
        assert!(message(&[("ksql.sink.replicas", "three")]).contains("ksql.sink.replicas=three"));
        assert!(message(&[("listeners", "ftp://x:1")]).contains("listeners=ftp://x:1"));
        assert!(message(&[("listeners", "https://x:1")]).contains("ssl.keystore.location"));
        assert!(
            message(&[("ksql.streams.processing.guarantee", "exactly_once_v2")])
                .contains("exactly-once")
        );
        assert!(message(&[("authentication.method", "BASIC")]).contains("JAAS"));
    }

    #[test]
    fn the_readme_lists_every_key_with_its_default() -> anyhow::Result<()> {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))?;
        for (name, default) in KEYS {
            let default = if default.is_empty() {
                "—".to_string()
            } else {
                format!("`{default}`")
            };
            let row = format!("| `{name}` | {default} |");
            assert!(readme.contains(&row), "README.md lacks the row {row}");
        }
        Ok(())
    }
}

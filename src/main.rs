//! The `eddy` binary: `eddy server`, `eddy dev-kafka`, `eddy test`, `eddy shell`,
//! `eddy bench`.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use eddy_engine::{CommandLog, Engine, EngineConfig};
use eddy_kafka::{DevBroker, KafkaConfig, KafkaTopics};
use eddy_state::{RocksBackend, RocksConfig};

mod bench;
mod qtt;
mod settings;

use settings::{Origin, Settings};

#[derive(Parser)]
#[command(
    name = "eddy",
    version,
    about = "A KSQL-compatible streaming SQL server"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// How logs are written to standard error: `text` for people (coloured only on a
    /// terminal) or `json`, one object per line with the fields of its spans (`query_id`,
    /// `request_id`, …) for log shippers.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "text",
        env = "EDDY_LOG_FORMAT"
    )]
    log_format: LogFormat,
}

/// `--log-format`.
#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    /// Lines for people.
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the server (REST API on --listen). Without --bootstrap-servers it starts an
    /// embedded, in-memory dev broker, for trying things out.
    Server(ServerArgs),
    /// Runs the embedded dev broker alone and prints `bootstrap.servers=HOST:PORT` first.
    DevKafka {
        /// Partitions of topics the broker creates on first use.
        #[arg(long, default_value_t = 1)]
        partitions: i32,
    },
    /// Runs test files in ksqlDB's query-validation format (statements, input records,
    /// expected outputs) against the engine with in-memory topics; no Kafka needed.
    Test(qtt::TestArgs),
    /// The interactive SQL shell (like ksqlDB's `ksql`) against a running server; with
    /// `-f FILE` or `-e STATEMENTS` it runs them and exits.
    Shell(eddy_cli::ShellArgs),
    /// Deploys pipelines kept as versioned SQL files, as ksqlDB's `ksql-migrations` does:
    /// `new-project`, `create`, `initialize-metadata`, `apply`, `info`, `validate`,
    /// `destroy-metadata`.
    Migrate(eddy_cli::migrate::MigrateArgs),
    /// Measures throughput, CPU per event, memory, latency and start-up against a raw
    /// Kafka copy, and writes the figures as JSON.
    Bench(bench::BenchArgs),
}

/// Server options. Each flag (or its `EDDY_*` variable) overrides the same setting in
/// `KSQL_*` variables and in the `--config` file; see `settings` for the keys.
#[derive(clap::Args)]
struct ServerArgs {
    /// A ksqlDB server properties file (`ksql-server.properties`): `listeners`,
    /// `bootstrap.servers`, `ksql.service.id`, `ksql.streams.*`, `ssl.*`, `sasl.*`, ….
    #[arg(long, env = "EDDY_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Kafka bootstrap servers (HOST:PORT,…); `bootstrap.servers`. Omit to use the
    /// embedded dev broker.
    #[arg(long, env = "EDDY_BOOTSTRAP_SERVERS")]
    bootstrap_servers: Option<String>,
    /// Address of the REST API, HOST:PORT or a URL (`https://…` serves HTTPS); `listeners`
    /// [default: 127.0.0.1:8088].
    #[arg(long, env = "EDDY_LISTEN")]
    listen: Option<String>,
    /// Directory for state (materialised tables); `ksql.streams.state.dir`
    /// [default: eddy-data].
    #[arg(long, env = "EDDY_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// ksqlDB's `ksql.service.id`: servers with the same id share queries
    /// [default: default_].
    #[arg(long, env = "EDDY_SERVICE_ID")]
    service_id: Option<String>,
    /// RocksDB block cache, in MiB; `eddy.state.block.cache.mb` [default: 32].
    #[arg(long, env = "EDDY_BLOCK_CACHE_MB")]
    block_cache_mb: Option<usize>,
    /// Largest request body the REST API accepts, in bytes (larger: 413);
    /// `eddy.rest.max.request.bytes` [default: 1048576].
    #[arg(long, env = "EDDY_MAX_REQUEST_BYTES")]
    max_request_bytes: Option<usize>,
    /// A Kafka client property for every Kafka client the server creates, as KEY=VALUE
    /// (repeatable; the same as `ksql.streams.KEY` in the file): security settings such as
    /// `security.protocol=SASL_SSL`, or `fetch.wait.max.ms=5` for low latency on brokers
    /// that hold a waiting fetch even when data arrives (librdkafka's mock cluster, tansu;
    /// Apache Kafka answers at once).
    #[arg(long = "kafka-property", value_name = "KEY=VALUE", value_parser = parse_property)]
    kafka_properties: Vec<(String, String)>,
    /// Headless mode (`ksql.queries.file`): runs the statements of FILE at every start,
    /// with no command log, and refuses statements that change anything over REST.
    #[arg(long, env = "EDDY_QUERIES_FILE", value_name = "FILE")]
    queries_file: Option<PathBuf>,
    /// HOST:PORT of the built-in schema registry's REST API (Confluent-compatible, for
    /// AVRO); `eddy.schema.registry.listen` [default: 127.0.0.1:8081].
    #[arg(long, env = "EDDY_SCHEMA_REGISTRY_LISTEN", value_name = "HOST:PORT")]
    schema_registry_listen: Option<String>,
    /// An external Confluent Schema Registry; `ksql.schema.registry.url`.
    #[arg(long, env = "EDDY_SCHEMA_REGISTRY_URL", value_name = "URL")]
    schema_registry_url: Option<String>,
}

impl ServerArgs {
    /// The settings: defaults, then the file, then `KSQL_*` variables, then flags.
    fn settings(&self) -> anyhow::Result<Settings> {
        let mut layers = settings::Layers::default();
        if let Some(file) = &self.config {
            layers.read_file(file)?;
        }
        layers.read_env(std::env::vars());
        let flag = |name| Origin::Flag(name);
        if let Some(v) = &self.bootstrap_servers {
            layers.set("bootstrap.servers", v, flag("--bootstrap-servers"));
        }
        if let Some(v) = &self.listen {
            let url = if v.contains("://") {
                v.clone()
            } else {
                format!("http://{v}")
            };
            layers.set("listeners", url, flag("--listen"));
        }
        if let Some(v) = &self.data_dir {
            layers.set(
                "ksql.streams.state.dir",
                v.display().to_string(),
                flag("--data-dir"),
            );
        }
        if let Some(v) = &self.service_id {
            layers.set("ksql.service.id", v, flag("--service-id"));
        }
        if let Some(v) = self.block_cache_mb {
            layers.set(
                "eddy.state.block.cache.mb",
                v.to_string(),
                flag("--block-cache-mb"),
            );
        }
        if let Some(v) = self.max_request_bytes {
            layers.set(
                "eddy.rest.max.request.bytes",
                v.to_string(),
                flag("--max-request-bytes"),
            );
        }
        if let Some(v) = &self.queries_file {
            layers.set(
                "ksql.queries.file",
                v.display().to_string(),
                flag("--queries-file"),
            );
        }
        if let Some(v) = &self.schema_registry_listen {
            layers.set(
                "eddy.schema.registry.listen",
                v,
                flag("--schema-registry-listen"),
            );
        }
        if let Some(v) = &self.schema_registry_url {
            layers.set("ksql.schema.registry.url", v, flag("--schema-registry-url"));
        }
        for (key, value) in &self.kafka_properties {
            layers.set(
                &format!("ksql.streams.{key}"),
                value,
                flag("--kafka-property"),
            );
        }
        Settings::resolve(&layers)
    }
}

/// librdkafka's consumer property for how long a broker may hold a fetch with nothing to
/// return.
const FETCH_WAIT: &str = "fetch.wait.max.ms";
/// The fetch wait against the embedded dev broker (see `server`).
const DEV_BROKER_FETCH_WAIT_MS: u32 = 5;

/// Splits `KEY=VALUE` at its first `=`.
fn parse_property(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_string(), value.to_string()))
        }
        _ => Err(format!("expected KEY=VALUE, got '{text}'")),
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // `eddy test` reports through its own output; engine logs would drown it.
    let default_filter = match cli.command {
        Command::Test(_) | Command::Shell(_) | Command::Migrate(_) => "error",
        Command::Bench(_) => "warn,librdkafka=error,rdkafka=error",
        _ => "info,librdkafka=warn,rdkafka=warn",
    };
    let logs = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| default_filter.into()),
        )
        .with_writer(std::io::stderr);
    match cli.log_format {
        // Colour codes only for a person at a terminal, not in files or journals.
        LogFormat::Text => logs
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        LogFormat::Json => logs
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .init(),
    }
    match cli.command {
        Command::Server(args) => {
            // Settings first: a bad key stops the start before anything else happens.
            let settings = args.settings()?;
            limit_malloc_arenas();
            server(settings)
        }
        Command::DevKafka { partitions } => dev_kafka(partitions),
        Command::Test(args) => {
            if !qtt::run(&args)? {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Bench(args) => bench::run(&args),
        Command::Migrate(args) => {
            if let Err(e) = eddy_cli::migrate::run(&args) {
                eprintln!("{e}");
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Shell(args) => {
            if let Err(e) = eddy_cli::run(&args) {
                eprintln!("{e}");
                std::process::exit(1);
            }
            Ok(())
        }
    }
}

/// Restarts the process in place (same pid, arguments and environment) with
/// `MALLOC_ARENA_MAX` set, unless the user chose an allocator setting: glibc reads it
/// only when the process starts. Returns only if that is not possible, and then the server
/// runs with the default.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::os::unix::process::CommandExt;
        /// The environment variable that caps glibc's malloc arenas.
        const MALLOC_ARENA_MAX: &str = "MALLOC_ARENA_MAX";
        /// Arenas for the server: glibc's default (8 per core) gives each thread that allocates
        /// (query threads, librdkafka's, RocksDB's) an arena of its own that keeps what it freed;
        /// two share freed batches across threads (measured: peak RSS of the reviews pipeline
        /// 171–178 MiB rather than 207–229, CPU within noise; one arena cost 8% more CPU).
        const SERVER_MALLOC_ARENAS: &str = "2";
        if std::env::var_os(MALLOC_ARENA_MAX).is_some()
            || std::env::var_os("GLIBC_TUNABLES").is_some()
        {
            return;
        }
        let exe = match std::env::current_exe() {
            Ok(exe) => exe,
            Err(err) => {
                tracing::debug!(%err, "not limiting malloc arenas: own executable unknown");
                return;
            }
        };
        let err = std::process::Command::new(exe)
            .args(std::env::args_os().skip(1))
            .env(MALLOC_ARENA_MAX, SERVER_MALLOC_ARENAS)
            .exec();
        tracing::warn!(%err, "not limiting malloc arenas: could not restart the process");
    }
}

fn server(settings: Settings) -> anyhow::Result<()> {
    let (bootstrap, dev_broker) = match &settings.bootstrap_servers {
        Some(b) => (b.clone(), None),
        None => {
            let broker = DevBroker::start(1).context("starting the embedded dev broker")?;
            let addr = broker.bootstrap_servers();
            tracing::info!("embedded dev broker (in memory, for trying things out) at {addr}");
            (addr, Some(broker))
        }
    };
    let mut kafka = KafkaConfig::new(&bootstrap);
    let translate = |what: &str, properties: &[(String, String)]| {
        eddy_kafka::librdkafka_properties(properties)
            .with_context(|| format!("the Kafka {what} settings of the configuration"))
    };
    kafka.client_properties = translate("client", &settings.kafka_common)?;
    kafka.producer_properties = translate("producer", &settings.kafka_producer)?;
    kafka.consumer_properties = translate("consumer", &settings.kafka_consumer)?;
    // The embedded broker holds a waiting fetch for its whole wait even when data arrives,
    // so Eddy's 50 ms default would be the latency of every hop; for trying things out a
    // short wait is worth its idle fetches. The user's own setting wins.
    if dev_broker.is_some() && !settings.sets_fetch_wait() {
        kafka.consumer_properties.insert(
            0,
            (FETCH_WAIT.to_string(), DEV_BROKER_FETCH_WAIT_MS.to_string()),
        );
    }
    let topics = KafkaTopics::connect(kafka, dev_broker.as_ref().map(DevBroker::handle))
        .context("configuring the Kafka client")?;
    wait_for_kafka(&topics)?;
    let data_dir = &settings.state_dir;
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating data dir {}", data_dir.display()))?;
    let state = RocksBackend::open(
        data_dir.join("state"),
        RocksConfig {
            block_cache_bytes: settings.block_cache_mb << 20,
            write_buffer_bytes: 8 << 20,
            max_write_buffers: 2,
        },
    )
    .context("opening the state store")?;
    let mut config = EngineConfig::new(&settings.service_id);
    config.instance_id = instance_id(data_dir)?;
    config.internal_replicas = settings.internal_replicas;
    config.sink_replicas = settings.sink_replicas;
    if settings.earliest {
        config.default_offset_reset = eddy_topic::StartFrom::Earliest;
    }
    config.server_properties = settings.shown.clone();
    let topics = Arc::new(topics);
    // An external registry when one is configured, else the built-in one, kept in the
    // broker's `_schemas` topic and served on its own listener.
    let built_in = match &settings.schema_registry {
        Some(external) => {
            let client = eddy_registry::HttpRegistry::new(external)
                .context("configuring the schema registry client")?;
            tracing::info!(url = %external.url, "using the schema registry at {}", external.url);
            config.schema_registry = Arc::new(client);
            None
        }
        None => {
            let schemas = eddy_engine::schema_topic::open_schema_store(
                topics.clone(),
                eddy_engine::schema_topic::SCHEMAS_TOPIC,
                settings.internal_replicas,
                std::time::Duration::from_secs(30),
            )
            .context("opening the schema registry's topic")?;
            config.schema_registry = schemas.clone();
            Some(schemas)
        }
    };
    let engine =
        Engine::new(config, topics.clone(), Arc::new(state)).context("starting the engine")?;
    let membership = Arc::new(
        eddy_engine::membership::Membership::open(
            topics.clone(),
            &settings.service_id,
            &advertised(&settings),
            settings.internal_replicas,
        )
        .context("opening the cluster membership topic")?,
    );
    let commands = CommandLog::open(topics, &settings.service_id, settings.internal_replicas)
        .context("opening the command topic")?;
    let scheme = if settings.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let app = Arc::new(
        eddy_server::AppState::new(
            Arc::new(engine),
            Arc::new(commands),
            env!("CARGO_PKG_VERSION").to_string(),
            eddy_server::ServerConfig {
                max_request_bytes: settings.max_request_bytes,
                tls: settings.tls.clone(),
                basic_auth: settings.basic_auth.clone(),
                denied_properties: settings.denied_properties.clone(),
                queries_file: settings.queries_file.clone(),
            },
        )
        .with_membership(Arc::clone(&membership)),
    );
    let announcing = Arc::clone(&app.engine);
    std::thread::Builder::new()
        .name("eddy-membership".into())
        .spawn(move || announce(&announcing, &membership))
        .context("starting the cluster membership")?;
    // Headless: the queries file runs before anything is served, and a statement of it
    // that fails stops the start.
    if let Some(file) = &settings.queries_file {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("reading the queries file {}", file.display()))?;
        let ran = app
            .run_queries_file(&text)
            .with_context(|| format!("running the queries file {}", file.display()))?;
        tracing::info!(statements = ran, file = %file.display(), "headless: queries file ran; serving");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&settings.listen)
            .await
            .with_context(|| format!("binding {}", settings.listen))?;
        tracing::info!(
            "Eddy server listening on {scheme}://{}",
            listener.local_addr()?
        );
        if let Some(schemas) = built_in {
            serve_schema_registry(&settings.schema_registry_listen, schemas).await?;
        }
        // The API answers (unhealthy, 503) while the command log is replayed.
        if !app.is_ready() {
            let replaying = Arc::clone(&app);
            std::thread::Builder::new()
                .name("eddy-replay".into())
                .spawn(move || replay(&replaying))
                .context("starting the command log replay")?;
        }
        let engine = Arc::clone(&app.engine);
        tokio::select! {
            served = eddy_server::serve(listener, app) => served?,
            () = stop_signal() => tracing::info!("stopping: the queries persist their state"),
        }
        // Blocking: each query finishes its batch and persists what it holds in memory.
        tokio::task::spawn_blocking(move || engine.shutdown()).await?;
        drop(dev_broker);
        Ok(())
    })
}

/// Starts the built-in schema registry's REST API. The default address may be taken (by
/// another server on this machine, or a Confluent registry): then the registry is only
/// used within this server, with a warning; an address that was asked for must be free.
async fn serve_schema_registry(
    (listen, asked): &(String, bool),
    registry: Arc<eddy_registry::MemoryRegistry>,
) -> anyhow::Result<()> {
    match tokio::net::TcpListener::bind(listen).await {
        Ok(listener) => {
            tracing::info!(
                "schema registry (built in) listening on http://{}",
                listener.local_addr()?
            );
            tokio::spawn(eddy_server::registry::serve_registry(listener, registry));
            Ok(())
        }
        Err(e) if !asked => {
            tracing::warn!(
                "the built-in schema registry does not serve its REST API: {listen}: {e} \
                 (set eddy.schema.registry.listen)"
            );
            Ok(())
        }
        Err(e) => Err(e).with_context(|| format!("binding the schema registry to {listen}")),
    }
}

/// Completes on SIGTERM (`docker stop`) or Ctrl-C.
async fn stop_signal() {
    let interrupt = tokio::signal::ctrl_c();
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut terminate) => {
            tokio::select! {
                _ = interrupt => {}
                _ = terminate.recv() => {}
            }
        }
        Err(err) => {
            tracing::warn!(%err, "SIGTERM not handled; Ctrl-C still stops the server cleanly");
            let _ = interrupt.await;
        }
    }
}

/// Waits until the broker answers: a server started before its Kafka waits for it rather
/// than exiting. A broker that refuses Eddy's credentials or TLS handshake stops the start:
/// no wait would change its answer.
fn wait_for_kafka(topics: &KafkaTopics) -> anyhow::Result<()> {
    tracing::info!("connecting to {}", topics.broker());
    let mut backoff = std::time::Duration::from_millis(500);
    let mut next_warning = std::time::Instant::now();
    loop {
        let answered = topics.check_reachable(std::time::Duration::from_secs(1));
        if let Some(why) = topics.refusal() {
            anyhow::bail!(
                "{} refused Eddy's connection ({}): {why}",
                topics.broker(),
                topics.security_summary()
            );
        }
        let Err(e) = answered else {
            return Ok(());
        };
        if std::time::Instant::now() >= next_warning {
            tracing::warn!("waiting for {}: {e}; retrying", topics.broker());
            next_warning = std::time::Instant::now() + backoff;
            backoff = (backoff * 2).min(std::time::Duration::from_secs(10));
        }
        // A request that failed at once (no broker listening) is not retried in a busy loop.
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Replays the command log, retrying while the broker is unreachable.
fn replay(app: &eddy_server::AppState) {
    let mut backoff = std::time::Duration::from_secs(1);
    loop {
        match app.replay(std::time::Duration::from_secs(120)) {
            Ok(report) => {
                tracing::info!(
                    applied = report.applied,
                    failed = report.failed,
                    last_sequence = report.last_sequence,
                    "command log replayed; serving"
                );
                follow(app);
                return;
            }
            Err(e) => {
                tracing::error!("replaying the command log failed: {e}; retrying in {backoff:?}");
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(std::time::Duration::from_secs(30));
            }
        }
    }
}

/// Follows the command log for good: executes what other servers of the service append,
/// soon after they do. Outages are waited out.
fn follow(app: &eddy_server::AppState) {
    /// How often the log is checked for new commands.
    const FOLLOW_EVERY: std::time::Duration = std::time::Duration::from_millis(500);
    let mut backoff = FOLLOW_EVERY;
    loop {
        std::thread::sleep(backoff);
        match app.follow_commands() {
            Ok(ran) => {
                if ran > 0 {
                    tracing::info!(commands = ran, "executed commands of other servers");
                }
                backoff = FOLLOW_EVERY;
            }
            Err(e) => {
                tracing::warn!("following the command log failed: {e}; retrying");
                backoff = (backoff * 2).min(std::time::Duration::from_secs(30));
            }
        }
    }
}

/// The address other servers and clients reach this one at: `ksql.advertised.listener`,
/// else the listener, with the host name in place of an unspecified address.
fn advertised(settings: &Settings) -> String {
    let address = settings
        .advertised_listener
        .clone()
        .unwrap_or_else(|| settings.listen.clone());
    let address = address
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    match address.rsplit_once(':') {
        Some((host, port)) if host == "0.0.0.0" || host == "[::]" || host.is_empty() => {
            let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .unwrap_or_else(|_| "localhost".to_string());
            format!("{name}:{port}")
        }
        _ => address,
    }
}

/// Announces this server to the cluster about once a second, for good, and reads the
/// others' announcements. Outages are waited out.
fn announce(engine: &Engine, membership: &eddy_engine::membership::Membership) {
    /// How often this server announces itself.
    const EVERY: std::time::Duration = std::time::Duration::from_secs(1);
    loop {
        if let Err(e) = membership.announce(&engine.cluster_report()) {
            tracing::debug!("announcing this server to the cluster failed: {e}");
        }
        if let Err(e) = membership.refresh(std::time::Duration::from_millis(100)) {
            tracing::debug!("reading the cluster's announcements failed: {e}");
        }
        std::thread::sleep(EVERY);
    }
}

/// A stable id for this server's own state, kept in the data dir: a server that restarts
/// with its data dir resumes its table materialisations; one with a fresh dir rebuilds them.
fn instance_id(data_dir: &std::path::Path) -> anyhow::Result<String> {
    let path = data_dir.join("instance-id");
    if let Ok(id) = std::fs::read_to_string(&path) {
        let id = id.trim();
        if !id.is_empty() {
            return Ok(id.to_string());
        }
    }
    let id = format!(
        "{:x}{:x}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    );
    std::fs::write(&path, &id).with_context(|| format!("writing {}", path.display()))?;
    Ok(id)
}

fn dev_kafka(partitions: i32) -> anyhow::Result<()> {
    let broker = DevBroker::start(partitions).context("starting the dev broker")?;
    println!("bootstrap.servers={}", broker.bootstrap_servers());
    tracing::info!("dev broker running; stop it with Ctrl-C");
    loop {
        std::thread::park();
    }
}

#[cfg(test)]
mod tests {
    use super::parse_property;

    #[test]
    fn a_property_splits_at_its_first_equals_sign() {
        assert_eq!(
            parse_property("sasl.jaas.config=a=b"),
            Ok(("sasl.jaas.config".into(), "a=b".into()))
        );
        assert_eq!(
            parse_property(" fetch.wait.max.ms =5"),
            Ok(("fetch.wait.max.ms".into(), "5".into()))
        );
        assert_eq!(
            parse_property("linger.ms="),
            Ok(("linger.ms".into(), "".into()))
        );
        for bad in ["no-equals", "=5", " =5"] {
            let err = parse_property(bad).err().unwrap_or_default();
            assert!(err.contains(bad), "{bad}: {err}");
        }
    }
}

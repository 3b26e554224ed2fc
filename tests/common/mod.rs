//! Shared harness for end-to-end tests: brokers, the server binary, REST calls, and Kafka
//! clients that produce and read records through the real protocol.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::{Value, json};

/// A child process killed when dropped.
pub struct Proc {
    pub child: Child,
    pub name: String,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    /// Kills the process with SIGKILL, as a crash would.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `eddy` binary under test.
pub fn eddy_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_eddy"))
}

/// A free TCP port on loopback.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

/// Which broker a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokerKind {
    /// `eddy dev-kafka`: librdkafka's mock cluster in its own process.
    DevKafka,
    /// tansu, an independent Kafka-compatible broker.
    Tansu,
}

/// A running broker.
pub struct Broker {
    pub kind: BrokerKind,
    pub bootstrap: String,
    _proc: Proc,
    /// Processes and files a secured broker needs besides the broker (its TLS front,
    /// certificates), kept for as long as it runs.
    _guards: Vec<Proc>,
    _files: Option<tempfile::TempDir>,
}

/// How clients reach a secured broker (see [`Broker::start_secured`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// `security.protocol=SSL`: TLS, the broker's certificate signed by a test CA.
    Ssl,
    /// `security.protocol=SASL_SSL` with `sasl.mechanism=SCRAM-SHA-512` as a user the
    /// broker does not know, so every login fails as with a wrong password. (A user it
    /// knows cannot be had: tansu gives users only to authenticated clients, keeps them
    /// only in memory here, and offers no mechanism but SCRAM.)
    SaslSslUnknownUser,
}

/// The user and password clients of [`Security::SaslSslUnknownUser`] log in with.
pub const SASL_USER: (&str, &str) = ("alice", "wrong-secret");

/// The client properties each secured broker wants, by bootstrap address: every client this
/// module makes for that address (and every server it starts against it) uses them.
static CLIENT_PROPERTIES: std::sync::Mutex<Vec<(String, Properties)>> =
    std::sync::Mutex::new(Vec::new());

/// librdkafka properties, in the order they are set.
pub type Properties = Vec<(String, String)>;

/// The extra client properties registered for `bootstrap` (none for a plain broker).
pub fn client_properties(bootstrap: &str) -> Properties {
    CLIENT_PROPERTIES
        .lock()
        .map(|all| {
            all.iter()
                .find(|(b, _)| b == bootstrap)
                .map(|(_, props)| props.clone())
                .unwrap_or_default()
        })
        .unwrap_or_default()
}

/// A client configuration for `bootstrap`, with the broker's security properties.
pub fn client_config(bootstrap: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", bootstrap);
    for (key, value) in client_properties(bootstrap) {
        config.set(key, value);
    }
    config
}

/// Runs `program args` to completion, failing with its output if it fails.
fn run(program: &str, args: &[&str], dir: &Path) -> Result<()> {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .with_context(|| format!("running {program}"))?;
    if !out.status.success() {
        bail!(
            "{program} {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// A test CA (`ca.pem`) and a certificate for 127.0.0.1 signed by it (`broker.pem`,
/// `broker.key`), made with the openssl command in `dir`.
pub fn make_certificates(dir: &Path) -> Result<()> {
    let openssl = |args: &[&str]| run("openssl", args, dir);
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=Eddy test CA",
    ])?;
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "broker.key",
        "-out",
        "broker.csr",
        "-subj",
        "/CN=localhost",
    ])?;
    std::fs::write(
        dir.join("san.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )?;
    openssl(&[
        "x509",
        "-req",
        "-in",
        "broker.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "broker.pem",
        "-days",
        "2",
        "-extfile",
        "san.cnf",
    ])
}

impl Broker {
    /// `eddy dev-kafka`, its address read from its first line.
    fn dev_kafka() -> Result<Broker> {
        let mut child = Command::new(eddy_bin())
            .args(["dev-kafka", "--partitions", "1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("starting eddy dev-kafka")?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
        let proc = Proc {
            child,
            name: "dev-kafka".into(),
        };
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let bootstrap = line
            .trim()
            .strip_prefix("bootstrap.servers=")
            .ok_or_else(|| anyhow!("unexpected first line from dev-kafka: {line:?}"))?
            .to_string();
        Ok(Broker {
            kind: BrokerKind::DevKafka,
            bootstrap,
            _proc: proc,
            _guards: Vec::new(),
            _files: None,
        })
    }

    pub fn start(kind: BrokerKind) -> Result<Broker> {
        match kind {
            BrokerKind::DevKafka => Self::dev_kafka(),
            BrokerKind::Tansu => {
                let bin = tansu_bin()?;
                let port = free_port();
                let url = format!("tcp://127.0.0.1:{port}");
                let child = Command::new(bin)
                    .args([
                        "broker",
                        "--listener-url",
                        &url,
                        "--advertised-listener-url",
                        &url,
                        "--storage-engine",
                        "memory://tansu/",
                    ])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .context("starting tansu")?;
                let proc = Proc {
                    child,
                    name: "tansu".into(),
                };
                let bootstrap = format!("127.0.0.1:{port}");
                wait_for(Duration::from_secs(30), "tansu to listen", || {
                    Ok(std::net::TcpStream::connect(&bootstrap).is_ok())
                })?;
                Ok(Broker {
                    kind,
                    bootstrap,
                    _proc: proc,
                    _guards: Vec::new(),
                    _files: None,
                })
            }
        }
    }
}

impl Broker {
    /// tansu behind a TLS front, as a client of a secured Kafka sees it: TLS to the
    /// advertised address, and with SASL the broker's own authentication
    /// (`--authentication`). tansu 0.6.0 cannot serve TLS itself (its `--cert` and `--key`
    /// flags exclude each other), so stunnel terminates TLS in front of its plaintext
    /// listener, which only stunnel uses: the broker advertises stunnel's address.
    pub fn start_secured(security: Security) -> Result<Broker> {
        let files = tempfile::tempdir()?;
        let dir = files.path();
        make_certificates(dir)?;
        let (inner, outer) = (free_port(), free_port());
        let advertised = format!("tcp://127.0.0.1:{outer}");
        let mut args = vec![
            "broker".to_string(),
            "--listener-url".into(),
            format!("tcp://127.0.0.1:{inner}"),
            "--advertised-listener-url".into(),
            advertised,
            "--storage-engine".into(),
            "memory://tansu/".into(),
        ];
        if security != Security::Ssl {
            args.push("--authentication".into());
        }
        let broker = Proc {
            child: Command::new(tansu_bin()?)
                .args(&args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .context("starting tansu")?,
            name: "tansu".into(),
        };
        wait_for(Duration::from_secs(30), "tansu to listen", || {
            Ok(std::net::TcpStream::connect(("127.0.0.1", inner)).is_ok())
        })?;
        std::fs::write(
            dir.join("stunnel.conf"),
            format!(
                "foreground = yes\npid =\n[kafka]\naccept = 127.0.0.1:{outer}\n\
                 connect = 127.0.0.1:{inner}\ncert = {dir}/broker.pem\nkey = {dir}/broker.key\n",
                dir = dir.display()
            ),
        )?;
        let front = Proc {
            child: Command::new("stunnel")
                .arg(dir.join("stunnel.conf"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .context("starting stunnel (Debian package stunnel4)")?,
            name: "stunnel".into(),
        };
        let bootstrap = format!("127.0.0.1:{outer}");
        wait_for(Duration::from_secs(30), "stunnel to listen", || {
            Ok(std::net::TcpStream::connect(&bootstrap).is_ok())
        })?;
        let ca = dir.join("ca.pem").display().to_string();
        let mut props = vec![("ssl.ca.location".to_string(), ca)];
        match security {
            Security::Ssl => props.push(("security.protocol".into(), "SSL".into())),
            Security::SaslSslUnknownUser => {
                let (user, password) = SASL_USER;
                props.extend([
                    ("security.protocol".into(), "SASL_SSL".into()),
                    ("sasl.mechanism".into(), "SCRAM-SHA-512".into()),
                    ("sasl.username".into(), user.into()),
                    ("sasl.password".into(), password.into()),
                ]);
            }
        }
        if let Ok(mut all) = CLIENT_PROPERTIES.lock() {
            all.push((bootstrap.clone(), props));
        }
        Ok(Broker {
            kind: BrokerKind::Tansu,
            bootstrap,
            _proc: broker,
            _guards: vec![front],
            _files: Some(files),
        })
    }
}

impl Broker {
    /// Sends the broker's process `signal` (e.g. `STOP` to cut it off with its data kept,
    /// `CONT` to bring it back).
    pub fn signal(&self, signal: &str) -> Result<()> {
        run(
            "kill",
            &[&format!("-{signal}"), &self._proc.child.id().to_string()],
            Path::new("/"),
        )
    }
}

/// The tansu binary: `$TANSU_BIN`, else `~/.cargo/bin/tansu`, else installed by the shared
/// script (a one-time build of several minutes).
pub fn tansu_bin() -> Result<PathBuf> {
    if let Ok(p) = std::env::var("TANSU_BIN") {
        return Ok(PathBuf::from(p));
    }
    let home = std::env::var("HOME").unwrap_or_default();
    let default = Path::new(&home).join(".cargo/bin/tansu");
    if default.exists() {
        return Ok(default);
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/scripts/ensure-tansu.sh");
    let out = if script.exists() {
        Command::new("bash").arg(&script).output()?
    } else {
        Command::new("cargo")
            .args([
                "install",
                "tansu",
                "--version",
                "0.6.0",
                "--features",
                "dynostore",
                "--locked",
            ])
            .output()?
    };
    if !out.status.success() {
        bail!(
            "could not install tansu: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(default)
}

/// Calls `check` until it returns true or `timeout` passes.
pub fn wait_for(
    timeout: Duration,
    what: &str,
    mut check: impl FnMut() -> Result<bool>,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if check()? {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A running `eddy server`.
pub struct Server {
    pub url: String,
    pub data_dir: PathBuf,
    pub proc: Proc,
    client: reqwest::Client,
}

impl Server {
    /// Starts a server against `bootstrap` and waits until it is healthy.
    pub async fn start(bootstrap: &str, data_dir: &Path, service_id: &str) -> Result<Server> {
        Self::start_with_env(bootstrap, data_dir, service_id, &[]).await
    }

    /// [`Server::start`] with extra environment variables (e.g. `KSQL_*` settings).
    pub async fn start_with_env(
        bootstrap: &str,
        data_dir: &Path,
        service_id: &str,
        envs: &[(&str, &str)],
    ) -> Result<Server> {
        Self::start_with_stderr(bootstrap, data_dir, service_id, envs, Stdio::inherit()).await
    }

    /// [`Server::start_with_env`] with the server's standard error sent to `stderr`.
    pub async fn start_with_stderr(
        bootstrap: &str,
        data_dir: &Path,
        service_id: &str,
        envs: &[(&str, &str)],
        stderr: Stdio,
    ) -> Result<Server> {
        let port = free_port();
        let child = Command::new(eddy_bin())
            .args([
                "server",
                "--bootstrap-servers",
                bootstrap,
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--data-dir",
                &data_dir.display().to_string(),
                "--service-id",
                service_id,
            ])
            .args(
                client_properties(bootstrap)
                    .iter()
                    .flat_map(|(k, v)| ["--kafka-property".to_string(), format!("{k}={v}")]),
            )
            .env("RUST_LOG", "info,librdkafka=error,rdkafka=error")
            .envs(envs.iter().copied())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .context("starting eddy server")?;
        let server = Server {
            url: format!("http://127.0.0.1:{port}"),
            data_dir: data_dir.to_path_buf(),
            proc: Proc {
                child,
                name: "eddy server".into(),
            },
            client: reqwest::Client::new(),
        };
        server.wait_healthy(Duration::from_secs(60)).await?;
        Ok(server)
    }

    /// Waits for `/healthcheck` to say healthy.
    pub async fn wait_healthy(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(r) = self
                .client
                .get(format!("{}/healthcheck", self.url))
                .send()
                .await
                && r.status().is_success()
            {
                let v: Value = r.json().await?;
                if v["isHealthy"] == Value::Bool(true) {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                bail!("server at {} not healthy after {timeout:?}", self.url);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `POST /ksql`; returns the HTTP status and the JSON body.
    pub async fn ksql(&self, statements: &str, props: Value) -> Result<(u16, Value)> {
        let r = self
            .client
            .post(format!("{}/ksql", self.url))
            .header("Content-Type", "application/vnd.ksql.v1+json")
            .json(&serde_json::json!({"ksql": statements, "streamsProperties": props}))
            .send()
            .await?;
        let status = r.status().as_u16();
        Ok((status, r.json().await?))
    }

    /// `POST /ksql` with a `commandSequenceNumber` to wait for; returns the HTTP status and
    /// the JSON body.
    pub async fn ksql_with_sequence(
        &self,
        statements: &str,
        sequence: i64,
    ) -> Result<(u16, Value)> {
        let r = self
            .client
            .post(format!("{}/ksql", self.url))
            .header("Content-Type", "application/vnd.ksql.v1+json")
            .json(&serde_json::json!({"ksql": statements, "commandSequenceNumber": sequence}))
            .send()
            .await?;
        let status = r.status().as_u16();
        Ok((status, r.json().await?))
    }

    /// `POST /ksql` that must succeed.
    pub async fn ksql_ok(&self, statements: &str) -> Result<Value> {
        let (status, body) = self.ksql(statements, serde_json::json!({})).await?;
        if status != 200 {
            bail!("statements failed with {status}: {body}");
        }
        Ok(body)
    }
}

/// A producer for test input.
pub fn producer(bootstrap: &str) -> Result<FutureProducer> {
    Ok(client_config(bootstrap)
        .set("message.timeout.ms", "30000")
        .set("partitioner", "murmur2_random")
        .create()?)
}

/// Produces one record and waits for its acknowledgement.
pub async fn produce(
    producer: &FutureProducer,
    topic: &str,
    key: Option<&[u8]>,
    value: Option<&str>,
    timestamp: i64,
) -> Result<()> {
    let mut record: FutureRecord<'_, [u8], str> = FutureRecord::to(topic).timestamp(timestamp);
    if let Some(k) = key {
        record = record.key(k);
    }
    if let Some(v) = value {
        record = record.payload(v);
    }
    producer
        .send(record, Duration::from_secs(30))
        .await
        .map_err(|(e, _)| anyhow!("producing to {topic}: {e}"))?;
    Ok(())
}

/// One record read back from a topic.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub key: Option<Vec<u8>>,
    pub value: Option<Value>,
    pub timestamp: i64,
}

/// Reads records of `topic` from the beginning until `done(records)` holds or `timeout`
/// passes; then keeps reading for `settle` more to catch unexpected extra records.
pub fn read_topic(
    bootstrap: &str,
    topic: &str,
    timeout: Duration,
    settle: Duration,
    done: impl Fn(&[Record]) -> bool,
) -> Result<Vec<Record>> {
    let consumer: BaseConsumer = client_config(bootstrap)
        .set("group.id", format!("test-reader-{topic}-{}", free_port()))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()?;
    consumer.subscribe(&[topic])?;
    let mut out = Vec::new();
    let deadline = Instant::now() + timeout;
    let mut settle_until: Option<Instant> = None;
    loop {
        let now = Instant::now();
        if let Some(s) = settle_until {
            if now > s {
                return Ok(out);
            }
        } else if done(&out) {
            settle_until = Some(now + settle);
        } else if now > deadline {
            return Ok(out);
        }
        if let Some(m) = consumer.poll(Duration::from_millis(100)) {
            let m = m?;
            let value = m.payload().map(|p| {
                serde_json::from_slice(p)
                    .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(p).into_owned()))
            });
            out.push(Record {
                key: m.key().map(<[u8]>::to_vec),
                value,
                timestamp: m.timestamp().to_millis().unwrap_or(-1),
            });
        }
    }
}

/// ksqlDB's KAFKA serialisation of an INT.
pub fn int_key(v: i32) -> Vec<u8> {
    v.to_be_bytes().to_vec()
}

/// Repeats pull query `sql` until it answers `expected`, or fails after `timeout` with the
/// last answer.
pub async fn await_pull(
    server: &Server,
    sql: &str,
    expected: &[Value],
    timeout: Duration,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let rows = pull(server, sql).await;
        if rows.as_ref().is_ok_and(|rows| rows == expected) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{sql} answered {rows:?}, expected {expected:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The rows of a pull query over `POST /query`, as the `columns` arrays.
pub async fn pull(server: &Server, sql: &str) -> Result<Vec<Value>> {
    let response = reqwest::Client::new()
        .post(format!("{}/query", server.url))
        .header("Content-Type", "application/vnd.ksql.v1+json")
        .json(&json!({"ksql": sql, "streamsProperties": {}}))
        .send()
        .await?;
    let status = response.status();
    let body: Value = response.json().await?;
    if !status.is_success() {
        bail!("pull query failed with {status}: {body}");
    }
    Ok(body
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i.get("row").map(|r| r["columns"].clone()))
                .collect()
        })
        .unwrap_or_default())
}

/// Runs `tests/python/check_metrics.py` (the `prometheus-client` package's OpenMetrics
/// parser, and Prometheus' naming rules) over a scrape; returns its `name type samples`
/// lines.
pub fn check_with_prometheus_parser(text: &str) -> Result<String> {
    use std::io::Write;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/check_metrics.py");
    let mut child = Command::new("python3")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    child
        .stdin
        .take()
        .ok_or_else(|| anyhow!("no stdin"))?
        .write_all(text.as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "Prometheus' parser refused the scrape (pip install prometheus-client; .ci/run \
             does it): {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The value of the sample `series` (name and labels as exposed) in a metrics scrape.
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|value| value.split_whitespace().next()?.parse().ok())
}

/// Every sample of metric `name` (with its labels as exposed) in a metrics scrape.
pub fn samples<'a>(text: &'a str, name: &str) -> Vec<(&'a str, f64)> {
    text.lines()
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let labels = series.strip_prefix(name)?;
            if !(labels.is_empty() || labels.starts_with('{')) {
                return None;
            }
            Some((series, value.parse().ok()?))
        })
        .collect()
}

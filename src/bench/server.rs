//! An `eddy server` child process driven over its REST API, so its CPU and memory are its
//! own (`/proc/<pid>`), apart from the harness's load generator and consumers.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use serde_json::json;

/// A running `eddy server`, killed when dropped.
pub struct ServerProc {
    child: Child,
    url: String,
    /// The built-in schema registry's URL.
    pub registry_url: String,
    client: reqwest::Client,
    /// When the process was spawned.
    pub spawned: Instant,
}

#[derive(Deserialize)]
struct Health {
    #[serde(rename = "isHealthy")]
    is_healthy: bool,
}

/// A free TCP port on loopback.
fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl ServerProc {
    /// Spawns `eddy server` against `bootstrap` with its data in `data_dir`; its log goes to
    /// `server.log` there.
    pub fn spawn(bootstrap: &str, data_dir: &Path, service_id: &str) -> Result<ServerProc> {
        Self::spawn_with(bootstrap, data_dir, service_id, &[])
    }

    /// [`spawn`](Self::spawn) with librdkafka properties (`KEY=VALUE`) for the server's
    /// Kafka clients.
    pub fn spawn_with(
        bootstrap: &str,
        data_dir: &Path,
        service_id: &str,
        kafka_properties: &[String],
    ) -> Result<ServerProc> {
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("creating {}", data_dir.display()))?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(data_dir.join("server.log"))
            .context("opening the server log")?;
        let port = free_port()?;
        let registry_port = free_port()?;
        let exe: PathBuf = super::eddy_exe()?;
        let spawned = Instant::now();
        let child = Command::new(exe)
            .args(["server", "--bootstrap-servers", bootstrap, "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--service-id", service_id])
            .arg("--schema-registry-listen")
            .arg(format!("127.0.0.1:{registry_port}"))
            .args(
                kafka_properties
                    .iter()
                    .flat_map(|p| ["--kafka-property", p.as_str()]),
            )
            .env("RUST_LOG", "warn,librdkafka=error,rdkafka=error")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("starting eddy server")?;
        Ok(ServerProc {
            child,
            url: format!("http://127.0.0.1:{port}"),
            registry_url: format!("http://127.0.0.1:{registry_port}"),
            client: reqwest::Client::new(),
            spawned,
        })
    }

    /// The process id, for `/proc`.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Polls `/healthcheck` every 5 ms until healthy; returns the time since spawn.
    pub fn wait_healthy(&mut self, rt: &tokio::runtime::Runtime) -> Result<Duration> {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let healthy = rt.block_on(async {
                let r = self
                    .client
                    .get(format!("{}/healthcheck", self.url))
                    .send()
                    .await
                    .ok()?;
                r.json::<Health>().await.ok()
            });
            if healthy.is_some_and(|h| h.is_healthy) {
                return Ok(self.spawned.elapsed());
            }
            if let Some(status) = self.child.try_wait()? {
                bail!("eddy server exited with {status}; see its server.log");
            }
            if Instant::now() > deadline {
                bail!("eddy server at {} not healthy after 120s", self.url);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Runs statements (`POST /ksql`) with `auto.offset.reset` = `offset_reset`.
    pub fn ksql(&self, rt: &tokio::runtime::Runtime, sql: &str, offset_reset: &str) -> Result<()> {
        let body = json!({
            "ksql": sql,
            "streamsProperties": {"ksql.streams.auto.offset.reset": offset_reset},
        });
        let (status, text) = self.post(rt, "/ksql", &body)?;
        if !status.is_success() {
            bail!("statements failed with {status}: {text}\n{sql}");
        }
        Ok(())
    }

    /// POSTs `body` to `path` of the REST API: the status and the answer's text.
    fn post(
        &self,
        rt: &tokio::runtime::Runtime,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<(reqwest::StatusCode, String)> {
        Ok(rt.block_on(async {
            let r = self
                .client
                .post(format!("{}{path}", self.url))
                .header("Content-Type", "application/vnd.ksql.v1+json")
                .json(body)
                .send()
                .await?;
            let status = r.status();
            Ok::<_, reqwest::Error>((status, r.text().await?))
        })?)
    }

    /// Registers a schema of `schema_type` (`AVRO`, `PROTOBUF`) under `subject` with the
    /// built-in registry's REST API (as a Confluent producer does); returns its id.
    pub fn register(
        &self,
        rt: &tokio::runtime::Runtime,
        subject: &str,
        schema_type: &str,
        schema: &str,
    ) -> Result<u32> {
        let answer: serde_json::Value = rt.block_on(async {
            self.client
                .post(format!("{}/subjects/{subject}/versions", self.registry_url))
                .header("Content-Type", "application/vnd.schemaregistry.v1+json")
                .json(&json!({"schema": schema, "schemaType": schema_type}))
                .send()
                .await?
                .json()
                .await
        })?;
        answer["id"]
            .as_u64()
            .and_then(|id| u32::try_from(id).ok())
            .with_context(|| format!("registering {subject}: {answer}"))
    }

    /// Whether a pull query (`POST /query`) answers at least one row.
    pub fn pull_has_row(&self, rt: &tokio::runtime::Runtime, sql: &str) -> Result<bool> {
        let body = json!({"ksql": sql, "streamsProperties": {}});
        let (status, text) = self.post(rt, "/query", &body)?;
        // The answer is a header object then one `{"row": …}` object per row.
        Ok(status.is_success() && text.contains("\"row\""))
    }

    /// Waits until a pull query answers a row, e.g. until a table holds its last key.
    pub fn await_pull_row(&self, rt: &tokio::runtime::Runtime, sql: &str) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(300);
        while !self.pull_has_row(rt, sql)? {
            if Instant::now() > deadline {
                bail!("no row for `{sql}` after 300s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// Kills the process (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProc {
    fn drop(&mut self) {
        self.kill();
    }
}

//! The server as ksqlDB users deploy it: a `ksql-server.properties` file, `KSQL_*`
//! variables and flags in their override order, an HTTPS listener with a CA the test makes,
//! and HTTP Basic authentication from a JAAS file and a Jetty password file — checked with
//! reqwest, `eddy shell` and the third-party Python client ksql-python-ng.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use common::{Broker, BrokerKind, Proc, eddy_bin, free_port, make_certificates, wait_for};
use rdkafka::consumer::{BaseConsumer, Consumer};
use serde_json::{Value, json};

/// The documented example users: fred (OBF, admin), harry (plain, no admin role), tom (MD5
/// of "letmein", admin).
const PASSWORDS: &str = "fred: OBF:1w8t1tvf1w261w8v1w1c1tvn1w8x,user,admin\n\
                         harry: changeme,user,developer\n\
                         tom: MD5:0d107d09f5bbe40cade3de5c71e9e9b7,admin\n";

const KSQL_JSON: &str = "application/vnd.ksql.v1+json";

/// Starts `eddy server --config FILE` (plus `args` and `envs`), keeping stderr for errors.
fn spawn_server(config: &Path, args: &[&str], envs: &[(&str, &str)]) -> Result<Proc> {
    let child = Command::new(eddy_bin())
        .args(["server", "--config", &config.display().to_string()])
        .args(args)
        .envs(envs.iter().copied())
        .env("RUST_LOG", "info,librdkafka=error,rdkafka=error")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting eddy server")?;
    Ok(Proc {
        child,
        name: "eddy server".into(),
    })
}

async fn wait_healthy(client: &reqwest::Client, url: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = client.get(format!("{url}/healthcheck")).send().await
            && r.status().is_success()
        {
            let v: Value = r.json().await?;
            if v["isHealthy"] == json!(true) {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            bail!("server at {url} not healthy after 60 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The certificates, password and JAAS files and the server's properties in `dir`.
fn secured_files(dir: &Path, bootstrap: &str, port: u16) -> Result<PathBuf> {
    make_certificates(dir)?;
    let key_store = dir.join("server.pem");
    std::fs::write(
        &key_store,
        [
            std::fs::read(dir.join("broker.pem"))?,
            std::fs::read(dir.join("broker.key"))?,
        ]
        .concat(),
    )?;
    let passwords = dir.join("password-file");
    std::fs::write(&passwords, PASSWORDS)?;
    let jaas = dir.join("jaas_config.file");
    std::fs::write(
        &jaas,
        format!(
            "KsqlServer-Props {{\n  org.eclipse.jetty.security.jaas.spi.PropertyFileLoginModule required\n  \
             file=\"{}\"\n  debug=\"false\";\n}};\n",
            passwords.display()
        ),
    )?;
    let config = dir.join("ksql-server.properties");
    std::fs::write(
        &config,
        format!(
            "listeners=https://127.0.0.1:{port}\n\
             bootstrap.servers={bootstrap}\n\
             ksql.service.id=secured_\n\
             ksql.streams.state.dir={state}\n\
             ksql.streams.fetch.wait.max.ms=5\n\
             ssl.keystore.location={key_store}\n\
             ssl.keystore.type=PEM\n\
             authentication.method=BASIC\n\
             authentication.realm=KsqlServer-Props\n\
             authentication.roles=admin\n\
             authentication.skip.paths=/healthcheck\n\
             java.security.auth.login.config={jaas}\n",
            state = dir.join("state").display(),
            key_store = key_store.display(),
            jaas = jaas.display(),
        ),
    )?;
    Ok(config)
}

#[tokio::test]
async fn https_and_basic_authentication_answer_as_ksqldb() -> Result<()> {
    let broker = Broker::start(BrokerKind::DevKafka)?;
    let dir = tempfile::tempdir()?;
    let port = free_port();
    let config = secured_files(dir.path(), &broker.bootstrap, port)?;
    let _server = spawn_server(&config, &[], &[])?;
    let url = format!("https://127.0.0.1:{port}");
    let ca_pem = std::fs::read(dir.path().join("ca.pem"))?;
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca_pem)?)
        .build()?;
    // /healthcheck is a skipped path: no credentials needed.
    wait_healthy(&client, &url).await?;

    let ksql = |login: Option<(&str, &str)>| {
        let request = client
            .post(format!("{url}/ksql"))
            .header("Content-Type", KSQL_JSON)
            .json(&json!({"ksql": "SHOW STREAMS;", "streamsProperties": {}}));
        match login {
            Some((user, password)) => request.basic_auth(user, Some(password)),
            None => request,
        }
        .send()
    };
    let anonymous = ksql(None).await?;
    assert_eq!(anonymous.status(), 401);
    assert_eq!(
        anonymous
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok()),
        Some("Basic realm=\"KsqlServer-Props\"")
    );
    assert_eq!(
        anonymous.json::<Value>().await?,
        json!({"@type": "generic_error", "error_code": 40100, "message": "Unauthorized"})
    );
    let wrong = ksql(Some(("fred", "letmeout"))).await?;
    assert_eq!(wrong.status(), 401);
    assert_eq!(wrong.json::<Value>().await?["error_code"], json!(40100));
    let not_admin = ksql(Some(("harry", "changeme"))).await?;
    assert_eq!(not_admin.status(), 403);
    assert_eq!(
        not_admin.json::<Value>().await?,
        json!({"@type": "generic_error", "error_code": 40300, "message": "Forbidden"})
    );
    for (user, password) in [("fred", "letmein"), ("tom", "letmein")] {
        let ok = ksql(Some((user, password))).await?;
        assert_eq!(ok.status(), 200, "{user}");
        // ALPN chose HTTP/2 for a client that offers it.
        assert_eq!(ok.version(), reqwest::Version::HTTP_2, "{user}");
        let body: Value = ok.json().await?;
        assert_eq!(body[0]["@type"], json!("streams"), "{body}");
    }
    // The web console is behind the same login.
    let console = client.get(format!("{url}/")).send().await?;
    assert_eq!(console.status(), 401);
    let console = client
        .get(format!("{url}/"))
        .basic_auth("fred", Some("letmein"))
        .send()
        .await?;
    assert_eq!(console.status(), 200);
    assert!(console.text().await?.contains("Eddy console"));
    // Cleartext HTTP to the HTTPS port gets no answer.
    let cleartext = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/healthcheck"))
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    assert!(
        cleartext.is_err() || cleartext.is_ok_and(|r| !r.status().is_success()),
        "cleartext HTTP was served"
    );

    // The shell, with ksqlDB's CLI flags and trust-store file.
    let cli_config = dir.path().join("cli.properties");
    std::fs::write(
        &cli_config,
        format!(
            "ssl.truststore.location={}\n",
            dir.path().join("ca.pem").display()
        ),
    )?;
    let shell = |password: &str| {
        Command::new(eddy_bin())
            .args(["shell", "--user", "fred", "--password", password])
            .arg("--config-file")
            .arg(&cli_config)
            .args([url.as_str(), "-e", "SHOW STREAMS;"])
            .output()
    };
    let out = shell("letmein")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("EDDY_PROCESSING_LOG"), "{stdout}");
    let out = shell("wrong")?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("Unauthorized"), "{stderr}");

    // ksql-python-ng with its api_key/secret arguments, trusting the test CA.
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/python/ksql_python_secured.py"
    );
    let ca = dir.path().join("ca.pem");
    let python_url = url.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .args([script, &python_url, "fred", "letmein"])
            .env("SSL_CERT_FILE", &ca)
            .output()
    })
    .await??;
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(
        out.status.success() && stdout.contains("all checks passed"),
        "the ksql-python-ng script failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// The replication factor of partition 0 of `topic`, once the topic exists.
fn replicas(bootstrap: &str, topic: &str) -> Result<usize> {
    let consumer: BaseConsumer = common::client_config(bootstrap).create()?;
    let mut count = 0;
    wait_for(Duration::from_secs(30), &format!("topic {topic}"), || {
        let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(5))?;
        count = metadata
            .topics()
            .first()
            .filter(|t| t.error().is_none())
            .and_then(|t| t.partitions().first())
            .map_or(0, |p| p.replicas().len());
        Ok(count > 0)
    })?;
    Ok(count)
}

#[tokio::test]
async fn a_config_file_sets_the_server_under_environment_and_flags() -> Result<()> {
    // tansu keeps the replication factor a topic was created with (the dev broker does not).
    let broker = Broker::start(BrokerKind::Tansu)?;
    let dir = tempfile::tempdir()?;
    let (file_port, env_port, flag_port) = (free_port(), free_port(), free_port());
    let config = dir.path().join("server.properties");
    std::fs::write(
        &config,
        format!(
            "# as ksqlDB users write it\n\
             listeners=http://127.0.0.1:{file_port}\n\
             bootstrap.servers={bootstrap}\n\
             ksql.service.id=from_file_\n\
             ksql.streams.state.dir={state}\n\
             ksql.internal.topic.replicas=3\n\
             ksql.sink.replicas=2\n\
             ksql.streams.auto.offset.reset=earliest\n\
             ksql.streams.consumer.fetch.wait.max.ms=5\n\
             ksql.streams.ssl.key.password=s3cret-value\n",
            bootstrap = broker.bootstrap,
            state = dir.path().join("state").display(),
        ),
    )?;
    let env_listener = format!("http://127.0.0.1:{env_port}");
    let flag_listener = format!("127.0.0.1:{flag_port}");
    let _server = spawn_server(
        &config,
        &["--listen", &flag_listener],
        &[
            ("KSQL_KSQL_SERVICE_ID", "from_env_"),
            ("KSQL_LISTENERS", &env_listener),
        ],
    )?;
    let url = format!("http://{flag_listener}");
    let client = reqwest::Client::new();
    // The flag beat the environment, which beat the file.
    wait_healthy(&client, &url).await?;
    for port in [file_port, env_port] {
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
            "something listens on {port}"
        );
    }
    let ksql = |statements: &str| {
        client
            .post(format!("{url}/ksql"))
            .header("Content-Type", KSQL_JSON)
            .json(&json!({"ksql": statements, "streamsProperties": {}}))
            .send()
    };
    let shown: Value = ksql("SHOW PROPERTIES;").await?.json().await?;
    let properties: Vec<(String, String)> = shown[0]["properties"]
        .as_array()
        .context("properties")?
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap_or("").to_string(),
                p["value"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let value = |name: &str| {
        properties
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    // The environment beat the file; the file beat the defaults; secrets are masked.
    assert_eq!(value("ksql.service.id"), Some("from_env_"));
    assert_eq!(value("ksql.internal.topic.replicas"), Some("3"));
    assert_eq!(value("ksql.streams.auto.offset.reset"), Some("earliest"));
    assert_eq!(value("ksql.streams.ssl.key.password"), Some("[hidden]"));
    assert_eq!(value("authentication.method"), Some("NONE"));
    assert!(!shown.to_string().contains("s3cret-value"), "{shown}");

    // Internal topics get ksql.internal.topic.replicas, a statement's topic
    // ksql.sink.replicas.
    let created = ksql(
        "CREATE STREAM orders (id INT KEY, item VARCHAR) WITH (KAFKA_TOPIC='orders', \
         VALUE_FORMAT='JSON', PARTITIONS=1);\n\
         CREATE TABLE counts AS SELECT item, COUNT(*) AS n FROM orders GROUP BY item;",
    )
    .await?;
    assert_eq!(created.status(), 200, "{}", created.text().await?);
    assert_eq!(replicas(&broker.bootstrap, "_eddy_from_env__commands")?, 3);
    assert_eq!(
        replicas(&broker.bootstrap, "from_env_ksql_processing_log")?,
        3
    );
    assert_eq!(replicas(&broker.bootstrap, "orders")?, 2);
    assert_eq!(replicas(&broker.bootstrap, "COUNTS")?, 2);
    let consumer: BaseConsumer = common::client_config(&broker.bootstrap).create()?;
    let metadata = consumer.fetch_metadata(None, Duration::from_secs(10))?;
    let changelogs: Vec<(String, usize)> = metadata
        .topics()
        .iter()
        .filter(|t| t.name().ends_with("-changelog"))
        .map(|t| {
            (
                t.name().to_string(),
                t.partitions().first().map_or(0, |p| p.replicas().len()),
            )
        })
        .collect();
    assert!(!changelogs.is_empty(), "no changelog topic");
    assert!(changelogs.iter().all(|(_, n)| *n == 3), "{changelogs:?}");
    Ok(())
}

#[test]
fn an_unknown_or_malformed_key_stops_the_start_naming_it() -> Result<()> {
    let dir = tempfile::tempdir()?;
    for (text, expected) in [
        (
            "listeners=http://127.0.0.1:1\nksql.servce.id=x\n",
            "'ksql.servce.id'",
        ),
        ("ksql.sink.replicas=three\n", "ksql.sink.replicas=three"),
        ("ksql.streams.fetch.wiat.max.ms=5\n", "fetch.wiat.max.ms"),
    ] {
        let config = dir.path().join("bad.properties");
        std::fs::write(&config, text)?;
        let mut child = Command::new(eddy_bin())
            .args(["server", "--config", &config.display().to_string()])
            .arg("--data-dir")
            .arg(dir.path().join("state"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        let mut status = None;
        wait_for(Duration::from_secs(30), "the server to stop", || {
            status = child.try_wait()?;
            Ok(status.is_some())
        })?;
        let mut stderr = String::new();
        std::io::Read::read_to_string(child.stderr.as_mut().context("stderr")?, &mut stderr)?;
        assert!(status.is_some_and(|s| !s.success()), "{text}: {stderr}");
        assert!(stderr.contains(expected), "{text}: {stderr}");
    }
    Ok(())
}

/// Stops a server as `docker stop` does and waits for it to end.
fn stop(server: &mut common::Server) -> Result<()> {
    let pid = server.proc.child.id().to_string();
    let status = Command::new("kill").args(["-TERM", &pid]).status()?;
    if !status.success() {
        bail!("kill -TERM {pid} failed");
    }
    wait_for(Duration::from_secs(30), "the server to stop", || {
        Ok(server.proc.child.try_wait()?.is_some())
    })
}

/// The keys of the records of `topic`, once there are `n` (and nothing more comes).
fn keys_of(bootstrap: &str, topic: &str, n: usize) -> Result<Vec<i32>> {
    let records = common::read_topic(
        bootstrap,
        topic,
        Duration::from_secs(60),
        Duration::from_secs(2),
        |r| r.len() >= n,
    )?;
    Ok(records
        .iter()
        .filter_map(|r| r.key.as_deref()?.try_into().ok().map(i32::from_be_bytes))
        .collect())
}

#[tokio::test]
async fn headless_mode_runs_its_file_at_every_start_and_refuses_changes() -> Result<()> {
    let broker = Broker::start(BrokerKind::DevKafka)?;
    let dir = tempfile::tempdir()?;
    let queries = dir.path().join("queries.sql");
    std::fs::write(
        &queries,
        "SET 'auto.offset.reset'='earliest';\n\
         CREATE STREAM hl (id INT KEY, v INT) \
           WITH (KAFKA_TOPIC='hl', VALUE_FORMAT='JSON', PARTITIONS=1);\n\
         CREATE STREAM hl_big AS SELECT * FROM hl WHERE v > 1;\n",
    )?;
    let queries_env = queries.display().to_string();
    let envs = [("EDDY_QUERIES_FILE", queries_env.as_str())];
    let data = dir.path().join("data");
    let mut server =
        common::Server::start_with_env(&broker.bootstrap, &data, "headless_", &envs).await?;
    let p = common::producer(&broker.bootstrap)?;
    for (id, v) in [(1, 1), (2, 5)] {
        let value = json!({"V": v}).to_string();
        common::produce(&p, "hl", Some(&common::int_key(id)), Some(&value), 1_000).await?;
    }
    assert_eq!(keys_of(&broker.bootstrap, "HL_BIG", 1)?, [2]);

    // Reading is served; changing is not, whatever the endpoint.
    let shown = server.ksql_ok("SHOW STREAMS;").await?;
    assert!(shown.to_string().contains("HL_BIG"), "{shown}");
    for statement in [
        "CREATE STREAM other (id INT KEY) WITH (KAFKA_TOPIC='other', VALUE_FORMAT='JSON', PARTITIONS=1);",
        "INSERT INTO hl (id, v) VALUES (9, 9);",
        "DROP STREAM hl_big;",
    ] {
        let (status, body) = server.ksql(statement, json!({})).await?;
        assert_eq!(status, 400, "{statement}: {body}");
        assert!(
            body["message"].as_str().unwrap_or("").contains("headless"),
            "{statement}: {body}"
        );
    }
    let inserts = reqwest::Client::new()
        .post(format!("{}/inserts-stream", server.url))
        .body("{\"target\": \"hl\"}\n{\"ID\": 9, \"V\": 9}\n")
        .send()
        .await?;
    assert_eq!(inserts.status(), 400);

    // Restarted, it runs the file again and resumes its query where it stopped.
    stop(&mut server)?;
    let _server =
        common::Server::start_with_env(&broker.bootstrap, &data, "headless_", &envs).await?;
    let value = json!({"V": 7}).to_string();
    common::produce(&p, "hl", Some(&common::int_key(3)), Some(&value), 2_000).await?;
    assert_eq!(keys_of(&broker.bootstrap, "HL_BIG", 2)?, [2, 3]);

    // A file with a statement headless mode does not run stops the start, naming it.
    std::fs::write(
        &queries,
        "CREATE STREAM hl (id INT KEY, v INT) \
           WITH (KAFKA_TOPIC='hl', VALUE_FORMAT='JSON', PARTITIONS=1);\n\
         DROP STREAM hl;\n",
    )?;
    let out = Command::new(eddy_bin())
        .args(["server", "--bootstrap-servers", &broker.bootstrap])
        .arg("--data-dir")
        .arg(dir.path().join("other-data"))
        .args(["--listen", &format!("127.0.0.1:{}", free_port())])
        .env("EDDY_QUERIES_FILE", &queries)
        .output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("line 2") && stderr.contains("DROP STREAM hl"),
        "{stderr}"
    );
    Ok(())
}

//! `eddy shell` driven through a pseudo-terminal against a running server: a statement over
//! several lines, tables, tab completion, `DESCRIBE FUNCTION`, `RUN SCRIPT`, a push query stopped with Ctrl-C, Ctrl-C and Ctrl-D
//! at the prompt, persistent history; and `-f`/`-e` run as plain processes, with variables
//! (`--define`, `DEFINE`) and `SPOOL`.

mod common;

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};
use common::{Broker, BrokerKind, Server, eddy_bin};
use rexpect::process::wait::WaitStatus;
use rexpect::reader::Options;
use rexpect::session::{PtySession, spawn_with_options};

const PROMPT: &str = "eddy> ";
/// How long any one expected output may take (a push query's consumer joining included).
const DEADLINE_MS: u64 = 60_000;

fn start_server(data: &Path) -> Result<(Broker, Server)> {
    let broker = Broker::start(BrokerKind::DevKafka)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let server = runtime.block_on(Server::start(&broker.bootstrap, data, "shell_test"))?;
    Ok((broker, server))
}

/// `eddy shell URL` on a pseudo-terminal, with its own home directory (for the history).
fn spawn_shell(url: &str, home: &Path) -> Result<PtySession> {
    let mut cmd = Command::new(eddy_bin());
    cmd.args(["shell", url])
        .env("HOME", home)
        .env("TERM", "xterm")
        .env_remove("RUST_LOG");
    let options = Options::new()
        .timeout_ms(Some(DEADLINE_MS))
        .strip_ansi_escape_codes(true);
    spawn_with_options(cmd, options).context("spawning eddy shell")
}

#[test]
fn interactive_shell_against_a_server() -> Result<()> {
    let data = tempfile::tempdir()?;
    let (_broker, server) = start_server(data.path())?;
    let home = tempfile::tempdir()?;
    let mut p = spawn_shell(&server.url, home.path())?;

    // The banner names the server's version and status.
    p.exp_string(&format!("Server v{}", env!("CARGO_PKG_VERSION")))?;
    p.exp_string("Server Status: RUNNING")?;
    p.exp_string(PROMPT)?;

    // A statement over two lines: the second prompt is the continuation prompt.
    p.send_line("CREATE STREAM shell_reviews (id INT KEY, rating INT, -- the stars; 1 to 5")?;
    p.exp_string("   > ")?;
    p.send_line("  text VARCHAR) WITH (KAFKA_TOPIC='shell_reviews', VALUE_FORMAT='JSON',")?;
    p.exp_string("   > ")?;
    p.send_line("  PARTITIONS=1);")?;
    p.exp_string("Stream created")?;
    p.exp_string(PROMPT)?;

    // SHOW STREAMS as a table in ksqlDB's layout.
    p.send_line("SHOW STREAMS;")?;
    p.exp_regex(r"Stream Name\s+\| Kafka Topic\s+\| Key Format \| Value Format \| Windowed")?;
    p.exp_regex(r"SHELL_REVIEWS\s+\| shell_reviews\s+\| KAFKA\s+\| JSON\s+\| false")?;
    p.exp_string(PROMPT)?;

    // Tab completes keywords and the server's names (fetched after each statement), in the
    // case typed; DESCRIBE FUNCTION is laid out as ksqlDB's CLI lays it out.
    p.send("describe shell_rev")?;
    p.send("\t")?;
    p.send_line(";")?;
    p.exp_regex(r"Name\s+: SHELL_REVIEWS")?;
    p.exp_string(PROMPT)?;
    p.send("DESCRIBE FUNCTION SUBST")?;
    p.send("\t")?;
    p.send_line(";")?;
    p.exp_string("Name        : SUBSTRING")?;
    p.exp_string("Type        : SCALAR")?;
    p.exp_string("Variation   : SUBSTRING(")?;
    p.exp_string(PROMPT)?;

    // A statement the server refuses: its message, not its JSON.
    p.send_line("DROP STREAM no_such_stream;")?;
    let (before, _) = p.exp_regex(r"(?i)no_such_stream[^\n]*does not exist")?;
    assert!(!before.contains("error_code"), "raw JSON shown: {before}");
    p.exp_string(PROMPT)?;

    // RUN SCRIPT runs a file's statements (with `;` in a string and comments).
    let script = home.path().join("setup.sql");
    std::fs::write(
        &script,
        "-- a table for the shell test\n\
         CREATE TABLE shell_users (id INT PRIMARY KEY, name VARCHAR)\n  \
         WITH (KAFKA_TOPIC='shell_users', VALUE_FORMAT='JSON', PARTITIONS=1);\n\
         INSERT INTO shell_reviews (id, rating, text) VALUES (1, 5, 'great; really');\n\
         INSERT INTO shell_reviews (id, rating, text) VALUES (2, 1, 'awful');\n",
    )?;
    p.send_line(&format!("RUN SCRIPT '{}';", script.display()))?;
    p.exp_string("Table created")?;
    p.exp_string(PROMPT)?;
    p.send_line("SHOW TABLES;")?;
    p.exp_regex(r"SHELL_USERS\s+\| shell_users\s+\| KAFKA\s+\| JSON")?;
    p.exp_string(PROMPT)?;

    // SET applies to the session: the push query reads from the beginning and shows the
    // rows inserted by the script as they arrive; Ctrl-C stops it and the prompt returns.
    p.send_line("SET 'auto.offset.reset'='earliest';")?;
    p.exp_string("Successfully changed local property 'auto.offset.reset' to 'earliest'")?;
    p.exp_string(PROMPT)?;
    p.send_line("SELECT id, rating, text FROM shell_reviews EMIT CHANGES;")?;
    p.exp_regex(r"\|ID\s+\|RATING\s+\|TEXT\s+\|")?;
    // The topic's partitions (the dev broker may make several) decide the rows' order.
    let mut rows = Vec::new();
    for _ in 0..2 {
        let (_, row) = p.exp_regex(r"\|[12] +\|[15] +\|(great; really|awful) +\|")?;
        rows.push(row.split_whitespace().collect::<String>());
    }
    rows.sort();
    assert_eq!(rows, vec!["|1|5|great;really|", "|2|1|awful|"]);
    // A row written while the query runs shows up while it runs.
    let insert = Command::new(eddy_bin())
        .args(["shell", &server.url, "-e"])
        .arg("INSERT INTO shell_reviews (id, rating, text) VALUES (3, 4, 'later');")
        .output()?;
    assert!(insert.status.success(), "{insert:?}");
    p.exp_regex(r"\|3 +\|4 +\|later +\|")?;
    p.send_control('c')?;
    p.exp_string("Query terminated")?;
    p.exp_string(PROMPT)?;

    // The shell still works after the push query, and Ctrl-C at the prompt clears the line.
    p.send("SHOW STRE")?;
    p.flush()?;
    p.send_control('c')?;
    p.exp_string(PROMPT)?;
    p.send_line("SHOW QUERIES;")?;
    p.exp_regex(r"Query ID\s+\| Query Type")?;
    p.exp_string(PROMPT)?;

    // OUTPUT JSON prints the server's entities as JSON.
    p.send_line("OUTPUT JSON")?;
    p.exp_string("Output format set to JSON")?;
    p.send_line("DESCRIBE shell_users;")?;
    p.exp_string("\"@type\": \"sourceDescription\"")?;
    p.exp_string(PROMPT)?;

    // Ctrl-D exits with status 0.
    p.send_control('d')?;
    p.exp_string("Exiting Eddy.")?;
    p.exp_eof()?;
    let status = p.process.wait()?;
    assert!(
        matches!(status, WaitStatus::Exited(_, 0)),
        "exit status {status:?}"
    );

    // The history survived the session: a new one finds a statement with Ctrl-R.
    let history = std::fs::read_to_string(home.path().join(".eddy/history"))?;
    assert!(history.contains("SHOW STREAMS;"), "history: {history}");
    assert!(history.contains("PARTITIONS=1);"), "history: {history}");
    let mut p = spawn_shell(&server.url, home.path())?;
    p.exp_string(PROMPT)?;
    p.send_control('r')?;
    p.send("SHOW TAB")?;
    p.flush()?;
    p.exp_string("(reverse-i-search)`SHOW TAB': SHOW TABLES;")?;
    p.send("\r")?;
    p.flush()?;
    p.exp_regex(r"SHELL_USERS\s+\| shell_users\s+\| KAFKA\s+\| JSON")?;
    p.exp_string(PROMPT)?;
    p.send_line("exit")?;
    p.exp_eof()?;
    Ok(())
}

#[test]
fn scripts_run_non_interactively_and_stop_at_the_first_failure() -> Result<()> {
    let data = tempfile::tempdir()?;
    let (_broker, server) = start_server(data.path())?;
    let dir = tempfile::tempdir()?;

    // -e: statements on the command line; success is exit code 0 and the tables on stdout.
    let out = Command::new(eddy_bin())
        .args(["shell", &server.url, "-e"])
        .arg("CREATE STREAM ok_stream (id INT KEY, v VARCHAR) WITH (KAFKA_TOPIC='ok_stream', VALUE_FORMAT='JSON', PARTITIONS=1); SHOW STREAMS;")
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("Stream created"), "{stdout}");
    assert!(stdout.contains(" OK_STREAM "), "{stdout}");

    // Variables: --define and DEFINE, sent with every statement (the server substitutes
    // them); SHOW VARIABLES lists the session's, UNDEFINE forgets one.
    let out = Command::new(eddy_bin())
        .args(["shell", &server.url, "--define", "topic=var_topic", "-e"])
        .arg(
            "DEFINE parts = '1';              CREATE STREAM var_stream (id INT KEY) WITH (KAFKA_TOPIC='${topic}', VALUE_FORMAT='JSON', PARTITIONS=${parts});              SHOW VARIABLES; UNDEFINE parts; SHOW VARIABLES; SHOW TOPICS;",
        )
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("Variable Name"), "{stdout}");
    assert_eq!(stdout.matches(" parts ").count(), 1, "{stdout}");
    assert_eq!(stdout.matches(" topic ").count(), 2, "{stdout}");
    assert!(stdout.contains(" var_topic "), "{stdout}");

    // SPOOL: statements and their results go to a file too, until SPOOL OFF.
    let spooled = dir.path().join("session.txt");
    let out = Command::new(eddy_bin())
        .args(["shell", &server.url, "-e"])
        .arg(format!(
            "SPOOL '{}'; SHOW STREAMS; SPOOL OFF; SHOW TABLES;",
            spooled.display()
        ))
        .output()?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let spool = std::fs::read_to_string(&spooled)?;
    assert!(spool.contains("SHOW STREAMS;"), "{spool}");
    assert!(spool.contains(" OK_STREAM "), "{spool}");
    assert!(!spool.contains("SHOW TABLES"), "{spool}");

    // -f: the third statement fails; the fourth never runs.
    let script = dir.path().join("broken.sql");
    std::fs::write(
        &script,
        "-- deploys something\n\
         SET 'auto.offset.reset'='earliest';\n\
         SHOW STREAMS;\n\
         \n\
         CREATE STREAM derived AS\n  SELECT * FROM missing_stream;\n\
         CREATE STREAM never_created (id INT KEY) WITH (KAFKA_TOPIC='never', VALUE_FORMAT='JSON', PARTITIONS=1);\n",
    )?;
    let out = Command::new(eddy_bin())
        .args(["shell", &server.url, "-f"])
        .arg(&script)
        .output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "Statement at line 5 of {} failed:",
            script.display()
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("CREATE STREAM derived AS\n  SELECT * FROM missing_stream;"),
        "{stderr}"
    );
    assert!(
        stderr.to_uppercase().contains("MISSING_STREAM"),
        "the server's message names the unknown stream: {stderr}"
    );
    assert!(!stderr.contains("error_code"), "raw JSON shown: {stderr}");

    let out = Command::new(eddy_bin())
        .args(["shell", &server.url, "-e", "SHOW STREAMS;"])
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains("NEVER_CREATED"), "{stdout}");
    assert!(!stdout.contains("DERIVED"), "{stdout}");
    Ok(())
}

#[test]
fn a_server_that_does_not_answer_is_given_up_on_after_the_request_timeout() -> Result<()> {
    // Accepts connections and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0")?;
    let url = format!("http://{}", silent.local_addr()?);
    let held = std::thread::spawn(move || silent.accept().map(|(conn, _)| conn));
    let started = std::time::Instant::now();
    let out = Command::new(eddy_bin())
        .args([
            "shell",
            &url,
            "--request-timeout",
            "1",
            "-e",
            "SHOW STREAMS;",
        ])
        .output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("did not answer within 1 s (--request-timeout)"),
        "{stderr}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    drop(held);
    Ok(())
}

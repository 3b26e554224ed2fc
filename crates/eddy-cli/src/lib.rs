//! Eddy's SQL shell, `eddy shell`: an interactive client of the server's REST API in the
//! manner of ksqlDB's `ksql` CLI, and a script runner (`-f FILE`, `-e STATEMENTS`).
//!
//! Entry point: [`run`] with [`ShellArgs`]. The shell splits text into statements
//! ([`statements`]), runs its own commands (`SET`, `OUTPUT`, `RUN SCRIPT`, …) and sends the
//! rest to the server ([`client`]): queries to `POST /query`, read as they stream
//! ([`query_stream`]), everything else to `POST /ksql`; results are printed as ASCII tables
//! ([`render`]).
//!
//! The shell talks to the server only over HTTP, in ksqlDB's documented wire format, so it
//! also works against ksqlDB itself; it depends on no other Eddy crate.

pub mod client;
pub mod command;
mod completion;
mod error;
pub mod migrate;
pub mod query_stream;
pub mod render;
mod repl;
pub mod session;
pub mod statements;

use std::io::IsTerminal;
use std::path::PathBuf;

pub use error::ShellError;

use crate::client::Client;
pub use crate::client::ConnectOptions;
use crate::command::OutputFormat;
use crate::session::Session;

/// Arguments of `eddy shell`.
#[derive(Debug, clap::Args)]
pub struct ShellArgs {
    /// The server's URL.
    #[arg(value_name = "URL", default_value = "http://localhost:8088")]
    pub server: String,
    /// Runs the statements of FILE and exits; stops at the first that fails, with a
    /// non-zero exit code.
    #[arg(
        short = 'f',
        long = "file",
        value_name = "FILE",
        conflicts_with = "execute"
    )]
    pub file: Option<PathBuf>,
    /// Runs STATEMENTS (each ended by `;`) and exits; stops at the first that fails, with
    /// a non-zero exit code.
    #[arg(short = 'e', long = "execute", value_name = "STATEMENTS")]
    pub execute: Option<String>,
    /// How results are printed (`OUTPUT` changes it during a session).
    #[arg(long, value_enum, ignore_case = true, default_value = "tabular")]
    pub output: Output,
    /// User for a server with HTTP Basic authentication.
    #[arg(short = 'u', long, requires = "password")]
    pub user: Option<String>,
    /// Password of `--user`.
    #[arg(short = 'p', long, requires = "user")]
    pub password: Option<String>,
    /// A properties file with the TLS settings of an HTTPS server, as ksqlDB's CLI reads
    /// them: `ssl.truststore.location` (PEM or PKCS#12) and `ssl.truststore.password`
    /// for a server certificate no public CA signed; `ssl.keystore.location` (PKCS#12)
    /// and `ssl.keystore.password` for a server that asks for client certificates.
    #[arg(long, value_name = "FILE")]
    pub config_file: Option<PathBuf>,
    /// Seconds a request may wait for the server's answer to begin before the shell gives
    /// up on it (a push query's rows then take as long as they take).
    #[arg(long, value_name = "SECONDS")]
    pub request_timeout: Option<u64>,
    /// Defines a variable for the session, as `DEFINE NAME = 'VALUE';` does (repeatable).
    #[arg(long = "define", value_name = "NAME=VALUE", value_parser = parse_define)]
    pub define: Vec<(String, String)>,
}

/// `NAME=VALUE` of `--define`.
fn parse_define(text: &str) -> Result<(String, String), String> {
    let (name, value) = text
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=VALUE, got '{text}'"))?;
    let name = name.trim();
    let valid = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(format!(
            "'{name}' is not a variable name (a letter or _, then letters, digits or _)"
        ));
    }
    Ok((name.to_string(), value.to_string()))
}

/// `--output`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Output {
    /// ASCII tables.
    Tabular,
    /// The server's JSON.
    Json,
}

/// Runs the shell: interactively, or the statements of `-f`/`-e`.
///
/// # Errors
///
/// For `-f`/`-e`, the first statement that failed ([`ShellError::Statement`]); otherwise
/// only a bad URL or a failing terminal.
pub fn run(args: &ShellArgs) -> Result<(), ShellError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let options = match &args.config_file {
        Some(path) => ConnectOptions::from_file(path)?,
        None => ConnectOptions::default(),
    };
    let options = ConnectOptions {
        login: args.user.clone().zip(args.password.clone()),
        request_timeout: args.request_timeout.map(std::time::Duration::from_secs),
        ..options
    };
    let client = Client::connect(&args.server, &options)?;
    let output = match args.output {
        Output::Tabular => OutputFormat::Tabular,
        Output::Json => OutputFormat::Json,
    };
    let interactive = args.file.is_none() && args.execute.is_none();
    // Ctrl-C stops a statement only when someone types at a terminal; statements piped in
    // or given with -f/-e are stopped, as any command, by ending the process.
    let interruptible = interactive && std::io::stdin().is_terminal();
    let mut session = Session::new(client, output, interruptible);
    for (name, value) in &args.define {
        session.define(name, value);
    }
    if let Some(path) = &args.file {
        let text = std::fs::read_to_string(path).map_err(|source| ShellError::Script {
            path: path.clone(),
            source,
        })?;
        runtime.block_on(session.run_text(&text, &path.display().to_string()))?;
    } else if let Some(text) = &args.execute {
        runtime.block_on(session.run_text(text, "--execute"))?;
    } else {
        repl::run(&mut session, &runtime)?;
    }
    Ok(())
}

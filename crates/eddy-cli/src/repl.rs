//! The interactive loop: a line editor with persistent history, statements that end with
//! `;` over as many lines as it takes, and Ctrl-C/Ctrl-D as in ksqlDB's CLI.

use std::path::PathBuf;

use futures::FutureExt;
use rustyline::error::ReadlineError;
use rustyline::history::DefaultHistory;
use rustyline::{Config, Editor};
use serde_json::Map;
use tokio::runtime::Runtime;

use crate::command::Command;
use crate::completion::ShellHelper;
use crate::error::ShellError;
use crate::session::{Flow, Session, print};
use crate::statements::{self, Statement};

const PROMPT: &str = "eddy> ";
const CONTINUATION: &str = "   > ";

/// Runs the shell until Ctrl-D or `EXIT`.
///
/// # Errors
///
/// Only when the terminal itself fails; statements that fail are reported and the shell
/// goes on.
pub fn run(session: &mut Session, runtime: &Runtime) -> Result<(), ShellError> {
    banner(session, runtime)?;
    let config = Config::builder()
        .auto_add_history(false)
        .history_ignore_dups(true)?
        .max_history_size(10_000)?
        .build();
    let mut editor: Editor<ShellHelper, DefaultHistory> = Editor::with_config(config)?;
    let helper = ShellHelper::default();
    editor.set_helper(Some(helper.clone()));
    refresh_names(session, runtime, &helper);
    // The editor replaced SIGINT's handler with its own, which would swallow Ctrl-C while a
    // statement runs; tokio's handler, installed now, comes first (and chains to it). From
    // now on Ctrl-C outside the editor reaches the session instead of ending the process.
    if session.interruptible() {
        runtime.block_on(async { tokio::signal::ctrl_c().now_or_never() });
    }
    let history = history_file();
    if let Some(path) = &history {
        // A missing or unreadable history is no reason not to start.
        let _ = editor.load_history(path);
    }
    let mut pending = String::new();
    loop {
        let prompt = if pending.is_empty() {
            PROMPT
        } else {
            CONTINUATION
        };
        let line = match editor.readline(prompt) {
            Ok(line) => line,
            Err(ReadlineError::Interrupted) => {
                pending.clear();
                continue;
            }
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(e.into()),
        };
        if !line.trim().is_empty() {
            editor.add_history_entry(line.as_str())?;
            if let Some(path) = &history
                && let Err(e) = editor.save_history(path)
            {
                eprintln!("cannot save the history in {}: {e}", path.display());
            }
        }
        let ready = if pending.is_empty() && Command::is_bare_command(&line) {
            vec![Statement {
                text: line.trim().trim_end_matches(';').to_string(),
                line: 1,
            }]
        } else {
            pending.push_str(&line);
            pending.push('\n');
            let split = statements::split(&pending);
            pending = split.rest.unwrap_or_default();
            split.statements
        };
        for statement in &ready {
            match runtime.block_on(session.execute(statement)) {
                Ok(Flow::Continue) => {}
                Ok(Flow::Exit) => return print("Exiting Eddy."),
                Err(e) => {
                    eprintln!("{e}");
                    // The statements typed after a failed one on the same line are dropped.
                    break;
                }
            }
        }
        if !ready.is_empty() {
            // Completion offers the names as they are after these statements.
            refresh_names(session, runtime, &helper);
        }
    }
    print("Exiting Eddy.")
}

/// Asks the server for its streams, tables and functions, for completion; a server that does
/// not answer leaves the names as they were.
fn refresh_names(session: &Session, runtime: &Runtime, helper: &ShellHelper) {
    let none = Map::new();
    let asked = session
        .client()
        .ksql("SHOW STREAMS; SHOW TABLES; SHOW FUNCTIONS", &none, &none);
    if let Ok(entities) = runtime.block_on(asked) {
        helper.set_names(&entities);
    }
}

fn banner(session: &Session, runtime: &Runtime) -> Result<(), ShellError> {
    let url = session.client().url();
    let cli = env!("CARGO_PKG_VERSION");
    match runtime.block_on(session.client().info()) {
        Ok(info) => print(&format!(
            "Eddy CLI v{cli}, Server v{} located at {url}\nServer Status: {}",
            info.version, info.status
        ))?,
        Err(e) => print(&format!(
            "Eddy CLI v{cli}\nWARNING: the server at {url} did not answer: {e}"
        ))?,
    }
    print(
        "\nStatements end with ';' and may span lines. \
         Type 'help' for help; Ctrl-D exits.\n",
    )
}

/// `~/.eddy/history`, creating `~/.eddy`; none without a home directory.
fn history_file() -> Option<PathBuf> {
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty())?;
    let dir = PathBuf::from(home).join(".eddy");
    std::fs::create_dir_all(&dir).ok()?;
    Some(dir.join("history"))
}

//! `eddy test`: runs test files in ksqlDB's query-validation format (statements, input
//! records, expected output records or errors) against the real engine over in-memory
//! topics. See `../shared/ksql-qtt/README.md` for the format.
//!
//! Entry point: [`run`]. Layout: [`model`] reads files into cases, [`case`] runs one case,
//! [`codec`] turns test records into bytes and back, [`compare`] checks outputs and `post`,
//! [`report`] prints results; [`rest`] runs the REST query-validation cases
//! (`../shared/ksql-rqtt`) through a real REST server instead. Each case runs on its own thread so that a hang is a FAIL
//! "timeout" and a panic a FAIL with its message, never the end of the run.

mod avro;
mod case;
mod codec;
mod compare;
mod model;
mod protobuf;
mod report;
mod rest;

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::Context;
use eddy_engine::Engine;
use eddy_engine::memory::MemoryTopics;

use case::Outcome;
use model::Case;
use report::{Reporter, Style};

/// Arguments of `eddy test`.
#[derive(clap::Args, Debug)]
pub struct TestArgs {
    /// Test files, or directories searched recursively for `*.json` files.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Print only per-file counts and the summary line.
    #[arg(long, conflicts_with = "json")]
    pub summary_only: bool,
    /// Print the results as one JSON document: summary, per-file counts and every case.
    #[arg(long)]
    pub json: bool,
    /// Seconds a case may run before it fails with "timeout".
    #[arg(long, default_value_t = 10)]
    pub timeout_secs: u64,
}

/// Runs every case of every file; returns whether none failed.
pub fn run(args: &TestArgs) -> anyhow::Result<bool> {
    let files = collect_files(&args.paths)?;
    let style = if args.json {
        Style::Json
    } else if args.summary_only {
        Style::SummaryOnly
    } else {
        Style::Cases
    };
    let timeout = Duration::from_secs(args.timeout_secs);
    install_panic_hook();
    let mut reporter = Reporter::new(style);
    for (path, display) in files {
        let cases = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read: {e}"))
            .and_then(|text| model::parse_file(&text));
        match cases {
            Ok(cases) => {
                for case in cases {
                    let outcome = run_isolated(&case, timeout);
                    reporter.case(&display, &case.name, &outcome);
                }
            }
            Err(why) => reporter.case(&display, "<file>", &Outcome::fail(why)),
        }
    }
    Ok(reporter.finish().failed == 0)
}

/// The `*.json` files under the given paths, each with the name it is reported under: a
/// file given directly keeps its path, a file found in a directory is named relative to it.
fn collect_files(paths: &[PathBuf]) -> anyhow::Result<Vec<(PathBuf, String)>> {
    let mut files = Vec::new();
    for path in paths {
        let meta =
            std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
        if meta.is_dir() {
            let mut found = Vec::new();
            walk(path, &mut found)?;
            found.sort();
            for f in found {
                let name = f.strip_prefix(path).unwrap_or(&f).display().to_string();
                files.push((f, name));
            }
        } else {
            files.push((path.clone(), path.display().to_string()));
        }
    }
    Ok(files)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            walk(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "json") {
            out.push(path);
        }
    }
    Ok(())
}

/// Runs one case on its own thread, giving up on it after `timeout`.
fn run_isolated(case: &Case, timeout: Duration) -> Outcome {
    if let Some(outcome) = case::precheck(case) {
        return outcome;
    }
    let topics = MemoryTopics::new();
    let engine = match case::engine(&topics, case.rest.is_some()) {
        Ok(engine) => Arc::new(engine),
        Err(why) => return Outcome::fail(why),
    };
    let cancel = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name(CASE_THREAD.into())
        // Planning deep expressions in a debug build needs more than the default 2 MiB, and
        // a stack overflow would abort the whole run.
        .stack_size(64 << 20)
        .spawn({
            let case = case.clone();
            let engine = Arc::clone(&engine);
            let topics = topics.clone();
            let cancel = Arc::clone(&cancel);
            move || {
                let result =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match &case.rest {
                        Some(rest) => rest::run(&case, rest, engine, &topics, &cancel),
                        None => case::run(&case, &engine, &topics, &cancel),
                    }));
                let outcome = result.unwrap_or_else(|payload| {
                    Outcome::fail(format!("panic: {}", panic_message(payload.as_ref())))
                });
                // The runner may have given up on this case already.
                let _ = tx.send(outcome);
            }
        });
    if let Err(e) = spawned {
        return Outcome::fail(format!("could not start a thread: {e}"));
    }
    match rx.recv_timeout(timeout) {
        Ok(outcome) => outcome,
        Err(mpsc::RecvTimeoutError::Disconnected) => Outcome::fail("the case thread vanished"),
        Err(mpsc::RecvTimeoutError::Timeout) => {
            abandon(&engine, &cancel, &rx);
            Outcome::fail(format!("timeout (after {}s)", timeout.as_secs()))
        }
    }
}

/// Stops a case that overran, as far as possible: the engine cannot be interrupted, so the
/// case is told to stop between inputs and its topics are deleted, which starves a query
/// feeding on its own output. A case that still runs is left behind.
fn abandon(engine: &Engine, cancel: &AtomicBool, rx: &mpsc::Receiver<Outcome>) {
    cancel.store(true, Ordering::Relaxed);
    let admin = engine.topics().admin();
    for _ in 0..20 {
        for topic in admin.list_topics().unwrap_or_default() {
            let _ = admin.delete_topic(&topic.name);
        }
        if rx.recv_timeout(Duration::from_millis(100)).is_ok() {
            return;
        }
    }
}

/// The name of the threads cases run on.
const CASE_THREAD: &str = "eddy-test-case";

thread_local! {
    /// Where the last panic on this thread happened, recorded by the panic hook.
    static PANIC_LOCATION: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Keeps panics inside cases off stderr (they are reported as FAILs) and remembers where
/// they happened; a panic anywhere else is reported as usual.
fn install_panic_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current().name() == Some(CASE_THREAD) {
            let location = info.location().map(|l| l.to_string());
            PANIC_LOCATION.with(|p| *p.borrow_mut() = location);
        } else {
            default(info);
        }
    }));
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_string());
    match PANIC_LOCATION.with(|p| p.borrow_mut().take()) {
        Some(at) => format!("{message} at {at}"),
        None => message,
    }
}

#[cfg(test)]
mod tests {
    use super::case::Status;

    #[test]
    fn statuses_print_as_the_runner_contract_says() {
        assert_eq!(Status::Pass.as_str(), "PASS");
        assert_eq!(Status::Fail.as_str(), "FAIL");
        assert_eq!(Status::Skip.as_str(), "SKIP");
    }
}

//! `eddy test` as the test suite runs it: the project's own SQL spec (`tests/sql/*.json`)
//! must pass entirely, every ksqlDB query-validation case (`../shared/ksql-qtt`) that
//! `tests/conformance-baseline.json` records as passing (by file and case name) must pass,
//! and so must every REST query-validation case (`../shared/ksql-rqtt`, run through a real
//! REST server) that `tests/rest-conformance-baseline.json` records.
//!
//! To record improvements, regenerate the baseline from the current engine:
//!
//! ```text
//! EDDY_UPDATE_BASELINE=1 cargo test --workspace --test conformance
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::Value;

/// How long one `eddy test` run may take before the test gives up on it.
const RUN_DEADLINE: Duration = Duration::from_secs(600);

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `eddy test ARGS…`, killing it if it outlives [`RUN_DEADLINE`].
fn eddy_test(args: &[&str]) -> Result<Output> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_eddy"))
        .arg("test")
        .args(args)
        .current_dir(manifest_dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting eddy test")?;
    let (mut stdout, mut stderr) = match (child.stdout.take(), child.stderr.take()) {
        (Some(o), Some(e)) => (o, e),
        _ => bail!("eddy test's output is not piped"),
    };
    // Read both pipes on other threads so that neither fills up and blocks the child,
    // while this thread waits with a deadline.
    let (tx, rx) = mpsc::channel();
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf);
        buf
    });
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        let _ = tx.send(buf);
    });
    let stdout = match rx.recv_timeout(RUN_DEADLINE) {
        Ok(buf) => buf,
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            bail!("eddy test {args:?} did not finish within {RUN_DEADLINE:?}");
        }
    };
    let status = child.wait()?;
    let stderr = err_reader.join().unwrap_or_default();
    Ok(Output {
        status,
        stdout,
        stderr,
    })
}

#[test]
fn own_sql_spec_passes() -> Result<()> {
    let out = eddy_test(&["tests/sql"])?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let failures: Vec<&str> = stdout.lines().filter(|l| l.starts_with("FAIL")).collect();
    assert!(
        out.status.success() && failures.is_empty(),
        "tests/sql has failing cases:\n{}\n{}",
        failures.join("\n"),
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = stdout.lines().last().unwrap_or_default();
    assert!(
        summary.contains(" passed, 0 failed, "),
        "unexpected summary line: {summary}"
    );
    Ok(())
}

/// The names of the passed cases per file, from `eddy test --json` output.
fn passes_per_file(json: &[u8]) -> Result<BTreeMap<String, BTreeSet<String>>> {
    let doc: Value = serde_json::from_slice(json).context("eddy test --json output")?;
    let cases = doc["cases"]
        .as_array()
        .context("no \"cases\" array in eddy test --json output")?;
    let mut passes: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for case in cases {
        let (Some(file), Some(name)) = (case["file"].as_str(), case["name"].as_str()) else {
            bail!("a case without a file or a name in eddy test --json output: {case}");
        };
        let passed = passes.entry(file.to_string()).or_default();
        if case["status"] == "PASS" {
            passed.insert(name.to_string());
        }
    }
    Ok(passes)
}

/// A ksqlDB test suite in `../shared` and the file recording which of its cases pass.
struct Suite {
    folder: &'static str,
    baseline: &'static str,
}

const QTT: Suite = Suite {
    folder: "ksql-qtt",
    baseline: "tests/conformance-baseline.json",
};

const RQTT: Suite = Suite {
    folder: "ksql-rqtt",
    baseline: "tests/rest-conformance-baseline.json",
};

/// Set to run the suite without `../shared/ksql-qtt` and `../shared/ksql-rqtt` (the checks
/// are then skipped, loudly); without it a missing folder fails the check rather than
/// passing it unseen.
const SKIP_VARIABLE: &str = "EDDY_SKIP_KSQL_QTT";

#[test]
fn ksql_conformance_does_not_regress() -> Result<()> {
    no_regression(&QTT)
}

#[test]
fn ksql_rest_conformance_does_not_regress() -> Result<()> {
    no_regression(&RQTT)
}

fn no_regression(suite: &Suite) -> Result<()> {
    let qtt = manifest_dir().join("../shared").join(suite.folder);
    if !qtt.is_dir() {
        if std::env::var_os(SKIP_VARIABLE).is_some() {
            println!(
                "{} is missing and {SKIP_VARIABLE} is set: the ksqlDB conformance check is skipped",
                qtt.display()
            );
            return Ok(());
        }
        bail!(
            "{} is missing: the ksqlDB conformance check cannot run (set {SKIP_VARIABLE}=1 to \
             skip it knowingly)",
            qtt.display()
        );
    }
    // A failing case is expected here (exit code 1); only the passing names matter.
    let folder = format!("../shared/{}", suite.folder);
    let out = eddy_test(&["--json", &folder])?;
    let actual = passes_per_file(&out.stdout).with_context(|| {
        format!(
            "eddy test crashed? stderr:\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    })?;

    if std::env::var_os("EDDY_UPDATE_BASELINE").is_some() {
        let passing: BTreeMap<&String, &BTreeSet<String>> = actual
            .iter()
            .filter(|(_, names)| !names.is_empty())
            .collect();
        let text = serde_json::to_string_pretty(&passing)?;
        let path = manifest_dir().join(suite.baseline);
        std::fs::write(&path, text + "\n")?;
        println!("updated {}", path.display());
        return Ok(());
    }

    let baseline: BTreeMap<String, BTreeSet<String>> = serde_json::from_str(
        &std::fs::read_to_string(manifest_dir().join(suite.baseline))?,
    )
    .with_context(|| format!("reading {}", suite.baseline))?;
    let none = BTreeSet::new();
    let mut regressions = Vec::new();
    for (file, expected) in &baseline {
        let got = actual.get(file).unwrap_or(&none);
        for name in expected.difference(got) {
            regressions.push(format!("{file}::{name}"));
        }
    }
    let mut improved = 0;
    for (file, got) in &actual {
        let expected = baseline.get(file).unwrap_or(&none);
        for name in got.difference(expected) {
            println!("newly passing: {file}::{name}");
            improved += 1;
        }
    }
    if improved > 0 {
        println!(
            "{improved} cases pass that the baseline does not record (EDDY_UPDATE_BASELINE=1)"
        );
    }
    assert!(
        regressions.is_empty(),
        "conformance regressed: these ksqlDB cases passed ({}) and fail now:\n{}",
        suite.baseline,
        regressions.join("\n")
    );
    Ok(())
}

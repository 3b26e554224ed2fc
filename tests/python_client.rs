//! A real ksqlDB client that no one here wrote: the PyPI package `ksql-python-ng` (import
//! name `ksql`, installed by `.ci/run`), driven by `tests/python/ksql_python_client.py`
//! against the server binary on `eddy dev-kafka`. A missing package fails the test.

mod common;

use std::process::Command;

use anyhow::{Context, Result, bail};
use common::{Broker, BrokerKind, Server};

#[tokio::test]
async fn ksql_python_ng_lists_creates_and_queries() -> Result<()> {
    let probe = Command::new("python3")
        .args([
            "-c",
            "import ksql, h2, httpx\n\
             assert tuple(int(p) for p in httpx.__version__.split('.')[:2]) < (0, 28), \
             'httpx ' + httpx.__version__ + ' is too new for ksql-python-ng'",
        ])
        .output()
        .context("running python3")?;
    if !probe.status.success() {
        bail!(
            "the Python package ksql-python-ng (with httpx below 0.28) is not installed \
             (pip install ksql-python-ng 'httpx[http2]<0.28'; .ci/run does it): {}",
            String::from_utf8_lossy(&probe.stderr)
        );
    }
    let broker = Broker::start(BrokerKind::DevKafka)?;
    let data = tempfile::tempdir()?;
    let server = Server::start(&broker.bootstrap, data.path(), "python_test").await?;
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/python/ksql_python_client.py"
    );
    let url = server.url.clone();
    let out =
        tokio::task::spawn_blocking(move || Command::new("python3").args([script, &url]).output())
            .await??;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    if !out.status.success() {
        bail!("the ksql-python-ng script failed:\n{stdout}\n{stderr}");
    }
    assert!(stdout.contains("all checks passed"), "{stdout}");
    Ok(())
}

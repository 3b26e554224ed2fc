//! The web console in a real browser: `tests/python/console_test.py` drives headless
//! Chromium (Selenium, Debian's `chromium` and `chromium-driver`, installed by `.ci/run`)
//! against a server on the dev broker. Screenshots of each page are written to
//! `<target>/tmp/console-screenshots/`.

mod common;

use anyhow::{Result, bail};
use common::{Broker, BrokerKind, Server};

#[tokio::test]
async fn the_console_in_headless_chromium() -> Result<()> {
    let broker = Broker::start(BrokerKind::DevKafka)?;
    let data = tempfile::tempdir()?;
    let server = Server::start(&broker.bootstrap, data.path(), "console_test").await?;
    let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots");
    // Only this run's screenshots count.
    if shots.exists() {
        std::fs::remove_dir_all(&shots)?;
    }
    std::fs::create_dir_all(&shots)?;
    let root = env!("CARGO_MANIFEST_DIR");
    let out = tokio::process::Command::new("python3")
        .arg(format!("{root}/tests/python/console_test.py"))
        .arg(&server.url)
        .arg(&shots)
        .arg(format!("{root}/sql-examples/reviews.sql"))
        .output()
        .await?;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() {
        bail!(
            "the console test failed (needs chromium, chromium-driver and selenium; .ci/run \
             installs them); screenshots in {}:\n{said}",
            shots.display()
        );
    }
    for page in [
        "3-overview-pipeline",
        "4-editor-pull-query",
        "5-editor-push-query",
        "7-editor-error",
        "8-query-page",
        "9-topics-print",
    ] {
        let shot = shots.join(format!("{page}.png"));
        assert!(
            std::fs::metadata(&shot).is_ok_and(|m| m.len() > 1000),
            "no screenshot {}",
            shot.display()
        );
    }
    Ok(())
}

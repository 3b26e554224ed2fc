//! Pipelines as code: `sql-examples/reviews-migrations` deployed with `eddy migrate` (the
//! built binary, against a server on tansu, which deletes topics), a migration that replaces a query
//! and keeps its state, a refused replacement, `validate` catching an edited file, and the
//! metadata destroyed.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use common::{Broker, BrokerKind, Server, await_pull, eddy_bin};
use serde_json::{Value, json};

/// What a run of `eddy migrate` printed.
struct Run {
    success: bool,
    stdout: String,
    stderr: String,
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            if self.success { "ok" } else { "failed" },
            self.stdout,
            self.stderr
        )
    }
}

/// Runs `eddy migrate --config-file <config> <args>`.
async fn migrate(config: &Path, args: &[&str]) -> Result<Run> {
    let output = tokio::process::Command::new(eddy_bin())
        .arg("migrate")
        .arg("--config-file")
        .arg(config)
        .args(args)
        .output()
        .await
        .context("running eddy migrate")?;
    Ok(Run {
        success: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    })
}

/// Runs `eddy migrate` and fails unless it succeeds.
async fn migrate_ok(config: &Path, args: &[&str]) -> Result<Run> {
    let run = migrate(config, args).await?;
    if !run.success {
        bail!("eddy migrate {args:?} failed:\n{run:?}");
    }
    Ok(run)
}

/// A copy of the example project whose config points at `server`.
fn project_for(server: &Server, dir: &Path) -> Result<PathBuf> {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("sql-examples/reviews-migrations");
    std::fs::create_dir_all(dir.join("migrations"))?;
    for entry in std::fs::read_dir(example.join("migrations"))? {
        let path = entry?.path();
        if let Some(name) = path.file_name() {
            std::fs::copy(&path, dir.join("migrations").join(name))?;
        }
    }
    let config = std::fs::read_to_string(example.join("ksql-migrations.properties"))?;
    let config = config.replace("http://localhost:8088", &server.url);
    assert!(
        config.contains(&server.url),
        "the example's config names no local server"
    );
    let path = dir.join("ksql-migrations.properties");
    std::fs::write(&path, config)?;
    Ok(path)
}

async fn insert_review(server: &Server, id: i32, userid: i32, rating: i32) -> Result<()> {
    server
        .ksql_ok(&format!(
            "INSERT INTO reviews (id, userid, rating, text) VALUES ({id}, {userid}, {rating}, 'r{id}');"
        ))
        .await?;
    Ok(())
}

fn query_ids(body: &Value) -> Vec<String> {
    body[0]["queries"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|q| q["id"].as_str().map(str::to_string))
        .collect()
}

/// The row of `info` for `version`, as its cells.
fn info_row(info: &str, version: u32) -> Vec<String> {
    info.lines()
        .map(|l| {
            l.split('|')
                .map(|c| c.trim().to_string())
                .filter(|c| !c.is_empty())
                .collect::<Vec<_>>()
        })
        .find(|cells| cells.first() == Some(&version.to_string()))
        .unwrap_or_default()
}

#[tokio::test]
async fn the_reviews_pipeline_deployed_and_evolved_as_migrations() -> Result<()> {
    let broker = Broker::start(BrokerKind::Tansu)?;
    let data = tempfile::tempdir()?;
    let server = Server::start(&broker.bootstrap, data.path(), "migrations_test").await?;
    let project = tempfile::tempdir()?;
    let config = project_for(&server, project.path())?;

    // Before the metadata exists, apply says how to create it and changes nothing.
    let run = migrate(&config, &["apply", "--all"]).await?;
    assert!(!run.success, "{run:?}");
    assert!(run.stderr.contains("initialize-metadata"), "{run:?}");
    let run = migrate_ok(&config, &["initialize-metadata"]).await?;
    assert!(
        run.stdout.contains("Creating stream: MIGRATION_EVENTS"),
        "{run:?}"
    );
    assert!(
        run.stdout
            .contains("Creating table: MIGRATION_SCHEMA_VERSIONS"),
        "{run:?}"
    );

    // A dry run applies nothing.
    let run = migrate_ok(&config, &["apply", "--all", "--dry-run"]).await?;
    assert!(
        run.stdout
            .contains("Applying migration version 3: reviews per user"),
        "{run:?}"
    );
    let info = migrate_ok(&config, &["info"]).await?.stdout;
    assert!(info.contains("Current migration version: <none>"), "{info}");
    assert_eq!(info_row(&info, 1)[2], "PENDING", "{info}");

    // Deploy in two steps: the first file, then the rest.
    migrate_ok(&config, &["apply", "--next"]).await?;
    let run = migrate_ok(&config, &["apply", "--all"]).await?;
    assert!(run.stdout.contains("Successfully migrated"), "{run:?}");
    let info = migrate_ok(&config, &["info"]).await?.stdout;
    assert!(info.contains("Current migration version: 3"), "{info}");
    for (version, previous) in [(1, "<none>"), (2, "1"), (3, "2")] {
        let row = info_row(&info, version);
        assert_eq!(row.get(2).map(String::as_str), Some("MIGRATED"), "{info}");
        assert_eq!(row.get(3).map(String::as_str), Some(previous), "{info}");
    }
    let queries = query_ids(&server.ksql_ok("SHOW QUERIES;").await?);
    for query in [
        "CSAS_REVIEWS_CLEAN_",
        "CSAS_ENRICHED_REVIEWS_",
        "CSAS_UNHAPPY_VIPS_",
        "CTAS_REVIEWS_PER_USER_",
    ] {
        assert!(queries.iter().any(|q| q.starts_with(query)), "{queries:?}");
    }
    // Nothing is left to apply.
    let run = migrate_ok(&config, &["apply", "--all"]).await?;
    assert!(
        run.stdout.contains("No eligible migrations found."),
        "{run:?}"
    );

    // Three reviews of user 1 (a 5, a 5 and a 2), and one without an id (dropped).
    for (id, rating) in [(1, 5), (2, 5), (3, 2)] {
        insert_review(&server, id, 1, rating).await?;
    }
    server
        .ksql_ok("INSERT INTO reviews (userid, rating, text) VALUES (1, 1, 'no id');")
        .await?;
    let count = "SELECT reviews FROM reviews_per_user WHERE userid = 1;";
    await_pull(&server, count, &[json!([3])], Duration::from_secs(60)).await?;

    // A migration replaces the count's query: it now leaves out 5-star reviews. The state
    // is kept, so the count goes on from 3 (a query counting afresh over the whole topic
    // would say 1 and then 2; one counting afresh from the new records, 1).
    let run = migrate_ok(&config, &["create", "Count only reviews below 5 stars"]).await?;
    assert!(
        run.stdout
            .contains("V000004__Count_only_reviews_below_5_stars.sql"),
        "{run:?}"
    );
    let v4 = project
        .path()
        .join("migrations/V000004__Count_only_reviews_below_5_stars.sql");
    assert_eq!(std::fs::read_to_string(&v4)?, "");
    std::fs::write(
        &v4,
        "SET 'auto.offset.reset' = 'earliest';\nCREATE OR REPLACE TABLE reviews_per_user AS\n  SELECT userid, COUNT(*) AS reviews \
         FROM reviews_clean WHERE rating < 5 GROUP BY userid;\n",
    )?;
    migrate_ok(&config, &["apply", "--next"]).await?;
    let before = query_ids(&server.ksql_ok("SHOW QUERIES;").await?);
    assert_eq!(before, queries, "a replaced query keeps its id");
    for (id, rating) in [(4, 5), (5, 1)] {
        insert_review(&server, id, 1, rating).await?;
    }
    await_pull(&server, count, &[json!([4])], Duration::from_secs(60)).await?;

    // A replacement that changes the grouping is refused, naming what may not change; the
    // migration is recorded as failed and the running query is untouched.
    std::fs::write(
        project
            .path()
            .join("migrations/V000005__Count_by_rating.sql"),
        "SET 'auto.offset.reset' = 'earliest';\nCREATE OR REPLACE TABLE reviews_per_user AS\n  SELECT rating, COUNT(*) AS reviews \
         FROM reviews_clean GROUP BY rating;\n",
    )?;
    let run = migrate(&config, &["apply", "--all"]).await?;
    assert!(!run.success, "{run:?}");
    assert!(
        run.stderr.contains("Failed to apply migration version 5"),
        "{run:?}"
    );
    assert!(run.stderr.contains("its GROUP BY changed"), "{run:?}");
    let info = migrate_ok(&config, &["info"]).await?.stdout;
    let row = info_row(&info, 5);
    assert_eq!(row.get(2).map(String::as_str), Some("ERROR"), "{info}");
    assert!(row.iter().any(|c| c.contains("GROUP BY")), "{info}");
    assert_eq!(query_ids(&server.ksql_ok("SHOW QUERIES;").await?), queries);
    insert_review(&server, 6, 1, 2).await?;
    await_pull(&server, count, &[json!([5])], Duration::from_secs(60)).await?;

    // A failed migration is tried again once its file is mended.
    std::fs::write(
        project
            .path()
            .join("migrations/V000005__Count_by_rating.sql"),
        "SET 'auto.offset.reset' = 'earliest';\nCREATE OR REPLACE TABLE reviews_per_user AS\n  SELECT userid, COUNT(*) AS reviews \
         FROM reviews_clean WHERE rating < 4 GROUP BY userid;\n",
    )?;
    migrate_ok(&config, &["apply", "--next"]).await?;
    let info = migrate_ok(&config, &["info"]).await?.stdout;
    assert!(info.contains("Current migration version: 5"), "{info}");
    assert_eq!(info_row(&info, 5)[3], "4", "{info}");

    // validate holds until an applied file is edited; then apply refuses to go on too.
    migrate_ok(&config, &["validate"]).await?;
    let v2 = project
        .path()
        .join("migrations/V000002__reviews_pipeline.sql");
    let mut text = std::fs::read_to_string(&v2)?;
    text.push_str("-- edited after it was applied\n");
    std::fs::write(&v2, text)?;
    let run = migrate(&config, &["validate"]).await?;
    assert!(!run.success, "{run:?}");
    assert!(
        run.stderr
            .contains("Failed to validate migration version 2")
            && run
                .stderr
                .contains("V000002__reviews_pipeline.sql changed after it was applied"),
        "{run:?}"
    );
    std::fs::write(
        project.path().join("migrations/V000006__more.sql"),
        "CREATE STREAM more AS SELECT * FROM reviews_clean;\n",
    )?;
    let run = migrate(&config, &["apply", "--all"]).await?;
    assert!(
        !run.success && run.stderr.contains("Failed to validate"),
        "{run:?}"
    );

    // destroy-metadata removes the stream, the table and their query, not the pipeline.
    let run = migrate_ok(&config, &["destroy-metadata"]).await?;
    assert!(
        run.stdout
            .contains("Terminating query with ID: CTAS_MIGRATION_SCHEMA_VERSIONS_"),
        "{run:?}"
    );
    let listed = server
        .ksql_ok("SHOW STREAMS; SHOW TABLES;")
        .await?
        .to_string();
    assert!(!listed.contains("MIGRATION_EVENTS"), "{listed}");
    assert!(!listed.contains("MIGRATION_SCHEMA_VERSIONS"), "{listed}");
    assert!(listed.contains("REVIEWS_PER_USER"), "{listed}");
    let after = query_ids(&server.ksql_ok("SHOW QUERIES;").await?);
    assert!(!after.iter().any(|q| q.contains("MIGRATION")), "{after:?}");
    assert_eq!(after.len(), 4, "{after:?}");
    Ok(())
}

//! Start-up time: `eddy server` process start until `/healthcheck` says healthy, with an
//! empty command log and with persisted queries to replay.

use std::time::Duration;

use anyhow::Result;

use super::Run;
use super::procfs;
use super::report::StartupResult;
use super::server::ServerProc;

/// Measures `runs` cold starts with no queries and `runs` restarts replaying `queries`
/// persistent queries over `input`.
pub fn measure(run: &Run, input: &str, queries: u32, runs: u32) -> Result<StartupResult> {
    let mut empty_secs = Vec::new();
    let mut idle_rss_mib = 0.0;
    for i in 0..runs {
        let name = format!("startup_empty_{i}");
        let mut server =
            ServerProc::spawn(&run.bootstrap, &run.dir.join(&name), &run.service_id(&name))?;
        empty_secs.push(server.wait_healthy(&run.rt)?.as_secs_f64());
        if i == 0 {
            // Let start-up allocations settle before reading the idle footprint.
            std::thread::sleep(Duration::from_millis(500));
            idle_rss_mib = procfs::status_mib(server.pid(), "VmRSS")?;
        }
        server.kill();
    }

    let dir = run.dir.join("startup_queries");
    let service_id = run.service_id("startup_queries");
    let mut first = ServerProc::spawn(&run.bootstrap, &dir, &service_id)?;
    first.wait_healthy(&run.rt)?;
    let mut sql = format!(
        "CREATE STREAM reviews (id INT KEY, userid INT, rating INT, text VARCHAR) \
           WITH (KAFKA_TOPIC='{input}', VALUE_FORMAT='JSON');\n"
    );
    for q in 0..queries {
        let topic = run.topic(&format!("startup_q{q}"));
        sql.push_str(&format!(
            "CREATE STREAM startup_q{q} WITH (KAFKA_TOPIC='{topic}') AS \
               SELECT id, userid, rating FROM reviews WHERE rating > {};\n",
            q % 5
        ));
    }
    // Latest: the queries start at the end of the input, so replay is about start-up alone.
    first.ksql(&run.rt, &sql, "latest")?;
    first.kill();

    let mut with_queries_secs = Vec::new();
    for _ in 0..runs {
        let mut server = ServerProc::spawn(&run.bootstrap, &dir, &service_id)?;
        with_queries_secs.push(server.wait_healthy(&run.rt)?.as_secs_f64());
        server.kill();
    }
    Ok(StartupResult {
        empty_secs,
        with_queries_secs,
        queries,
        idle_rss_mib,
    })
}

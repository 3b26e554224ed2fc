//! `eddy bench --quick` against the embedded broker: checks that the harness runs every
//! scenario and counts every output, not how fast anything is.

use std::process::Command;

use anyhow::{Context, Result, bail};
use serde_json::Value;

#[test]
fn quick_bench_measures_every_scenario() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let json_out = dir.path().join("bench.json");
    let out = Command::new(env!("CARGO_BIN_EXE_eddy"))
        .args(["bench", "--quick", "--events", "2000", "--users", "1000"])
        .arg("--json-out")
        .arg(&json_out)
        .current_dir(dir.path())
        .output()
        .context("running eddy bench")?;
    if !out.status.success() {
        bail!(
            "eddy bench failed with {}\nstdout:\n{}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let report: Value = serde_json::from_slice(&std::fs::read(&json_out)?)?;
    assert_eq!(report["events"], 2000, "{report}");
    let scenarios = report["scenarios"].as_array().context("no scenarios")?;
    let names: Vec<&str> = scenarios
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert_eq!(
        names,
        [
            "raw_copy",
            "a_filter",
            "a_filter_avro",
            "a_filter_protobuf",
            "b_join",
            "c_window_count",
            "d_pipeline"
        ]
    );
    for s in scenarios {
        let name = &s["name"];
        let rate = s["events_per_sec"].as_f64().unwrap_or(0.0);
        assert!(rate > 0.0, "{name}: no throughput: {s}");
        assert!(
            s["peak_rss_mib"].as_f64().unwrap_or(0.0) > 0.0,
            "{name}: {s}"
        );
        assert_eq!(s["outputs_seen"], s["outputs_expected"], "{name}: {s}");
        let expected = s["outputs_expected"].as_u64().unwrap_or(0);
        if name == "d_pipeline" {
            // reviews_clean and enriched_reviews each write every event, plus unhappy_vips.
            assert!(expected > 4000, "{s}");
        } else {
            assert_eq!(expected, 2000, "{name}: {s}");
        }
    }
    let latency = report["latency"].as_array().context("no latency")?;
    // Eddy's filter and the raw copy, each with the default fetch wait and a short one.
    let measured: Vec<(String, u64)> = latency
        .iter()
        .map(|l| {
            (
                l["pipeline"].as_str().unwrap_or_default().to_string(),
                l["fetch_wait_ms"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(
        measured,
        [
            ("a_filter".to_string(), 50),
            ("raw_copy".to_string(), 50),
            ("a_filter".to_string(), 5),
            ("raw_copy".to_string(), 5)
        ],
        "{report}"
    );
    for l in latency {
        assert!(l["produced"].as_u64().unwrap_or(0) > 0, "{l}");
        assert_eq!(l["received"], l["produced"], "{l}");
        assert!(l["p99_ms"].as_f64().unwrap_or(-1.0) >= 0.0, "{l}");
    }
    let startup = &report["startup"];
    for key in ["empty_secs", "with_queries_secs"] {
        let runs = startup[key].as_array().context("no start-up runs")?;
        assert!(!runs.is_empty(), "{startup}");
        assert!(
            runs.iter().all(|r| r.as_f64().unwrap_or(0.0) > 0.0),
            "{startup}"
        );
    }
    assert!(
        startup["idle_rss_mib"].as_f64().unwrap_or(0.0) > 0.0,
        "{startup}"
    );
    Ok(())
}

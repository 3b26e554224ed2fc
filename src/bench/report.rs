//! The figures of a run: printed as tables and written as JSON.

use std::time::Instant;

use comfy_table::{Cell, Table, presets::UTF8_FULL};
use serde::Serialize;

use super::kafka::Outputs;

/// What one measured phase cost its worker process.
#[derive(Debug, Clone, Serialize)]
pub struct Measured {
    /// Wall time from start until the last expected output was readable.
    pub seconds: f64,
    /// Wall time from start until the first output was readable: the query's start-up
    /// (consumer group join, first fetch) for Eddy; the raw copy assigns partitions directly.
    pub first_output_secs: Option<f64>,
    /// User + system CPU seconds of the worker process in that time.
    pub cpu_seconds: f64,
    /// Peak resident set of the worker process (`VmHWM`), MiB.
    pub peak_rss_mib: f64,
    /// Output records the scenario had to write.
    pub outputs_expected: u64,
    /// Output records read back (for the windowed count: the sum of the final counts).
    pub outputs_seen: u64,
}

impl Measured {
    /// A measurement that started at `start` and ended when `outputs` were all readable.
    pub fn new(
        start: Instant,
        outputs: &Outputs,
        cpu_seconds: f64,
        peak_rss_mib: f64,
        outputs_expected: u64,
    ) -> Measured {
        Measured {
            seconds: (outputs.done - start).as_secs_f64(),
            first_output_secs: outputs.first.map(|f| (f - start).as_secs_f64()),
            cpu_seconds,
            peak_rss_mib,
            outputs_expected,
            outputs_seen: outputs.seen.iter().sum(),
        }
    }
}

/// One throughput scenario's figures.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioResult {
    /// Short name, e.g. `a_filter`.
    pub name: String,
    /// What ran.
    pub description: String,
    /// Input events read.
    pub events: u64,
    /// The median round (by CPU time).
    #[serde(flatten)]
    pub measured: Measured,
    /// Every round.
    pub runs: Vec<Measured>,
    /// Input events per wall second, start to last output.
    pub events_per_sec: f64,
    /// Input events per wall second from the first output to the last: the rate once the
    /// query runs, without its start-up.
    pub running_events_per_sec: Option<f64>,
    /// Input megabytes (values only) per wall second.
    pub input_mb_per_sec: f64,
    /// CPU seconds per million input events.
    pub cpu_sec_per_million: f64,
    /// Input events per CPU second (none when the CPU time was below the clock tick).
    pub events_per_cpu_sec: Option<f64>,
    /// CPU per event relative to the raw copy's (1.0 for the raw copy itself).
    pub cpu_ratio_to_raw_copy: Option<f64>,
}

impl ScenarioResult {
    /// Derives the rates from the median of `runs` (by CPU time).
    pub fn new(
        name: &str,
        description: &str,
        events: u64,
        avg_value_bytes: f64,
        runs: Vec<Measured>,
    ) -> ScenarioResult {
        let mut by_cpu = runs.clone();
        by_cpu.sort_by(|a, b| a.cpu_seconds.total_cmp(&b.cpu_seconds));
        let measured = by_cpu.swap_remove(by_cpu.len() / 2);
        let ev = events as f64;
        ScenarioResult {
            name: name.to_string(),
            description: description.to_string(),
            events,
            events_per_sec: ev / measured.seconds.max(1e-9),
            running_events_per_sec: measured
                .first_output_secs
                .map(|f| measured.seconds - f)
                .filter(|s| *s > 0.0)
                .map(|s| ev / s),
            input_mb_per_sec: ev * avg_value_bytes / 1e6 / measured.seconds.max(1e-9),
            cpu_sec_per_million: measured.cpu_seconds / ev.max(1.0) * 1e6,
            events_per_cpu_sec: (measured.cpu_seconds > 0.0).then(|| ev / measured.cpu_seconds),
            cpu_ratio_to_raw_copy: None,
            measured,
            runs,
        }
    }
}

/// End-to-end latency of one pipeline at a steady rate.
#[derive(Debug, Clone, Serialize)]
pub struct LatencyResult {
    /// `a_filter`, or `raw_copy` for reference.
    pub pipeline: String,
    /// The worker's consumer `fetch.wait.max.ms`: how long a broker that does not answer
    /// a waiting fetch when data arrives (the dev broker, tansu) holds it.
    pub fetch_wait_ms: u32,
    /// Target rate, events per second.
    pub rate_per_sec: u64,
    /// Seconds of steady load.
    pub seconds: f64,
    /// Events produced.
    pub produced: u64,
    /// Events whose output was seen.
    pub received: u64,
    /// Median latency, milliseconds.
    pub p50_ms: f64,
    /// 99th percentile, milliseconds.
    pub p99_ms: f64,
    /// Worst, milliseconds.
    pub max_ms: f64,
    /// CPU seconds of the worker process during the steady load.
    pub cpu_seconds: f64,
    /// How it was measured.
    pub method: String,
}

/// Server start-up figures.
#[derive(Debug, Clone, Serialize)]
pub struct StartupResult {
    /// Process start → healthy with an empty command log, seconds, one per run.
    pub empty_secs: Vec<f64>,
    /// Process start → healthy replaying this many persisted queries, seconds, one per run.
    pub with_queries_secs: Vec<f64>,
    /// Persisted queries replayed.
    pub queries: u32,
    /// Resident set of the idle, healthy server with no queries, MiB.
    pub idle_rss_mib: f64,
}

/// Everything a run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `debug` or `release`: debug figures say nothing about the targets.
    pub build: String,
    /// The broker used.
    pub broker: String,
    /// Review events per scenario.
    pub events: u64,
    /// Users in the table.
    pub users: u32,
    /// Rounds of the throughput scenarios (each reports its median).
    pub rounds: u32,
    /// Mean review value size, bytes.
    pub avg_event_bytes: f64,
    /// How CPU, RSS and time were measured.
    pub method: String,
    /// Throughput scenarios, the raw copy first.
    pub scenarios: Vec<ScenarioResult>,
    /// Latency of scenario (a), then of the raw copy at the same rate.
    pub latency: Vec<LatencyResult>,
    /// Start-up times.
    pub startup: Option<StartupResult>,
}

fn f(v: f64, decimals: usize) -> String {
    format!("{v:.decimals$}")
}

fn opt(v: Option<f64>, decimals: usize) -> String {
    v.map(|v| f(v, decimals)).unwrap_or_else(|| "-".into())
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s.get(s.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Prints the report as tables.
pub fn print(report: &Report) {
    println!(
        "eddy bench ({} build) — {} events (~{:.0} B each), {} users, median of {} round(s) — {}",
        report.build,
        report.events,
        report.avg_event_bytes,
        report.users,
        report.rounds,
        report.broker
    );
    let mut table = Table::new();
    table.load_preset(UTF8_FULL).set_header(vec![
        "scenario",
        "outputs",
        "seconds",
        "first out s",
        "events/s",
        "events/s running",
        "MB/s in",
        "CPU s / M events",
        "events / CPU s",
        "peak RSS MiB",
        "CPU/event vs raw copy",
    ]);
    for s in &report.scenarios {
        table.add_row(vec![
            Cell::new(&s.name),
            Cell::new(format!(
                "{}/{}",
                s.measured.outputs_seen, s.measured.outputs_expected
            )),
            Cell::new(f(s.measured.seconds, 2)),
            Cell::new(opt(s.measured.first_output_secs, 2)),
            Cell::new(f(s.events_per_sec, 0)),
            Cell::new(opt(s.running_events_per_sec, 0)),
            Cell::new(f(s.input_mb_per_sec, 1)),
            Cell::new(f(s.cpu_sec_per_million, 2)),
            Cell::new(opt(s.events_per_cpu_sec, 0)),
            Cell::new(f(s.measured.peak_rss_mib, 1)),
            Cell::new(
                s.cpu_ratio_to_raw_copy
                    .map(|r| format!("{r:.2}×"))
                    .unwrap_or_else(|| "-".into()),
            ),
        ]);
    }
    println!("{table}");
    if !report.latency.is_empty() {
        let mut t = Table::new();
        t.load_preset(UTF8_FULL).set_header(vec![
            "latency: produce → output readable",
            "fetch wait ms",
            "rate/s",
            "seconds",
            "received/produced",
            "p50 ms",
            "p99 ms",
            "max ms",
            "worker CPU s",
        ]);
        for l in &report.latency {
            t.add_row(vec![
                Cell::new(&l.pipeline),
                Cell::new(l.fetch_wait_ms),
                Cell::new(l.rate_per_sec),
                Cell::new(f(l.seconds, 1)),
                Cell::new(format!("{}/{}", l.received, l.produced)),
                Cell::new(f(l.p50_ms, 2)),
                Cell::new(f(l.p99_ms, 2)),
                Cell::new(f(l.max_ms, 2)),
                Cell::new(f(l.cpu_seconds, 2)),
            ]);
        }
        println!("{t}");
    }
    if let Some(s) = &report.startup {
        let mut t = Table::new();
        t.load_preset(UTF8_FULL)
            .set_header(vec!["startup → healthy", "median s", "runs (s)"]);
        let runs = |v: &[f64]| {
            v.iter()
                .map(|x| format!("{x:.3}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        t.add_row(vec![
            Cell::new("no queries"),
            Cell::new(f(median(&s.empty_secs), 3)),
            Cell::new(runs(&s.empty_secs)),
        ]);
        t.add_row(vec![
            Cell::new(format!("{} persisted queries", s.queries)),
            Cell::new(f(median(&s.with_queries_secs), 3)),
            Cell::new(runs(&s.with_queries_secs)),
        ]);
        t.add_row(vec![
            Cell::new("idle RSS, no queries (MiB)"),
            Cell::new(f(s.idle_rss_mib, 1)),
            Cell::new(""),
        ]);
        println!("{t}");
    }
    println!("method: {}", report.method);
}

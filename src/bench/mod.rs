//! `eddy bench`: throughput, CPU per event, memory, latency and start-up of Eddy against a
//! raw Kafka copy with the same client, in one run against one broker.
//!
//! The load is produced before any clock starts. Each scenario then runs in a fresh
//! `eddy server` child process driven over REST, reading the backlog from the beginning;
//! its CPU (`/proc/<pid>/stat`) and peak RSS (`VmHWM`) are the child's alone. The harness's
//! consumer counts outputs in its own process, so neither it nor the embedded broker is in
//! the figures.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

mod data;
mod kafka;
mod latency;
mod procfs;
mod raw_copy;
mod report;
mod server;
mod startup;

use kafka::{BatchProducer, Broker, Expect, await_outputs};
use report::{Measured, Report, ScenarioResult};
use server::ServerProc;

/// The most review events the embedded broker holds: librdkafka's mock cluster keeps about
/// 5 MiB per partition (and deletes older records), and the enriched output is ~260 B a record.
const EMBEDDED_MAX_EVENTS: u64 = 15_000;
/// The most users the embedded broker holds (values ~70 B).
const EMBEDDED_MAX_USERS: u32 = 30_000;
/// The consumer fetch wait of the latency phase's second measurement: what a deployment on
/// a broker that holds a waiting fetch until it expires would set for low latency.
const LOW_LATENCY_FETCH_WAIT_MS: u32 = 5;

/// Options of `eddy bench`.
#[derive(clap::Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BenchArgs {
    #[command(subcommand)]
    worker: Option<Worker>,
    /// Review events per scenario (default 1,000,000; 15,000 on the embedded broker, which
    /// holds no more; 2,000 with --quick).
    #[arg(long)]
    events: Option<u64>,
    /// Users in the users table (default 100,000; 30,000 on the embedded broker; 1,000 with
    /// --quick).
    #[arg(long)]
    users: Option<u32>,
    /// `embedded` (the dev broker, in this process; small runs only) or a broker's HOST:PORT.
    #[arg(long, default_value = "embedded")]
    broker: String,
    /// Small and short, for CI: checks that the harness works, not speed.
    #[arg(long)]
    quick: bool,
    /// Rounds of the throughput scenarios; each reports its median round (by CPU time).
    #[arg(long, default_value_t = 1)]
    runs: u32,
    /// Where the figures are written as JSON.
    #[arg(long, default_value = "bench-results.json")]
    json_out: PathBuf,
    /// Events per second of the latency phase.
    #[arg(long, default_value_t = 5000)]
    latency_rate: u64,
    /// Seconds of the latency phase (default 30; 2 with --quick).
    #[arg(long)]
    latency_secs: Option<f64>,
    /// Runs only these phases (comma-separated: raw_copy, a_filter, a_filter_avro,
    /// a_filter_protobuf, b_join, c_window_count, d_pipeline, latency, startup), e.g. to
    /// profile one of them; the ratio column needs raw_copy.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
}

impl BenchArgs {
    /// Whether phase `name` runs.
    fn runs_phase(&self, name: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|o| o == name)
    }
}

/// Processes the harness spawns itself.
#[derive(clap::Subcommand, Debug)]
enum Worker {
    /// The raw-copy baseline's worker process (internal).
    #[command(hide = true)]
    RawCopy(raw_copy::RawCopyArgs),
}

/// What every phase of a run shares.
pub struct Run {
    rt: tokio::runtime::Runtime,
    bootstrap: String,
    /// Data dirs and server logs of this run.
    dir: PathBuf,
    /// Makes topic names and service ids unique, so a long-lived broker can be reused.
    tag: String,
    ticks: f64,
    /// Users in the users table (ids 1..=users).
    users: u32,
}

impl Run {
    fn topic(&self, name: &str) -> String {
        format!("bench_{}_{name}", self.tag)
    }

    fn service_id(&self, name: &str) -> String {
        format!("bench_{}_{name}_", self.tag)
    }
}

/// This binary, for the child processes: `/proc/self/exe` still runs this very build when
/// a rebuild has replaced the file on disk meanwhile.
pub fn eddy_exe() -> Result<PathBuf> {
    let proc_exe = PathBuf::from("/proc/self/exe");
    if proc_exe.exists() {
        return Ok(proc_exe);
    }
    std::env::current_exe().context("finding the eddy binary")
}

/// Milliseconds since the Unix epoch.
pub fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Runs `eddy bench`.
pub fn run(args: &BenchArgs) -> Result<()> {
    if let Some(Worker::RawCopy(w)) = &args.worker {
        return raw_copy::worker(w);
    }
    let embedded = args.broker == "embedded";
    let events = args.events.unwrap_or(match (args.quick, embedded) {
        (true, _) => 2_000,
        (false, true) => EMBEDDED_MAX_EVENTS,
        (false, false) => 1_000_000,
    });
    let users = args.users.unwrap_or(match (args.quick, embedded) {
        (true, _) => 1_000,
        (false, true) => EMBEDDED_MAX_USERS,
        (false, false) => 100_000,
    });
    if embedded && (events > EMBEDDED_MAX_EVENTS || users > EMBEDDED_MAX_USERS) {
        bail!(
            "the embedded dev broker (librdkafka's mock cluster) keeps only about 5 MB per \
             partition and silently drops older records, so it holds at most \
             {EMBEDDED_MAX_EVENTS} events and {EMBEDDED_MAX_USERS} users; for more, use \
             --broker HOST:PORT (e.g. tansu: ../shared/scripts/ensure-tansu.sh)"
        );
    }
    let latency_secs = args
        .latency_secs
        .unwrap_or(if args.quick { 2.0 } else { 30.0 });
    let broker = Broker::from_arg(&args.broker)?;
    let tag = format!("{:x}", unix_ms());
    let run = Run {
        rt: tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?,
        bootstrap: broker.bootstrap(),
        dir: std::env::temp_dir().join(format!("eddy-bench-{tag}")),
        tag,
        ticks: procfs::clock_ticks(),
        users,
    };
    eprintln!(
        "eddy bench: data dirs and server logs in {}",
        run.dir.display()
    );

    let reviews = run.topic("reviews");
    let users_topic = run.topic("users");
    broker.create_topic(&run.rt, &reviews)?;
    broker.create_topic(&run.rt, &users_topic)?;
    eprintln!("eddy bench: producing {users} users and {events} reviews …");
    let generated = Instant::now();
    let mut producer = BatchProducer::new(&run.bootstrap, 20)?;
    data::produce_users(&mut producer, &users_topic, users, unix_ms())?;
    let now = unix_ms();
    let dataset = data::produce_reviews(&mut producer, &reviews, events, users, now)?;
    let (avro, protobuf) = (
        args.runs_phase("a_filter_avro"),
        args.runs_phase("a_filter_protobuf"),
    );
    if avro || protobuf {
        // The same reviews in AVRO and PROTOBUF, with the schemas registered as a Confluent
        // producer would: through a server's built-in registry (kept in the broker's
        // `_schemas`).
        let mut server = ServerProc::spawn(
            &run.bootstrap,
            &run.dir.join("registry"),
            &run.service_id("registry"),
        )?;
        server.wait_healthy(&run.rt)?;
        if avro {
            let topic = run.topic("reviews_avro");
            broker.create_topic(&run.rt, &topic)?;
            let subject = format!("{topic}-value");
            let id = server.register(&run.rt, &subject, "AVRO", data::REVIEW_AVRO_SCHEMA)?;
            let shape = (events, users, now);
            data::produce_registry_reviews(&mut producer, &topic, shape, id, data::avro_review)?;
        }
        if protobuf {
            let topic = run.topic("reviews_protobuf");
            broker.create_topic(&run.rt, &topic)?;
            let subject = format!("{topic}-value");
            let id =
                server.register(&run.rt, &subject, "PROTOBUF", data::REVIEW_PROTOBUF_SCHEMA)?;
            let shape = (events, users, now);
            data::produce_registry_reviews(
                &mut producer,
                &topic,
                shape,
                id,
                data::protobuf_review,
            )?;
        }
        server.kill();
    }
    drop(producer);
    eprintln!(
        "eddy bench: produced in {:.1}s ({} unhappy VIP reviews expected)",
        generated.elapsed().as_secs_f64(),
        dataset.unhappy_vips
    );

    let timeout = Duration::from_secs(120 + events / 1_000);
    let rounds = args.runs.max(1);
    // Rounds interleave the scenarios, so a drift in the machine's load hits all alike.
    let mut measured: Vec<Vec<Measured>> = Vec::new();
    let raw_copy = args.runs_phase("raw_copy");
    for round in 0..rounds {
        let mut results = Vec::new();
        if raw_copy {
            eprintln!("eddy bench: round {}/{rounds}: raw copy …", round + 1);
            let raw_out = run.topic(&format!("raw_copy_out_{round}"));
            broker.create_topic(&run.rt, &raw_out)?;
            results.push(raw_copy::measure(
                &run.bootstrap,
                &reviews,
                &raw_out,
                events,
                run.ticks,
                timeout,
            )?);
        }
        for scenario in scenario_specs(&run, &dataset, round) {
            if !args.runs_phase(scenario.name) {
                continue;
            }
            eprintln!(
                "eddy bench: round {}/{rounds}: {} …",
                round + 1,
                scenario.name
            );
            results.push(run_scenario(&run, &scenario, round, timeout)?);
        }
        if measured.is_empty() {
            measured = results.into_iter().map(|m| vec![m]).collect();
        } else {
            for (all, m) in measured.iter_mut().zip(results) {
                all.push(m);
            }
        }
    }
    let names = raw_copy
        .then_some(("raw_copy", RAW_COPY))
        .into_iter()
        .chain(
            scenario_specs(&run, &dataset, 0)
                .into_iter()
                .filter(|s| args.runs_phase(s.name))
                .map(|s| (s.name, s.description)),
        );
    let mut scenarios: Vec<ScenarioResult> = names
        .zip(measured)
        .map(|((name, description), runs)| {
            ScenarioResult::new(name, description, events, dataset.avg_value_bytes, runs)
        })
        .collect();
    // Below one clock tick of CPU (tiny runs) there is no meaningful ratio.
    let raw_cpu = scenarios
        .first()
        .filter(|_| raw_copy)
        .map_or(0.0, |s| s.cpu_sec_per_million);
    for s in &mut scenarios {
        s.cpu_ratio_to_raw_copy = (raw_cpu > 0.0).then(|| s.cpu_sec_per_million / raw_cpu);
    }

    let mut latency = Vec::new();
    if args.runs_phase("latency") {
        eprintln!(
            "eddy bench: latency at {} events/s for {latency_secs}s …",
            args.latency_rate
        );
        // Eddy's default fetch wait, then the short one a deployment on a broker that holds
        // waiting fetches (the dev broker, tansu) would set for low latency.
        for fetch_wait_ms in [None, Some(LOW_LATENCY_FETCH_WAIT_MS)] {
            let load = latency::Load {
                rate: args.latency_rate,
                seconds: latency_secs,
                fetch_wait_ms,
            };
            latency.push(latency::measure_eddy(&run, &broker, &load)?);
            latency.push(latency::measure_raw_copy(&run, &broker, &load)?);
        }
    }
    let startup = if args.runs_phase("startup") {
        eprintln!("eddy bench: start-up …");
        Some(startup::measure(
            &run,
            &reviews,
            20,
            if args.quick { 1 } else { 3 },
        )?)
    } else {
        None
    };

    let report = Report {
        build: if cfg!(debug_assertions) {
            "debug".into()
        } else {
            "release".into()
        },
        broker: broker.describe(),
        events,
        users,
        rounds,
        avg_event_bytes: dataset.avg_value_bytes,
        method: "input generated before any clock starts; every Eddy scenario runs in a \
                 fresh `eddy server` child process (statements over REST, \
                 auto.offset.reset=earliest) and the raw copy in a child process of its own; \
                 time runs from submitting the query (raw copy: from telling it to start) \
                 until a consumer in the harness has read every expected output; CPU is \
                 user+sys of the child over that time from /proc/<pid>/stat, peak RSS its \
                 VmHWM; the harness, its consumer and the broker (embedded or external) are \
                 not counted; joins start once the users table is materialised (a pull query \
                 sees its last user)"
            .into(),
        scenarios,
        latency,
        startup,
    };
    report::print(&report);
    std::fs::write(&args.json_out, serde_json::to_string_pretty(&report)?)
        .with_context(|| format!("writing {}", args.json_out.display()))?;
    eprintln!("eddy bench: figures written to {}", args.json_out.display());
    let _ = std::fs::remove_dir_all(&run.dir);
    Ok(())
}

const RAW_COPY: &str = "rdkafka consume → produce unchanged, no decoding (separate process)";

/// One Eddy scenario: statements run before the clock, the timed statements, and the
/// outputs that mark it done.
struct Scenario {
    name: &'static str,
    description: &'static str,
    joins_users: bool,
    /// The reviews stream's topic and value format.
    reviews: (String, &'static str),
    timed_sql: String,
    expects: Vec<Expect>,
}

/// The Eddy scenarios of round `round` (whose output topics are its own).
fn scenario_specs(run: &Run, data: &data::Dataset, round: u32) -> Vec<Scenario> {
    let out = |name: &str| run.topic(&format!("{name}_{round}"));
    let n = data.events;
    let records = |topic: String, count: u64| Expect::Records { topic, count };
    let clean = |t: &str| {
        format!(
            "CREATE STREAM reviews_clean WITH (KAFKA_TOPIC='{t}') AS \
               SELECT * FROM reviews WHERE id IS NOT NULL;\n"
        )
    };
    let enriched = |from: &str, t: &str| {
        format!(
            "CREATE STREAM enriched_reviews WITH (KAFKA_TOPIC='{t}') AS \
               SELECT r.id AS id, r.userid AS userid, r.rating AS rating, r.text AS text, \
                      u.name AS name, u.status AS status \
               FROM {from} r INNER JOIN users u ON r.userid = u.userid;\n"
        )
    };
    let (a, b, c) = (out("a_out"), out("b_out"), out("c_out"));
    let (a_avro, a_protobuf) = (out("a_avro_out"), out("a_protobuf_out"));
    let json = (run.topic("reviews"), "JSON");
    let (d1, d2, d3) = (out("d_clean"), out("d_enriched"), out("d_unhappy"));
    vec![
        Scenario {
            name: "a_filter",
            description: "reviews_clean: SELECT * FROM reviews WHERE id IS NOT NULL",
            joins_users: false,
            reviews: json.clone(),
            timed_sql: clean(&a),
            expects: vec![records(a, n)],
        },
        Scenario {
            name: "a_filter_avro",
            description: "the filter over AVRO reviews (schema from the built-in registry), AVRO out",
            joins_users: false,
            reviews: (run.topic("reviews_avro"), "AVRO"),
            timed_sql: clean(&a_avro),
            expects: vec![records(a_avro, n)],
        },
        Scenario {
            name: "a_filter_protobuf",
            description: "the filter over PROTOBUF reviews (schema from the built-in registry), PROTOBUF out",
            joins_users: false,
            reviews: (run.topic("reviews_protobuf"), "PROTOBUF"),
            timed_sql: clean(&a_protobuf),
            expects: vec![records(a_protobuf, n)],
        },
        Scenario {
            name: "b_join",
            description: "enriched_reviews: reviews INNER JOIN users (stream–table)",
            joins_users: true,
            reviews: json.clone(),
            timed_sql: enriched("reviews", &b),
            expects: vec![records(b, n)],
        },
        Scenario {
            name: "c_window_count",
            description: "COUNT(*) per userid, WINDOW TUMBLING (SIZE 1 MINUTE)",
            joins_users: false,
            reviews: json.clone(),
            timed_sql: format!(
                "CREATE TABLE reviews_per_minute WITH (KAFKA_TOPIC='{c}') AS \
                   SELECT userid, COUNT(*) AS review_count FROM reviews \
                   WINDOW TUMBLING (SIZE 1 MINUTE) GROUP BY userid;"
            ),
            expects: vec![Expect::CountsSumTo {
                topic: c,
                column: "REVIEW_COUNT",
                total: n,
            }],
        },
        Scenario {
            name: "d_pipeline",
            description: "sql-examples/reviews.sql: reviews_clean → enriched_reviews → unhappy_vips",
            joins_users: true,
            reviews: json,
            timed_sql: format!(
                "{}{}CREATE STREAM unhappy_vips WITH (KAFKA_TOPIC='{d3}') AS \
                   SELECT * FROM enriched_reviews WHERE rating < 3 AND status = 'Platinum';",
                clean(&d1),
                enriched("reviews_clean", &d2)
            ),
            expects: vec![
                records(d1, n),
                records(d2, n),
                records(d3, data.unhappy_vips),
            ],
        },
    ]
}

/// Runs one scenario in a fresh server and measures it.
fn run_scenario(run: &Run, scenario: &Scenario, round: u32, timeout: Duration) -> Result<Measured> {
    let name = format!("{}_{round}", scenario.name);
    let mut server =
        ServerProc::spawn(&run.bootstrap, &run.dir.join(&name), &run.service_id(&name))?;
    server.wait_healthy(&run.rt)?;
    let (reviews, format) = &scenario.reviews;
    let mut setup = format!(
        "CREATE STREAM reviews (id INT KEY, userid INT, rating INT, text VARCHAR) \
           WITH (KAFKA_TOPIC='{reviews}', KEY_FORMAT='KAFKA', VALUE_FORMAT='{format}');\n"
    );
    if scenario.joins_users {
        setup.push_str(&format!(
            "CREATE TABLE users (userid INT PRIMARY KEY, name VARCHAR, email VARCHAR, \
               status VARCHAR) WITH (KAFKA_TOPIC='{}', VALUE_FORMAT='JSON');",
            run.topic("users")
        ));
    }
    server.ksql(&run.rt, &setup, "earliest")?;
    if scenario.joins_users {
        // Users are produced in id order to one partition: the last one marks the table full.
        server.await_pull_row(
            &run.rt,
            &format!("SELECT * FROM users WHERE userid = {};", run.users),
        )?;
    }
    let pid = server.pid();
    let cpu0 = procfs::cpu_seconds(pid, run.ticks)?;
    let t0 = Instant::now();
    server.ksql(&run.rt, &scenario.timed_sql, "earliest")?;
    let outputs = await_outputs(&run.bootstrap, &scenario.expects, timeout)?;
    let cpu1 = procfs::cpu_seconds(pid, run.ticks)?;
    let peak = procfs::status_mib(pid, "VmHWM")?;
    server.kill();
    let expected = scenario
        .expects
        .iter()
        .map(|e| match e {
            Expect::Records { count, .. } => *count,
            Expect::CountsSumTo { total, .. } => *total,
        })
        .sum();
    Ok(Measured::new(t0, &outputs, cpu1 - cpu0, peak, expected))
}

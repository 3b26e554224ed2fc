//! End-to-end latency of the filter (and of the raw copy, for reference) at a steady rate: the time from handing a record to the
//! producer until its output is read by a consumer, per record, matched by key.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use rdkafka::ClientConfig;
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

use super::data::{Rng, review_value};
use super::kafka::{Broker, Expect, await_outputs, reader};
use super::procfs;
use super::raw_copy::{DEFAULT_FETCH_WAIT_MS, RawCopyProc};
use super::report::LatencyResult;
use super::server::ServerProc;
use super::{Run, unix_ms};

/// Records produced and awaited before the clock starts, so the query is running.
const WARM_UP: u32 = 100;
/// The fetch wait of the harness's own consumer: it is the instrument, so its wait should
/// add as little as possible to what it measures.
const READER_FETCH_WAIT_MS: u32 = 1;

/// The load of one latency measurement and the worker's consumer setting.
pub struct Load {
    /// Events per second.
    pub rate: u64,
    /// Seconds of steady load.
    pub seconds: f64,
    /// The worker consumers' `fetch.wait.max.ms`: how long a broker with nothing to
    /// return holds a fetch; `None` for the default (Eddy's, which the raw copy copies).
    pub fetch_wait_ms: Option<u32>,
}

impl Load {
    /// The fetch wait the worker runs with.
    fn fetch_wait(&self) -> u32 {
        self.fetch_wait_ms.unwrap_or(DEFAULT_FETCH_WAIT_MS)
    }

    /// A name for the measurement of `pipeline` under this load, and its input and output
    /// topics.
    fn topics(&self, run: &Run, pipeline: &str) -> (String, String, String) {
        let name = match self.fetch_wait_ms {
            None => pipeline.to_string(),
            Some(ms) => format!("{pipeline}_fw{ms}"),
        };
        let input = run.topic(&format!("{name}_in"));
        let output = run.topic(&format!("{name}_out"));
        (name, input, output)
    }
}

/// Runs the filter in a fresh server (with `--kafka-property fetch.wait.max.ms=…` if the
/// load names a fetch wait) and measures its latency under `load`.
pub fn measure_eddy(run: &Run, broker: &Broker, load: &Load) -> Result<LatencyResult> {
    let (name, input, output) = load.topics(run, "latency");
    broker.create_topic(&run.rt, &input)?;
    let properties: Vec<String> = load
        .fetch_wait_ms
        .map(|ms| format!("fetch.wait.max.ms={ms}"))
        .into_iter()
        .collect();
    let mut server = ServerProc::spawn_with(
        &run.bootstrap,
        &run.dir.join(&name),
        &run.service_id(&name),
        &properties,
    )?;
    server.wait_healthy(&run.rt)?;
    server.ksql(
        &run.rt,
        &format!(
            "CREATE STREAM reviews (id INT KEY, userid INT, rating INT, text VARCHAR) \
               WITH (KAFKA_TOPIC='{input}', VALUE_FORMAT='JSON');
             CREATE STREAM reviews_clean WITH (KAFKA_TOPIC='{output}') AS \
               SELECT * FROM reviews WHERE id IS NOT NULL;"
        ),
        "earliest",
    )?;
    let result = steady(run, "a_filter", load, &input, &output, server.pid());
    server.kill();
    result
}

/// The same for the raw copy, to tell the broker's and client's share of the latency from
/// Eddy's.
pub fn measure_raw_copy(run: &Run, broker: &Broker, load: &Load) -> Result<LatencyResult> {
    let (_, input, output) = load.topics(run, "latency_raw");
    broker.create_topic(&run.rt, &input)?;
    broker.create_topic(&run.rt, &output)?;
    let mut worker = RawCopyProc::spawn(&run.bootstrap, &input, &output, load.fetch_wait())?;
    worker.go()?;
    steady(run, "raw_copy", load, &input, &output, worker.pid())
}

/// Warms `pid`'s pipeline from `input` to `output` up, then produces `load` and matches
/// every output to its input by key.
fn steady(
    run: &Run,
    pipeline: &str,
    load: &Load,
    input: &str,
    output: &str,
    pid: u32,
) -> Result<LatencyResult> {
    let (rate, seconds) = (load.rate, load.seconds);
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &run.bootstrap)
        // One request per record (linger.ms=0) at 5,000/s queues up in the broker and
        // measures it rather than the pipeline; a millisecond of batching is what a real
        // producer adds, and it is counted in every latency below.
        .set("linger.ms", "1")
        .set("message.timeout.ms", "30000")
        .create()
        .context("creating the latency producer")?;
    let mut rng = Rng::new(7);
    let mut value = String::with_capacity(256);
    let send = |id: u32, rng: &mut Rng, value: &mut String| -> Result<()> {
        let ts = unix_ms();
        review_value(
            value,
            rng,
            u64::from(id),
            1 + id % 1000,
            1 + (id % 5) as u8,
            ts,
        );
        let key = (id as i32).to_be_bytes();
        let record = BaseRecord::<[u8], [u8]>::to(input)
            .key(&key)
            .payload(value.as_bytes())
            .timestamp(ts);
        producer
            .send(record)
            .map_err(|(e, _)| anyhow!("producing to {input}: {e}"))?;
        producer.poll(Duration::ZERO);
        Ok(())
    };
    for id in 0..WARM_UP {
        send(id, &mut rng, &mut value)?;
    }
    producer.flush(Duration::from_secs(30))?;
    await_outputs(
        &run.bootstrap,
        &[Expect::Records {
            topic: output.to_string(),
            count: u64::from(WARM_UP),
        }],
        Duration::from_secs(120),
    )?;

    let total = (rate as f64 * seconds).round() as u32;
    let consumer = reader(&run.bootstrap, &[output], READER_FETCH_WAIT_MS)?;
    let start = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let stop_reading = Arc::clone(&stop);
    let receiver = std::thread::spawn(move || -> Result<Vec<Option<Duration>>> {
        let mut received = vec![None; total as usize];
        let mut count = 0;
        while count < total && !stop_reading.load(Ordering::Relaxed) {
            let Some(message) = consumer.poll(Duration::from_millis(50)) else {
                continue;
            };
            let at = start.elapsed();
            let message = message?;
            let Some(id) = message
                .key()
                .and_then(|k| <[u8; 4]>::try_from(k).ok())
                .map(|k| i32::from_be_bytes(k) as u32)
            else {
                continue;
            };
            if let Some(slot) = id
                .checked_sub(WARM_UP)
                .and_then(|i| received.get_mut(i as usize))
                && slot.is_none()
            {
                *slot = Some(at);
                count += 1;
            }
        }
        Ok(received)
    });

    let cpu0 = procfs::cpu_seconds(pid, run.ticks)?;
    let period = Duration::from_secs_f64(1.0 / rate as f64);
    let mut sent = Vec::with_capacity(total as usize);
    for i in 0..total {
        let due = start + period * i;
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        sent.push(start.elapsed());
        send(WARM_UP + i, &mut rng, &mut value)?;
    }
    let produced_for = start.elapsed();
    producer.flush(Duration::from_secs(30))?;
    // Outputs still missing 10 s after the last send count as lost.
    let grace = Instant::now() + Duration::from_secs(10);
    while !receiver.is_finished() && Instant::now() < grace {
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::Relaxed);
    let received = receiver
        .join()
        .map_err(|_| anyhow!("the latency reader panicked"))??;
    let cpu1 = procfs::cpu_seconds(pid, run.ticks)?;

    let mut latencies: Vec<f64> = sent
        .iter()
        .zip(&received)
        .filter_map(|(s, r)| r.map(|r| r.saturating_sub(*s).as_secs_f64() * 1e3))
        .collect();
    latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        if latencies.is_empty() {
            return f64::NAN;
        }
        let i = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1;
        latencies[i]
    };
    Ok(LatencyResult {
        pipeline: pipeline.to_string(),
        fetch_wait_ms: load.fetch_wait(),
        rate_per_sec: rate,
        seconds: produced_for.as_secs_f64(),
        produced: u64::from(total),
        received: latencies.len() as u64,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        max_ms: latencies.last().copied().unwrap_or(f64::NAN),
        cpu_seconds: cpu1 - cpu0,
        method: format!(
            "each record's key is matched between the instant it was handed to the \
             producer (linger.ms=1) and the instant a consumer in the harness \
             (fetch.wait.max.ms={READER_FETCH_WAIT_MS}, no group) returned its output"
        ),
    })
}

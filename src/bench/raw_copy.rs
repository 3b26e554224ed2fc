//! The baseline: a process that copies every record of a topic to another with the same
//! rdkafka client Eddy uses, without decoding anything. Its CPU per record is the floor of
//! any Kafka-to-Kafka job on this machine and broker.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

use super::kafka::{Expect, await_outputs, partitions};
use super::procfs;
use super::report::Measured;

/// Arguments of the hidden worker process.
#[derive(clap::Args, Debug)]
pub struct RawCopyArgs {
    /// Kafka bootstrap servers.
    #[arg(long)]
    bootstrap: String,
    /// Topic to read from its beginning.
    #[arg(long)]
    input: String,
    /// Topic to copy every record to.
    #[arg(long)]
    output: String,
    /// The consumer's `fetch.wait.max.ms`.
    #[arg(long, default_value_t = DEFAULT_FETCH_WAIT_MS)]
    fetch_wait_ms: u32,
}

/// The fetch wait of Eddy's query consumers (`eddy-kafka`'s source), so latencies compare.
pub const DEFAULT_FETCH_WAIT_MS: u32 = 50;

/// The worker: creates its clients, prints `ready`, waits for a line on stdin, then copies
/// until stdin closes.
pub fn worker(args: &RawCopyArgs) -> Result<()> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &args.bootstrap)
        .set("group.id", format!("eddy-bench-raw-copy-{}", args.output))
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", args.fetch_wait_ms.to_string())
        .create()
        .context("creating the consumer")?;
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &args.bootstrap)
        .set("message.timeout.ms", "120000")
        .create()
        .context("creating the producer")?;
    let mut assignment = TopicPartitionList::new();
    for p in 0..partitions(&consumer, &args.input)? {
        assignment.add_partition_offset(&args.input, p, Offset::Beginning)?;
    }
    let mut stdin = BufReader::new(std::io::stdin());
    let mut line = String::new();
    println!("ready");
    std::io::stdout().flush()?;
    stdin.read_line(&mut line)?;

    // Stdin closing is the signal to stop.
    let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = stdin.read_line(&mut rest);
        let _ = stop_tx.send(());
    });

    consumer.assign(&assignment)?;
    let mut last_commit = Instant::now();
    let mut copied = 0u64;
    loop {
        if stop_rx.try_recv().is_ok() {
            break;
        }
        let Some(message) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let message = message?;
        let mut record = BaseRecord::<[u8], [u8]>::to(&args.output);
        if let Some(k) = message.key() {
            record = record.key(k);
        }
        if let Some(v) = message.payload() {
            record = record.payload(v);
        }
        if let Some(ts) = message.timestamp().to_millis() {
            record = record.timestamp(ts);
        }
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    producer.poll(Duration::from_millis(5));
                }
                Err((e, _)) => return Err(anyhow!("producing to {}: {e}", args.output)),
            }
        }
        copied += 1;
        if copied.is_multiple_of(1024) {
            producer.poll(Duration::ZERO);
        }
        // At-least-once like a real job: offsets are committed periodically.
        if last_commit.elapsed() > Duration::from_secs(1) {
            producer.flush(Duration::from_secs(60))?;
            consumer.commit_consumer_state(CommitMode::Async)?;
            last_commit = Instant::now();
        }
    }
    producer.flush(Duration::from_secs(60))?;
    Ok(())
}

/// A raw copy worker process, killed when dropped.
pub struct RawCopyProc {
    child: Child,
    stdin: Option<ChildStdin>,
}

impl RawCopyProc {
    /// Spawns the worker and waits until its clients exist; it copies nothing before
    /// [`go`](Self::go).
    pub fn spawn(
        bootstrap: &str,
        input: &str,
        output: &str,
        fetch_wait_ms: u32,
    ) -> Result<RawCopyProc> {
        let mut child = Command::new(super::eddy_exe()?)
            .args(["bench", "raw-copy", "--bootstrap", bootstrap])
            .args(["--input", input, "--output", output])
            .arg(format!("--fetch-wait-ms={fetch_wait_ms}"))
            .env("RUST_LOG", "error")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting the raw copy worker")?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take();
        let worker = RawCopyProc { child, stdin };
        let stdout = stdout.ok_or_else(|| anyhow!("no stdout"))?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        if line.trim() != "ready" {
            bail!("raw copy worker said {line:?} instead of ready");
        }
        Ok(worker)
    }

    /// The process id, for `/proc`.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Tells the worker to start copying.
    pub fn go(&mut self) -> Result<()> {
        let stdin = self.stdin.as_mut().ok_or_else(|| anyhow!("no stdin"))?;
        writeln!(stdin, "go")?;
        Ok(stdin.flush()?)
    }
}

impl Drop for RawCopyProc {
    fn drop(&mut self) {
        // Closing stdin stops the worker after a flush; kill it if it does not go.
        self.stdin.take();
        let deadline = Instant::now() + Duration::from_secs(10);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the raw copy of `events` records from `input` to `output` in a child process and
/// measures it from the moment it is told to start until the last copy is readable.
pub fn measure(
    bootstrap: &str,
    input: &str,
    output: &str,
    events: u64,
    ticks: f64,
    timeout: Duration,
) -> Result<Measured> {
    let mut worker = RawCopyProc::spawn(bootstrap, input, output, DEFAULT_FETCH_WAIT_MS)?;
    let pid = worker.pid();
    let cpu0 = procfs::cpu_seconds(pid, ticks)?;
    let t0 = Instant::now();
    worker.go()?;
    let expects = [Expect::Records {
        topic: output.to_string(),
        count: events,
    }];
    let outputs = await_outputs(bootstrap, &expects, timeout)?;
    let cpu1 = procfs::cpu_seconds(pid, ticks)?;
    let peak = procfs::status_mib(pid, "VmHWM")?;
    Ok(Measured::new(t0, &outputs, cpu1 - cpu0, peak, events))
}

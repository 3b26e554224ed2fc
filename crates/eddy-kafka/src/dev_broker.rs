//! The embedded dev broker: librdkafka's in-memory mock cluster, speaking the Kafka protocol.
//!
//! What the mock cluster (librdkafka 2.12) does and does not do, as far as Eddy cares:
//!
//! * It implements Produce, Fetch, ListOffsets, offsets, consumer groups and transactions,
//!   but not CreateTopics or DeleteTopics (it does not advertise them in ApiVersions).
//! * A Metadata request that allows auto-creation creates a missing topic with the mock's
//!   default of **4 partitions**. That default is a constant set in
//!   `rd_kafka_mock_cluster_new`; neither librdkafka's configuration nor rdkafka's
//!   `MockCluster` API can change it. Produce, Fetch and OffsetCommit never create topics.
//! * In-process, [`MockCluster::create_topic`] creates a topic with any partition count;
//!   [`DevBrokerHandle::create_topic`] exposes it to other threads.
//! * It keeps at most 100,000 records (or about 5 MB) per partition and drops older ones.
//! * Its Metadata names broker 0 as the controller, a broker that does not exist, so admin
//!   requests sent "to the controller" wait for their whole timeout; sent to a real broker
//!   id they fail at once with "unsupported feature" (see [`crate::KafkaAdmin`]).
//! * Consumer groups wait 3 s (`group.initial.rebalance.delay.ms`) before the first
//!   assignment, which is also not configurable through the safe API. A rebalance after a
//!   member left or lost its session waits the group's `session.timeout.ms` minus 1 s, which
//!   is why Eddy's consumers use a 10 s session timeout rather than librdkafka's 45 s.
//! * It listens on an ephemeral port of 127.0.0.1; [`DevBroker::bootstrap_servers`] says
//!   which.
//!
//! [`MockCluster`] is not `Send`, so one thread owns it for its whole life and serves
//! requests sent over a channel.

use std::sync::mpsc;
use std::thread::JoinHandle;

use rdkafka::error::{KafkaError as RdKafkaError, RDKafkaErrorCode};
use rdkafka::mocking::MockCluster;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};

use crate::error::KafkaError;

/// The mock cluster's fixed default partition count for auto-created topics.
pub const MOCK_AUTO_CREATE_PARTITIONS: i32 = 4;

/// A running embedded dev broker; stops (and forgets every record) when dropped.
#[derive(Debug)]
pub struct DevBroker {
    handle: DevBrokerHandle,
    owner: Option<JoinHandle<()>>,
}

/// A cloneable, thread-safe way to administer a running [`DevBroker`].
#[derive(Debug, Clone)]
pub struct DevBrokerHandle {
    requests: mpsc::Sender<Request>,
    bootstrap_servers: String,
    default_partitions: i32,
}

enum Request {
    CreateTopic {
        name: String,
        partitions: i32,
        reply: mpsc::SyncSender<Result<(), RdKafkaError>>,
    },
    SetReachable {
        reachable: bool,
        reply: mpsc::SyncSender<Result<(), RdKafkaError>>,
    },
    RejectProduce {
        requests: usize,
        reply: mpsc::SyncSender<()>,
    },
    Stop,
}

impl DevBroker {
    /// Starts a one-broker mock cluster on a thread of its own.
    ///
    /// `default_partitions` is the partition count [`DevBrokerHandle::create_topic`] uses
    /// when asked for fewer than one partition. Topics that clients auto-create get the mock's
    /// fixed default of [`MOCK_AUTO_CREATE_PARTITIONS`] instead, which cannot be changed.
    pub fn start(default_partitions: i32) -> Result<DevBroker, KafkaError> {
        let default_partitions = default_partitions.max(1);
        if default_partitions != MOCK_AUTO_CREATE_PARTITIONS {
            tracing::debug!(
                default_partitions,
                auto_created = MOCK_AUTO_CREATE_PARTITIONS,
                "the dev broker auto-creates topics with its own fixed partition count"
            );
        }
        let (requests, inbox) = mpsc::channel();
        let (ready, started) = mpsc::sync_channel(1);
        let owner = std::thread::Builder::new()
            .name("eddy-dev-broker".into())
            .spawn(move || own_cluster(ready, inbox))?;
        let bootstrap_servers = match started.recv() {
            Ok(Ok(servers)) => servers,
            Ok(Err(err)) => {
                let _ = owner.join();
                return Err(KafkaError::DevBrokerStart(err));
            }
            Err(_) => {
                let _ = owner.join();
                return Err(KafkaError::DevBrokerStopped);
            }
        };
        tracing::info!(%bootstrap_servers, "embedded dev broker started");
        Ok(DevBroker {
            handle: DevBrokerHandle {
                requests,
                bootstrap_servers,
                default_partitions,
            },
            owner: Some(owner),
        })
    }

    /// The `bootstrap.servers` value that reaches this broker, e.g. "127.0.0.1:40123".
    pub fn bootstrap_servers(&self) -> String {
        self.handle.bootstrap_servers.clone()
    }

    /// A handle for creating topics from other threads.
    pub fn handle(&self) -> DevBrokerHandle {
        self.handle.clone()
    }
}

impl Drop for DevBroker {
    fn drop(&mut self) {
        // Handles may outlive the broker, so the channel staying open cannot be the signal.
        let _ = self.handle.requests.send(Request::Stop);
        if let Some(owner) = self.owner.take()
            && owner.join().is_err()
        {
            tracing::error!("the embedded dev broker's thread panicked");
        }
    }
}

impl DevBrokerHandle {
    /// Creates a topic with `partitions` partitions (the broker's default if below 1);
    /// succeeds without change if it exists already.
    pub fn create_topic(&self, name: &str, partitions: i32) -> Result<(), KafkaError> {
        let partitions = if partitions < 1 {
            self.default_partitions
        } else {
            partitions
        };
        let (reply, answer) = mpsc::sync_channel(1);
        self.requests
            .send(Request::CreateTopic {
                name: name.to_owned(),
                partitions,
                reply,
            })
            .map_err(|_| KafkaError::DevBrokerStopped)?;
        match answer.recv() {
            Ok(Ok(())) => Ok(()),
            Ok(Err(RdKafkaError::MockCluster(RDKafkaErrorCode::TopicAlreadyExists))) => Ok(()),
            Ok(Err(source)) => Err(KafkaError::DevBrokerRefused {
                operation: format!("creating topic '{name}' with {partitions} partitions"),
                source,
            }),
            Err(_) => Err(KafkaError::DevBrokerStopped),
        }
    }

    /// Simulates an outage: `false` disconnects every client and refuses new connections
    /// (records are kept), `true` accepts connections again.
    pub fn set_reachable(&self, reachable: bool) -> Result<(), KafkaError> {
        let (reply, answer) = mpsc::sync_channel(1);
        self.requests
            .send(Request::SetReachable { reachable, reply })
            .map_err(|_| KafkaError::DevBrokerStopped)?;
        match answer.recv() {
            Ok(result) => result.map_err(|source| KafkaError::DevBrokerRefused {
                operation: format!(
                    "setting its brokers {}",
                    if reachable { "up" } else { "down" }
                ),
                source,
            }),
            Err(_) => Err(KafkaError::DevBrokerStopped),
        }
    }

    /// Makes the next `requests` produce requests fail with "message too large", an error
    /// a producer does not retry, so the records they carry are not delivered.
    pub fn reject_produce_requests(&self, requests: usize) -> Result<(), KafkaError> {
        let (reply, answer) = mpsc::sync_channel(1);
        self.requests
            .send(Request::RejectProduce { requests, reply })
            .map_err(|_| KafkaError::DevBrokerStopped)?;
        answer.recv().map_err(|_| KafkaError::DevBrokerStopped)
    }

    /// The `bootstrap.servers` value that reaches the broker.
    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap_servers
    }

    /// The partition count used when [`create_topic`](Self::create_topic) is given none.
    pub fn default_partitions(&self) -> i32 {
        self.default_partitions
    }
}

/// The owning thread: creates the cluster, reports its address, serves requests until stopped.
fn own_cluster(
    ready: mpsc::SyncSender<Result<String, RdKafkaError>>,
    inbox: mpsc::Receiver<Request>,
) {
    let cluster = match MockCluster::new(1) {
        Ok(cluster) => cluster,
        Err(err) => {
            let _ = ready.send(Err(err));
            return;
        }
    };
    if ready.send(Ok(cluster.bootstrap_servers())).is_err() {
        return;
    }
    for request in inbox {
        match request {
            Request::CreateTopic {
                name,
                partitions,
                reply,
            } => {
                // One broker, so one replica whatever the caller asked for.
                let _ = reply.send(cluster.create_topic(&name, partitions, 1));
            }
            Request::SetReachable { reachable, reply } => {
                // -1: every broker of the cluster.
                let result = if reachable {
                    cluster.broker_up(-1)
                } else {
                    cluster.broker_down(-1)
                };
                let _ = reply.send(result);
            }
            Request::RejectProduce { requests, reply } => {
                let errors = vec![RDKafkaRespErr::RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE; requests];
                cluster.request_errors(RDKafkaApiKey::Produce, &errors);
                let _ = reply.send(());
            }
            Request::Stop => break,
        }
    }
    tracing::info!("embedded dev broker stopped");
}

//! Temporary probe.
use std::time::Instant;
use eddy_kafka::{DevBroker, KafkaConfig, KafkaTopics};
use eddy_topic::TopicIo;

#[test]
fn probe() -> anyhow::Result<()> {
    let broker = DevBroker::start(1)?;
    let remote = KafkaTopics::connect(KafkaConfig::new(broker.bootstrap_servers()), None)?;
    let t = Instant::now();
    eprintln!("create remote-7: {:?} in {:?}", remote.admin().create_topic("remote-7", 7, 1), t.elapsed());
    eprintln!("count: {:?}", remote.admin().partition_count("remote-7"));
    let t = Instant::now();
    eprintln!("delete: {:?} in {:?}", remote.admin().delete_topic("remote-7"), t.elapsed());
    eprintln!("delete missing: {:?}", remote.admin().delete_topic("nope"));
    let embedded = KafkaTopics::connect(KafkaConfig::new(broker.bootstrap_servers()), Some(broker.handle()))?;
    eprintln!("embedded create 0 partitions: {:?}", embedded.admin().create_topic("zero", 0, 1));
    eprintln!("count zero: {:?}", embedded.admin().partition_count("zero"));
    eprintln!("embedded create -> list: {:?}", embedded.admin().list_topics());
    eprintln!("delete embedded: {:?}", embedded.admin().delete_topic("zero"));
    let bad = KafkaTopics::connect(KafkaConfig { bootstrap_servers: "127.0.0.1:1".into(), client_properties: vec![("no.such.prop".into(), "1".into())] }, None);
    eprintln!("bad config: {:?}", bad.err().map(|e| e.to_string()));
    let down = KafkaTopics::connect(KafkaConfig::new("127.0.0.1:1"), None)?;
    let t = Instant::now();
    eprintln!("unreachable: {:?} in {:?}", down.check_reachable(std::time::Duration::from_secs(2)), t.elapsed());
    Ok(())
}

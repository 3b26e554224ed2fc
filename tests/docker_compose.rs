//! No Docker engine runs here, so the compose file is checked by reading it: Kafka in KRaft
//! mode from the official image, and Eddy built from this repo, pointed at it.

use serde_yaml::Value;

fn compose() -> Value {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docker-compose.yml"))
        .expect("docker-compose.yml is readable");
    serde_yaml::from_str(&text).expect("docker-compose.yml is valid YAML")
}

fn env<'a>(service: &'a Value, name: &str) -> Option<&'a str> {
    service["environment"][name].as_str()
}

#[test]
fn kafka_runs_in_kraft_mode_from_the_official_image() {
    let c = compose();
    let kafka = &c["services"]["kafka"];
    assert!(
        kafka["image"]
            .as_str()
            .unwrap_or("")
            .starts_with("apache/kafka:")
    );
    assert_eq!(env(kafka, "KAFKA_PROCESS_ROLES"), Some("broker,controller"));
    assert!(env(kafka, "KAFKA_CONTROLLER_QUORUM_VOTERS").is_some());
    let listeners = env(kafka, "KAFKA_LISTENERS").unwrap_or("");
    assert!(
        listeners.contains("PLAINTEXT://0.0.0.0:29092"),
        "{listeners}"
    );
}

#[test]
fn eddy_is_built_here_and_points_at_kafka() {
    let c = compose();
    let eddy = &c["services"]["eddy"];
    assert_eq!(eddy["build"].as_str(), Some("."));
    assert!(std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/Dockerfile")).exists());
    // The bootstrap address must be the kafka service's internal listener.
    let bootstrap = env(eddy, "EDDY_BOOTSTRAP_SERVERS").unwrap_or("");
    let kafka_advertised = env(&c["services"]["kafka"], "KAFKA_ADVERTISED_LISTENERS").unwrap_or("");
    assert_eq!(bootstrap, "kafka:29092");
    assert!(
        kafka_advertised.contains("PLAINTEXT://kafka:29092"),
        "{kafka_advertised}"
    );
    let ports: Vec<&str> = eddy["ports"]
        .as_sequence()
        .map(|p| p.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    assert_eq!(ports, vec!["8088:8088"]);
    assert_eq!(env(eddy, "EDDY_LISTEN"), Some("0.0.0.0:8088"));
    let volumes: Vec<&str> = eddy["volumes"]
        .as_sequence()
        .map(|p| p.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    assert_eq!(volumes, vec!["eddy-data:/var/lib/eddy"]);
    assert_eq!(env(eddy, "EDDY_DATA_DIR"), Some("/var/lib/eddy"));
    assert!(c["volumes"]["eddy-data"].is_null() || c["volumes"]["eddy-data"].is_mapping());
    assert_eq!(
        eddy["depends_on"]["kafka"]["condition"].as_str(),
        Some("service_healthy")
    );
}

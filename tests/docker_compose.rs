//! No Docker engine runs here, so the compose files are checked by reading them:
//! docker-compose.yml (Kafka in KRaft mode from the official image, and Eddy built from this
//! repo, pointed at it) and docker-compose.secured.yml (the same with Kafka reached over
//! SASL_SSL and Eddy serving HTTPS with Basic authentication, configured with ksqlDB's
//! `KSQL_*` variables), together with the files the secured one mounts from
//! deploy/secured/ and the script that makes its certificates.

use std::collections::BTreeMap;
use std::path::Path;

use serde_yaml::Value;

/// The secured variant, beside docker-compose.yml.
const SECURED: &str = "docker-compose.secured.yml";

/// A file of the repository, as text.
fn repo_file(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path))
        .unwrap_or_else(|e| panic!("{path} is not readable: {e}"))
}

/// Whether a path of the repository is a file.
fn repo_file_exists(path: &str) -> bool {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path).is_file()
}

/// A compose file of the repository, parsed.
fn compose_file(name: &str) -> Value {
    serde_yaml::from_str(&repo_file(name))
        .unwrap_or_else(|e| panic!("{name} is not valid YAML: {e}"))
}

fn compose() -> Value {
    compose_file("docker-compose.yml")
}

fn env<'a>(service: &'a Value, name: &str) -> Option<&'a str> {
    service["environment"][name].as_str()
}

/// A sequence of strings (`ports`, `volumes`, `entrypoint`); empty when absent.
fn strings(value: &Value) -> Vec<&str> {
    value
        .as_sequence()
        .map(|s| s.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// A service's short-syntax volumes (`SOURCE:TARGET[:MODE]`) as (source, target).
fn mounts(service: &Value) -> Vec<(&str, &str)> {
    strings(&service["volumes"])
        .into_iter()
        .filter_map(|volume| {
            let mut parts = volume.split(':');
            Some((parts.next()?, parts.next()?))
        })
        .collect()
}

/// The mount through which a service sees `path`: its source, and the path under it.
fn mount_of<'s, 'p>(service: &'s Value, path: &'p str) -> Option<(&'s str, &'p str)> {
    mounts(service).into_iter().find_map(|(source, target)| {
        if path == target {
            return Some((source, ""));
        }
        let rest = path.strip_prefix(target)?.strip_prefix('/')?;
        Some((source, rest))
    })
}

/// The repository path a service sees at `path` through a `./…` bind mount.
fn repo_path_of(service: &Value, path: &str) -> Option<String> {
    let (source, rest) = mount_of(service, path)?;
    let source = source.strip_prefix("./")?;
    Some(if rest.is_empty() {
        source.to_string()
    } else {
        format!("{source}/{rest}")
    })
}

/// The repository file a service reads at `path`, which must be bind-mounted from the repo.
fn mounted_repo_file(service: &Value, path: &str) -> String {
    let repo_path = repo_path_of(service, path)
        .unwrap_or_else(|| panic!("{path} is not mounted from the repository"));
    assert!(repo_file_exists(&repo_path), "{repo_path} does not exist");
    repo_file(&repo_path)
}

/// `NAME://HOST:PORT,…` as (name, host, port).
fn listeners(text: &str) -> Vec<(&str, &str, &str)> {
    text.split(',')
        .filter_map(|listener| {
            let (name, address) = listener.trim().split_once("://")?;
            let (host, port) = address.rsplit_once(':')?;
            Some((name, host, port))
        })
        .collect()
}

/// `NAME:PROTOCOL,…` by listener name.
fn protocol_map(text: &str) -> BTreeMap<&str, &str> {
    text.split(',')
        .filter_map(|entry| entry.trim().split_once(':'))
        .collect()
}

/// The word after `flag` in a command line.
fn word_after<'a>(command: &'a str, flag: &str) -> Option<&'a str> {
    let mut words = command.split_whitespace();
    words.find(|w| *w == flag)?;
    words.next()
}

/// The value of `name="value"` in a JAAS text.
fn jaas_option<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    let pattern = format!("{name}=\"");
    let start = text
        .match_indices(&pattern)
        .find(|(at, _)| {
            // A whole option name: `username` is not `name`.
            text[..*at]
                .chars()
                .next_back()
                .is_none_or(|c| !c.is_alphanumeric() && c != '_')
        })?
        .0
        + pattern.len();
    text[start..].split('"').next()
}

/// The `file="…"` of the JAAS section `realm`, found as Eddy finds it: a section's name is
/// what stands between the previous `}` or `;` and its `{` (so a comment before it would
/// become part of the name, and the section would not be found).
fn password_file_of(jaas: &str, realm: &str) -> Option<String> {
    let mut rest = jaas;
    while let Some(open) = rest.find('{') {
        let name = rest[..open].split(['}', ';']).next_back()?.trim();
        let close = rest[open..].find('}')? + open;
        let body = &rest[open + 1..close];
        if name == realm && body.contains("PropertyFileLoginModule") {
            return jaas_option(body, "file").map(String::from);
        }
        rest = &rest[close + 1..];
    }
    None
}

/// Whether `id` is a UUID as Kafka writes cluster ids: 22 characters of URL-safe base64,
/// 16 bytes (`kafka-storage format` refuses anything else).
fn is_kafka_uuid(id: &str) -> bool {
    id.len() == 22
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The property a `KSQL_*` variable sets, as ksqlDB's image (and Eddy) read it: `KSQL_`
/// dropped, lower case, `___` as `_`, `__` as `-`, `_` as `.`.
fn ksql_key(var: &str) -> Option<String> {
    let rest = var.strip_prefix("KSQL_")?;
    Some(
        rest.to_ascii_lowercase()
            .replace("___", "\u{0}")
            .replace("__", "-")
            .replace('_', ".")
            .replace('\u{0}', "_"),
    )
}

/// The JVM's variables of ksqlDB's image, which Eddy ignores.
const KSQL_JVM_VARIABLES: &[&str] = &[
    "KSQL_HEAP_OPTS",
    "KSQL_JVM_PERFORMANCE_OPTS",
    "KSQL_LOG4J_OPTS",
    "KSQL_JMX_OPTS",
    "KSQL_CLASSPATH",
    "KSQL_CONFIG_DIR",
    "KSQL_LOG_DIR",
];

/// The settings a service's `KSQL_*` variables give Eddy, by key: one per variable, and the
/// `-Dkey=value` options of `KSQL_OPTS`.
fn ksql_settings(service: &Value) -> BTreeMap<String, String> {
    let mut settings = BTreeMap::new();
    for (name, value) in service["environment"].as_mapping().into_iter().flatten() {
        let Some(name) = name.as_str() else {
            continue;
        };
        let value = match value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            _ => String::new(),
        };
        if name == "KSQL_OPTS" {
            for option in value.split_whitespace() {
                if let Some((key, v)) = option.strip_prefix("-D").and_then(|o| o.split_once('=')) {
                    settings.insert(key.to_string(), v.to_string());
                }
            }
        } else if !KSQL_JVM_VARIABLES.contains(&name)
            && let Some(key) = ksql_key(name)
        {
            settings.insert(key, value);
        }
    }
    settings
}

/// The keys of the README's configuration table (in "Configure it"), which a test of the
/// binary keeps in step with the keys Eddy reads.
fn readme_keys() -> Vec<String> {
    let readme = repo_file("README.md");
    let section = readme
        .split("\n## Configure it")
        .nth(1)
        .expect("README.md has a \"Configure it\" section");
    let section = section.split("\n## ").next().unwrap_or(section);
    section
        .lines()
        .filter_map(|line| {
            let (key, _) = line.strip_prefix("| `")?.split_once('`')?;
            Some(key.to_string())
        })
        .collect()
}

/// Whether Eddy's server accepts `key`: a key of the table, or one it hands to the Kafka
/// clients (`security.protocol`, `sasl.*`, `ssl.*`, `ksql.streams.*`); any other key stops
/// its start.
fn eddy_reads(key: &str, table: &[String]) -> bool {
    table.iter().any(|k| k == key)
        || key == "security.protocol"
        || ["sasl.", "ssl.", "ksql.streams."]
            .iter()
            .any(|prefix| key.starts_with(prefix))
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
    let cluster_id = env(kafka, "CLUSTER_ID").unwrap_or("");
    assert!(is_kafka_uuid(cluster_id), "CLUSTER_ID {cluster_id}");
}

#[test]
fn eddy_is_built_here_and_points_at_kafka() {
    let c = compose();
    let eddy = &c["services"]["eddy"];
    assert_eq!(eddy["build"].as_str(), Some("."));
    assert!(repo_file_exists("Dockerfile"));
    // The bootstrap address must be the kafka service's internal listener.
    let bootstrap = env(eddy, "EDDY_BOOTSTRAP_SERVERS").unwrap_or("");
    let kafka_advertised = env(&c["services"]["kafka"], "KAFKA_ADVERTISED_LISTENERS").unwrap_or("");
    assert_eq!(bootstrap, "kafka:29092");
    assert!(
        kafka_advertised.contains("PLAINTEXT://kafka:29092"),
        "{kafka_advertised}"
    );
    assert_eq!(strings(&eddy["ports"]), vec!["8088:8088"]);
    assert_eq!(env(eddy, "EDDY_LISTEN"), Some("0.0.0.0:8088"));
    assert_eq!(strings(&eddy["volumes"]), vec!["eddy-data:/var/lib/eddy"]);
    assert_eq!(env(eddy, "EDDY_DATA_DIR"), Some("/var/lib/eddy"));
    assert!(c["volumes"]["eddy-data"].is_null() || c["volumes"]["eddy-data"].is_mapping());
    assert_eq!(
        eddy["depends_on"]["kafka"]["condition"].as_str(),
        Some("service_healthy")
    );
}

#[test]
fn every_mount_of_both_files_is_a_repository_file_or_a_declared_volume() {
    for name in ["docker-compose.yml", SECURED] {
        let c = compose_file(name);
        let services = c["services"].as_mapping().expect("services");
        let mut checked = 0;
        for (service_name, service) in services {
            for (source, target) in mounts(service) {
                if let Some(path) = source.strip_prefix("./") {
                    assert!(
                        Path::new(env!("CARGO_MANIFEST_DIR")).join(path).exists(),
                        "{name}: {service_name:?} mounts {path}, which does not exist"
                    );
                } else {
                    assert!(
                        c["volumes"].get(source).is_some(),
                        "{name}: {service_name:?} mounts the undeclared volume {source}"
                    );
                }
                assert!(target.starts_with('/'), "{name}: {target}");
                checked += 1;
            }
        }
        assert!(checked > 0, "{name} mounts nothing");
    }
}

#[test]
fn the_secured_certificates_service_writes_the_pem_files_into_the_certs_volume() {
    let c = compose_file(SECURED);
    let certs = &c["services"]["certs"];
    assert!(
        certs["image"].as_str().unwrap_or("").contains("openssl"),
        "the certificates are made with openssl"
    );
    let entrypoint = strings(&certs["entrypoint"]);
    assert_eq!(entrypoint.first(), Some(&"/bin/sh"), "{entrypoint:?}");
    let script = mounted_repo_file(certs, entrypoint.get(1).copied().unwrap_or(""));
    let out = env(certs, "CERTS_DIR").unwrap_or("");
    assert_eq!(mount_of(certs, out), Some(("certs", "")), "CERTS_DIR {out}");
    assert!(
        script.contains("${CERTS_DIR"),
        "the script writes into CERTS_DIR"
    );
    for file in ["ca.pem", "kafka.pem", "eddy.pem"] {
        let target = format!("\"$out/{file}\"");
        assert!(
            script.lines().map(str::trim).any(|l| {
                (l.starts_with("cat ") || l.starts_with("cp ")) && l.ends_with(&target)
            }),
            "the script writes {file}"
        );
    }
    // The broker's key is encrypted with the password the broker is given.
    assert!(env(certs, "KAFKA_KEY_PASSWORD").is_some_and(|p| !p.is_empty()));
    assert_eq!(
        env(certs, "KAFKA_KEY_PASSWORD"),
        env(&c["services"]["kafka"], "KAFKA_SSL_KEY_PASSWORD")
    );
    assert!(script.contains("pass:$KAFKA_KEY_PASSWORD"));
}

#[test]
fn the_secured_kafka_takes_clients_only_over_sasl_ssl() {
    let c = compose_file(SECURED);
    let kafka = &c["services"]["kafka"];
    assert!(
        kafka["image"]
            .as_str()
            .unwrap_or("")
            .starts_with("apache/kafka:")
    );
    assert_eq!(env(kafka, "KAFKA_PROCESS_ROLES"), Some("broker,controller"));
    let cluster_id = env(kafka, "CLUSTER_ID").unwrap_or("");
    assert!(is_kafka_uuid(cluster_id), "CLUSTER_ID {cluster_id}");
    assert_eq!(
        kafka["depends_on"]["certs"]["condition"].as_str(),
        Some("service_completed_successfully")
    );

    let protocols = protocol_map(env(kafka, "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP").unwrap_or(""));
    let controllers: Vec<&str> = env(kafka, "KAFKA_CONTROLLER_LISTENER_NAMES")
        .unwrap_or("")
        .split(',')
        .collect();
    let bound = listeners(env(kafka, "KAFKA_LISTENERS").unwrap_or(""));
    assert!(bound.len() >= 2, "{bound:?}");
    for (name, host, _) in &bound {
        if controllers.contains(name) {
            // Plaintext, so reachable by this node only.
            assert_eq!(*host, "localhost", "controller listener {name}");
        } else {
            assert_eq!(protocols.get(name), Some(&"SASL_SSL"), "listener {name}");
        }
    }
    let advertised_text = env(kafka, "KAFKA_ADVERTISED_LISTENERS").unwrap_or("");
    // For listeners named …SSL:// the image's start script wants key stores of its own
    // convention (KAFKA_SSL_KEYSTORE_FILENAME, …) instead of the PEM key store.
    assert!(!advertised_text.contains("SSL://"), "{advertised_text}");
    let advertised = listeners(advertised_text);
    assert!(!advertised.is_empty());
    for (name, _, _) in &advertised {
        assert_eq!(protocols.get(name), Some(&"SASL_SSL"), "advertised {name}");
    }
    let inter_broker = env(kafka, "KAFKA_INTER_BROKER_LISTENER_NAME").unwrap_or("");
    assert_eq!(protocols.get(inter_broker), Some(&"SASL_SSL"));
    assert_eq!(env(kafka, "KAFKA_SASL_ENABLED_MECHANISMS"), Some("PLAIN"));
    assert_eq!(
        env(kafka, "KAFKA_SASL_MECHANISM_INTER_BROKER_PROTOCOL"),
        Some("PLAIN")
    );

    // A PEM key store (chain and encrypted key in one file) takes a key password and no
    // store password; both stores are files the certificates service writes.
    assert_eq!(env(kafka, "KAFKA_SSL_KEYSTORE_TYPE"), Some("PEM"));
    assert_eq!(env(kafka, "KAFKA_SSL_KEYSTORE_PASSWORD"), None);
    assert!(env(kafka, "KAFKA_SSL_KEY_PASSWORD").is_some_and(|p| !p.is_empty()));
    assert_eq!(
        mount_of(
            kafka,
            env(kafka, "KAFKA_SSL_KEYSTORE_LOCATION").unwrap_or("")
        ),
        Some(("certs", "kafka.pem"))
    );
    assert_eq!(env(kafka, "KAFKA_SSL_TRUSTSTORE_TYPE"), Some("PEM"));
    assert_eq!(env(kafka, "KAFKA_SSL_TRUSTSTORE_PASSWORD"), None);
    assert_eq!(
        mount_of(
            kafka,
            env(kafka, "KAFKA_SSL_TRUSTSTORE_LOCATION").unwrap_or("")
        ),
        Some(("certs", "ca.pem"))
    );

    // The SASL users come from the JAAS file KAFKA_OPTS names, mounted from the repo.
    let opts = env(kafka, "KAFKA_OPTS").unwrap_or("");
    let jaas_path = opts
        .split_whitespace()
        .find_map(|o| o.strip_prefix("-Djava.security.auth.login.config="))
        .unwrap_or_else(|| panic!("KAFKA_OPTS names no JAAS file: {opts}"));
    let jaas = mounted_repo_file(kafka, jaas_path);
    assert!(jaas.contains("KafkaServer {"), "{jaas}");
    assert!(jaas.contains("PlainLoginModule"), "{jaas}");

    // The health check logs in over SASL_SSL as a user of that file.
    let check = strings(&kafka["healthcheck"]["test"]).join(" ");
    let bootstrap = word_after(&check, "--bootstrap-server").unwrap_or("");
    assert!(
        advertised
            .iter()
            .any(|(_, host, port)| format!("{host}:{port}") == bootstrap),
        "the health check uses {bootstrap}"
    );
    let client = mounted_repo_file(kafka, word_after(&check, "--command-config").unwrap_or(""));
    assert!(client.contains("security.protocol=SASL_SSL"), "{client}");
    let user = jaas_option(&client, "username").unwrap_or("");
    let password = jaas_option(&client, "password").unwrap_or("");
    assert!(
        jaas.contains(&format!("user_{user}=\"{password}\"")),
        "the health check's user {user} is not in {jaas_path}"
    );
    let client_trust = client
        .lines()
        .find_map(|l| l.strip_prefix("ssl.truststore.location="))
        .unwrap_or("");
    assert_eq!(mount_of(kafka, client_trust), Some(("certs", "ca.pem")));
}

#[test]
fn the_secured_eddy_serves_https_with_basic_authentication() {
    let c = compose_file(SECURED);
    let eddy = &c["services"]["eddy"];
    assert_eq!(eddy["build"].as_str(), Some("."));
    let settings = ksql_settings(eddy);
    let get = |key: &str| settings.get(key).map(String::as_str);

    let listener = get("listeners").unwrap_or("");
    assert_eq!(listener, "https://0.0.0.0:8088");
    assert_eq!(strings(&eddy["ports"]), vec!["8088:8088"]);
    assert_eq!(get("ssl.keystore.type"), Some("PEM"));
    assert_eq!(
        mount_of(eddy, get("ssl.keystore.location").unwrap_or("")),
        Some(("certs", "eddy.pem"))
    );
    // Eddy's certificate is for the names it is reached by from the host.
    let script = repo_file("deploy/secured/generate-certs.sh");
    let eddy_names = script
        .lines()
        .find(|l| l.starts_with("issue eddy "))
        .unwrap_or("");
    assert!(eddy_names.contains("DNS:localhost"), "{eddy_names}");

    assert!(
        get("authentication.method").is_some_and(|m| m.eq_ignore_ascii_case("BASIC")),
        "{:?}",
        get("authentication.method")
    );
    let realm = get("authentication.realm").unwrap_or("KsqlServer-Props");
    let jaas_path = get("java.security.auth.login.config").unwrap_or("");
    let jaas = mounted_repo_file(eddy, jaas_path);
    let password_path = password_file_of(&jaas, realm)
        .unwrap_or_else(|| panic!("{jaas_path} has no section {realm} naming a password file"));
    let passwords = mounted_repo_file(eddy, &password_path);
    let roles: Vec<&str> = get("authentication.roles")
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .collect();
    let mut users = Vec::new();
    for line in passwords.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        let (user, rest) = line
            .split_once([':', '='])
            .unwrap_or_else(|| panic!("{password_path}: malformed line {line}"));
        let mut parts = rest.split(',').map(str::trim);
        let password = parts.next().unwrap_or("");
        let allowed = parts.any(|role| roles.contains(&role));
        users.push((user.trim(), password, allowed));
    }
    assert!(
        users.iter().any(|(_, _, allowed)| *allowed),
        "no user of {password_path} has one of the roles {roles:?}"
    );
    // The README gives the example credentials.
    let readme = repo_file("README.md");
    assert!(readme.contains(SECURED));
    for (user, password, _) in &users {
        assert!(
            readme.contains(user) && readme.contains(password),
            "README.md does not give the example user {user}"
        );
    }

    assert_eq!(
        eddy["depends_on"]["certs"]["condition"].as_str(),
        Some("service_completed_successfully")
    );
    assert_eq!(
        mount_of(eddy, get("ksql.streams.state.dir").unwrap_or("")),
        Some(("eddy-data", ""))
    );
}

#[test]
fn the_secured_eddy_reaches_kafka_over_sasl_ssl_as_a_user_of_the_broker() {
    let c = compose_file(SECURED);
    let eddy = &c["services"]["eddy"];
    let kafka = &c["services"]["kafka"];
    let settings = ksql_settings(eddy);
    let get = |key: &str| settings.get(key).map(String::as_str);
    assert_eq!(
        eddy["depends_on"]["kafka"]["condition"].as_str(),
        Some("service_healthy")
    );

    assert_eq!(get("security.protocol"), Some("SASL_SSL"));
    // The bootstrap address is a SASL_SSL listener the broker advertises.
    let bootstrap = get("bootstrap.servers").unwrap_or("");
    let protocols = protocol_map(env(kafka, "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP").unwrap_or(""));
    let (listener, host, _) = listeners(env(kafka, "KAFKA_ADVERTISED_LISTENERS").unwrap_or(""))
        .into_iter()
        .find(|(_, host, port)| format!("{host}:{port}") == bootstrap)
        .unwrap_or_else(|| panic!("the broker does not advertise {bootstrap}"));
    assert_eq!(protocols.get(listener), Some(&"SASL_SSL"));
    // librdkafka checks the broker's name against its certificate.
    let script = repo_file("deploy/secured/generate-certs.sh");
    let kafka_names = script
        .lines()
        .find(|l| l.starts_with("issue kafka "))
        .unwrap_or("");
    assert!(
        kafka_names.contains(&format!("DNS:{host}")),
        "{kafka_names}"
    );

    let mechanism = get("sasl.mechanism").unwrap_or("");
    assert!(
        env(kafka, "KAFKA_SASL_ENABLED_MECHANISMS")
            .unwrap_or("")
            .split(',')
            .any(|m| m == mechanism),
        "the broker does not enable {mechanism}"
    );
    let login = get("sasl.jaas.config").unwrap_or("");
    assert!(login.contains("PlainLoginModule required"), "{login}");
    let user = jaas_option(login, "username").unwrap_or("");
    let password = jaas_option(login, "password").unwrap_or("");
    assert!(!user.is_empty() && !password.is_empty(), "{login}");
    let opts = env(kafka, "KAFKA_OPTS").unwrap_or("");
    let kafka_jaas = opts
        .split_whitespace()
        .find_map(|o| o.strip_prefix("-Djava.security.auth.login.config="))
        .map(|path| mounted_repo_file(kafka, path))
        .unwrap_or_default();
    assert!(
        kafka_jaas.contains(&format!("user_{user}=\"{password}\"")),
        "the broker has no user {user} with Eddy's password"
    );

    assert_eq!(
        mount_of(eddy, get("ssl.truststore.location").unwrap_or("")),
        Some(("certs", "ca.pem"))
    );
}

#[test]
fn every_ksql_variable_of_the_secured_eddy_is_a_key_eddy_reads() {
    let table = readme_keys();
    // The checks themselves can tell a known key from a misspelt one.
    assert_eq!(
        ksql_key("KSQL_KSQL_SERVICE_ID").as_deref(),
        Some("ksql.service.id")
    );
    assert_eq!(
        ksql_key("KSQL_SSL_KEY___X__Y").as_deref(),
        Some("ssl.key_x-y")
    );
    assert!(eddy_reads("ksql.service.id", &table));
    assert!(!eddy_reads("ksql.servce.id", &table));

    let c = compose_file(SECURED);
    let eddy = &c["services"]["eddy"];
    let names: Vec<&str> = eddy["environment"]
        .as_mapping()
        .expect("eddy's environment is a mapping")
        .keys()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        names.iter().all(|n| n.starts_with("KSQL_")),
        "the secured Eddy is configured as ksqlDB's image is, with KSQL_* only: {names:?}"
    );
    let settings = ksql_settings(eddy);
    assert!(settings.len() >= names.len(), "{settings:?}");
    for key in settings.keys() {
        assert!(
            eddy_reads(key, &table),
            "Eddy does not read {key} (set in {SECURED})"
        );
    }
}

//! Kafka client properties as Java clients (and so ksqlDB's configuration files) write them,
//! translated into librdkafka's.
//!
//! Most names are the same in both clients. The ones that differ are the ones every secured
//! deployment uses: `sasl.jaas.config` (librdkafka takes `sasl.username`/`sasl.password`),
//! Java key stores and trust stores (`ssl.truststore.*`, `ssl.keystore.*`; librdkafka
//! reads PEM files and PKCS#12 key stores), and a few JVM-only TLS settings that have no
//! librdkafka equivalent and are dropped. Everything else passes through unchanged, and
//! [`librdkafka_properties`] has librdkafka check every resulting name and value, so a
//! misspelt property stops the start naming it.

use rdkafka::ClientConfig;

use crate::KafkaError;

/// Settings read together with their store's location, and JVM-only TLS settings with
/// nothing to configure in librdkafka (OpenSSL picks protocols and algorithms itself; client
/// authentication is the listener's matter, not a client's).
const NOT_PASSED: &[&str] = &[
    "ssl.protocol",
    "ssl.enabled.protocols",
    "ssl.keymanager.algorithm",
    "ssl.trustmanager.algorithm",
    "ssl.secure.random.implementation",
    "ssl.keystore.alias",
    "ssl.client.authentication",
    "ssl.client.auth",
    "ssl.truststore.type",
    "ssl.truststore.password",
    "ssl.keystore.type",
    "ssl.keystore.password",
];

/// The first bytes of a Java KeyStore (JKS) file.
const JKS_MAGIC: [u8; 4] = [0xFE, 0xED, 0xFE, 0xED];

/// Translates Java-client properties into librdkafka properties, in order (a later
/// property overrides an earlier one), and checks every result with librdkafka.
pub fn librdkafka_properties(
    java: &[(String, String)],
) -> Result<Vec<(String, String)>, KafkaError> {
    let latest = |name: &str| {
        java.iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let mut out = Vec::new();
    for (key, value) in java {
        match key.as_str() {
            "sasl.jaas.config" => out.extend(jaas_login(value)?),
            "sasl.mechanism" => out.push(("sasl.mechanisms".into(), value.clone())),
            "ssl.endpoint.identification.algorithm" => out.push((
                key.clone(),
                if value.trim().is_empty() {
                    "none".into()
                } else {
                    value.to_ascii_lowercase()
                },
            )),
            "ssl.truststore.location" => out.push(trust_store(
                value,
                latest("ssl.truststore.type"),
                latest("ssl.truststore.password"),
            )?),
            "ssl.keystore.location" => out.extend(key_store(
                value,
                latest("ssl.keystore.type"),
                latest("ssl.keystore.password"),
            )?),
            name if NOT_PASSED.contains(&name) => {
                tracing::debug!("{name} is read with its store or has no librdkafka equivalent");
            }
            _ => out.push((key.clone(), value.clone())),
        }
    }
    for (key, value) in &out {
        check(key, value)?;
    }
    Ok(out)
}

/// Has librdkafka accept `key=value` alone, so its error names the property.
fn check(key: &str, value: &str) -> Result<(), KafkaError> {
    let mut config = ClientConfig::new();
    config.set(key, value);
    config
        .create_native_config()
        .map(drop)
        .map_err(|e| KafkaError::Property {
            key: key.to_string(),
            reason: e.to_string(),
        })
}

fn property_error(key: &str, reason: impl Into<String>) -> KafkaError {
    KafkaError::Property {
        key: key.to_string(),
        reason: reason.into(),
    }
}

/// `username`/`password` of a PLAIN or SCRAM `sasl.jaas.config`, or the principal of an
/// unsecured OAUTHBEARER one.
fn jaas_login(config: &str) -> Result<Vec<(String, String)>, KafkaError> {
    const KEY: &str = "sasl.jaas.config";
    let config = config.trim();
    let (module, rest) = config
        .split_once(char::is_whitespace)
        .ok_or_else(|| property_error(KEY, "expected '<LoginModule> required key=\"value\" …;'"))?;
    let options = jaas_options(rest).map_err(|why| property_error(KEY, why))?;
    let option = |name: &str| {
        options
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let module_name = module.rsplit('.').next().unwrap_or(module);
    match module_name {
        "PlainLoginModule" | "ScramLoginModule" => {
            let user = option("username")
                .ok_or_else(|| property_error(KEY, format!("{module_name} needs a username")))?;
            let password = option("password")
                .ok_or_else(|| property_error(KEY, format!("{module_name} needs a password")))?;
            Ok(vec![
                ("sasl.username".into(), user),
                ("sasl.password".into(), password),
            ])
        }
        "OAuthBearerLoginModule" => {
            let mut parts = Vec::new();
            for (k, v) in &options {
                if let Some(claim) = k.strip_prefix("unsecuredLoginStringClaim_") {
                    parts.push(if claim == "sub" {
                        format!("principal={v}")
                    } else {
                        format!("{claim}={v}")
                    });
                }
            }
            if parts.is_empty() {
                return Ok(Vec::new());
            }
            Ok(vec![("sasl.oauthbearer.config".into(), parts.join(" "))])
        }
        other => Err(property_error(
            KEY,
            format!(
                "the login module {other} is not supported; use PlainLoginModule, \
                 ScramLoginModule or OAuthBearerLoginModule"
            ),
        )),
    }
}

/// The `key="value"` options of a JAAS entry after its module name: the control flag,
/// then options, then an optional `;`.
fn jaas_options(text: &str) -> Result<Vec<(String, String)>, String> {
    let text = text.trim().trim_end_matches(';').trim();
    let rest = text
        .split_once(char::is_whitespace)
        .map(|(_flag, rest)| rest)
        .unwrap_or("");
    let mut options = Vec::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Ok(options);
        }
        let name: String = std::iter::from_fn(|| chars.next_if(|c| *c != '=')).collect();
        let name = name.trim().to_string();
        if chars.next() != Some('=') || name.is_empty() {
            return Err(format!("expected key=\"value\" near '{name}'"));
        }
        let value = if chars.next_if_eq(&'"').is_some() {
            let mut value = String::new();
            loop {
                match chars.next() {
                    Some('"') => break,
                    Some('\\') => value.extend(chars.next()),
                    Some(c) => value.push(c),
                    None => return Err(format!("unterminated value of '{name}'")),
                }
            }
            value
        } else {
            std::iter::from_fn(|| chars.next_if(|c| !c.is_whitespace())).collect()
        };
        options.push((name, value));
    }
}

fn is_pem(store_type: Option<&str>) -> bool {
    store_type.is_some_and(|t| t.eq_ignore_ascii_case("PEM"))
}

fn read_store(key: &str, path: &str) -> Result<Vec<u8>, KafkaError> {
    let bytes = std::fs::read(path).map_err(|e| property_error(key, format!("{path}: {e}")))?;
    if bytes.starts_with(&JKS_MAGIC) {
        return Err(property_error(
            key,
            format!(
                "{path} is a Java KeyStore (JKS), which Eddy cannot read; convert it with \
                 `keytool -importkeystore -srckeystore {path} -destkeystore store.p12 \
                 -deststoretype PKCS12` or give a PEM file with type PEM"
            ),
        ));
    }
    Ok(bytes)
}

/// `ssl.truststore.location` as librdkafka's CA setting: a PEM file directly, a PKCS#12
/// store as the PEM of its certificates.
fn trust_store(
    path: &str,
    store_type: Option<&str>,
    password: Option<&str>,
) -> Result<(String, String), KafkaError> {
    const KEY: &str = "ssl.truststore.location";
    let bytes = read_store(KEY, path)?;
    if is_pem(store_type) || bytes.starts_with(b"-----BEGIN") {
        return Ok(("ssl.ca.location".into(), path.to_string()));
    }
    let store = openssl::pkcs12::Pkcs12::from_der(&bytes)
        .and_then(|p| p.parse2(password.unwrap_or("")))
        .map_err(|e| property_error(KEY, format!("{path} is not a readable PKCS#12 store: {e}")))?;
    let mut pem = String::new();
    for cert in store.ca.into_iter().flatten().chain(store.cert) {
        let text = cert
            .to_pem()
            .map_err(|e| property_error(KEY, format!("{path}: {e}")))?;
        pem.push_str(&String::from_utf8_lossy(&text));
    }
    if pem.is_empty() {
        return Err(property_error(KEY, format!("{path} holds no certificate")));
    }
    Ok(("ssl.ca.pem".into(), pem))
}

/// `ssl.keystore.location` as librdkafka's client certificate: a PEM file (certificate
/// chain and key) or a PKCS#12 store.
fn key_store(
    path: &str,
    store_type: Option<&str>,
    password: Option<&str>,
) -> Result<Vec<(String, String)>, KafkaError> {
    const KEY: &str = "ssl.keystore.location";
    let bytes = read_store(KEY, path)?;
    if is_pem(store_type) || bytes.starts_with(b"-----BEGIN") {
        return Ok(vec![
            ("ssl.certificate.location".into(), path.to_string()),
            ("ssl.key.location".into(), path.to_string()),
        ]);
    }
    let mut out = vec![("ssl.keystore.location".into(), path.to_string())];
    if let Some(password) = password {
        out.push(("ssl.keystore.password".into(), password.to_string()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_plain_jaas_config_becomes_user_and_password() -> Result<(), KafkaError> {
        let out = librdkafka_properties(&props(&[
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanism", "PLAIN"),
            (
                "sasl.jaas.config",
                "org.apache.kafka.common.security.plain.PlainLoginModule required \
                 username=\"ksql\" password=\"p a\\\"ss\";",
            ),
        ]))?;
        assert_eq!(
            out,
            props(&[
                ("security.protocol", "SASL_SSL"),
                ("sasl.mechanisms", "PLAIN"),
                ("sasl.username", "ksql"),
                ("sasl.password", "p a\"ss"),
            ])
        );
        Ok(())
    }

    #[test]
    fn unknown_modules_and_properties_are_named() {
        let err = librdkafka_properties(&props(&[(
            "sasl.jaas.config",
            "com.example.Kerberos required;",
        )]))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(
            err.contains("sasl.jaas.config") && err.contains("Kerberos"),
            "{err}"
        );
        let err = librdkafka_properties(&props(&[("fetch.wiat.max.ms", "5")]))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("fetch.wiat.max.ms"), "{err}");
    }

    #[test]
    fn jvm_settings_are_dropped_and_endpoint_checks_map() -> Result<(), KafkaError> {
        let out = librdkafka_properties(&props(&[
            ("ssl.enabled.protocols", "TLSv1.2"),
            ("ssl.endpoint.identification.algorithm", ""),
        ]))?;
        assert_eq!(
            out,
            props(&[("ssl.endpoint.identification.algorithm", "none")])
        );
        Ok(())
    }

    #[test]
    fn a_jks_store_is_refused_with_the_way_out() -> Result<(), std::io::Error> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("trust.jks");
        std::fs::write(&path, [0xFE, 0xED, 0xFE, 0xED, 0, 0, 0, 2])?;
        let err = librdkafka_properties(&props(&[(
            "ssl.truststore.location",
            &path.display().to_string(),
        )]))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(err.contains("JKS") && err.contains("keytool"), "{err}");
        Ok(())
    }
}

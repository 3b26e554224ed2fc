//! The HTTP client: ksqlDB's REST API as documented (`GET /info`, `POST /ksql`,
//! `POST /query`), read as JSON values.

use serde_json::{Map, Value, json};

use crate::error::ShellError;

const KSQL_JSON: &str = "application/vnd.ksql.v1+json";

/// A connection to one server.
pub struct Client {
    http: reqwest::Client,
    url: String,
    login: Option<(String, String)>,
    request_timeout: Option<std::time::Duration>,
}

/// How to connect: credentials and TLS material.
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    /// User and password for HTTP Basic authentication.
    pub login: Option<(String, String)>,
    /// Extra CAs to trust (PEM certificates), besides the system's.
    pub trusted_pem: Vec<u8>,
    /// A client certificate and key (PKCS#12) and its password.
    pub identity: Option<(Vec<u8>, String)>,
    /// Accept a server certificate issued for another host name (`ssl.verify.host=false`).
    pub skip_host_check: bool,
    /// Headers sent with every request (name, value).
    pub headers: Vec<(String, String)>,
    /// How long a request may wait for the server's answer to begin (`--request-timeout`);
    /// a push query's rows may then take as long as they take.
    pub request_timeout: Option<std::time::Duration>,
}

impl ConnectOptions {
    /// Reads ksqlDB's CLI TLS settings from a properties file.
    ///
    /// # Errors
    ///
    /// [`ShellError::Script`] if a file cannot be read, [`ShellError::Usage`] for an
    /// unreadable store.
    pub fn from_file(path: &std::path::Path) -> Result<Self, ShellError> {
        let text = read_file(path)?;
        let properties = java_properties::read(text.as_slice()).map_err(|e| {
            ShellError::Usage(format!("{} is not a properties file: {e}", path.display()))
        })?;
        Self::from_properties(&properties)
    }

    /// Reads ksqlDB's client TLS settings (`ssl.truststore.*`, `ssl.keystore.*`,
    /// `ssl.verify.host`) from properties.
    ///
    /// # Errors
    ///
    /// [`ShellError::Script`] if a store cannot be read, [`ShellError::Usage`] for an
    /// unreadable store.
    pub fn from_properties(
        properties: &std::collections::HashMap<String, String>,
    ) -> Result<Self, ShellError> {
        let mut options = ConnectOptions {
            skip_host_check: properties
                .get("ssl.verify.host")
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("false")),
            ..ConnectOptions::default()
        };
        if let Some(store) = properties.get("ssl.truststore.location") {
            let bytes = read_file(std::path::Path::new(store))?;
            options.trusted_pem = trusted_pem(
                store,
                &bytes,
                properties
                    .get("ssl.truststore.password")
                    .map(String::as_str),
            )?;
        }
        if let Some(store) = properties.get("ssl.keystore.location") {
            let password = properties
                .get("ssl.keystore.password")
                .cloned()
                .unwrap_or_default();
            options.identity = Some((read_file(std::path::Path::new(store))?, password));
        }
        Ok(options)
    }
}

fn read_file(path: &std::path::Path) -> Result<Vec<u8>, ShellError> {
    std::fs::read(path).map_err(|source| ShellError::Script {
        path: path.to_path_buf(),
        source,
    })
}

/// The certificates of a trust store as PEM: a PEM file as it is, a PKCS#12 store
/// converted.
fn trusted_pem(path: &str, bytes: &[u8], password: Option<&str>) -> Result<Vec<u8>, ShellError> {
    if bytes.windows(10).any(|w| w == b"-----BEGIN") {
        return Ok(bytes.to_vec());
    }
    let unreadable = |e: &dyn std::fmt::Display| {
        ShellError::Usage(format!(
            "ssl.truststore.location {path}: not a PEM file or PKCS#12 store ({e})"
        ))
    };
    let store = openssl::pkcs12::Pkcs12::from_der(bytes)
        .and_then(|p| p.parse2(password.unwrap_or("")))
        .map_err(|e| unreadable(&e))?;
    let mut pem = Vec::new();
    for cert in store.ca.into_iter().flatten().chain(store.cert) {
        pem.extend(cert.to_pem().map_err(|e| unreadable(&e))?);
    }
    Ok(pem)
}

/// What `GET /info` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerInfo {
    /// Server version.
    pub version: String,
    /// `RUNNING`, …
    pub status: String,
    /// `ksql.service.id`.
    pub service_id: String,
}

impl Client {
    /// A client for the server at `url` (e.g. `http://localhost:8088`).
    ///
    /// # Errors
    ///
    /// [`ShellError::Usage`] if `url` is not an http(s) URL.
    pub fn new(url: &str) -> Result<Client, ShellError> {
        Self::connect(url, &ConnectOptions::default())
    }

    /// A client for the server at `url` with credentials and TLS material.
    ///
    /// # Errors
    ///
    /// [`ShellError::Usage`] if `url` is not an http(s) URL or the TLS material is not
    /// usable.
    pub fn connect(url: &str, options: &ConnectOptions) -> Result<Client, ShellError> {
        let url = url.trim_end_matches('/').to_string();
        let parsed = reqwest::Url::parse(&url)
            .map_err(|e| ShellError::Usage(format!("invalid server URL {url:?}: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(ShellError::Usage(format!(
                "invalid server URL {url:?}: expected http://HOST:PORT"
            )));
        }
        let tls =
            |e: reqwest::Error| ShellError::Usage(format!("TLS settings: {}", root_cause(&e)));
        let mut builder = reqwest::Client::builder();
        if !options.trusted_pem.is_empty() {
            for cert in reqwest::Certificate::from_pem_bundle(&options.trusted_pem).map_err(tls)? {
                builder = builder.add_root_certificate(cert);
            }
        }
        if !options.headers.is_empty() {
            let mut headers = reqwest::header::HeaderMap::new();
            for (name, value) in &options.headers {
                let bad = |e: &dyn std::fmt::Display| {
                    ShellError::Usage(format!("request header {name:?}: {e}"))
                };
                headers.insert(
                    reqwest::header::HeaderName::from_bytes(name.as_bytes())
                        .map_err(|e| bad(&e))?,
                    reqwest::header::HeaderValue::from_str(value).map_err(|e| bad(&e))?,
                );
            }
            builder = builder.default_headers(headers);
        }
        if options.skip_host_check {
            builder = builder.danger_accept_invalid_hostnames(true);
        }
        if let Some((der, password)) = &options.identity {
            builder =
                builder.identity(reqwest::Identity::from_pkcs12_der(der, password).map_err(tls)?);
        }
        Ok(Client {
            http: builder.build().map_err(tls)?,
            url,
            login: options.login.clone(),
            request_timeout: options.request_timeout,
        })
    }

    /// The server URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// `GET /info`.
    pub async fn info(&self) -> Result<ServerInfo, ShellError> {
        let response = self
            .send(self.http.get(format!("{}/info", self.url)))
            .await?;
        let body: Value = json_body(response).await?;
        let info = &body["KsqlServerInfo"];
        let text = |v: &Value| v.as_str().unwrap_or("unknown").to_string();
        Ok(ServerInfo {
            version: text(&info["version"]),
            status: text(&info["serverStatus"]),
            service_id: text(&info["ksqlServiceId"]),
        })
    }

    /// `POST /ksql` with one statement; returns the entities of the answer.
    pub async fn ksql(
        &self,
        statement: &str,
        properties: &Map<String, Value>,
        variables: &Map<String, Value>,
    ) -> Result<Vec<Value>, ShellError> {
        let response = self.post("ksql", statement, properties, variables).await?;
        match json_body(response).await? {
            Value::Array(entities) => Ok(entities),
            other => Err(ShellError::Protocol(format!(
                "expected a JSON array from /ksql, got {other}"
            ))),
        }
    }

    /// `POST /query`; returns the response whose body streams the results.
    pub async fn query(
        &self,
        statement: &str,
        properties: &Map<String, Value>,
        variables: &Map<String, Value>,
    ) -> Result<reqwest::Response, ShellError> {
        self.post("query", statement, properties, variables).await
    }

    async fn post(
        &self,
        endpoint: &str,
        statement: &str,
        properties: &Map<String, Value>,
        variables: &Map<String, Value>,
    ) -> Result<reqwest::Response, ShellError> {
        let body = json!({
            "ksql": format!("{statement};"),
            "streamsProperties": properties,
            "sessionVariables": variables,
        });
        self.send(
            self.http
                .post(format!("{}/{endpoint}", self.url))
                .header(reqwest::header::CONTENT_TYPE, KSQL_JSON)
                .header(reqwest::header::ACCEPT, KSQL_JSON)
                .body(body.to_string()),
        )
        .await
    }

    /// Sends a request; an answer that is not a success becomes [`ShellError::Server`] with
    /// the server's message.
    async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ShellError> {
        let request = match &self.login {
            Some((user, password)) => request.basic_auth(user, Some(password)),
            None => request,
        };
        let sent = request.send();
        let answered = match self.request_timeout {
            Some(limit) => {
                tokio::time::timeout(limit, sent)
                    .await
                    .map_err(|_| ShellError::Timeout {
                        url: self.url.clone(),
                        seconds: limit.as_secs(),
                    })?
            }
            None => sent.await,
        };
        let response = answered.map_err(|e| {
            if e.is_connect() {
                ShellError::Unreachable {
                    url: self.url.clone(),
                    reason: root_cause(&e),
                }
            } else {
                ShellError::Http(e)
            }
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let text = response.text().await?;
        Err(server_error(status, &text))
    }
}

/// The innermost cause of an error: reqwest's own message only says which URL failed.
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

async fn json_body(response: reqwest::Response) -> Result<Value, ShellError> {
    let bytes = response.bytes().await?;
    serde_json::from_slice(&bytes).map_err(|e| {
        ShellError::Protocol(format!(
            "{e} in {:?}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
        ))
    })
}

/// The error in a failed answer: ksqlDB's `{"error_code":…,"message":…}` when it is that.
pub(crate) fn server_error(status: reqwest::StatusCode, text: &str) -> ShellError {
    match serde_json::from_str::<Value>(text) {
        Ok(body) if body["message"].is_string() => error_of(&body),
        _ if text.trim().is_empty() => ShellError::Server {
            code: None,
            message: format!("the server answered {status}"),
        },
        _ => ShellError::Server {
            code: None,
            message: format!("the server answered {status}: {}", text.trim()),
        },
    }
}

/// A ksqlDB error object (`{"@type":…,"error_code":…,"message":…}`) as an error.
pub(crate) fn error_of(body: &Value) -> ShellError {
    ShellError::Server {
        code: body["error_code"].as_u64(),
        message: body["message"]
            .as_str()
            .unwrap_or("unknown error")
            .to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_errors_are_their_message() {
        let e = server_error(
            reqwest::StatusCode::BAD_REQUEST,
            r#"{"@type":"statement_error","error_code":40001,"message":"Stream X does not exist","statementText":"DROP STREAM X;","entities":[]}"#,
        );
        assert_eq!(e.to_string(), "Stream X does not exist");
        assert!(matches!(
            e,
            ShellError::Server {
                code: Some(40001),
                ..
            }
        ));
        let e = server_error(reqwest::StatusCode::NOT_FOUND, "no such route");
        assert_eq!(
            e.to_string(),
            "the server answered 404 Not Found: no such route"
        );
    }

    #[test]
    fn urls_must_be_http() {
        assert!(Client::new("http://localhost:8088/").is_ok());
        assert!(Client::new("localhost:8088").is_err());
    }
}

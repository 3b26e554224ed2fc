//! A client of an external Confluent Schema Registry (`ksql.schema.registry.url`), with
//! optional HTTP Basic authentication and a CA for HTTPS.
//!
//! The codecs call the registry from query threads and statements from blocking tasks, so
//! the client is synchronous: requests go to one worker thread that runs an async HTTP
//! client on a runtime of its own, and the caller waits for the answer. Schemas by id never
//! change, so they are cached.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use serde_json::{Value, json};

use crate::{RegistryError, Schema, SchemaRegistry, SchemaType, SubjectVersion};

/// How long one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How to reach an external registry.
#[derive(Debug, Clone, Default)]
pub struct HttpRegistryConfig {
    /// The base URL, e.g. `https://registry:8081`.
    pub url: String,
    /// `user:password` for HTTP Basic authentication
    /// (`ksql.schema.registry.basic.auth.user.info`).
    pub user_info: Option<String>,
    /// A PEM file of CA certificates to trust for HTTPS
    /// (`ksql.schema.registry.ssl.truststore.location`).
    pub ca_file: Option<PathBuf>,
}

enum Method {
    Get,
    Post(Value),
}

struct Job {
    method: Method,
    path: String,
    answer: mpsc::Sender<Result<(u16, Value), String>>,
}

/// A synchronous client of a Confluent Schema Registry's REST API.
pub struct HttpRegistry {
    url: String,
    jobs: Mutex<mpsc::Sender<Job>>,
    by_id: Mutex<HashMap<u32, Arc<Schema>>>,
}

impl std::fmt::Debug for HttpRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpRegistry")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

fn unavailable(e: impl std::fmt::Display) -> RegistryError {
    RegistryError::Unavailable(e.to_string())
}

impl HttpRegistry {
    /// A client of the registry `config` names; fails on a CA file that cannot be read.
    pub fn new(config: &HttpRegistryConfig) -> Result<Self, RegistryError> {
        let mut builder = reqwest::Client::builder().timeout(REQUEST_TIMEOUT);
        if let Some(ca) = &config.ca_file {
            let pem = std::fs::read(ca)
                .map_err(|e| unavailable(format!("reading the CA file {}: {e}", ca.display())))?;
            for cert in reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| unavailable(format!("the CA file {}: {e}", ca.display())))?
            {
                builder = builder.add_root_certificate(cert);
            }
        }
        let client = builder.build().map_err(unavailable)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(unavailable)?;
        let base = config.url.trim_end_matches('/').to_string();
        let auth = config
            .user_info
            .as_ref()
            .map(|info| match info.split_once(':') {
                Some((user, password)) => (user.to_string(), Some(password.to_string())),
                None => (info.clone(), None),
            });
        let (jobs, queue) = mpsc::channel::<Job>();
        let worker_base = base.clone();
        std::thread::Builder::new()
            .name("eddy-schema-registry-client".into())
            .spawn(move || {
                for job in queue {
                    let url = format!("{worker_base}{}", job.path);
                    let request = match job.method {
                        Method::Get => client.get(&url),
                        Method::Post(body) => client
                            .post(&url)
                            .header("Content-Type", "application/vnd.schemaregistry.v1+json")
                            .body(body.to_string()),
                    };
                    let request = match &auth {
                        Some((user, password)) => request.basic_auth(user, password.as_ref()),
                        None => request,
                    };
                    let answer = runtime.block_on(async {
                        let response = request.send().await.map_err(|e| e.to_string())?;
                        let status = response.status().as_u16();
                        let body = response.text().await.map_err(|e| e.to_string())?;
                        let value = serde_json::from_str(&body).unwrap_or(Value::String(body));
                        Ok((status, value))
                    });
                    let _ = job.answer.send(answer);
                }
            })
            .map_err(unavailable)?;
        Ok(Self {
            url: base,
            jobs: Mutex::new(jobs),
            by_id: Mutex::new(HashMap::new()),
        })
    }

    fn call(&self, method: Method, path: String) -> Result<(u16, Value), RegistryError> {
        let (answer, answered) = mpsc::channel();
        self.jobs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .send(Job {
                method,
                path,
                answer,
            })
            .map_err(|_| unavailable("the registry client stopped"))?;
        answered
            .recv()
            .map_err(|_| unavailable("the registry client stopped"))?
            .map_err(|e| unavailable(format!("{}: {e}", self.url)))
    }

    /// The registry's error for a non-2xx answer.
    fn error(&self, status: u16, body: &Value) -> RegistryError {
        let code = body.get("error_code").and_then(Value::as_u64).unwrap_or(0);
        let message = body
            .get("message")
            .and_then(Value::as_str)
            .map_or_else(|| body.to_string(), str::to_string);
        match code {
            40401 => RegistryError::SubjectNotFound(message),
            40402 => RegistryError::VersionNotFound {
                subject: String::new(),
                version: message,
            },
            42201 => RegistryError::InvalidSchema(message),
            409 => RegistryError::Incompatible {
                subject: String::new(),
                reason: message,
            },
            _ => unavailable(format!("{} answered {status}: {message}", self.url)),
        }
    }
}

fn schema_type(body: &Value) -> SchemaType {
    match body.get("schemaType").and_then(Value::as_str) {
        Some("PROTOBUF") => SchemaType::Protobuf,
        Some("JSON") => SchemaType::Json,
        _ => SchemaType::Avro,
    }
}

/// A path segment with the characters URLs reserve escaped.
fn segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl HttpRegistry {
    /// `GET /subjects/{subject}/versions/{version}`; `None` on 404.
    fn fetch_version(
        &self,
        subject: &str,
        version: &str,
    ) -> Result<Option<SubjectVersion>, RegistryError> {
        let (status, body) = self.call(
            Method::Get,
            format!("/subjects/{}/versions/{version}", segment(subject)),
        )?;
        if status == 404 {
            return Ok(None);
        }
        if !(200..300).contains(&status) {
            return Err(self.error(status, &body));
        }
        let number = |name: &str| {
            body.get(name)
                .and_then(Value::as_u64)
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| unavailable(format!("no {name} in {body}")))
        };
        let text = body
            .get("schema")
            .and_then(Value::as_str)
            .ok_or_else(|| unavailable(format!("no schema in {body}")))?;
        Ok(Some(SubjectVersion {
            subject: subject.to_string(),
            version: number("version")?,
            id: number("id")?,
            schema: Arc::new(Schema {
                schema_type: schema_type(&body),
                text: text.to_string(),
                references: crate::references_in(&body),
            }),
        }))
    }
}

impl SchemaRegistry for HttpRegistry {
    fn schema(&self, id: u32) -> Result<Arc<Schema>, RegistryError> {
        if let Some(s) = self
            .by_id
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
        {
            return Ok(Arc::clone(s));
        }
        let (status, body) = self.call(Method::Get, format!("/schemas/ids/{id}"))?;
        if status == 404 {
            return Err(RegistryError::SchemaNotFound(id));
        }
        if !(200..300).contains(&status) {
            return Err(self.error(status, &body));
        }
        let text = body
            .get("schema")
            .and_then(Value::as_str)
            .ok_or_else(|| unavailable(format!("no schema in {body}")))?;
        let schema = Arc::new(Schema {
            schema_type: schema_type(&body),
            text: text.to_string(),
            references: crate::references_in(&body),
        });
        self.by_id
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, Arc::clone(&schema));
        Ok(schema)
    }

    fn latest(&self, subject: &str) -> Result<Option<SubjectVersion>, RegistryError> {
        self.fetch_version(subject, "latest")
    }

    fn subject_version(
        &self,
        subject: &str,
        version: u32,
    ) -> Result<Option<SubjectVersion>, RegistryError> {
        self.fetch_version(subject, &version.to_string())
    }

    fn register_with_id(
        &self,
        subject: &str,
        schema: &Schema,
        id: Option<u32>,
    ) -> Result<u32, RegistryError> {
        let mut body = crate::describe_schema(json!({"schema": schema.text}), schema);
        if let Some(id) = id {
            body["id"] = json!(id);
        }
        let (status, answer) = self.call(
            Method::Post(body),
            format!("/subjects/{}/versions", segment(subject)),
        )?;
        if !(200..300).contains(&status) {
            return Err(match self.error(status, &answer) {
                RegistryError::Incompatible { reason, .. } => RegistryError::Incompatible {
                    subject: subject.to_string(),
                    reason,
                },
                other => other,
            });
        }
        answer
            .get("id")
            .and_then(Value::as_u64)
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| unavailable(format!("no id in {answer}")))
    }
}

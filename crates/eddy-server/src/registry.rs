//! The built-in schema registry's REST API, compatible with Confluent's Schema Registry for
//! what its clients use: subjects and versions, schemas by id, registration and lookup,
//! compatibility checks and the compatibility configuration. Served on its own listener
//! ([`serve_registry`]) over the engine's [`MemoryRegistry`].

// The handlers' helpers answer a refused request with its `Response` as the error: it is
// built once per request and returned at once, so its size costs nothing worth a box.
#![allow(clippy::result_large_err)]

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use eddy_registry::{
    Compatibility, MemoryRegistry, RegistryError, Schema, SchemaRegistry, SchemaType,
    SubjectVersion,
};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::net::TcpListener;

type Registry = Arc<MemoryRegistry>;

/// Confluent's media type; its clients also accept plain JSON.
const MEDIA_TYPE: &str = "application/vnd.schemaregistry.v1+json";

fn reply(status: StatusCode, body: Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, MEDIA_TYPE)],
        body.to_string(),
    )
        .into_response()
}

fn ok(body: Value) -> Response {
    reply(StatusCode::OK, body)
}

fn error(e: &RegistryError) -> Response {
    let (code, status) = e.code();
    reply(
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        json!({"error_code": code, "message": e.to_string()}),
    )
}

fn bad_request(message: impl Into<String>) -> Response {
    reply(
        StatusCode::UNPROCESSABLE_ENTITY,
        json!({"error_code": 42201, "message": message.into()}),
    )
}

/// A schema as a request gives it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SchemaRequest {
    schema: String,
    #[serde(default)]
    schema_type: Option<String>,
    #[serde(default)]
    references: Vec<eddy_registry::SchemaReference>,
    #[serde(default)]
    id: Option<u32>,
}

impl SchemaRequest {
    fn schema(&self) -> Result<Schema, Response> {
        let schema_type = match self.schema_type.as_deref().map(str::to_ascii_uppercase) {
            None => SchemaType::Avro,
            Some(t) if t == "AVRO" => SchemaType::Avro,
            Some(t) if t == "PROTOBUF" => SchemaType::Protobuf,
            Some(t) if t == "JSON" => SchemaType::Json,
            Some(t) => return Err(bad_request(format!("Invalid schema type {t}"))),
        };
        Ok(Schema {
            schema_type,
            text: self.schema.clone(),
            references: self.references.clone(),
        })
    }
}

fn parse_body(body: &str) -> Result<SchemaRequest, Response> {
    serde_json::from_str(body).map_err(|e| {
        reply(
            StatusCode::BAD_REQUEST,
            json!({"error_code": 400, "message": format!("Unrecognized request body: {e}")}),
        )
    })
}

fn version_body(v: &SubjectVersion) -> Value {
    eddy_registry::describe_schema(
        json!({"subject": v.subject, "version": v.version, "id": v.id, "schema": v.schema.text}),
        &v.schema,
    )
}

/// The query parameters of reads of a schema.
type Params = Query<std::collections::HashMap<String, String>>;

/// A schema's text in the `format` asked for: `serialized` presents a Protobuf schema as a
/// base64-encoded `FileDescriptorProto`, as Confluent's clients for Python and Go ask.
fn presented(r: &MemoryRegistry, schema: &Schema, params: &Params) -> Result<String, Response> {
    if schema.schema_type != SchemaType::Protobuf
        || params.get("format").map(String::as_str) != Some("serialized")
    {
        return Ok(schema.text.clone());
    }
    eddy_registry::protobuf::references(schema, |subject, version| {
        r.subject_version(subject, version)
    })
    .and_then(|refs| eddy_registry::protobuf::serialized(&schema.text, &refs))
    .map_err(|e| {
        let (code, status) = e.code();
        reply(
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            json!({"error_code": code, "message": e.to_string()}),
        )
    })
}

/// A subject's version, its schema in the `format` asked for.
fn presented_version(r: &MemoryRegistry, v: &SubjectVersion, params: &Params) -> Response {
    match presented(r, &v.schema, params) {
        Ok(text) => {
            let mut body = version_body(v);
            body["schema"] = json!(text);
            ok(body)
        }
        Err(response) => response,
    }
}

/// Runs a change (which writes to the registry's topic) off the async threads.
async fn blocking<T: Send + 'static>(
    registry: &Registry,
    change: impl FnOnce(&MemoryRegistry) -> T + Send + 'static,
) -> Result<T, Response> {
    let registry = Arc::clone(registry);
    tokio::task::spawn_blocking(move || change(&registry))
        .await
        .map_err(|e| {
            reply(
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({"error_code": 50001, "message": format!("Error in the backend data store: {e}")}),
            )
        })
}

async fn root() -> Response {
    ok(json!({}))
}

async fn subjects(State(r): State<Registry>) -> Response {
    ok(json!(r.subjects()))
}

async fn versions(State(r): State<Registry>, Path(subject): Path<String>) -> Response {
    match r.versions(&subject) {
        Ok(v) => ok(json!(v)),
        Err(e) => error(&e),
    }
}

async fn version(
    State(r): State<Registry>,
    Path((subject, version)): Path<(String, String)>,
    params: Params,
) -> Response {
    match r.version(&subject, &version) {
        Ok(v) => presented_version(&r, &v, &params),
        Err(e) => error(&e),
    }
}

async fn version_schema(
    State(r): State<Registry>,
    Path((subject, version)): Path<(String, String)>,
) -> Response {
    match r.version(&subject, &version) {
        Ok(v) => reply(
            StatusCode::OK,
            serde_json::from_str(&v.schema.text).unwrap_or(json!(v.schema.text)),
        ),
        Err(e) => error(&e),
    }
}

async fn register(
    State(r): State<Registry>,
    Path(subject): Path<String>,
    body: String,
) -> Response {
    let request = match parse_body(&body) {
        Ok(request) => request,
        Err(response) => return response,
    };
    let schema = match request.schema() {
        Ok(schema) => schema,
        Err(response) => return response,
    };
    let id = request.id;
    match blocking(&r, move |r| r.register_with_id(&subject, &schema, id)).await {
        Ok(Ok(id)) => ok(json!({"id": id})),
        Ok(Err(e)) => error(&e),
        Err(response) => response,
    }
}

async fn lookup(State(r): State<Registry>, Path(subject): Path<String>, body: String) -> Response {
    let schema = match parse_body(&body).and_then(|b| b.schema()) {
        Ok(schema) => schema,
        Err(response) => return response,
    };
    match r.lookup(&subject, &schema) {
        Ok(v) => ok(version_body(&v)),
        Err(e) => error(&e),
    }
}

async fn delete_subject(State(r): State<Registry>, Path(subject): Path<String>) -> Response {
    match blocking(&r, move |r| r.delete(&subject, None)).await {
        Ok(Ok(versions)) => ok(json!(versions)),
        Ok(Err(e)) => error(&e),
        Err(response) => response,
    }
}

async fn delete_version(
    State(r): State<Registry>,
    Path((subject, version)): Path<(String, String)>,
) -> Response {
    match blocking(&r, move |r| r.delete(&subject, Some(&version))).await {
        Ok(Ok(versions)) => ok(json!(versions.first())),
        Ok(Err(e)) => error(&e),
        Err(response) => response,
    }
}

async fn schema_by_id(State(r): State<Registry>, Path(id): Path<u32>, params: Params) -> Response {
    match r.schema(id) {
        Ok(s) => match presented(&r, &s, &params) {
            Ok(text) => ok(eddy_registry::describe_schema(json!({"schema": text}), &s)),
            Err(response) => response,
        },
        Err(e) => error(&e),
    }
}

async fn schema_text_by_id(State(r): State<Registry>, Path(id): Path<u32>) -> Response {
    match r.schema(id) {
        Ok(s) => ok(serde_json::from_str(&s.text).unwrap_or(json!(s.text))),
        Err(e) => error(&e),
    }
}

async fn schema_types() -> Response {
    ok(json!(["JSON", "PROTOBUF", "AVRO"]))
}

async fn compatibility(
    r: Registry,
    subject: String,
    version: Option<String>,
    body: String,
) -> Response {
    let schema = match parse_body(&body).and_then(|b| b.schema()) {
        Ok(schema) => schema,
        Err(response) => return response,
    };
    match r.check(&subject, &schema, version.as_deref()) {
        Ok(()) => ok(json!({"is_compatible": true})),
        Err(RegistryError::Incompatible { reason, .. }) => {
            ok(json!({"is_compatible": false, "messages": [reason]}))
        }
        Err(e) => error(&e),
    }
}

async fn compatibility_version(
    State(r): State<Registry>,
    Path((subject, version)): Path<(String, String)>,
    body: String,
) -> Response {
    compatibility(r, subject, Some(version), body).await
}

async fn compatibility_all(
    State(r): State<Registry>,
    Path(subject): Path<String>,
    body: String,
) -> Response {
    compatibility(r, subject, None, body).await
}

#[derive(Debug, Deserialize)]
struct ConfigRequest {
    compatibility: String,
}

async fn set_config(r: Registry, subject: Option<String>, body: String) -> Response {
    let request: ConfigRequest = match serde_json::from_str(&body) {
        Ok(request) => request,
        Err(e) => return bad_request(format!("Unrecognized request body: {e}")),
    };
    let level: Compatibility = match request.compatibility.parse() {
        Ok(level) => level,
        Err(e) => return error(&e),
    };
    match blocking(&r, move |r| r.set_compatibility(subject.as_deref(), level)).await {
        Ok(()) => ok(json!({"compatibility": level.name()})),
        Err(response) => response,
    }
}

async fn get_global_config(State(r): State<Registry>) -> Response {
    ok(json!({"compatibilityLevel": r.compatibility(None).name()}))
}

async fn put_global_config(State(r): State<Registry>, body: String) -> Response {
    set_config(r, None, body).await
}

async fn get_subject_config(
    State(r): State<Registry>,
    Path(subject): Path<String>,
    Query(_): Query<std::collections::HashMap<String, String>>,
) -> Response {
    ok(json!({"compatibilityLevel": r.compatibility(Some(&subject)).name()}))
}

async fn put_subject_config(
    State(r): State<Registry>,
    Path(subject): Path<String>,
    body: String,
) -> Response {
    set_config(r, Some(subject), body).await
}

async fn mode() -> Response {
    ok(json!({"mode": "READWRITE"}))
}

/// The registry's routes.
pub fn registry_router(registry: Arc<MemoryRegistry>) -> Router {
    Router::new()
        .route("/", get(root))
        .route("/subjects", get(subjects))
        .route("/subjects/{subject}", post(lookup).delete(delete_subject))
        .route("/subjects/{subject}/versions", get(versions).post(register))
        .route(
            "/subjects/{subject}/versions/{version}",
            get(version).delete(delete_version),
        )
        .route(
            "/subjects/{subject}/versions/{version}/schema",
            get(version_schema),
        )
        .route("/schemas/ids/{id}", get(schema_by_id))
        .route("/schemas/ids/{id}/schema", get(schema_text_by_id))
        .route("/schemas/types", get(schema_types))
        .route(
            "/compatibility/subjects/{subject}/versions/{version}",
            post(compatibility_version),
        )
        .route(
            "/compatibility/subjects/{subject}/versions",
            post(compatibility_all),
        )
        .route("/config", get(get_global_config).put(put_global_config))
        .route(
            "/config/{subject}",
            get(get_subject_config).put(put_subject_config),
        )
        .route("/mode", get(mode))
        .with_state(registry)
}

/// Serves the registry's REST API on `listener` until the task is dropped.
pub async fn serve_registry(listener: TcpListener, registry: Arc<MemoryRegistry>) {
    let app = registry_router(registry);
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!("schema registry: accepting a connection failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let app = app.clone();
        tokio::spawn(async move {
            if let Err(e) = crate::serve_connection(None, tcp, app).await {
                tracing::debug!(%peer, "schema registry connection ended: {e}");
            }
        });
    }
}

//! The registry's store: subjects, their versions and schemas by id, in memory, with the
//! events that change it so that a server can keep them in a topic and replay them.

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use crate::compatibility::{Parsed, incompatibilities};
use crate::{RegistryError, Schema, SchemaReference, SchemaRegistry, SchemaType, SubjectVersion};

/// Confluent's compatibility levels: which earlier versions a new schema is checked against,
/// and in which direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Compatibility {
    /// No check.
    None,
    /// The new schema reads data written with the latest one (Confluent's default).
    #[default]
    Backward,
    /// The new schema reads data written with every earlier one.
    BackwardTransitive,
    /// The latest schema reads data written with the new one.
    Forward,
    /// Every earlier schema reads data written with the new one.
    ForwardTransitive,
    /// Backward and forward against the latest.
    Full,
    /// Backward and forward against every earlier one.
    FullTransitive,
}

impl FromStr for Compatibility {
    type Err = RegistryError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        serde_json::from_value(serde_json::Value::String(s.to_ascii_uppercase()))
            .map_err(|_| RegistryError::InvalidCompatibility(s.to_string()))
    }
}

impl Compatibility {
    /// The level as Confluent spells it (`BACKWARD`).
    pub fn name(self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    }

    fn transitive(self) -> bool {
        matches!(
            self,
            Compatibility::BackwardTransitive
                | Compatibility::ForwardTransitive
                | Compatibility::FullTransitive
        )
    }
}

/// A change to the store, in the order it happened: what a server writes to its schemas
/// topic and replays at start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum RegistryEvent {
    /// A schema was registered as a subject's version.
    Registered {
        /// The subject.
        subject: String,
        /// Its new version.
        version: u32,
        /// The schema's id.
        id: u32,
        /// The schema's kind.
        #[serde(rename = "schemaType")]
        schema_type: SchemaType,
        /// The schema's text.
        schema: String,
        /// The schemas it refers to.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        references: Vec<SchemaReference>,
    },
    /// A version was deleted (soft: its id still resolves).
    VersionDeleted {
        /// The subject.
        subject: String,
        /// The version.
        version: u32,
    },
    /// A compatibility level was set, for one subject or (`subject: None`) for all.
    CompatibilitySet {
        /// The subject, or none for the global level.
        subject: Option<String>,
        /// The level.
        compatibility: Compatibility,
    },
}

#[derive(Debug, Clone)]
struct Version {
    version: u32,
    id: u32,
    deleted: bool,
}

#[derive(Debug, Default)]
struct Subject {
    versions: Vec<Version>,
    compatibility: Option<Compatibility>,
}

impl Subject {
    fn live(&self) -> impl DoubleEndedIterator<Item = &Version> {
        self.versions.iter().filter(|v| !v.deleted)
    }
}

#[derive(Debug, Default)]
struct State {
    schemas: HashMap<u32, Arc<Schema>>,
    /// Ids by the normalised form of their schema, so equal schemas share an id.
    ids: HashMap<(SchemaType, String), u32>,
    subjects: BTreeMap<String, Subject>,
    compatibility: Compatibility,
    next_id: u32,
}

type Listener = Box<dyn Fn(&RegistryEvent) + Send + Sync>;

/// Subjects, versions and schemas in memory. Cheap to share (`Arc`) between the codecs,
/// the statements and the REST API.
#[derive(Default)]
pub struct MemoryRegistry {
    state: Mutex<State>,
    listener: Mutex<Option<Listener>>,
}

impl std::fmt::Debug for MemoryRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryRegistry").finish_non_exhaustive()
    }
}

/// The form of a schema that equal schemas share: Avro's parsing canonical form, a JSON
/// document re-serialised, other text trimmed. Fails on a schema that does not parse.
fn normalised(schema: &Schema) -> Result<String, RegistryError> {
    let text = normalised_text(schema)?;
    if schema.references.is_empty() {
        return Ok(text);
    }
    let references = serde_json::to_string(&schema.references)
        .map_err(|e| RegistryError::InvalidSchema(e.to_string()))?;
    Ok(format!("{text}\n{references}"))
}

fn normalised_text(schema: &Schema) -> Result<String, RegistryError> {
    match schema.schema_type {
        SchemaType::Avro => Ok(parse_avro(&schema.text)?.canonical_form()),
        SchemaType::Json => serde_json::from_str::<serde_json::Value>(&schema.text)
            .map(|v| v.to_string())
            .map_err(|e| RegistryError::InvalidSchema(e.to_string())),
        SchemaType::Protobuf => Ok(schema.text.trim().to_string()),
    }
}

/// Parses an Avro schema's JSON text.
pub(crate) fn parse_avro(text: &str) -> Result<apache_avro::Schema, RegistryError> {
    apache_avro::Schema::parse_str(text).map_err(|e| RegistryError::InvalidSchema(e.to_string()))
}

impl MemoryRegistry {
    /// An empty registry with Confluent's defaults: BACKWARD compatibility, ids from 1.
    pub fn new() -> Self {
        Self {
            state: Mutex::new(State {
                next_id: 1,
                ..State::default()
            }),
            listener: Mutex::new(None),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere cannot leave the maps half-changed: every change is one insert.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Calls `listener` with every later change, in order (a server writes them to its
    /// schemas topic).
    pub fn on_change(&self, listener: impl Fn(&RegistryEvent) + Send + Sync + 'static) {
        *self.listener.lock().unwrap_or_else(|e| e.into_inner()) = Some(Box::new(listener));
    }

    fn emit(&self, event: &RegistryEvent) {
        if let Some(listener) = self
            .listener
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            listener(event);
        }
    }

    /// Applies a change read back from a schemas topic (no listener is called).
    pub fn apply(&self, event: &RegistryEvent) {
        let mut state = self.state();
        match event {
            RegistryEvent::Registered {
                subject,
                version,
                id,
                schema_type,
                schema,
                references,
            } => {
                let schema = Schema {
                    schema_type: *schema_type,
                    text: schema.clone(),
                    references: references.clone(),
                };
                if let Ok(key) = normalised(&schema) {
                    state.ids.entry((schema.schema_type, key)).or_insert(*id);
                }
                state.schemas.insert(*id, Arc::new(schema));
                state.next_id = state.next_id.max(id + 1);
                let versions = &mut state.subjects.entry(subject.clone()).or_default().versions;
                versions.retain(|v| v.version != *version);
                versions.push(Version {
                    version: *version,
                    id: *id,
                    deleted: false,
                });
                versions.sort_by_key(|v| v.version);
            }
            RegistryEvent::VersionDeleted { subject, version } => {
                if let Some(s) = state.subjects.get_mut(subject) {
                    for v in s.versions.iter_mut().filter(|v| v.version == *version) {
                        v.deleted = true;
                    }
                }
            }
            RegistryEvent::CompatibilitySet {
                subject,
                compatibility,
            } => match subject {
                Some(s) => {
                    state.subjects.entry(s.clone()).or_default().compatibility =
                        Some(*compatibility)
                }
                None => state.compatibility = *compatibility,
            },
        }
    }

    /// Registers `schema` under `subject` with the given id (`None`: the next free one, or the
    /// id an equal schema already has), after checking compatibility. Returns the id.
    fn register_checked(
        &self,
        subject: &str,
        schema: &Schema,
        id: Option<u32>,
    ) -> Result<u32, RegistryError> {
        let key = normalised(schema)?;
        let event = {
            let state = self.state();
            if let Some(found) = find_in_subject(&state, subject, schema.schema_type, &key)
                && id.is_none_or(|id| id == found)
            {
                return Ok(found);
            }
            check_compatibility(&state, subject, schema, None)?;
            let known = state.ids.get(&(schema.schema_type, key.clone())).copied();
            let id = match (id, known) {
                (Some(id), _) => {
                    if let Some(existing) = state.schemas.get(&id)
                        && normalised(existing).ok().as_deref() != Some(key.as_str())
                    {
                        return Err(RegistryError::IdTaken(id));
                    }
                    id
                }
                (None, Some(known)) => known,
                (None, None) => state.next_id,
            };
            let version = state
                .subjects
                .get(subject)
                .and_then(|s| s.versions.last())
                .map_or(1, |v| v.version + 1);
            RegistryEvent::Registered {
                subject: subject.to_string(),
                version,
                id,
                schema_type: schema.schema_type,
                schema: schema.text.clone(),
                references: schema.references.clone(),
            }
        };
        self.apply(&event);
        self.emit(&event);
        let RegistryEvent::Registered { id, .. } = event else {
            return Err(RegistryError::Unavailable("registration lost".into()));
        };
        Ok(id)
    }

    /// The subjects that have a live version, in order.
    pub fn subjects(&self) -> Vec<String> {
        self.state()
            .subjects
            .iter()
            .filter(|(_, s)| s.live().next().is_some())
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// The live versions of `subject`.
    pub fn versions(&self, subject: &str) -> Result<Vec<u32>, RegistryError> {
        let state = self.state();
        let versions: Vec<u32> = state
            .subjects
            .get(subject)
            .map(|s| s.live().map(|v| v.version).collect())
            .unwrap_or_default();
        if versions.is_empty() {
            return Err(RegistryError::SubjectNotFound(subject.to_string()));
        }
        Ok(versions)
    }

    /// A version of `subject`: a number, or `latest` (also `-1`).
    pub fn version(&self, subject: &str, version: &str) -> Result<SubjectVersion, RegistryError> {
        let state = self.state();
        let s = state
            .subjects
            .get(subject)
            .filter(|s| s.live().next().is_some())
            .ok_or_else(|| RegistryError::SubjectNotFound(subject.to_string()))?;
        let found = if version == "latest" || version == "-1" {
            s.live().next_back()
        } else {
            let n: u32 = version
                .parse()
                .map_err(|_| RegistryError::VersionNotFound {
                    subject: subject.to_string(),
                    version: version.to_string(),
                })?;
            s.live().find(|v| v.version == n)
        };
        let v = found.ok_or_else(|| RegistryError::VersionNotFound {
            subject: subject.to_string(),
            version: version.to_string(),
        })?;
        let schema = state
            .schemas
            .get(&v.id)
            .cloned()
            .ok_or(RegistryError::SchemaNotFound(v.id))?;
        Ok(SubjectVersion {
            subject: subject.to_string(),
            version: v.version,
            id: v.id,
            schema,
        })
    }

    /// The version of `subject` whose schema equals `schema` (Confluent's `POST
    /// /subjects/{subject}`).
    pub fn lookup(&self, subject: &str, schema: &Schema) -> Result<SubjectVersion, RegistryError> {
        let key = normalised(schema)?;
        let version = {
            let state = self.state();
            if !state.subjects.contains_key(subject) {
                return Err(RegistryError::SubjectNotFound(subject.to_string()));
            }
            let id = find_in_subject(&state, subject, schema.schema_type, &key)
                .ok_or(RegistryError::SchemaNotFound(0))?;
            state.subjects[subject]
                .live()
                .find(|v| v.id == id)
                .map(|v| v.version)
                .ok_or(RegistryError::SchemaNotFound(id))?
        };
        self.version(subject, &version.to_string())
    }

    /// Deletes one version (`latest` too), or every version when `version` is `None`;
    /// returns the deleted versions. Ids keep resolving, as in Confluent's soft delete.
    pub fn delete(&self, subject: &str, version: Option<&str>) -> Result<Vec<u32>, RegistryError> {
        let deleted = match version {
            Some(v) => vec![self.version(subject, v)?.version],
            None => self.versions(subject)?,
        };
        for version in &deleted {
            let event = RegistryEvent::VersionDeleted {
                subject: subject.to_string(),
                version: *version,
            };
            self.apply(&event);
            self.emit(&event);
        }
        Ok(deleted)
    }

    /// The compatibility level of `subject` (its own, else the global one), or the global
    /// level.
    pub fn compatibility(&self, subject: Option<&str>) -> Compatibility {
        let state = self.state();
        subject
            .and_then(|s| state.subjects.get(s))
            .and_then(|s| s.compatibility)
            .unwrap_or(state.compatibility)
    }

    /// Sets the compatibility level of `subject`, or the global one.
    pub fn set_compatibility(&self, subject: Option<&str>, compatibility: Compatibility) {
        let event = RegistryEvent::CompatibilitySet {
            subject: subject.map(str::to_string),
            compatibility,
        };
        self.apply(&event);
        self.emit(&event);
    }

    /// Whether `schema` could be registered under `subject` next to `version` (all earlier
    /// versions for a transitive level), without registering it.
    pub fn check(
        &self,
        subject: &str,
        schema: &Schema,
        version: Option<&str>,
    ) -> Result<(), RegistryError> {
        normalised(schema)?;
        let against = match version {
            Some(v) => Some(self.version(subject, v)?.version),
            None => None,
        };
        check_compatibility(&self.state(), subject, schema, against)
    }
}

/// The id of the live version of `subject` whose schema normalises to `key`.
fn find_in_subject(
    state: &State,
    subject: &str,
    schema_type: SchemaType,
    key: &str,
) -> Option<u32> {
    let id = *state.ids.get(&(schema_type, key.to_string()))?;
    state
        .subjects
        .get(subject)?
        .live()
        .any(|v| v.id == id)
        .then_some(id)
}

/// A schema parsed as its kind, the files a Protobuf schema refers to taken from the store.
/// Fails on a schema that does not parse or compile.
fn parse(state: &State, schema: &Schema) -> Result<Parsed, RegistryError> {
    match schema.schema_type {
        SchemaType::Avro => Ok(Parsed::Avro(parse_avro(&schema.text)?)),
        SchemaType::Json => match serde_json::from_str::<serde_json::Value>(&schema.text) {
            Ok(v) if v.is_object() || v.is_boolean() => Ok(Parsed::Json(v)),
            Ok(_) => Err(RegistryError::InvalidSchema(
                "a JSON schema must be an object or a boolean".into(),
            )),
            Err(e) => Err(RegistryError::InvalidSchema(e.to_string())),
        },
        SchemaType::Protobuf => {
            let references = crate::protobuf::references(schema, |subject, version| {
                Ok(any_version(state, subject, version))
            })?;
            crate::protobuf::compile(&schema.text, &references).map(Parsed::Protobuf)
        }
    }
}

/// Version `version` of `subject`, deleted or not (a schema reference keeps resolving).
fn any_version(state: &State, subject: &str, version: u32) -> Option<SubjectVersion> {
    let v = state
        .subjects
        .get(subject)?
        .versions
        .iter()
        .find(|v| v.version == version)?;
    Some(SubjectVersion {
        subject: subject.to_string(),
        version: v.version,
        id: v.id,
        schema: state.schemas.get(&v.id)?.clone(),
    })
}

/// Checks that `schema` parses, then checks it against the subject's versions as its
/// compatibility level asks (against `only` alone when given), with the rules of its kind.
fn check_compatibility(
    state: &State,
    subject: &str,
    schema: &Schema,
    only: Option<u32>,
) -> Result<(), RegistryError> {
    let new = parse(state, schema)?;
    let Some(s) = state.subjects.get(subject) else {
        return Ok(());
    };
    let level = s.compatibility.unwrap_or(state.compatibility);
    if level == Compatibility::None {
        return Ok(());
    }
    let earlier: Vec<&Version> = match only {
        Some(n) => s.live().filter(|v| v.version == n).collect(),
        None if level.transitive() => s.live().collect(),
        None => s.live().next_back().into_iter().collect(),
    };
    for v in earlier {
        // A version that no longer parses (kept from before a check existed) is skipped.
        let Some(old) = state
            .schemas
            .get(&v.id)
            .and_then(|old| parse(state, old).ok())
        else {
            continue;
        };
        let backward = || incompatibilities(&old, &new);
        let forward = || incompatibilities(&new, &old);
        let found = match level {
            Compatibility::Backward | Compatibility::BackwardTransitive => backward(),
            Compatibility::Forward | Compatibility::ForwardTransitive => forward(),
            Compatibility::Full | Compatibility::FullTransitive => {
                let mut found = backward();
                found.extend(forward());
                found
            }
            Compatibility::None => Vec::new(),
        };
        if !found.is_empty() {
            return Err(RegistryError::Incompatible {
                subject: subject.to_string(),
                reason: format!("{} (against version {})", found.join("; "), v.version),
            });
        }
    }
    Ok(())
}

impl SchemaRegistry for MemoryRegistry {
    fn schema(&self, id: u32) -> Result<Arc<Schema>, RegistryError> {
        self.state()
            .schemas
            .get(&id)
            .cloned()
            .ok_or(RegistryError::SchemaNotFound(id))
    }

    fn latest(&self, subject: &str) -> Result<Option<SubjectVersion>, RegistryError> {
        match self.version(subject, "latest") {
            Ok(v) => Ok(Some(v)),
            Err(RegistryError::SubjectNotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn subject_version(
        &self,
        subject: &str,
        version: u32,
    ) -> Result<Option<SubjectVersion>, RegistryError> {
        match self.version(subject, &version.to_string()) {
            Ok(v) => Ok(Some(v)),
            Err(RegistryError::SubjectNotFound(_) | RegistryError::VersionNotFound { .. }) => {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    fn register_with_id(
        &self,
        subject: &str,
        schema: &Schema,
        id: Option<u32>,
    ) -> Result<u32, RegistryError> {
        self.register_checked(subject, schema, id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1: &str = r#"{"type":"record","name":"R","fields":[{"name":"A","type":"int"}]}"#;
    const V2: &str = r#"{"type":"record","name":"R","fields":[{"name":"A","type":"int"},{"name":"B","type":["null","string"],"default":null}]}"#;
    const BAD: &str = r#"{"type":"record","name":"R","fields":[{"name":"C","type":"string"}]}"#;

    #[test]
    fn equal_schemas_share_an_id_and_versions_count_from_one() -> Result<(), RegistryError> {
        let r = MemoryRegistry::new();
        let id = r.register("t-value", &Schema::avro(V1))?;
        assert_eq!(id, 1);
        // The same schema, spelled differently, is the same version.
        let spaced = V1.replace(',', ", ");
        assert_eq!(r.register("t-value", &Schema::avro(spaced))?, 1);
        assert_eq!(r.register("u-value", &Schema::avro(V1))?, 1);
        assert_eq!(r.register("t-value", &Schema::avro(V2))?, 2);
        assert_eq!(r.versions("t-value")?, vec![1, 2]);
        assert_eq!(r.version("t-value", "latest")?.id, 2);
        assert_eq!(r.lookup("t-value", &Schema::avro(V1))?.version, 1);
        Ok(())
    }

    #[test]
    fn an_incompatible_schema_is_refused_unless_compatibility_is_none() -> Result<(), RegistryError>
    {
        let r = MemoryRegistry::new();
        r.register("t-value", &Schema::avro(V1))?;
        let refused = r.register("t-value", &Schema::avro(BAD));
        assert!(
            matches!(refused, Err(RegistryError::Incompatible { .. })),
            "{refused:?}"
        );
        assert_eq!(r.versions("t-value")?, vec![1]);
        r.set_compatibility(Some("t-value"), Compatibility::None);
        assert_eq!(r.register("t-value", &Schema::avro(BAD))?, 2);
        Ok(())
    }

    #[test]
    fn events_replayed_into_a_new_registry_give_the_same_answers() -> Result<(), RegistryError> {
        let events = Arc::new(Mutex::new(Vec::new()));
        let r = MemoryRegistry::new();
        let sink = Arc::clone(&events);
        r.on_change(move |e| {
            sink.lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(e.clone())
        });
        r.register("t-value", &Schema::avro(V1))?;
        r.register("t-value", &Schema::avro(V2))?;
        r.delete("t-value", Some("1"))?;
        let replayed = MemoryRegistry::new();
        for e in events.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            replayed.apply(e);
        }
        assert_eq!(replayed.versions("t-value")?, vec![2]);
        assert_eq!(replayed.schema(1)?.text, V1);
        assert_eq!(replayed.register("x-value", &Schema::avro(BAD))?, 3);
        Ok(())
    }

    #[test]
    fn protobuf_and_json_schemas_are_checked_with_their_kinds_rules() -> Result<(), RegistryError> {
        let r = MemoryRegistry::new();
        let proto = |text: &str| Schema::new(SchemaType::Protobuf, text);
        // A referenced file resolves from the store.
        r.register(
            "common",
            &proto("syntax = \"proto3\"; message C { int32 n = 1; }"),
        )?;
        let mut v1 =
            proto("syntax = \"proto3\"; import \"c.proto\"; message R { C c = 1; int32 a = 2; }");
        v1.references = vec![SchemaReference {
            name: "c.proto".into(),
            subject: "common".into(),
            version: 1,
        }];
        r.register("p-value", &v1)?;
        let mut v2 = v1.clone();
        v2.text = v1
            .text
            .replace("int32 a = 2;", "int64 a = 2; string b = 3;");
        r.register("p-value", &v2)?;
        let mut bad = v1.clone();
        bad.text = v1.text.replace("int32 a = 2;", "string a = 2;");
        let refused = r.register("p-value", &bad);
        assert!(
            matches!(&refused, Err(RegistryError::Incompatible { reason, .. }) if reason.contains("FIELD_SCALAR_KIND_CHANGED")),
            "{refused:?}"
        );
        let unknown = r.register(
            "q-value",
            &proto("syntax = \"proto3\"; message R { Nope n = 1; }"),
        );
        assert!(
            matches!(unknown, Err(RegistryError::InvalidSchema(_))),
            "{unknown:?}"
        );

        let json = |text: &str| Schema::new(SchemaType::Json, text);
        r.register(
            "j-value",
            &json(r#"{"type":"object","properties":{"a":{"type":"integer"}}}"#),
        )?;
        let refused = r.register(
            "j-value",
            &json(
                r#"{"type":"object","properties":{"a":{"type":"integer"},"b":{"type":"string"}}}"#,
            ),
        );
        assert!(
            matches!(&refused, Err(RegistryError::Incompatible { reason, .. }) if reason.contains("PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL")),
            "{refused:?}"
        );
        r.register(
            "j-value",
            &json(r#"{"type":"object","properties":{"a":{"type":"number"}}}"#),
        )?;
        assert_eq!(r.versions("j-value")?, vec![1, 2]);
        Ok(())
    }

    #[test]
    fn a_malformed_schema_is_invalid() {
        let r = MemoryRegistry::new();
        let e = r.register("t-value", &Schema::avro("{\"type\":\"recrod\"}"));
        assert!(matches!(e, Err(RegistryError::InvalidSchema(_))), "{e:?}");
        assert_eq!(r.subjects(), Vec::<String>::new());
    }
}

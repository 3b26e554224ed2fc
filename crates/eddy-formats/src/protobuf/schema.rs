//! Protobuf schemas as registries hold them: `.proto` text, compiled with the files it
//! imports into descriptors. Besides Google's well-known types, the files Kafka Connect's
//! Protobuf converter writes imports of are known here: `confluent/meta.proto` (field
//! parameters such as a decimal's precision), `confluent/type/decimal.proto`,
//! `google/type/date.proto` and `google/type/timeofday.proto`.

use eddy_registry::{Schema, SchemaReference, SchemaRegistry};
use prost_reflect::prost::Message as _;
use prost_reflect::prost_types::FileDescriptorProto;
use prost_reflect::{FileDescriptor, MessageDescriptor};
use protox::Compiler;
use protox::file::{File, FileResolver, GoogleFileResolver};

use crate::avro::wire::{read_long, write_long};

/// The name the schema's own text is compiled under.
const SCHEMA_FILE: &str = "schema.proto";

const CONFLUENT_META: &str = r#"syntax = "proto3";
package confluent;
import "google/protobuf/descriptor.proto";
message Meta {
  string doc = 1;
  map<string, string> params = 2;
  repeated string tags = 3;
}
extend google.protobuf.FileOptions { Meta file_meta = 1088; }
extend google.protobuf.MessageOptions { Meta message_meta = 1088; }
extend google.protobuf.FieldOptions { Meta field_meta = 1088; }
extend google.protobuf.EnumOptions { Meta enum_meta = 1088; }
extend google.protobuf.EnumValueOptions { Meta enum_value_meta = 1088; }
"#;

const CONFLUENT_DECIMAL: &str = r#"syntax = "proto3";
package confluent.type;
import public "confluent/meta.proto";
message Decimal {
  bytes value = 1;
  uint32 precision = 2;
  int32 scale = 3;
}
"#;

const GOOGLE_DATE: &str = r#"syntax = "proto3";
package google.type;
message Date {
  int32 year = 1;
  int32 month = 2;
  int32 day = 3;
}
"#;

const GOOGLE_TIME_OF_DAY: &str = r#"syntax = "proto3";
package google.type;
message TimeOfDay {
  int32 hours = 1;
  int32 minutes = 2;
  int32 seconds = 3;
  int32 nanos = 4;
}
"#;

/// The files besides Google's well-known types that a schema may import without a reference.
const KNOWN_FILES: &[(&str, &str)] = &[
    ("confluent/meta.proto", CONFLUENT_META),
    ("confluent/type/decimal.proto", CONFLUENT_DECIMAL),
    ("google/type/date.proto", GOOGLE_DATE),
    ("google/type/timeofday.proto", GOOGLE_TIME_OF_DAY),
];

/// Resolves the schema's own file, its referenced files and the known ones.
struct Files {
    text: String,
    references: Vec<(String, String)>,
    google: GoogleFileResolver,
}

/// A file from its registered text: `.proto` source, or (as Confluent's serialisers for
/// Python and Go register it) a base64-encoded `FileDescriptorProto`.
fn file(name: &str, text: &str) -> Result<File, protox::Error> {
    match descriptor_proto(text) {
        Some(mut proto) => {
            proto.name = Some(name.to_string());
            Ok(File::from_file_descriptor_proto(proto))
        }
        None => File::from_source(name, text),
    }
}

/// The `FileDescriptorProto` a schema's text encodes in base64, if it is one.
fn descriptor_proto(text: &str) -> Option<FileDescriptorProto> {
    use base64::Engine as _;
    let text = text.trim();
    if text.is_empty() || text.contains(|c: char| c.is_whitespace() || c == ';') {
        return None;
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .ok()?;
    FileDescriptorProto::decode(bytes.as_slice()).ok()
}

impl FileResolver for Files {
    fn open_file(&self, name: &str) -> Result<File, protox::Error> {
        if name == SCHEMA_FILE {
            return file(name, &self.text);
        }
        if let Some((_, text)) = self.references.iter().find(|(n, _)| n == name) {
            return file(name, text);
        }
        if let Some((_, text)) = KNOWN_FILES.iter().find(|(n, _)| *n == name) {
            return File::from_source(name, text);
        }
        self.google.open_file(name)
    }
}

/// Compiles a schema's text, with the texts of the files it imports by reference (name,
/// text), into the descriptor of its file.
pub fn compile(text: &str, references: &[(String, String)]) -> Result<FileDescriptor, String> {
    let mut compiler = Compiler::with_file_resolver(Files {
        text: text.to_string(),
        references: references.to_vec(),
        google: GoogleFileResolver::new(),
    });
    compiler.include_imports(true);
    compiler
        .open_file(SCHEMA_FILE)
        .map_err(|e| format!("Invalid Protobuf schema: {e}"))?;
    compiler
        .descriptor_pool()
        .get_file_by_name(SCHEMA_FILE)
        .ok_or_else(|| "Invalid Protobuf schema: the file did not compile".to_string())
}

/// A schema as Confluent's `format=serialized` presents it: its compiled file as a
/// base64-encoded `FileDescriptorProto`.
pub fn serialized(text: &str, references: &[(String, String)]) -> Result<String, String> {
    use base64::Engine as _;
    let file = compile(text, references)?;
    Ok(base64::engine::general_purpose::STANDARD
        .encode(file.file_descriptor_proto().encode_to_vec()))
}

/// The texts of the files a registered schema refers to (and those they refer to), by the
/// names it imports them as.
pub fn references(
    registry: &dyn SchemaRegistry,
    schema: &Schema,
) -> Result<Vec<(String, String)>, String> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut pending: Vec<SchemaReference> = schema.references.clone();
    while let Some(reference) = pending.pop() {
        if out.iter().any(|(name, _)| *name == reference.name) {
            continue;
        }
        if out.len() > 256 {
            return Err("Protobuf schema references are nested too deeply".into());
        }
        let found = registry
            .subject_version(&reference.subject, reference.version)
            .map_err(|e| format!("Error retrieving the schema {}: {e}", reference.name))?
            .ok_or_else(|| {
                format!(
                    "The schema {} refers to, version {} of subject {}, does not exist",
                    reference.name, reference.version, reference.subject
                )
            })?;
        pending.extend(found.schema.references.iter().cloned());
        out.push((reference.name, found.schema.text.clone()));
    }
    Ok(out)
}

/// The message a schema's records hold: the one named `full_name` (as ksqlDB's
/// `…_SCHEMA_FULL_NAME` gives it, with or without the package), else the file's first.
pub fn message(
    file: &FileDescriptor,
    full_name: Option<&str>,
) -> Result<MessageDescriptor, String> {
    match full_name {
        None => file
            .messages()
            .next()
            .ok_or_else(|| "The Protobuf schema has no message".to_string()),
        Some(name) => all_messages(file)
            .find(|m| m.full_name() == name || m.name() == name)
            .ok_or_else(|| format!("Schema does not contain {name}")),
    }
}

fn all_messages(file: &FileDescriptor) -> impl Iterator<Item = MessageDescriptor> + '_ {
    fn walk(m: MessageDescriptor, out: &mut Vec<MessageDescriptor>) {
        out.push(m.clone());
        for n in m.child_messages() {
            walk(n, out);
        }
    }
    let mut out = Vec::new();
    for m in file.messages() {
        walk(m, &mut out);
    }
    out.into_iter()
}

/// The message a record's message indexes (Confluent's path to it through the file's
/// messages and their nested ones) name.
pub fn message_at(file: &FileDescriptor, path: &[i64]) -> Result<MessageDescriptor, String> {
    let missing = || format!("The Protobuf schema has no message at index path {path:?}");
    let (&first, rest) = path.split_first().ok_or_else(missing)?;
    let mut message = usize::try_from(first)
        .ok()
        .and_then(|i| file.messages().nth(i))
        .ok_or_else(missing)?;
    for &i in rest {
        message = usize::try_from(i)
            .ok()
            .and_then(|i| message.child_messages().nth(i))
            .ok_or_else(missing)?;
    }
    Ok(message)
}

/// The message indexes of `message` in its file.
pub fn index_path(message: &MessageDescriptor) -> Vec<i64> {
    let mut path = Vec::new();
    let mut current = Some(message.clone());
    while let Some(m) = current {
        let siblings: Vec<MessageDescriptor> = match m.parent_message() {
            Some(parent) => parent.child_messages().collect(),
            None => m.parent_file().messages().collect(),
        };
        let at = siblings
            .iter()
            .position(|s| s.full_name() == m.full_name())
            .unwrap_or(0);
        path.push(at as i64);
        current = m.parent_message();
    }
    path.reverse();
    path
}

/// Reads a record's message indexes: a count, then that many indexes; a lone 0 is `[0]`.
pub fn read_indexes(buf: &mut &[u8]) -> Result<Vec<i64>, String> {
    let read = |buf: &mut &[u8]| {
        read_long(buf).map_err(|_| "Protobuf record ends in its message indexes".to_string())
    };
    let count = read(buf)?;
    if count == 0 {
        return Ok(vec![0]);
    }
    if !(0..=128).contains(&count) {
        return Err(format!("Invalid Protobuf message index count {count}"));
    }
    (0..count).map(|_| read(buf)).collect()
}

/// Writes message indexes, `[0]` as the single byte 0 as Confluent's serialisers do.
pub fn write_indexes(out: &mut Vec<u8>, path: &[i64]) {
    if path == [0] {
        out.push(0);
        return;
    }
    write_long(out, path.len() as i64);
    for &i in path {
        write_long(out, i);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiles_with_known_imports_and_finds_messages() -> Result<(), String> {
        let file = compile(
            r#"syntax = "proto3";
               import "confluent/type/decimal.proto";
               import "google/protobuf/timestamp.proto";
               message A { message Inner { int32 x = 1; } Inner i = 1; }
               message B { confluent.type.Decimal d = 1; google.protobuf.Timestamp t = 2; }"#,
            &[],
        )?;
        assert_eq!(message(&file, None)?.name(), "A");
        assert_eq!(message(&file, Some("B"))?.name(), "B");
        let inner = message(&file, Some("A.Inner"))?;
        assert_eq!(index_path(&inner), [0, 0]);
        assert_eq!(message_at(&file, &[1])?.name(), "B");
        assert_eq!(message_at(&file, &[0, 0])?.name(), "Inner");
        assert!(message(&file, Some("Nope")).is_err());
        assert!(compile("syntax = \"proto3\"; message {", &[]).is_err());
        // What Confluent's Python serialiser registers: the descriptor in base64.
        let encoded = serialized("syntax = \"proto3\"; message U { string name = 1; }", &[])?;
        let again = compile(&encoded, &[])?;
        assert_eq!(message(&again, None)?.full_name(), "U");
        Ok(())
    }

    #[test]
    fn indexes_round_trip() -> Result<(), String> {
        for path in [vec![0i64], vec![1], vec![0, 2, 1]] {
            let mut out = Vec::new();
            write_indexes(&mut out, &path);
            assert_eq!(read_indexes(&mut out.as_slice())?, path);
        }
        let mut out = Vec::new();
        write_indexes(&mut out, &[0]);
        assert_eq!(out, [0]);
        Ok(())
    }
}

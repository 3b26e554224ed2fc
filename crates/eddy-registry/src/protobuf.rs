//! Protobuf schemas as registries hold them: `.proto` text (or, as Confluent's Python and Go
//! serialisers register it, a base64-encoded `FileDescriptorProto`), compiled with the files
//! it imports into descriptors. Besides Google's well-known types, the files Kafka Connect's
//! Protobuf converter writes imports of are known here: `confluent/meta.proto` (field
//! parameters such as a decimal's precision), `confluent/type/decimal.proto`,
//! `google/type/date.proto` and `google/type/timeofday.proto`.

use prost_reflect::FileDescriptor;
use prost_reflect::prost::Message as _;
use prost_reflect::prost_types::FileDescriptorProto;
use protox::Compiler;
use protox::file::{File, FileResolver, GoogleFileResolver};

use crate::{RegistryError, Schema, SchemaReference, SubjectVersion};

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
pub fn compile(
    text: &str,
    references: &[(String, String)],
) -> Result<FileDescriptor, RegistryError> {
    let mut compiler = Compiler::with_file_resolver(Files {
        text: text.to_string(),
        references: references.to_vec(),
        google: GoogleFileResolver::new(),
    });
    compiler.include_imports(true);
    compiler
        .open_file(SCHEMA_FILE)
        .map_err(|e| RegistryError::InvalidSchema(format!("Invalid Protobuf schema: {e}")))?;
    compiler
        .descriptor_pool()
        .get_file_by_name(SCHEMA_FILE)
        .ok_or_else(|| {
            RegistryError::InvalidSchema("Invalid Protobuf schema: the file did not compile".into())
        })
}

/// A schema as Confluent's `format=serialized` presents it: its compiled file as a
/// base64-encoded `FileDescriptorProto`.
pub fn serialized(text: &str, references: &[(String, String)]) -> Result<String, RegistryError> {
    use base64::Engine as _;
    let file = compile(text, references)?;
    Ok(base64::engine::general_purpose::STANDARD
        .encode(file.file_descriptor_proto().encode_to_vec()))
}

/// The texts of the files a registered schema refers to (and those they refer to), by the
/// names it imports them as; `version` finds a version of a subject, as
/// [`crate::SchemaRegistry::subject_version`] does.
pub fn references(
    schema: &Schema,
    version: impl Fn(&str, u32) -> Result<Option<SubjectVersion>, RegistryError>,
) -> Result<Vec<(String, String)>, RegistryError> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut pending: Vec<SchemaReference> = schema.references.clone();
    while let Some(reference) = pending.pop() {
        if out.iter().any(|(name, _)| *name == reference.name) {
            continue;
        }
        if out.len() > 256 {
            return Err(RegistryError::InvalidSchema(
                "Protobuf schema references are nested too deeply".into(),
            ));
        }
        let found = version(&reference.subject, reference.version)?.ok_or_else(|| {
            RegistryError::InvalidSchema(format!(
                "The schema {} refers to, version {} of subject {}, does not exist",
                reference.name, reference.version, reference.subject
            ))
        })?;
        pending.extend(found.schema.references.iter().cloned());
        out.push((reference.name, found.schema.text.clone()));
    }
    Ok(out)
}

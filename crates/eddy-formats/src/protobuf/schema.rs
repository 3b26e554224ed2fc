//! Protobuf schemas in records: the message a schema's records hold, and Confluent's message
//! indexes that name it. Compiling a registered schema is the registry crate's
//! ([`eddy_registry::protobuf`]), as its compatibility checks need it too.

use eddy_registry::{RegistryError, Schema, SchemaRegistry};
use prost_reflect::{FileDescriptor, MessageDescriptor};

use crate::avro::wire::{read_long, write_long};

/// Compiles a schema's text, with the texts of the files it imports by reference (name,
/// text), into the descriptor of its file.
pub fn compile(text: &str, references: &[(String, String)]) -> Result<FileDescriptor, String> {
    eddy_registry::protobuf::compile(text, references).map_err(reason)
}

/// The texts of the files a registered schema refers to, by the names it imports them as.
pub fn references(
    registry: &dyn SchemaRegistry,
    schema: &Schema,
) -> Result<Vec<(String, String)>, String> {
    eddy_registry::protobuf::references(schema, |subject, version| {
        registry.subject_version(subject, version)
    })
    .map_err(|e| match e {
        RegistryError::InvalidSchema(_) => reason(e),
        e => format!("Error retrieving a schema reference: {e}"),
    })
}

/// An error's text without the registry's "Invalid schema: " prefix.
fn reason(e: RegistryError) -> String {
    match e {
        RegistryError::InvalidSchema(s) => s,
        e => e.to_string(),
    }
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
        let encoded = eddy_registry::protobuf::serialized(
            "syntax = \"proto3\"; message U { string name = 1; }",
            &[],
        )
        .map_err(reason)?;
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

//! Protobuf compatibility, with the rules of Confluent's Schema Registry: changes the wire
//! format lets an old reader or writer get past are compatible (adding and removing fields,
//! messages, enums and enum constants; renaming a field; adding a `oneof`; a string, bytes or
//! message field becoming repeated), the others are not (a field number that changes kind or
//! type, a removed message, a changed package, a proto2 `required` field added or removed, a
//! field leaving a `oneof`, several fields moved into one).

use std::collections::HashMap;

use prost_reflect::{Cardinality, FieldDescriptor, FileDescriptor, Kind, MessageDescriptor};

/// What keeps `reader` from reading messages written with `writer`.
pub(super) fn incompatibilities(writer: &FileDescriptor, reader: &FileDescriptor) -> Vec<String> {
    let mut out = Vec::new();
    if writer.package_name() != reader.package_name() {
        out.push(format!(
            "PACKAGE_CHANGED: the package changed from '{}' to '{}'",
            writer.package_name(),
            reader.package_name()
        ));
    }
    // Messages are matched by their names within the package, so that a changed package
    // is one difference rather than one per message.
    let local = |m: &MessageDescriptor, file: &FileDescriptor| {
        local_name(m.full_name(), file.package_name()).to_string()
    };
    let readers: HashMap<String, MessageDescriptor> = messages(reader)
        .into_iter()
        .map(|m| (local(&m, reader), m))
        .collect();
    for w in messages(writer) {
        match readers.get(&local(&w, writer)) {
            Some(r) => compare_messages(&w, r, &mut out),
            None => out.push(format!(
                "MESSAGE_REMOVED: the message '{}' is missing in the new schema",
                w.full_name()
            )),
        }
    }
    out
}

/// A type's name within its package.
fn local_name<'a>(full_name: &'a str, package: &str) -> &'a str {
    if package.is_empty() {
        return full_name;
    }
    full_name
        .strip_prefix(package)
        .and_then(|n| n.strip_prefix('.'))
        .unwrap_or(full_name)
}

/// Every message of the file, nested ones too (map entries are compared as their fields).
fn messages(file: &FileDescriptor) -> Vec<MessageDescriptor> {
    fn walk(m: MessageDescriptor, out: &mut Vec<MessageDescriptor>) {
        for n in m.child_messages() {
            if !n.is_map_entry() {
                walk(n, out);
            }
        }
        out.push(m);
    }
    let mut out = Vec::new();
    for m in file.messages() {
        walk(m, &mut out);
    }
    out
}

fn compare_messages(writer: &MessageDescriptor, reader: &MessageDescriptor, out: &mut Vec<String>) {
    let at = |field: &FieldDescriptor| format!("#/{}/{}", writer.full_name(), field.number());
    for w in writer.fields() {
        match reader.get_field(w.number()) {
            None if w.cardinality() == Cardinality::Required => out.push(format!(
                "REQUIRED_FIELD_REMOVED: the required field at '{}' is missing in the new schema",
                at(&w)
            )),
            None => {}
            Some(r) => compare_fields(&w, &r, &at(&w), out),
        }
    }
    for r in reader.fields() {
        if writer.get_field(r.number()).is_none() && r.cardinality() == Cardinality::Required {
            out.push(format!(
                "REQUIRED_FIELD_ADDED: the new schema adds a required field at '{}'",
                at(&r)
            ));
        }
    }
    compare_oneofs(writer, reader, out);
}

fn compare_fields(w: &FieldDescriptor, r: &FieldDescriptor, at: &str, out: &mut Vec<String>) {
    if w.is_map() != r.is_map() {
        out.push(format!(
            "FIELD_KIND_CHANGED: the kind of the field at '{at}' changed between map and not"
        ));
        return;
    }
    if w.is_map() {
        if let (Kind::Message(wm), Kind::Message(rm)) = (w.kind(), r.kind()) {
            for (wf, rf) in [
                (wm.map_entry_key_field(), rm.map_entry_key_field()),
                (wm.map_entry_value_field(), rm.map_entry_value_field()),
            ] {
                compare_kinds(&wf, &rf, at, out);
            }
        }
        return;
    }
    compare_kinds(w, r, at, out);
    let repeated = |f: &FieldDescriptor| f.cardinality() == Cardinality::Repeated;
    if repeated(w) != repeated(r)
        && !matches!(w.kind(), Kind::String | Kind::Bytes | Kind::Message(_))
    {
        out.push(format!(
            "FIELD_NUMERIC_LABEL_CHANGED: the numeric field at '{at}' changed between repeated and not"
        ));
    }
}

fn compare_kinds(w: &FieldDescriptor, r: &FieldDescriptor, at: &str, out: &mut Vec<String>) {
    match (w.kind(), r.kind()) {
        (Kind::Message(wm), Kind::Message(rm)) => {
            if local_name(wm.full_name(), wm.package_name())
                != local_name(rm.full_name(), rm.package_name())
            {
                out.push(format!(
                    "FIELD_NAMED_TYPE_CHANGED: the type of the field at '{at}' changed from '{}' to '{}'",
                    wm.full_name(),
                    rm.full_name()
                ));
            }
        }
        (Kind::Enum(we), Kind::Enum(re)) => {
            if local_name(we.full_name(), we.package_name())
                != local_name(re.full_name(), re.package_name())
            {
                out.push(format!(
                    "FIELD_NAMED_TYPE_CHANGED: the type of the field at '{at}' changed from '{}' to '{}'",
                    we.full_name(),
                    re.full_name()
                ));
            }
        }
        (Kind::Message(_) | Kind::Enum(_), _) | (_, Kind::Message(_) | Kind::Enum(_)) => {
            out.push(format!(
                "FIELD_KIND_CHANGED: the kind of the field at '{at}' changed from {:?} to {:?}",
                w.kind(),
                r.kind()
            ));
        }
        (wk, rk) => {
            if scalar_group(&wk) != scalar_group(&rk) {
                out.push(format!(
                    "FIELD_SCALAR_KIND_CHANGED: the scalar kind of the field at '{at}' changed from {wk:?} to {rk:?}"
                ));
            }
        }
    }
}

/// The scalar kinds whose encodings read as one another (Protobuf's "updating a message
/// type" rules): the varints, the zig-zag varints, the 32- and 64-bit fixed widths, and
/// length-delimited strings and bytes.
fn scalar_group(kind: &Kind) -> u8 {
    match kind {
        Kind::Int32 | Kind::Uint32 | Kind::Int64 | Kind::Uint64 | Kind::Bool => 0,
        Kind::Sint32 | Kind::Sint64 => 1,
        Kind::Fixed32 | Kind::Sfixed32 => 2,
        Kind::Fixed64 | Kind::Sfixed64 => 3,
        Kind::String | Kind::Bytes => 4,
        Kind::Float => 5,
        Kind::Double => 6,
        Kind::Message(_) | Kind::Enum(_) => 7,
    }
}

/// The real (not proto3-`optional`) oneof each field number belongs to, by the oneof's name.
fn oneof_of(message: &MessageDescriptor) -> HashMap<u32, String> {
    message
        .oneofs()
        .filter(|o| !o.is_synthetic())
        .flat_map(|o| {
            let name = o.name().to_string();
            o.fields()
                .map(move |f| (f.number(), name.clone()))
                .collect::<Vec<_>>()
        })
        .collect()
}

fn compare_oneofs(writer: &MessageDescriptor, reader: &MessageDescriptor, out: &mut Vec<String>) {
    let (w_of, r_of) = (oneof_of(writer), oneof_of(reader));
    let w_names: Vec<&String> = w_of.values().collect();
    let mut moved_into: HashMap<&String, usize> = HashMap::new();
    for w in writer.fields() {
        let number = w.number();
        match (w_of.get(&number), r_of.get(&number)) {
            (Some(wo), r) if r != Some(wo) && reader.get_field(number).is_some() => {
                out.push(format!(
                    "ONEOF_FIELD_REMOVED: the field at '#/{}/{number}' left the oneof '{wo}'",
                    writer.full_name()
                ));
            }
            (None, Some(ro)) => {
                if w_names.contains(&ro) {
                    out.push(format!(
                        "FIELD_MOVED_TO_EXISTING_ONEOF: the field at '#/{}/{number}' moved into the existing oneof '{ro}'",
                        writer.full_name()
                    ));
                }
                *moved_into.entry(ro).or_default() += 1;
            }
            _ => {}
        }
    }
    for (oneof, n) in moved_into {
        if n > 1 && !w_names.contains(&oneof) {
            out.push(format!(
                "MULTIPLE_FIELDS_MOVED_TO_ONEOF: {n} fields of '{}' moved into the new oneof '{oneof}'",
                writer.full_name()
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protobuf::compile;

    fn check(writer: &str, reader: &str) -> Vec<String> {
        let file = |text: &str| compile(text, &[]).map_err(|e| e.to_string());
        match (file(writer), file(reader)) {
            (Ok(w), Ok(r)) => incompatibilities(&w, &r),
            (w, r) => vec![format!("{w:?} {r:?}")],
        }
    }

    fn kinds(found: &[String]) -> Vec<&str> {
        found
            .iter()
            .map(|s| s.split(':').next().unwrap_or_default())
            .collect()
    }

    #[test]
    fn wire_compatible_changes_pass() {
        let v1 = r#"syntax = "proto3"; message R { int32 a = 1; string b = 2; }"#;
        for v2 in [
            // a field added, one removed, one renamed
            r#"syntax = "proto3"; message R { int32 a = 1; string b = 2; double c = 3; }"#,
            r#"syntax = "proto3"; message R { int32 a = 1; }"#,
            r#"syntax = "proto3"; message R { int32 renamed = 1; string b = 2; }"#,
            // widened varint, string to bytes, a string made repeated, a message added
            r#"syntax = "proto3"; message R { int64 a = 1; bytes b = 2; } message S { int32 x = 1; }"#,
            r#"syntax = "proto3"; message R { int32 a = 1; repeated string b = 2; }"#,
            // one field moved into a new oneof
            r#"syntax = "proto3"; message R { int32 a = 1; oneof o { string b = 2; } }"#,
        ] {
            assert_eq!(check(v1, v2), Vec::<String>::new(), "{v2}");
        }
    }

    #[test]
    fn changes_that_break_readers_are_named() {
        let v1 = r#"syntax = "proto3"; package p; message R { int32 a = 1; string b = 2; oneof o { int32 x = 3; int32 y = 4; } } message T { R r = 1; }"#;
        let cases = [
            (
                r#"syntax = "proto3"; package p; message R { string a = 1; string b = 2; oneof o { int32 x = 3; int32 y = 4; } } message T { R r = 1; }"#,
                "FIELD_SCALAR_KIND_CHANGED",
            ),
            (
                r#"syntax = "proto3"; package p; message R { int32 a = 1; T b = 2; oneof o { int32 x = 3; int32 y = 4; } } message T { R r = 1; }"#,
                "FIELD_KIND_CHANGED",
            ),
            (
                r#"syntax = "proto3"; package p; message R { int32 a = 1; string b = 2; oneof o { int32 x = 3; int32 y = 4; } } message T { int32 r = 1; }"#,
                "FIELD_KIND_CHANGED",
            ),
            (
                r#"syntax = "proto3"; package p; message R { int32 a = 1; string b = 2; oneof o { int32 x = 3; int32 y = 4; } }"#,
                "MESSAGE_REMOVED",
            ),
            (
                r#"syntax = "proto3"; package q; message R { int32 a = 1; string b = 2; oneof o { int32 x = 3; int32 y = 4; } } message T { R r = 1; }"#,
                "PACKAGE_CHANGED",
            ),
            (
                r#"syntax = "proto3"; package p; message R { int32 a = 1; string b = 2; int32 x = 3; oneof o { int32 y = 4; } } message T { R r = 1; }"#,
                "ONEOF_FIELD_REMOVED",
            ),
            (
                r#"syntax = "proto3"; package p; message R { oneof n { int32 a = 1; string b = 2; } oneof o { int32 x = 3; int32 y = 4; } } message T { R r = 1; }"#,
                "MULTIPLE_FIELDS_MOVED_TO_ONEOF",
            ),
            (
                r#"syntax = "proto3"; package p; message R { repeated int32 a = 1; string b = 2; oneof o { int32 x = 3; int32 y = 4; } } message T { R r = 1; }"#,
                "FIELD_NUMERIC_LABEL_CHANGED",
            ),
        ];
        for (v2, kind) in cases {
            assert_eq!(kinds(&check(v1, v2)), [kind], "{v2}");
        }
        let p2 = r#"syntax = "proto2"; message R { optional int32 a = 1; }"#;
        let required =
            r#"syntax = "proto2"; message R { optional int32 a = 1; required int32 b = 2; }"#;
        assert_eq!(kinds(&check(p2, required)), ["REQUIRED_FIELD_ADDED"]);
        assert_eq!(kinds(&check(required, p2)), ["REQUIRED_FIELD_REMOVED"]);
    }
}

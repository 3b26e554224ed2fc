use std::sync::Arc;

use eddy_registry::{MemoryRegistry, SchemaRegistry};

use super::*;
use crate::{NullableRepresentation, ProtobufFormat, RegistryFormat};

fn protobuf(registry: &Arc<MemoryRegistry>, nullable: NullableRepresentation) -> Format {
    Format::Protobuf(ProtobufFormat {
        registry: Some(RegistryFormat {
            registry: Arc::clone(registry) as Arc<dyn SchemaRegistry>,
            subject: "t-value".into(),
            schema_id: None,
            full_name: None,
        }),
        nullable,
    })
}

fn nosr() -> Format {
    Format::Protobuf(ProtobufFormat {
        registry: None,
        nullable: NullableRepresentation::Default,
    })
}

fn columns() -> SchemaRef {
    schema(&[
        ("B", DataType::Boolean),
        ("I", DataType::Int32),
        ("L", DataType::Int64),
        ("D", DataType::Float64),
        ("DEC", DataType::Decimal128(5, 2)),
        ("S", DataType::Utf8),
        ("BY", DataType::Binary),
        ("DT", DataType::Date32),
        (
            "T",
            DataType::Time32(arrow::datatypes::TimeUnit::Millisecond),
        ),
        (
            "TS",
            DataType::Timestamp(arrow::datatypes::TimeUnit::Millisecond, None),
        ),
        ("A", list_of(DataType::Int32)),
        ("M", map_of(DataType::Utf8, DataType::Utf8)),
        (
            "ST",
            struct_of(&[("X", DataType::Int32), ("Y", DataType::Utf8)]),
        ),
    ])
}

/// JSON records → `format` → back to JSON.
fn through(format: Format, json: &[Option<&str>]) -> Result<Vec<Option<String>>, FormatError> {
    let schema = columns();
    let decoded = decode_values(Format::Json, &schema, true, json)?;
    let mut bytes = Payloads::new();
    ValueEncoder::new(&format, schema.clone(), true)?.encode(&decoded.batch, None, &mut bytes)?;
    let back = ValueDecoder::new(&format, schema.clone(), true)?.decode(&bytes)?;
    assert!(back.errors.is_empty(), "{:?}", back.errors);
    encode_values(Format::Json, &schema, true, &back.batch, None)
}

const FULL: &str = r#"{"B":true,"I":-7,"L":3000000000,"D":1.5,"DEC":12.3,"S":"hi","BY":"aGk=","DT":19000,"T":3723004,"TS":1700000000123,"A":[1,null,3],"M":{"k":"v"},"ST":{"X":1,"Y":null}}"#;

#[test]
fn every_type_round_trips_in_every_representation() -> TestResult {
    let expected = r#"{"B":true,"I":-7,"L":3000000000,"D":1.5,"DEC":12.30,"S":"hi","BY":"aGk=","DT":19000,"T":3723004,"TS":1700000000123,"A":[1,0,3],"M":{"k":"v"},"ST":{"X":1,"Y":""}}"#;
    for nullable in [
        NullableRepresentation::Default,
        NullableRepresentation::Optional,
        NullableRepresentation::Wrapper,
    ] {
        // Each representation on its own topic: a wrapper is not compatible with a plain
        // field, so one subject would refuse the next.
        let registry = Arc::new(MemoryRegistry::new());
        let out = through(protobuf(&registry, nullable), &[Some(FULL)])?;
        let mut want = expected.to_string();
        if nullable != NullableRepresentation::Default {
            // Optional and wrapped fields keep a nested null; array items never do.
            want = want.replace(r#""Y":"""#, r#""Y":null"#);
        }
        assert_eq!(out, some(&[&want]), "{nullable:?}");
    }
    assert_eq!(through(nosr(), &[Some(FULL)])?, some(&[expected]));
    Ok(())
}

#[test]
fn nulls_are_defaults_unless_the_schema_can_say_null() -> TestResult {
    let registry = Arc::new(MemoryRegistry::new());
    let nulls = r#"{"B":null,"I":null,"S":null,"A":null,"ST":null}"#;
    let plain = through(
        protobuf(&registry, NullableRepresentation::Default),
        &[Some(nulls)],
    )?;
    assert_eq!(
        plain,
        some(&[
            r#"{"B":false,"I":0,"L":0,"D":0.0,"DEC":null,"S":"","BY":null,"DT":null,"T":null,"TS":null,"A":[],"M":{},"ST":null}"#
        ])
    );
    let wrapped = through(
        protobuf(
            &Arc::new(MemoryRegistry::new()),
            NullableRepresentation::Wrapper,
        ),
        &[Some(nulls)],
    )?;
    assert_eq!(
        wrapped,
        some(&[
            r#"{"B":null,"I":null,"L":null,"D":null,"DEC":null,"S":null,"BY":null,"DT":null,"T":null,"TS":null,"A":[],"M":{},"ST":null}"#
        ])
    );
    Ok(())
}

#[test]
fn writers_register_connect_schemas_and_readers_need_them() -> TestResult {
    let registry = Arc::new(MemoryRegistry::new());
    let format = protobuf(&registry, NullableRepresentation::Default);
    through(format.clone(), &[Some(FULL)])?;
    let latest = registry.latest("t-value")?.ok_or("no schema registered")?;
    assert_eq!(
        latest.schema.schema_type,
        eddy_registry::SchemaType::Protobuf
    );
    assert!(
        latest.schema.text.contains("message ConnectDefault1 {"),
        "{}",
        latest.schema.text
    );
    // Unknown schema id, no magic byte, a body that is no message: per-record errors.
    let schema = columns();
    let mut decoder = ValueDecoder::new(&format, schema, true)?;
    let bad: [Option<&[u8]>; 3] = [
        Some(&[0, 0, 0, 0, 99, 0, 8, 1]),
        Some(b"{}"),
        Some(&[0, 0, 0, 0, latest.id as u8, 0, 0xff]),
    ];
    let decoded = decoder.decode(&payloads(&bad))?;
    let reasons = reasons(&decoded);
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    assert!(reasons[0].1.contains("99"), "{reasons:?}");
    assert!(reasons[1].1.contains("Unknown magic byte"), "{reasons:?}");
    assert!(
        reasons[2].1.contains("Invalid Protobuf record"),
        "{reasons:?}"
    );
    Ok(())
}

#[test]
fn unwrapped_values_and_non_string_map_keys_are_refused() {
    let registry = Arc::new(MemoryRegistry::new());
    let format = protobuf(&registry, NullableRepresentation::Default);
    let single = schema(&[("I", DataType::Int32)]);
    let err = ValueDecoder::new(&format, single, false)
        .err()
        .map(|e| e.to_string());
    assert_eq!(
        err.as_deref(),
        Some("Format 'PROTOBUF' does not support 'WRAP_SINGLE_VALUE' set to 'false'.")
    );
    let int_keys = schema(&[("M", map_of(DataType::Int32, DataType::Int32))]);
    let err = ValueEncoder::new(&format, int_keys, true)
        .err()
        .map(|e| e.to_string());
    assert_eq!(
        err.as_deref(),
        Some("PROTOBUF format only supports MAP types with STRING keys")
    );
}

#[test]
fn a_oneof_is_a_struct_of_its_members() -> TestResult {
    let registry = Arc::new(MemoryRegistry::new());
    let text =
        "syntax = \"proto3\"; message M { int32 a = 1; oneof pick { string s = 2; int64 n = 3; } }";
    let id = registry.register(
        "t-value",
        &eddy_registry::Schema::new(eddy_registry::SchemaType::Protobuf, text),
    )?;
    let fields = crate::infer_protobuf_fields(text, &[], None, true)?;
    let schema = Arc::new(Schema::new(fields));
    let format = Format::Protobuf(ProtobufFormat {
        registry: Some(RegistryFormat {
            registry: Arc::clone(&registry) as Arc<dyn SchemaRegistry>,
            subject: "t-value".into(),
            schema_id: Some(id),
            full_name: None,
        }),
        nullable: NullableRepresentation::Default,
    });
    let rows = [
        Some(r#"{"A":1,"PICK":{"S":"x","N":null}}"#),
        Some(r#"{"A":2,"PICK":{"S":null,"N":7}}"#),
        Some(r#"{"A":3,"PICK":null}"#),
    ];
    let decoded = decode_values(Format::Json, &schema, true, &rows)?;
    let mut bytes = Payloads::new();
    ValueEncoder::new(&format, schema.clone(), true)?.encode(&decoded.batch, None, &mut bytes)?;
    let back = ValueDecoder::new(&format, schema.clone(), true)?.decode(&bytes)?;
    assert!(back.errors.is_empty(), "{:?}", back.errors);
    let json = encode_values(Format::Json, &schema, true, &back.batch, None)?;
    assert_eq!(
        json,
        some(&[
            r#"{"A":1,"PICK":{"S":"x","N":null}}"#,
            r#"{"A":2,"PICK":{"S":null,"N":7}}"#,
            r#"{"A":3,"PICK":null}"#
        ])
    );
    Ok(())
}

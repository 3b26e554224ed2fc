use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Float64Type, Int32Type, Int64Type, TimeUnit};

use super::*;

const KAFKA: Format = Format::Kafka;

fn decode_raw(data_type: DataType, items: &[Option<&[u8]>]) -> Result<Decoded, FormatError> {
    decode_keys(KAFKA, &schema(&[("K", data_type)]), items)
}

#[test]
fn numbers_are_big_endian() -> TestResult {
    let int = 258i32.to_be_bytes();
    let decoded = decode_raw(DataType::Int32, &[Some(&int), None, Some(&[1, 2, 3])])?;
    let ints = decoded.batch.column(0).as_primitive::<Int32Type>();
    assert_eq!(ints.iter().collect::<Vec<_>>(), [Some(258), None, None]);
    assert_eq!(
        reasons(&decoded),
        vec![(
            2,
            "Failed to deserialize key: Size of data received by IntegerDeserializer is not 4"
        )]
    );
    let out = encode_keys(KAFKA, &schema(&[("K", DataType::Int32)]), &decoded.batch)?;
    assert_eq!(out.iter().collect::<Vec<_>>(), [Some(&int[..]), None, None]);

    let long = (-5i64).to_be_bytes();
    let decoded = decode_raw(DataType::Int64, &[Some(&long), Some(&int)])?;
    assert_eq!(
        decoded.batch.column(0).as_primitive::<Int64Type>().value(0),
        -5
    );
    assert_eq!(
        decoded.errors[0].reason,
        "Failed to deserialize key: Size of data received by LongDeserializer is not 8"
    );

    let double = 2.5f64.to_be_bytes();
    let decoded = decode_raw(DataType::Float64, &[Some(&double), Some(b"")])?;
    assert_eq!(
        decoded
            .batch
            .column(0)
            .as_primitive::<Float64Type>()
            .value(0),
        2.5
    );
    assert_eq!(
        decoded.errors[0].reason,
        "Failed to deserialize key: Size of data received by DoubleDeserializer is not 8"
    );
    let mut out = Payloads::new();
    ValueEncoder::new(&KAFKA, schema(&[("V", DataType::Float64)]), true)?.encode(
        &decoded.batch,
        None,
        &mut out,
    )?;
    assert_eq!(out.get(0), Some(&double[..]));
    assert_eq!(out.get(1), None);
    Ok(())
}

#[test]
fn strings_and_bytes_are_raw() -> TestResult {
    let decoded = decode_raw(
        DataType::Utf8,
        &[Some("héllo".as_bytes()), Some(b""), Some(b"\xff")],
    )?;
    let strings = decoded.batch.column(0).as_string::<i32>();
    assert_eq!(strings.value(0), "héllo");
    assert_eq!(strings.value(1), "");
    assert!(strings.is_null(2));
    assert_eq!(
        decoded.errors[0].reason,
        "Failed to deserialize key: invalid UTF-8 in STRING at byte 0"
    );

    let decoded = decode_raw(DataType::Binary, &[Some(b"\x00\xff"), Some(b"")])?;
    assert!(decoded.errors.is_empty());
    let out = encode_keys(KAFKA, &schema(&[("K", DataType::Binary)]), &decoded.batch)?;
    assert_eq!(
        out.iter().collect::<Vec<_>>(),
        [Some(&b"\x00\xff"[..]), Some(&b""[..])]
    );
    Ok(())
}

#[test]
fn values_with_one_column_ignore_wrapping() -> TestResult {
    let s = schema(&[("V", DataType::Utf8)]);
    for wrap in [true, false] {
        let (out, decoded) = reencode(KAFKA, &s, wrap, &[Some("{\"V\":1}"), None])?;
        assert!(decoded.errors.is_empty());
        assert_eq!(out, vec![Some("{\"V\":1}".to_owned()), None]);
    }
    Ok(())
}

#[test]
fn only_single_primitive_columns_are_supported() {
    for (data_type, name) in [
        (DataType::Boolean, "BOOLEAN"),
        (DataType::Decimal128(4, 2), "DECIMAL"),
        (DataType::Date32, "DATE"),
        (DataType::Time32(TimeUnit::Millisecond), "TIME"),
        (
            DataType::Timestamp(TimeUnit::Millisecond, None),
            "TIMESTAMP",
        ),
        (list_of(DataType::Int32), "ARRAY"),
        (map_of(DataType::Utf8, DataType::Int32), "MAP"),
        (struct_of(&[("X", DataType::Int32)]), "STRUCT"),
    ] {
        let message = construction_error(ValueDecoder::new(
            &KAFKA,
            schema(&[("A", data_type.clone())]),
            false,
        ));
        assert!(
            message.starts_with(&format!(
                "The 'KAFKA' format does not support type '{name}'"
            )),
            "{message}"
        );
        let message = construction_error(KeyDecoder::new(&KAFKA, schema(&[("A", data_type)])));
        assert!(
            message.starts_with("Key format does not support schema.\nformat: KAFKA\n")
                || message.starts_with("Map keys, including types that contain maps"),
            "{message}"
        );
    }
    let two = schema(&[("A", DataType::Int32), ("B", DataType::Int32)]);
    assert_eq!(
        construction_error(ValueEncoder::new(&KAFKA, two, true)),
        "The 'KAFKA' format only supports a single field. Got: [`A` INTEGER, `B` INTEGER]"
    );
}

#[test]
fn no_key_columns_means_empty_rows() -> TestResult {
    let none = schema(&[]);
    let decoded = decode_keys(KAFKA, &none, &[Some(&b"anything"[..]), None])?;
    assert_eq!(decoded.batch.num_rows(), 2);
    assert_eq!(decoded.batch.num_columns(), 0);
    let out = encode_keys(KAFKA, &none, &decoded.batch)?;
    assert_eq!(out.iter().collect::<Vec<_>>(), [None, None]);
    Ok(())
}

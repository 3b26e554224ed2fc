use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Decimal128Type, Float64Type, Int32Type, Int64Type, TimeUnit};

use super::*;

const CSV: Format = Format::Delimited {
    delimiter: Format::DEFAULT_DELIMITER,
};

fn columns() -> SchemaRef {
    schema(&[
        ("I", DataType::Int32),
        ("S", DataType::Utf8),
        ("D", DataType::Float64),
        ("B", DataType::Boolean),
        ("DEC", DataType::Decimal128(6, 2)),
        ("L", DataType::Int64),
    ])
}

#[test]
fn decodes_and_encodes_fields() -> TestResult {
    let inputs = [
        Some("1,hello,2.5,true,12.3,9000000000"),
        Some("-2,,1e3,FALSE,-0.015,"),
        Some(",,,,,"),
        None,
        Some("3,x,NaN,false,1,0\r\nignored,line"),
    ];
    let (out, decoded) = reencode(CSV, &columns(), true, &inputs)?;
    assert!(decoded.errors.is_empty(), "{:?}", decoded.errors);
    let b = &decoded.batch;
    assert_eq!(b.column(0).as_primitive::<Int32Type>().value(1), -2);
    assert!(b.column(1).is_null(1));
    assert_eq!(b.column(2).as_primitive::<Float64Type>().value(1), 1000.0);
    assert_eq!(b.column(4).as_primitive::<Decimal128Type>().value(1), -2);
    assert_eq!(
        b.column(5).as_primitive::<Int64Type>().value(0),
        9_000_000_000
    );
    assert_eq!(
        out,
        some(&[
            "1,hello,2.5,true,12.30,9000000000",
            // A line starting with something other than a letter or digit is quoted.
            "\"-2\",,1000.0,false,-0.02,",
            ",,,,,",
            ",,,,,",
            "3,x,NaN,false,1.00,0",
        ])
    );
    Ok(())
}

#[test]
fn quoting_round_trips() -> TestResult {
    let s = schema(&[
        ("A", DataType::Utf8),
        ("B", DataType::Utf8),
        ("C", DataType::Int32),
    ]);
    let inputs = [
        Some(r#""a,b","say ""hi""",1"#),
        Some("\"multi\nline\",plain,2"),
        Some(r#""",x"y,3"#),
        Some("\"\"\"\",\"\",4"),
        Some("\"cr\rhere\",b,5"),
    ];
    let (out, decoded) = reencode(CSV, &s, true, &inputs)?;
    assert!(decoded.errors.is_empty(), "{:?}", decoded.errors);
    let a = decoded.batch.column(0).as_string::<i32>();
    assert_eq!(a.value(0), "a,b");
    assert_eq!(
        decoded.batch.column(1).as_string::<i32>().value(0),
        "say \"hi\""
    );
    assert!(a.is_null(2));
    assert_eq!(decoded.batch.column(1).as_string::<i32>().value(2), "x\"y");
    assert_eq!(a.value(3), "\"");
    assert_eq!(
        out,
        some(&[
            r#""a,b","say ""hi""",1"#,
            "\"multi\nline\",plain,2",
            r#","x""y",3"#,
            r#""""",,4"#,
            "\"cr\rhere\",b,5",
        ])
    );
    Ok(())
}

#[test]
fn bad_records_report_why() -> TestResult {
    let s = schema(&[("A", DataType::Int32), ("B", DataType::Boolean)]);
    let inputs = [
        Some("1,true,3"),
        Some("1"),
        Some(""),
        Some("x,true"),
        Some("1,yes"),
        Some("\"1,true"),
        Some("\"1\"x,true"),
        Some("2,false"),
    ];
    let decoded = decode_values(CSV, &s, true, &inputs)?;
    assert_eq!(
        reasons(&decoded),
        vec![
            (
                0,
                "Failed to deserialize value: Unexpected field count, csvFields:3 schemaFields:2"
            ),
            (
                1,
                "Failed to deserialize value: Unexpected field count, csvFields:1 schemaFields:2"
            ),
            (
                2,
                "Failed to deserialize value: Unexpected field count, csvFields:1 schemaFields:2"
            ),
            (
                3,
                "Failed to deserialize value: Can't coerce string to type. targetType: INTEGER, path: $.A"
            ),
            (
                4,
                "Failed to deserialize value: Can't coerce string to type. targetType: BOOLEAN, path: $.B"
            ),
            (
                5,
                "Failed to deserialize value: EOF reached before encapsulated token finished"
            ),
            (
                6,
                "Failed to deserialize value: invalid char between encapsulated token and delimiter at column 4"
            ),
        ]
    );
    let a = decoded.batch.column(0).as_primitive::<Int32Type>();
    assert_eq!(a.null_count(), 7);
    assert_eq!(a.value(7), 2);
    Ok(())
}

#[test]
fn other_delimiters() -> TestResult {
    let s = schema(&[("A", DataType::Utf8), ("B", DataType::Int32)]);
    for (delimiter, input, encoded) in [
        (b'\t', "x y\t1", "x y\t1"),
        (b'|', "a,b|2", "a,b|2"),
        (b' ', "\"two words\" 3", "\"two words\" 3"),
        (b'|', "\"p|q\"|4", "\"p|q\"|4"),
    ] {
        let format = Format::Delimited { delimiter };
        let (out, decoded) = reencode(format, &s, true, &[Some(input)])?;
        assert!(decoded.errors.is_empty(), "{:?}", decoded.errors);
        assert_eq!(out, some(&[encoded]));
    }
    Ok(())
}

#[test]
fn dates_and_times_are_integers() -> TestResult {
    let s = schema(&[
        ("D", DataType::Date32),
        ("T", DataType::Time32(TimeUnit::Millisecond)),
        ("TS", DataType::Timestamp(TimeUnit::Millisecond, None)),
    ]);
    let (out, decoded) = reencode(CSV, &s, true, &[Some("19000,1000,1700000000000")])?;
    assert!(decoded.errors.is_empty());
    assert_eq!(out, some(&["19000,1000,1700000000000"]));
    Ok(())
}

#[test]
fn single_column_values_and_keys() -> TestResult {
    let s = schema(&[("S", DataType::Utf8)]);
    let (out, decoded) = reencode(CSV, &s, true, &[Some("a,b"), Some("\"a,b\""), Some("")])?;
    assert_eq!(decoded.errors.len(), 1);
    assert_eq!(out, some(&["", "\"a,b\"", ""]));

    let keys = schema(&[("K1", DataType::Int32), ("K2", DataType::Utf8)]);
    let decoded = decode_keys(CSV, &keys, &[Some("1,a"), None, Some(",")])?;
    assert!(decoded.errors.is_empty());
    let out = encode_keys(CSV, &keys, &decoded.batch)?;
    assert_eq!(texts(&out), [Some("1,a".to_owned()), None, None]);
    Ok(())
}

#[test]
fn nested_types_are_unsupported() {
    for (data_type, name) in [
        (list_of(DataType::Int32), "ARRAY"),
        (map_of(DataType::Utf8, DataType::Int32), "MAP"),
        (struct_of(&[("X", DataType::Int32)]), "STRUCT"),
    ] {
        let s = schema(&[("A", DataType::Int32), ("C", data_type)]);
        assert_eq!(
            construction_error(ValueDecoder::new(&CSV, s.clone(), true)),
            format!("The 'DELIMITED' format does not support type '{name}', column: `C`")
        );
        assert!(KeyEncoder::new(&CSV, s).is_err());
    }
    // BYTES are written in base64.
    let bytes = schema(&[("B", DataType::Binary)]);
    assert!(ValueDecoder::new(&CSV, bytes, true).is_ok());
    let quote = Format::Delimited { delimiter: b'"' };
    assert!(ValueDecoder::new(&quote, schema(&[("A", DataType::Int32)]), true).is_err());
}

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Int32Array, StringViewArray};
use arrow::datatypes::{
    DataType, Date32Type, Decimal128Type, Float64Type, Int32Type, Int64Type, Time32MillisecondType,
    TimeUnit, TimestampMillisecondType,
};
use arrow::record_batch::RecordBatch;

use super::*;

const JSON: Format = Format::Json;

fn scalars() -> SchemaRef {
    schema(&[
        ("B", DataType::Boolean),
        ("I", DataType::Int32),
        ("L", DataType::Int64),
        ("D", DataType::Float64),
        ("DEC", DataType::Decimal128(5, 2)),
        ("S", DataType::Utf8),
        ("BY", DataType::Binary),
        ("DT", DataType::Date32),
        ("T", DataType::Time32(TimeUnit::Millisecond)),
        ("TS", DataType::Timestamp(TimeUnit::Millisecond, None)),
    ])
}

#[test]
fn decodes_every_scalar_type() -> TestResult {
    let input = r#"{"B":true,"I":-7,"L":3000000000,"D":1.5,"DEC":12.3,"S":"hi","BY":"aGk=",
        "DT":19000,"T":3600000,"TS":1700000000000}"#;
    let (out, decoded) = reencode(JSON, &scalars(), true, &[Some(input)])?;
    assert!(decoded.errors.is_empty(), "{:?}", decoded.errors);
    let b = &decoded.batch;
    assert!(b.column(0).as_boolean().value(0));
    assert_eq!(b.column(1).as_primitive::<Int32Type>().value(0), -7);
    assert_eq!(
        b.column(2).as_primitive::<Int64Type>().value(0),
        3_000_000_000
    );
    assert_eq!(b.column(3).as_primitive::<Float64Type>().value(0), 1.5);
    assert_eq!(b.column(4).as_primitive::<Decimal128Type>().value(0), 1230);
    assert_eq!(b.column(5).as_string::<i32>().value(0), "hi");
    assert_eq!(b.column(6).as_binary::<i32>().value(0), b"hi");
    assert_eq!(b.column(7).as_primitive::<Date32Type>().value(0), 19000);
    assert_eq!(
        b.column(8).as_primitive::<Time32MillisecondType>().value(0),
        3_600_000
    );
    assert_eq!(
        b.column(9)
            .as_primitive::<TimestampMillisecondType>()
            .value(0),
        1_700_000_000_000
    );
    assert_eq!(
        out,
        some(&[
            r#"{"B":true,"I":-7,"L":3000000000,"D":1.5,"DEC":12.30,"S":"hi","BY":"aGk=","DT":19000,"T":3600000,"TS":1700000000000}"#
        ])
    );
    Ok(())
}

#[test]
fn coerces_like_ksqldb() -> TestResult {
    let inputs = [
        Some(
            r#"{"B":"TRUE","I":"42","L":"-5","D":"2.5","DEC":"1.005","S":12.50,"DT":"3","T":"4","TS":"5"}"#,
        ),
        Some(r#"{"B":"false","I":1.0,"L":1e3,"D":7,"DEC":-3,"S":true}"#),
        Some(r#"{"S":{"a": [1, "x"],  "b":null}}"#),
        Some(r#"{"S":[1, 2]}"#),
    ];
    let (out, decoded) = reencode(JSON, &scalars(), true, &inputs)?;
    assert!(decoded.errors.is_empty(), "{:?}", decoded.errors);
    let nulls = r#""BY":null,"DT":null,"T":null,"TS":null}"#;
    assert_eq!(
        out,
        vec![
            Some(
                r#"{"B":true,"I":42,"L":-5,"D":2.5,"DEC":1.01,"S":"12.50","BY":null,"DT":3,"T":4,"TS":5}"#
                    .to_owned()
            ),
            Some(format!(
                r#"{{"B":false,"I":1,"L":1000,"D":7.0,"DEC":-3.00,"S":"true",{nulls}"#
            )),
            Some(format!(
                r#"{{"B":null,"I":null,"L":null,"D":null,"DEC":null,"S":"{{\"a\":[1,\"x\"],\"b\":null}}",{nulls}"#
            )),
            Some(format!(
                r#"{{"B":null,"I":null,"L":null,"D":null,"DEC":null,"S":"[1,2]",{nulls}"#
            )),
        ]
    );
    Ok(())
}

#[test]
fn bad_records_become_null_rows_with_reasons() -> TestResult {
    let s = schema(&[("ID", DataType::Int32), ("NAME", DataType::Utf8)]);
    let inputs = [
        Some(r#"{"ID":1,"NAME":"a"}"#),
        Some(r#"{"NAME":"b","ID":"abc"}"#),
        Some(r#"{"ID":true}"#),
        Some(r#"{"ID":1.5}"#),
        Some(r#"{"ID":3000000000}"#),
        Some(r#"{"ID":2,"NAME":"c"#),
        Some("not json"),
        Some("[1,2]"),
        Some(""),
        Some(r#"{"ID":3} trailing"#),
        Some(r#"{"ID":4,"NAME":"d"}"#),
    ];
    let (out, decoded) = reencode(JSON, &s, true, &inputs)?;
    let null_row = r#"{"ID":null,"NAME":null}"#;
    let mut expected = vec![null_row; inputs.len()];
    expected[0] = r#"{"ID":1,"NAME":"a"}"#;
    // A fraction is truncated, as Jackson's `intValue()` does.
    expected[3] = r#"{"ID":1,"NAME":null}"#;
    expected[10] = r#"{"ID":4,"NAME":"d"}"#;
    assert_eq!(out, some(&expected));
    assert_eq!(
        reasons(&decoded),
        vec![
            (
                1,
                "Failed to deserialize value: Can't coerce string to type. targetType: INTEGER, path: $.ID"
            ),
            (
                2,
                "Failed to deserialize value: Can't convert type. sourceType: BooleanNode, requiredType: INTEGER, path: $.ID"
            ),
            (
                4,
                "Failed to deserialize value: Can't convert type. sourceType: LongNode, requiredType: INTEGER, path: $.ID"
            ),
            (
                5,
                "Failed to deserialize value: malformed JSON at column 18: unterminated string, path: $.NAME"
            ),
            (
                6,
                "Failed to deserialize value: malformed JSON at column 1: invalid literal"
            ),
            (
                7,
                "Failed to deserialize value: Can't convert type. sourceType: ArrayNode, requiredType: STRUCT"
            ),
            (
                8,
                "Failed to deserialize value: malformed JSON at column 1: unexpected end of input, expected a value"
            ),
            (
                9,
                "Failed to deserialize value: malformed JSON at column 10: unexpected character 't', expected end of input"
            ),
        ]
    );
    Ok(())
}

#[test]
fn a_text_value_for_an_integer_is_a_conversion_error() -> TestResult {
    let s = schema(&[("A", DataType::Int32)]);
    let decoded = decode_values(JSON, &s, true, &[Some(r#"{"A":{"x":1}}"#)])?;
    assert_eq!(
        reasons(&decoded),
        vec![(
            0,
            "Failed to deserialize value: Can't convert type. sourceType: ObjectNode, requiredType: INTEGER, path: $.A"
        )]
    );
    Ok(())
}

#[test]
fn matches_fields_case_insensitively_preferring_exact_case() -> TestResult {
    let s = schema(&[("ID", DataType::Int32), ("name", DataType::Utf8)]);
    let inputs = [
        Some(r#"{"id":1,"NAME":"a"}"#),
        Some(r#"{"ID":1,"id":2}"#),
        Some(r#"{"id":2,"ID":1}"#),
        Some(r#"{"ID":1,"ID":3}"#),
        Some(r#"{"Name":"x","name":"y","NAME":"z"}"#),
        Some(r#"{"other":[1,{"a":2}],"Id":5,"extra":null}"#),
        Some(r#"{}"#),
        Some(r#"{"ID":null,"name":null}"#),
        Some("null"),
        None,
    ];
    let (out, decoded) = reencode(JSON, &s, true, &inputs)?;
    assert!(decoded.errors.is_empty(), "{:?}", decoded.errors);
    let null_row = r#"{"ID":null,"name":null}"#;
    assert_eq!(
        out,
        some(&[
            r#"{"ID":1,"name":"a"}"#,
            r#"{"ID":1,"name":null}"#,
            r#"{"ID":1,"name":null}"#,
            r#"{"ID":3,"name":null}"#,
            r#"{"ID":null,"name":"y"}"#,
            r#"{"ID":5,"name":null}"#,
            null_row,
            null_row,
            null_row,
            null_row,
        ])
    );
    Ok(())
}

#[test]
fn matches_names_that_differ_only_in_case_or_are_not_ascii() -> TestResult {
    // "a" and "A" are both columns, so a key may match one exactly and the other ignoring case.
    let s = schema(&[
        ("a", DataType::Int32),
        ("A", DataType::Int32),
        ("ÉTÉ", DataType::Int32),
    ]);
    let inputs = [
        Some(r#"{"A":1,"a":2,"été":3}"#),
        Some(r#"{"a":5}"#),
        Some(r#"{"A":6}"#),
        Some(r#"{"été":7,"ÉTÉ":8,"Été":9}"#),
        Some(r#"{"x":{"a":1},"ÉtÉ":4,"y":[]}"#),
    ];
    let (out, decoded) = reencode(JSON, &s, true, &inputs)?;
    assert!(decoded.errors.is_empty(), "{:?}", decoded.errors);
    assert_eq!(
        out,
        some(&[
            r#"{"a":2,"A":1,"ÉTÉ":3}"#,
            r#"{"a":5,"A":null,"ÉTÉ":null}"#,
            r#"{"a":null,"A":6,"ÉTÉ":null}"#,
            r#"{"a":null,"A":null,"ÉTÉ":8}"#,
            r#"{"a":null,"A":null,"ÉTÉ":4}"#,
        ])
    );
    let s = schema(&[("ÉTÉ", DataType::Int32), ("ID", DataType::Int32)]);
    let (out, _) = reencode(
        JSON,
        &s,
        true,
        &[Some(r#"{"id":1,"été":2,"ÉTÉ":3,"Été":4}"#)],
    )?;
    assert_eq!(out, some(&[r#"{"ÉTÉ":3,"ID":1}"#]));
    Ok(())
}

#[test]
fn skips_unknown_fields_and_round_trips_long_strings() -> TestResult {
    let s = schema(&[
        ("USERID", DataType::Int32),
        ("RATING", DataType::Int32),
        ("TEXT", DataType::Utf8),
    ]);
    let text = "Arrived on time and works as described, though the manual could be clearer.";
    let record = format!(
        r#"{{"userid":123,"rating":4,"text":"{text}","product_id":"P-001234","helpful_votes":12,"verified":true,"lang":"en","created_at":1700000000000}}"#
    );
    let escaped = format!(r#"{{"text":"{text}\n\"{text}\u0001 \u00e9\t","notes":"{text}\\"}}"#);
    let (out, decoded) = reencode(JSON, &s, true, &[Some(&record), Some(&escaped)])?;
    assert!(decoded.errors.is_empty(), "{:?}", decoded.errors);
    assert_eq!(
        out,
        vec![
            Some(format!(r#"{{"USERID":123,"RATING":4,"TEXT":"{text}"}}"#)),
            Some(format!(
                r#"{{"USERID":null,"RATING":null,"TEXT":"{text}\n\"{text}\u0001 é\t"}}"#
            )),
        ]
    );
    Ok(())
}

#[test]
fn decodes_nested_types() -> TestResult {
    let inner = struct_of(&[("C", DataType::Utf8), ("D", DataType::Decimal128(4, 1))]);
    let s = schema(&[
        ("ARR", list_of(DataType::Int32)),
        ("M", map_of(DataType::Utf8, DataType::Float64)),
        (
            "S",
            struct_of(&[("A", DataType::Int32), ("B", list_of(inner))]),
        ),
        ("MI", map_of(DataType::Utf8, list_of(DataType::Utf8))),
    ]);
    let inputs = [
        Some(
            r#"{"arr":[1,null,"3"],"m":{"x":1,"y":null},"s":{"a":7,"b":[{"c":"q","d":1.25},null,{}]},"mi":{"1":["a"],"2":null}}"#,
        ),
        Some(r#"{"ARR":[],"M":{},"S":{},"MI":{}}"#),
        Some(r#"{"ARR":[1,2,"x"],"S":{"A":1}}"#),
        Some(r#"{"S":{"B":[{"C":"ok"},{"D":"abc"}]}}"#),
        Some(r#"{"MI":{"k":[]}}"#),
        Some(r#"{"M":[1]}"#),
        Some(r#"{"ARR":[4],"S":{"A":1,"B":[{"C":"z"}]}}"#),
    ];
    let (out, decoded) = reencode(JSON, &s, true, &inputs)?;
    let null_row = r#"{"ARR":null,"M":null,"S":null,"MI":null}"#;
    assert_eq!(
        out,
        some(&[
            r#"{"ARR":[1,null,3],"M":{"x":1.0,"y":null},"S":{"A":7,"B":[{"C":"q","D":1.3},null,{"C":null,"D":null}]},"MI":{"1":["a"],"2":null}}"#,
            r#"{"ARR":[],"M":{},"S":{"A":null,"B":null},"MI":{}}"#,
            null_row,
            null_row,
            r#"{"ARR":null,"M":null,"S":null,"MI":{"k":[]}}"#,
            null_row,
            r#"{"ARR":[4],"M":null,"S":{"A":1,"B":[{"C":"z","D":null}]},"MI":null}"#,
        ])
    );
    assert_eq!(
        reasons(&decoded),
        vec![
            (
                2,
                "Failed to deserialize value: Can't coerce string to type. targetType: INTEGER, path: $.ARR[2]"
            ),
            (
                3,
                "Failed to deserialize value: Can't coerce string to type. targetType: DECIMAL, path: $.S.B[1].D"
            ),
            (
                5,
                "Failed to deserialize value: Can't convert type. sourceType: ArrayNode, requiredType: MAP, path: $.M"
            ),
        ]
    );
    Ok(())
}

#[test]
fn decimals_round_half_up_and_reject_overflow() -> TestResult {
    let s = schema(&[("D", DataType::Decimal128(4, 2))]);
    let inputs = [
        Some(r#"{"D":1.005}"#),
        Some(r#"{"D":-1.005}"#),
        Some(r#"{"D":"99.994"}"#),
        Some(r#"{"D":99.995}"#),
        Some(r#"{"D":1e1}"#),
    ];
    let (out, decoded) = reencode(JSON, &s, true, &inputs)?;
    assert_eq!(
        out,
        some(&[
            r#"{"D":1.01}"#,
            r#"{"D":-1.01}"#,
            r#"{"D":99.99}"#,
            r#"{"D":null}"#,
            r#"{"D":10.00}"#
        ])
    );
    assert_eq!(
        reasons(&decoded),
        vec![(
            3,
            "Failed to deserialize value: Cannot fit decimal '99.995' into DECIMAL(4, 2), path: $.D"
        )]
    );
    Ok(())
}

#[test]
fn bytes_are_base64() -> TestResult {
    let s = schema(&[("B", DataType::Binary)]);
    let inputs = [
        Some(r#"{"B":"AAEC/w=="}"#),
        Some(r#"{"B":"AAEC/w"}"#),
        Some(r#"{"B":""}"#),
        Some(r#"{"B":"not base64!"}"#),
        Some(r#"{"B":12}"#),
    ];
    let (out, decoded) = reencode(JSON, &s, true, &inputs)?;
    assert_eq!(
        decoded.batch.column(0).as_binary::<i32>().value(0),
        [0, 1, 2, 255]
    );
    assert_eq!(
        out,
        some(&[
            r#"{"B":"AAEC/w=="}"#,
            r#"{"B":"AAEC/w=="}"#,
            r#"{"B":""}"#,
            r#"{"B":null}"#,
            r#"{"B":null}"#
        ])
    );
    assert_eq!(
        decoded.errors.iter().map(|e| e.index).collect::<Vec<_>>(),
        [3, 4]
    );
    Ok(())
}

#[test]
fn unwrapped_single_values() -> TestResult {
    let s = schema(&[("V", DataType::Int32)]);
    let inputs = [
        Some("1"),
        Some(r#" "2" "#),
        Some("null"),
        None,
        Some("{}"),
        Some("4"),
    ];
    let (out, decoded) = reencode(JSON, &s, false, &inputs)?;
    assert_eq!(
        out,
        vec![
            Some("1".to_owned()),
            Some("2".to_owned()),
            None,
            None,
            None,
            Some("4".to_owned())
        ]
    );
    assert_eq!(
        reasons(&decoded),
        vec![(
            4,
            "Failed to deserialize value: Can't convert type. sourceType: ObjectNode, requiredType: INTEGER"
        )]
    );

    let s = schema(&[("S", struct_of(&[("A", DataType::Utf8)]))]);
    let (out, _) = reencode(JSON, &s, false, &[Some(r#"{"a":"x"}"#)])?;
    assert_eq!(out, some(&[r#"{"A":"x"}"#]));

    let s = schema(&[("S", DataType::Utf8)]);
    let (out, _) = reencode(JSON, &s, false, &[Some(r#"{"a":"x"}"#), Some(r#""é\n""#)])?;
    assert_eq!(out, some(&[r#""{\"a\":\"x\"}""#, r#""é\n""#]));
    Ok(())
}

#[test]
fn unwrapping_needs_exactly_one_column() {
    let s = schema(&[("A", DataType::Int32), ("B", DataType::Int32)]);
    assert_eq!(
        construction_error(ValueDecoder::new(&JSON, s.clone(), false)),
        "'WRAP_SINGLE_VALUE' is only valid for single-field value schemas. Got: [`A` INTEGER, `B` INTEGER]"
    );
    assert!(ValueEncoder::new(&JSON, s, false).is_err());
}

#[test]
fn keys_are_bare_values_or_objects() -> TestResult {
    let single = schema(&[("ID", DataType::Int32)]);
    let decoded = decode_keys(JSON, &single, &[Some("1"), Some("\"2\""), None, Some("x")])?;
    let ids = decoded.batch.column(0).as_primitive::<Int32Type>();
    assert_eq!(
        ids.iter().collect::<Vec<_>>(),
        [Some(1), Some(2), None, None]
    );
    assert_eq!(
        reasons(&decoded),
        vec![(
            3,
            "Failed to deserialize key: malformed JSON at column 1: unexpected character 'x', expected a value"
        )]
    );
    let out = encode_keys(JSON, &single, &decoded.batch)?;
    assert_eq!(
        texts(&out),
        [Some("1".to_owned()), Some("2".to_owned()), None, None]
    );

    let multi = schema(&[("A", DataType::Utf8), ("B", DataType::Int64)]);
    let decoded = decode_keys(
        JSON,
        &multi,
        &[Some(r#"{"a":"x","b":2}"#), Some(r#"{"A":null}"#), Some("1")],
    )?;
    assert_eq!(decoded.errors.len(), 1);
    let out = encode_keys(JSON, &multi, &decoded.batch)?;
    // A key of several columns is an object even when every column is null.
    let nulls = Some(r#"{"A":null,"B":null}"#.to_owned());
    assert_eq!(
        texts(&out),
        [Some(r#"{"A":"x","B":2}"#.to_owned()), nulls.clone(), nulls]
    );
    Ok(())
}

#[test]
fn encodes_strings_doubles_and_tombstones() -> TestResult {
    let s = schema(&[("S", DataType::Utf8), ("D", DataType::Float64)]);
    let batch = RecordBatch::try_new(
        s.clone(),
        vec![
            Arc::new(arrow::array::StringArray::from(vec![
                Some("quote \" backslash \\ tab \t nl \n ctl \u{1} é 😀"),
                Some(""),
                None,
                Some("x"),
            ])) as ArrayRef,
            Arc::new(arrow::array::Float64Array::from(vec![
                Some(1.0),
                Some(f64::NAN),
                Some(-0.5),
                Some(1e21),
            ])),
        ],
    )?;
    let tombstones = BooleanArray::from(vec![Some(false), None, Some(false), Some(true)]);
    let out = encode_values(JSON, &s, true, &batch, Some(&tombstones))?;
    assert_eq!(
        out,
        vec![
            Some(
                r#"{"S":"quote \" backslash \\ tab \t nl \n ctl \u0001 é 😀","D":1.0}"#.to_owned()
            ),
            // JSON has no NaN: written as a string, as Jackson does.
            Some(r#"{"S":"","D":"NaN"}"#.to_owned()),
            Some(r#"{"S":null,"D":-0.5}"#.to_owned()),
            None,
        ]
    );
    // What we write, we read back.
    let entries: Vec<Option<&str>> = out.iter().map(|o| o.as_deref()).collect();
    let decoded = decode_values(JSON, &s, true, &entries)?;
    assert!(decoded.errors.is_empty());
    assert_eq!(
        decoded.batch.column(0).as_string::<i32>().value(0),
        "quote \" backslash \\ tab \t nl \n ctl \u{1} é 😀"
    );
    Ok(())
}

#[test]
fn encoding_casts_other_representations_and_checks_shape() -> TestResult {
    let s = schema(&[("S", DataType::Utf8)]);
    let view_schema = schema(&[("S", DataType::Utf8View)]);
    let batch = RecordBatch::try_new(
        view_schema,
        vec![Arc::new(StringViewArray::from(vec![Some("a"), None]))],
    )?;
    assert_eq!(
        encode_values(JSON, &s, true, &batch, None)?,
        some(&[r#"{"S":"a"}"#, r#"{"S":null}"#])
    );

    let two = schema(&[("A", DataType::Int32), ("B", DataType::Int32)]);
    let ints: ArrayRef = Arc::new(Int32Array::from(vec![1]));
    let batch = RecordBatch::try_new(two, vec![ints.clone(), ints])?;
    assert_eq!(
        construction_error(encode_values(JSON, &s, true, &batch, None)),
        "batch does not match the format's schema: expected 1 columns, got 2"
    );
    Ok(())
}

#[test]
fn null_and_missing_values_for_non_nullable_struct_fields_fail_the_record() -> TestResult {
    let inner =
        DataType::Struct(vec![arrow::datatypes::Field::new("X", DataType::Int32, false)].into());
    let s = schema(&[("S", inner)]);
    let inputs = [
        Some(r#"{"S":{"X":1}}"#),
        Some(r#"{"S":{}}"#),
        Some(r#"{"S":{"X":null}}"#),
        Some(r#"{"S":null}"#),
    ];
    let (out, decoded) = reencode(JSON, &s, true, &inputs)?;
    assert_eq!(
        out,
        some(&[
            r#"{"S":{"X":1}}"#,
            r#"{"S":null}"#,
            r#"{"S":null}"#,
            r#"{"S":null}"#
        ])
    );
    assert_eq!(
        decoded.errors.iter().map(|e| e.index).collect::<Vec<_>>(),
        [1, 2]
    );
    Ok(())
}

#[test]
fn decoder_schema_makes_columns_nullable() -> TestResult {
    let s = Arc::new(arrow::datatypes::Schema::new(vec![
        arrow::datatypes::Field::new("ID", DataType::Int32, false),
    ]));
    let mut decoder = ValueDecoder::new(&JSON, s, true)?;
    assert!(decoder.schema().field(0).is_nullable());
    let decoded = decoder.decode(&payloads(&[None::<&str>, Some(r#"{"ID":1}"#)]))?;
    assert_eq!(decoded.batch.column(0).null_count(), 1);
    Ok(())
}

#[test]
fn decoders_are_reusable_across_batches() -> TestResult {
    let s = schema(&[("A", list_of(DataType::Utf8)), ("B", DataType::Utf8)]);
    let mut decoder = ValueDecoder::new(&JSON, s, true)?;
    let first = decoder.decode(&payloads(&[
        Some(r#"{"A":["x","y"],"B":"b1"}"#),
        Some(r#"{"B":"b2","A":["q", 1, {"c":"d"}, {"bad":}]}"#),
        Some(r#"{"A":["p", 1, {"c":"d"}], "B": 3}"#),
    ]))?;
    assert_eq!(first.errors.len(), 1);
    let second = decoder.decode(&payloads(&[Some(r#"{"A":[],"B":"again"}"#)]))?;
    assert_eq!(second.batch.num_rows(), 1);
    assert_eq!(second.batch.column(1).as_string::<i32>().value(0), "again");
    assert!(first.batch.column(0).is_null(1) && first.batch.column(1).is_null(1));
    let items = first.batch.column(0).as_list::<i32>().value(2);
    let items = items.as_string::<i32>();
    assert_eq!(
        items.iter().collect::<Vec<_>>(),
        [Some("p"), Some("1"), Some(r#"{"c":"d"}"#)]
    );
    assert_eq!(first.batch.column(1).as_string::<i32>().value(2), "3");
    Ok(())
}

#[test]
fn unsupported_types_are_rejected_at_construction() {
    let s = schema(&[("F", DataType::Float32)]);
    assert_eq!(
        construction_error(ValueDecoder::new(&JSON, s, true)),
        "The 'JSON' format does not support type 'Float32', column: `F`"
    );
    let s = schema(&[("M", map_of(DataType::Binary, DataType::Int32))]);
    assert_eq!(
        construction_error(ValueEncoder::new(&JSON, s, true)),
        "JSON only supports MAP types with STRING keys"
    );
}

#[test]
fn into_batch_surfaces_the_first_error() -> TestResult {
    let s = schema(&[("A", DataType::Int32)]);
    let decoded = decode_values(JSON, &s, true, &[Some("{}"), Some("x"), Some("y")])?;
    match decoded.into_batch() {
        Err(FormatError::Record { index, .. }) => assert_eq!(index, 1),
        other => panic!("expected a record error, got {other:?}"),
    }
    Ok(())
}

#[test]
fn decodes_ten_thousand_records() -> TestResult {
    let s = schema(&[
        ("ID", DataType::Int64),
        ("USERID", DataType::Int32),
        ("RATING", DataType::Float64),
        ("TEXT", DataType::Utf8),
        ("TAGS", list_of(DataType::Utf8)),
        (
            "ADDRESS",
            struct_of(&[("CITY", DataType::Utf8), ("ZIP", DataType::Int32)]),
        ),
    ]);
    let mut values = Payloads::new();
    for i in 0..10_000i64 {
        if i % 1000 == 999 {
            values.push(None);
            continue;
        }
        let record = if i % 1000 == 500 {
            format!(r#"{{"id":{i},"userid":"not a number"}}"#)
        } else {
            format!(
                r#"{{"id":{i},"userId":{},"rating":{}.5,"text":"review \"{i}\"","tags":["t{}","u"],"address":{{"city":"c{}","zip":{}}},"ignored":[{{"deep":true}}]}}"#,
                i % 100,
                i % 5,
                i % 3,
                i % 7,
                10_000 + i
            )
        };
        values.push(Some(record.as_bytes()));
    }
    let decoded = ValueDecoder::new(&JSON, s, true)?.decode(&values)?;
    let batch = &decoded.batch;
    assert_eq!(batch.num_rows(), 10_000);
    assert_eq!(decoded.errors.len(), 10);
    assert!(decoded.errors.iter().all(|e| e.index % 1000 == 500));
    assert_eq!(batch.column(0).null_count(), 20);

    let ids = batch.column(0).as_primitive::<Int64Type>();
    let users = batch.column(1).as_primitive::<Int32Type>();
    let ratings = batch.column(2).as_primitive::<Float64Type>();
    let text = batch.column(3).as_string::<i32>();
    let tags = batch.column(4).as_list::<i32>();
    let address = batch.column(5).as_struct();
    let cities = address.column(0).as_string::<i32>();
    let zips = address.column(1).as_primitive::<Int32Type>();
    for i in [0usize, 1, 499, 501, 4321, 9998] {
        assert_eq!(ids.value(i), i as i64);
        assert_eq!(users.value(i), (i % 100) as i32);
        assert_eq!(ratings.value(i), (i % 5) as f64 + 0.5);
        assert_eq!(text.value(i), format!("review \"{i}\""));
        let row_tags = tags.value(i);
        let row_tags = row_tags.as_string::<i32>();
        assert_eq!(row_tags.value(0), format!("t{}", i % 3));
        assert_eq!(row_tags.value(1), "u");
        assert_eq!(cities.value(i), format!("c{}", i % 7));
        assert_eq!(zips.value(i), 10_000 + i as i32);
    }
    assert!(ids.is_null(500) && ids.is_null(999) && address.is_null(9999));
    Ok(())
}

#[test]
fn skipped_text_columns_are_null_and_fail_the_same_records() -> TestResult {
    let schema = schema(&[
        ("ID", DataType::Int32),
        ("NOTE", DataType::Utf8),
        ("TAGS", DataType::Utf8),
        ("N", DataType::Int64),
    ]);
    let inputs = [
        r#"{"ID":1,"NOTE":"plain","TAGS":"a","N":5}"#,
        r#"{"ID":2,"NOTE":"esc \" \\ \u00e9 \ud83d\ude00","N":6}"#,
        r#"{"ID":3,"NOTE":{"nested":[1,2,{"x":null}]},"TAGS":[1,"two"],"N":7}"#,
        r#"{"ID":4,"NOTE":12.5e3,"TAGS":true,"N":8}"#,
        r#"{"ID":5,"NOTE":null,"N":9}"#,
        r#"{"ID":6,"NOTE":"bad \q escape","N":10}"#,
        r#"{"ID":7,"NOTE":"unterminated,"N":11}"#,
        r#"{"ID":8,"NOTE":{"open":1,"N":12}"#,
        r#"{"ID":"x","NOTE":"fine","N":13}"#,
        r#"{"ID":10,"note":"folded","NOTE":"exact","N":14}"#,
        r#"{"ID":11,"NOTE":"lone \ud800 surrogate","N":"15"}"#,
        r#"{"ID":12,"NOTE":tru,"N":16}"#,
        r#"[1,2]"#,
    ];
    let items: Vec<Option<&str>> = inputs.iter().copied().map(Some).collect();
    let full = ValueDecoder::new(&JSON, schema.clone(), true)?.decode(&payloads(&items))?;
    let mut skipping = ValueDecoder::new(&JSON, schema.clone(), true)?;
    skipping.skip_unread_text(|name| name != "TAGS");
    let skipped = skipping.decode(&payloads(&items))?;

    let failed = |d: &Decoded| d.errors.iter().map(|e| e.index).collect::<Vec<_>>();
    assert_eq!(failed(&skipped), failed(&full));
    assert_eq!(failed(&full), vec![5, 6, 7, 8, 11, 12]);
    let (f, s) = (&full.batch, &skipped.batch);
    for column in [0, 2, 3] {
        assert_eq!(f.column(column), s.column(column), "column {column}");
    }
    assert_eq!(s.column(1).null_count(), inputs.len());
    assert_eq!(f.column(1).as_string::<i32>().value(0), "plain");
    // INT and the other types are never skipped: a bad value there still fails the record.
    let mut ints = ValueDecoder::new(&JSON, schema.clone(), true)?;
    ints.skip_unread_text(|_| true);
    let decoded = ints.decode(&payloads(&[Some(r#"{"ID":"x","NOTE":"a","N":1}"#)]))?;
    assert_eq!(failed(&decoded), vec![0]);
    Ok(())
}

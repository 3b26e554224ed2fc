use arrow::datatypes::DataType;

use super::*;

#[test]
fn none_decodes_to_rows_without_columns_and_encodes_nothing() -> TestResult {
    let empty = schema(&[]);
    let decoded = decode_values(Format::None, &empty, true, &[Some("x"), None, Some("")])?;
    assert_eq!(decoded.batch.num_rows(), 3);
    assert_eq!(decoded.batch.num_columns(), 0);
    assert!(decoded.errors.is_empty());
    let out = encode_values(Format::None, &empty, true, &decoded.batch, None)?;
    assert_eq!(out, [None, None, None]);
    let keys = decode_keys(Format::None, &empty, &[Some("k")])?;
    assert_eq!(keys.batch.num_rows(), 1);
    Ok(())
}

#[test]
fn none_rejects_columns() {
    assert_eq!(
        construction_error(KeyDecoder::new(
            &Format::None,
            schema(&[("K", DataType::Utf8)])
        )),
        "Key format does not support schema.\nformat: NONE\nschema: Persistence{columns=[`K` STRING KEY], features=[]}\nreason: The 'NONE' format can only be used when no columns are defined. Got: [`K` STRING KEY]"
    );
}

#[test]
fn json_values_without_columns_are_empty_objects() -> TestResult {
    let empty = schema(&[]);
    let decoded = decode_values(Format::Json, &empty, true, &[Some("{\"a\":1}")])?;
    assert_eq!(decoded.batch.num_rows(), 1);
    let out = encode_values(Format::Json, &empty, true, &decoded.batch, None)?;
    assert_eq!(out, some(&["{}"]));
    Ok(())
}

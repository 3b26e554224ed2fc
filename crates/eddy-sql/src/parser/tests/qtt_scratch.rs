//! Temporary: parse the ksqlDB QTT statements.

use crate::parser::parse;

#[test]
fn qtt_scratch() {
    let Ok(text) = std::fs::read_to_string("/tmp/qtt_statements.txt") else {
        return;
    };
    let (mut ok, mut bad, mut err_ok, mut err_bad) = (0, 0, 0, 0);
    for case in text.split("\n=====\n") {
        let Some((header, sql)) = case.split_once('\n') else {
            continue;
        };
        let result = parse(sql);
        if header.starts_with("ERR") {
            match &result {
                Err(e) => {
                    err_ok += 1;
                    println!("EXPECTED-ERR {header}: {e}");
                }
                Ok(_) => {
                    err_bad += 1;
                    println!("MISSED-ERR {header}\n{sql}");
                }
            }
        } else {
            match &result {
                Ok(_) => ok += 1,
                Err(e) => {
                    bad += 1;
                    println!("FAIL {header}: {e}\n   {sql}");
                }
            }
        }
    }
    println!("ok {ok} bad {bad} err_ok {err_ok} err_bad {err_bad}");
}

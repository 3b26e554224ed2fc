//! One behavioural suite, run against every backend.

use anyhow::ensure;
use eddy_state::{
    KeyValueStore, MemoryBackend, RocksBackend, RocksConfig, StateBackend, StateError,
};
use eddy_topic::Payloads;

fn column(entries: &[Option<&str>]) -> Payloads {
    let mut column = Payloads::new();
    for entry in entries {
        column.push(entry.map(str::as_bytes));
    }
    column
}

fn get_all(
    store: &dyn KeyValueStore,
    keys: &[Option<&str>],
) -> anyhow::Result<Vec<Option<String>>> {
    let mut out = Payloads::new();
    store.get_many(&column(keys), &mut out)?;
    ensure!(out.len() == keys.len(), "one entry per key");
    Ok(out
        .iter()
        .map(|v| v.map(|v| String::from_utf8_lossy(v).into_owned()))
        .collect())
}

fn scan_all(
    scan: impl FnOnce(&mut dyn FnMut(&[u8], &[u8]) -> bool) -> Result<(), StateError>,
) -> anyhow::Result<Vec<(String, String)>> {
    let mut seen = Vec::new();
    scan(&mut |k, v| {
        seen.push((
            String::from_utf8_lossy(k).into_owned(),
            String::from_utf8_lossy(v).into_owned(),
        ));
        true
    })?;
    Ok(seen)
}

fn pairs(entries: &[(&str, &str)]) -> Vec<(String, String)> {
    entries
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn puts_gets_deletes_and_overwrites(backend: &dyn StateBackend) -> anyhow::Result<()> {
    let store = backend.open_store("users")?;
    store.write(
        &column(&[Some("1"), Some("2"), Some("3"), Some("2")]),
        &column(&[Some("alice"), Some("bob"), Some("carol"), Some("bobby")]),
    )?;
    assert_eq!(
        get_all(
            store.as_ref(),
            &[Some("1"), Some("2"), Some("3"), Some("4"), None]
        )?,
        vec![
            Some("alice".into()),
            Some("bobby".into()),
            Some("carol".into()),
            None,
            None
        ],
        "later puts of a write win; misses and null keys are None"
    );
    // Delete then re-put in one write: applied in order.
    store.write(
        &column(&[Some("1"), Some("3"), Some("3")]),
        &column(&[None, None, Some("caroline")]),
    )?;
    assert_eq!(
        get_all(store.as_ref(), &[Some("1"), Some("3")])?,
        vec![None, Some("caroline".into())]
    );
    assert_eq!(store.get(b"2")?, Some(b"bobby".to_vec()));
    assert_eq!(store.get(b"1")?, None);
    // Empty values are values, not deletes.
    store.write(&column(&[Some("empty")]), &column(&[Some("")]))?;
    assert_eq!(store.get(b"empty")?, Some(Vec::new()));
    Ok(())
}

fn bad_writes_change_nothing(backend: &dyn StateBackend) -> anyhow::Result<()> {
    let store = backend.open_store("strict")?;
    let null_key = store.write(
        &column(&[Some("a"), None]),
        &column(&[Some("1"), Some("2")]),
    );
    assert!(
        matches!(null_key, Err(StateError::NullKey { index: 1, .. })),
        "{null_key:?}"
    );
    let mismatch = store.write(&column(&[Some("a")]), &column(&[]));
    assert!(
        matches!(mismatch, Err(StateError::LengthMismatch { .. })),
        "{mismatch:?}"
    );
    assert_eq!(store.get(b"a")?, None);
    Ok(())
}

fn scans_in_key_order(backend: &dyn StateBackend) -> anyhow::Result<()> {
    let store = backend.open_store("ordered")?;
    store.write(
        &column(&[
            Some("b"),
            Some("a"),
            Some("ab"),
            Some("c"),
            Some("b\u{7f}"),
            Some("ba"),
        ]),
        &column(&[
            Some("2"),
            Some("1"),
            Some("12"),
            Some("3"),
            Some("2x"),
            Some("21"),
        ]),
    )?;
    assert_eq!(
        scan_all(|visit| store.scan(visit))?,
        pairs(&[
            ("a", "1"),
            ("ab", "12"),
            ("b", "2"),
            ("ba", "21"),
            ("b\u{7f}", "2x"),
            ("c", "3")
        ])
    );
    assert_eq!(
        scan_all(|visit| store.scan_prefix(b"b", visit))?,
        pairs(&[("b", "2"), ("ba", "21"), ("b\u{7f}", "2x")])
    );
    assert_eq!(
        scan_all(|visit| store.scan_range(b"ab", Some(b"b\x7f"), visit))?,
        pairs(&[("ab", "12"), ("b", "2"), ("ba", "21")])
    );
    assert_eq!(
        scan_all(|visit| store.scan_range(b"c", Some(b"a"), visit))?,
        vec![]
    );
    let mut first_two = Vec::new();
    store.scan(&mut |k, _| {
        first_two.push(k.to_vec());
        first_two.len() < 2
    })?;
    assert_eq!(
        first_two,
        vec![b"a".to_vec(), b"ab".to_vec()],
        "visit stops the scan"
    );
    Ok(())
}

fn stores_are_separate_and_droppable(backend: &dyn StateBackend) -> anyhow::Result<()> {
    let left = backend.open_store("left")?;
    let right = backend.open_store("right")?;
    left.write(&column(&[Some("k")]), &column(&[Some("left")]))?;
    right.write(&column(&[Some("k")]), &column(&[Some("right")]))?;
    let left_again = backend.open_store("left")?;
    assert_eq!(
        left_again.get(b"k")?,
        Some(b"left".to_vec()),
        "same name, same data"
    );
    assert_eq!(right.get(b"k")?, Some(b"right".to_vec()));
    let names = backend.store_names()?;
    assert!(
        names.contains(&"left".to_string()) && names.contains(&"right".to_string()),
        "{names:?}"
    );

    backend.drop_store("left")?;
    backend.drop_store("left")?; // dropping a missing store is not an error
    assert!(matches!(left.get(b"k"), Err(StateError::StoreDropped(_))));
    assert!(!backend.store_names()?.contains(&"left".to_string()));
    let reborn = backend.open_store("left")?;
    assert_eq!(reborn.get(b"k")?, None, "a dropped store's data is gone");
    assert_eq!(
        right.get(b"k")?,
        Some(b"right".to_vec()),
        "other stores are untouched"
    );
    assert!(matches!(
        backend.open_store("default"),
        Err(StateError::InvalidName(_))
    ));
    Ok(())
}

fn run_suite(backend: &dyn StateBackend) -> anyhow::Result<()> {
    puts_gets_deletes_and_overwrites(backend)?;
    bad_writes_change_nothing(backend)?;
    scans_in_key_order(backend)?;
    stores_are_separate_and_droppable(backend)?;
    Ok(())
}

fn small_rocks_config() -> RocksConfig {
    RocksConfig {
        block_cache_bytes: 8 << 20,
        write_buffer_bytes: 1 << 20,
        max_write_buffers: 2,
    }
}

#[test]
fn memory_backend_passes_the_suite() -> anyhow::Result<()> {
    run_suite(&MemoryBackend::new())
}

#[test]
fn rocks_backend_passes_the_suite() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    run_suite(&RocksBackend::open(dir.path(), small_rocks_config())?)
}

#[test]
fn rocks_backend_keeps_stores_across_reopen() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    {
        let backend = RocksBackend::open(dir.path(), small_rocks_config())?;
        let store = backend.open_store("kept")?;
        store.write(
            &column(&[Some("k1"), Some("k2")]),
            &column(&[Some("v1"), Some("v2")]),
        )?;
        backend.open_store("gone")?;
        backend.drop_store("gone")?;
    }
    let backend = RocksBackend::open(dir.path(), small_rocks_config())?;
    assert_eq!(backend.store_names()?, vec!["kept".to_string()]);
    let store = backend.open_store("kept")?;
    assert_eq!(
        get_all(store.as_ref(), &[Some("k1"), Some("k2"), Some("k3")])?,
        vec![Some("v1".into()), Some("v2".into()), None]
    );
    Ok(())
}

#[test]
fn rocks_backend_reads_back_flushed_data() -> anyhow::Result<()> {
    // More data than the memtables hold, so lookups and scans also read SST files.
    let dir = tempfile::tempdir()?;
    let backend = RocksBackend::open(dir.path(), small_rocks_config())?;
    let store = backend.open_store("big")?;
    let value = "x".repeat(100);
    for chunk in 0..20 {
        let mut keys = Payloads::new();
        let mut values = Payloads::new();
        for i in 0..1_000 {
            keys.push(Some(format!("key-{:06}", chunk * 1_000 + i).as_bytes()));
            values.push(Some(value.as_bytes()));
        }
        store.write(&keys, &values)?;
    }
    let mut keys = Payloads::new();
    for i in (0..20_000).step_by(997) {
        keys.push(Some(format!("key-{i:06}").as_bytes()));
    }
    keys.push(Some(b"key-999999"));
    let mut out = Payloads::new();
    store.get_many(&keys, &mut out)?;
    assert_eq!(out.len(), keys.len());
    assert!((0..out.len() - 1).all(|i| out.get(i) == Some(value.as_bytes())));
    assert_eq!(out.get(out.len() - 1), None);
    let mut count = 0;
    let mut previous = Vec::new();
    store.scan(&mut |k, _| {
        assert!(k > previous.as_slice());
        previous = k.to_vec();
        count += 1;
        true
    })?;
    assert_eq!(count, 20_000);
    Ok(())
}

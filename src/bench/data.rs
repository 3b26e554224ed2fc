//! The load: review events and a users table, generated deterministically and produced in
//! batches before any clock starts.

use std::fmt::Write as _;

use anyhow::Result;

use super::kafka::BatchProducer;

/// The users' statuses; `Platinum` ones matter to `unhappy_vips`.
const STATUSES: [&str; 4] = ["Platinum", "Gold", "Silver", "Bronze"];

/// Review texts, so values are about 200 bytes with a realistic field mix.
const TEXTS: [&str; 4] = [
    "Arrived on time and works as described, though the manual could be clearer.",
    "Broke after two days of light use; support never answered my emails at all.",
    "Decent value for the price. Battery life is shorter than the listing claims.",
    "Exactly what I needed for the kitchen, sturdy and easy to clean afterwards!",
];

/// What was generated, for the expected output counts.
pub struct Dataset {
    /// Review events produced.
    pub events: u64,
    /// Reviews with rating < 3 by a Platinum user: the rows `unhappy_vips` must emit.
    pub unhappy_vips: u64,
    /// Mean size of a review value in bytes.
    pub avg_value_bytes: f64,
}

/// splitmix64: a small deterministic generator, so every run sees the same data.
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// The status of user `userid`: 10% Platinum, 20% Gold, 30% Silver, 40% Bronze.
fn status_of(userid: u32) -> &'static str {
    let h = Rng::new(u64::from(userid)).next_u64() % 10;
    STATUSES[match h {
        0 => 0,
        1..=2 => 1,
        3..=5 => 2,
        _ => 3,
    }]
}

/// Writes one review value, created at `ts`, into `out` (cleared first).
pub fn review_value(out: &mut String, rng: &mut Rng, id: u64, userid: u32, rating: u8, ts: i64) {
    out.clear();
    let text = TEXTS[(id % TEXTS.len() as u64) as usize];
    let _ = write!(
        out,
        r#"{{"userid":{userid},"rating":{rating},"text":"{text}","product_id":"P-{:06}","helpful_votes":{},"verified":{},"lang":"en","created_at":{ts}}}"#,
        rng.below(50_000),
        rng.below(40),
        rng.below(4) != 0,
    );
}

/// The Avro schema of a review value: the fields of [`review_value`].
pub const REVIEW_AVRO_SCHEMA: &str = r#"{"type":"record","name":"Review","namespace":"bench","fields":[{"name":"userid","type":"int"},{"name":"rating","type":"int"},{"name":"text","type":"string"},{"name":"product_id","type":"string"},{"name":"helpful_votes","type":"int"},{"name":"verified","type":"boolean"},{"name":"lang","type":"string"},{"name":"created_at","type":"long"}]}"#;

fn avro_long(out: &mut Vec<u8>, v: i64) {
    let mut n = ((v << 1) ^ (v >> 63)) as u64;
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn avro_str(out: &mut Vec<u8>, s: &str) {
    avro_long(out, s.len() as i64);
    out.extend_from_slice(s.as_bytes());
}

/// One generated review's fields, as [`review_value`] writes them.
pub struct ReviewFields<'a> {
    userid: u32,
    rating: u8,
    text: &'a str,
    product_id: String,
    helpful_votes: u64,
    verified: bool,
    created_at: i64,
}

/// Produces the same reviews as [`produce_reviews`] (same generator, same values) as
/// records of schema `schema_id` in Confluent's wire format, each value after the prefix
/// written by `write` ([`avro_review`], [`protobuf_review`]).
pub fn produce_registry_reviews(
    producer: &mut BatchProducer,
    topic: &str,
    (events, users, now_ms): (u64, u32, i64),
    schema_id: u32,
    write: fn(&mut Vec<u8>, &ReviewFields<'_>),
) -> Result<()> {
    let mut rng = Rng::new(0x5eed);
    let mut value = Vec::with_capacity(256);
    let start_ts = now_ms - events as i64;
    for id in 0..events {
        let userid = 1 + rng.below(u64::from(users)) as u32;
        let rating = 1 + rng.below(5) as u8;
        let ts = start_ts + id as i64;
        let review = ReviewFields {
            userid,
            rating,
            text: TEXTS[(id % TEXTS.len() as u64) as usize],
            product_id: format!("P-{:06}", rng.below(50_000)),
            helpful_votes: rng.below(40),
            verified: rng.below(4) != 0,
            created_at: ts,
        };
        value.clear();
        value.push(0);
        value.extend_from_slice(&schema_id.to_be_bytes());
        write(&mut value, &review);
        producer.send(topic, &(id as i32).to_be_bytes(), &value, ts)?;
    }
    producer.flush()
}

/// Writes a review as an AVRO value of [`REVIEW_AVRO_SCHEMA`].
pub fn avro_review(value: &mut Vec<u8>, r: &ReviewFields<'_>) {
    avro_long(value, i64::from(r.userid));
    avro_long(value, i64::from(r.rating));
    avro_str(value, r.text);
    avro_str(value, &r.product_id);
    avro_long(value, r.helpful_votes as i64);
    value.push(u8::from(r.verified));
    avro_str(value, "en");
    avro_long(value, r.created_at);
}

/// The Protobuf schema of a review value: the fields of [`review_value`], numbered in order.
pub const REVIEW_PROTOBUF_SCHEMA: &str = "syntax = \"proto3\"; package bench; message Review { int32 userid = 1; int32 rating = 2; string text = 3; string product_id = 4; int32 helpful_votes = 5; bool verified = 6; string lang = 7; int64 created_at = 8; }";

fn varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// A Protobuf varint field (`int32`, `int64`, `bool`).
fn proto_varint(out: &mut Vec<u8>, field: u64, v: i64) {
    varint(out, field << 3);
    varint(out, v as u64);
}

/// A Protobuf length-delimited field (`string`).
fn proto_str(out: &mut Vec<u8>, field: u64, s: &str) {
    varint(out, (field << 3) | 2);
    varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// Writes a review as a PROTOBUF value of [`REVIEW_PROTOBUF_SCHEMA`]: message index 0,
/// then the fields.
pub fn protobuf_review(value: &mut Vec<u8>, r: &ReviewFields<'_>) {
    value.push(0);
    proto_varint(value, 1, i64::from(r.userid));
    proto_varint(value, 2, i64::from(r.rating));
    proto_str(value, 3, r.text);
    proto_str(value, 4, &r.product_id);
    proto_varint(value, 5, r.helpful_votes as i64);
    proto_varint(value, 6, i64::from(r.verified));
    proto_str(value, 7, "en");
    proto_varint(value, 8, r.created_at);
}

/// Produces the users table (key: the userid as a 4-byte big-endian INT, value JSON).
pub fn produce_users(producer: &mut BatchProducer, topic: &str, users: u32, ts: i64) -> Result<()> {
    let mut value = String::with_capacity(128);
    for userid in 1..=users {
        value.clear();
        let _ = write!(
            value,
            r#"{{"name":"User {userid}","email":"user{userid}@example.com","status":"{}"}}"#,
            status_of(userid)
        );
        producer.send(topic, &(userid as i32).to_be_bytes(), value.as_bytes(), ts)?;
    }
    producer.flush()
}

/// Produces `events` reviews (key: the id as a 4-byte big-endian INT), one millisecond of
/// event time apart, ending about now, so the one-minute windows each hold up to 60,000.
pub fn produce_reviews(
    producer: &mut BatchProducer,
    topic: &str,
    events: u64,
    users: u32,
    now_ms: i64,
) -> Result<Dataset> {
    let mut rng = Rng::new(0x5eed);
    let mut value = String::with_capacity(256);
    let mut unhappy_vips = 0;
    let mut bytes = 0u64;
    let start_ts = now_ms - events as i64;
    for id in 0..events {
        let userid = 1 + rng.below(u64::from(users)) as u32;
        let rating = 1 + rng.below(5) as u8;
        if rating < 3 && status_of(userid) == "Platinum" {
            unhappy_vips += 1;
        }
        let ts = start_ts + id as i64;
        review_value(&mut value, &mut rng, id, userid, rating, ts);
        bytes += value.len() as u64;
        producer.send(topic, &(id as i32).to_be_bytes(), value.as_bytes(), ts)?;
    }
    producer.flush()?;
    Ok(Dataset {
        events,
        unhappy_vips,
        avg_value_bytes: bytes as f64 / events.max(1) as f64,
    })
}

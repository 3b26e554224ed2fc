"""Confluent's own Python client against Eddy's built-in schema registry.

Records produced with confluent-kafka's AvroSerializer (schema registered through its
SchemaRegistryClient) are read by a stream declared without columns, filtered by a
persistent query, and the query's output is read back with AvroDeserializer, which fetches
each record's schema from the registry by the id in the record. The reviews are also joined
with a PROTOBUF table of users produced with ProtobufSerializer, into a PROTOBUF stream read
back with ProtobufDeserializer, and a JSON_SR stream produced with JSONSerializer is copied
into a JSON_SR stream read back with JSONDeserializer (both also fetch the writer schema by
id). The client's compatibility checks see Protobuf and JSON Schema changes judged by each
kind's rules. A record with an unknown schema id must go to the processing log while the query goes
on.

Usage: registry_clients.py BOOTSTRAP EDDY_URL REGISTRY_URL PROCESSING_LOG_TOPIC
"""

import json
import sys
import time
import urllib.request

from confluent_kafka import Consumer, Producer
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.json_schema import JSONDeserializer, JSONSerializer
from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer, ProtobufSerializer
from confluent_kafka.serialization import (
    IntegerSerializer,
    MessageField,
    SerializationContext,
    StringSerializer,
)
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

BOOTSTRAP, EDDY, REGISTRY, PROCESSING_LOG = sys.argv[1:5]
DEADLINE_S = 60

REVIEW = json.dumps({
    "type": "record",
    "name": "Review",
    "namespace": "com.example",
    "fields": [
        {"name": "review_id", "type": "string"},
        {"name": "user_id", "type": "int"},
        {"name": "rating", "type": "int"},
        {"name": "text", "type": ["null", "string"], "default": None},
        {"name": "price", "type": {"type": "bytes", "logicalType": "decimal", "precision": 6, "scale": 2}},
    ],
})


FLAG = json.dumps({
    "$schema": "http://json-schema.org/draft-07/schema#",
    "title": "Flag",
    "type": "object",
    "properties": {
        "review_id": {"type": "string"},
        "reason": {"type": "string"},
        "severity": {"type": "integer"},
    },
    "required": ["review_id", "reason", "severity"],
})


def message_class(package, name, fields):
    """A Protobuf message class built at run time (as protoc would generate it)."""
    T = descriptor_pb2.FieldDescriptorProto
    types = {"int32": T.TYPE_INT32, "string": T.TYPE_STRING}
    file = descriptor_pb2.FileDescriptorProto(name=f"{name.lower()}.proto", package=package, syntax="proto3")
    message = file.message_type.add(name=name)
    for number, (field, kind) in enumerate(fields, 1):
        message.field.add(name=field, number=number, type=types[kind], label=T.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{package}.{name}"))


def ksql(statement, properties=None):
    body = json.dumps({"ksql": statement, "streamsProperties": properties or {}}).encode()
    req = urllib.request.Request(EDDY + "/ksql", body, {"Content-Type": "application/vnd.ksql.v1+json"})
    try:
        with urllib.request.urlopen(req) as r:
            return json.load(r)
    except urllib.error.HTTPError as e:
        raise AssertionError(f"{statement}: HTTP {e.code}: {e.read().decode()}")


def consume(topic, count, deserialize):
    consumer = Consumer({
        "bootstrap.servers": BOOTSTRAP,
        "group.id": f"check-{topic}-{time.time()}",
        "auto.offset.reset": "earliest",
    })
    consumer.subscribe([topic])
    got = []
    deadline = time.time() + DEADLINE_S
    try:
        while len(got) < count and time.time() < deadline:
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            got.append(deserialize(msg))
    finally:
        consumer.close()
    assert len(got) >= count, f"{topic}: {len(got)} of {count} records within {DEADLINE_S}s: {got}"
    return got


def main():
    registry = SchemaRegistryClient({"url": REGISTRY})
    from decimal import Decimal
    serializer = AvroSerializer(registry, REVIEW)
    keys = StringSerializer()
    producer = Producer({"bootstrap.servers": BOOTSTRAP})

    # The users, a table whose values Confluent's ProtobufSerializer writes (it registers the
    # schema as a serialised descriptor, as the Python client does).
    User = message_class("com.example", "User", [("name", "string"), ("tier", "string")])
    users = ProtobufSerializer(User, registry, {"use.deprecated.format": False})
    for user_id, name, tier in [(1, "Alice", "Platinum"), (2, "Bob", "Platinum"), (3, "Carol", "Gold")]:
        ctx = SerializationContext("users", MessageField.VALUE)
        producer.produce("users", key=IntegerSerializer()(user_id), value=users(User(name=name, tier=tier), ctx))
    producer.flush(10)
    assert registry.get_latest_version("users-value").schema.schema_type == "PROTOBUF"
    reviews = [
        {"review_id": "r1", "user_id": 1, "rating": 1, "text": "awful", "price": Decimal("12.50")},
        {"review_id": "r2", "user_id": 2, "rating": 5, "text": "great", "price": Decimal("3.99")},
        {"review_id": "r3", "user_id": 3, "rating": 2, "text": None, "price": Decimal("100.00")},
    ]

    def produce(review):
        ctx = SerializationContext("reviews", MessageField.VALUE)
        producer.produce("reviews", key=keys(review["review_id"]), value=serializer(review, ctx))

    for r in reviews:
        produce(r)
    producer.flush(10)
    registered = registry.get_latest_version("reviews-value")
    assert registered.version == 1, registered

    ksql("CREATE STREAM reviews WITH (KAFKA_TOPIC='reviews', VALUE_FORMAT='AVRO');")
    described = ksql("DESCRIBE reviews;")
    columns = {f["name"]: f["schema"]["type"] for f in described[0]["sourceDescription"]["fields"]}
    assert columns == {
        "REVIEW_ID": "STRING", "USER_ID": "INTEGER", "RATING": "INTEGER", "TEXT": "STRING",
        "PRICE": "DECIMAL",
    }, columns
    ksql(
        "CREATE STREAM unhappy AS SELECT review_id, rating, text, price FROM reviews WHERE rating < 3;",
        {"auto.offset.reset": "earliest"},
    )

    # The sink's schema is registered under its topic's subject, for any Confluent consumer.
    out_schema = registry.get_latest_version("UNHAPPY-value").schema
    assert out_schema.schema_type == "AVRO", out_schema.schema_type
    deserializer = AvroDeserializer(registry)

    def read(msg):
        return deserializer(msg.value(), SerializationContext(msg.topic(), MessageField.VALUE))

    # The topics have several partitions, so records come in key order only per partition.
    def by_id(records):
        return sorted(records, key=lambda r: r["REVIEW_ID"])

    got = consume("UNHAPPY", 2, read)
    assert by_id(got) == [
        {"REVIEW_ID": "r1", "RATING": 1, "TEXT": "awful", "PRICE": Decimal("12.50")},
        {"REVIEW_ID": "r3", "RATING": 2, "TEXT": None, "PRICE": Decimal("100.00")},
    ], got

    # The AVRO reviews joined with the PROTOBUF users (columns inferred from the registry
    # but the key), written as PROTOBUF.
    ksql("CREATE TABLE users (ID INT PRIMARY KEY) WITH (KAFKA_TOPIC='users', VALUE_FORMAT='PROTOBUF');")
    described = ksql("DESCRIBE users;")
    columns = {f["name"]: f["schema"]["type"] for f in described[0]["sourceDescription"]["fields"]}
    assert columns == {"ID": "INTEGER", "NAME": "STRING", "TIER": "STRING"}, columns
    ksql(
        "CREATE STREAM unhappy_vips WITH (VALUE_FORMAT='PROTOBUF') AS "
        "SELECT r.user_id AS user_id, r.review_id AS review_id, r.rating AS rating, u.name AS name "
        "FROM reviews r JOIN users u ON r.user_id = u.id "
        "WHERE r.rating < 3 AND u.tier = 'Platinum';",
        {"auto.offset.reset": "earliest"},
    )
    assert registry.get_latest_version("UNHAPPY_VIPS-value").schema.schema_type == "PROTOBUF"
    Vip = message_class("out", "Vip", [("REVIEW_ID", "string"), ("RATING", "int32"), ("NAME", "string")])
    vips = ProtobufDeserializer(Vip, {"use.deprecated.format": False}, schema_registry_client=registry)

    def read_vip(msg):
        vip = vips(msg.value(), SerializationContext(msg.topic(), MessageField.VALUE))
        return {"REVIEW_ID": vip.REVIEW_ID, "RATING": vip.RATING, "NAME": vip.NAME}

    got = consume("UNHAPPY_VIPS", 1, read_vip)
    assert got == [{"REVIEW_ID": "r1", "RATING": 1, "NAME": "Alice"}], got

    # JSON_SR both ways: JSONSerializer in, JSONDeserializer (which validates every record
    # against the writer schema it fetches by id) out.
    flags = JSONSerializer(FLAG, registry)
    for flag in [{"review_id": "r1", "reason": "spam", "severity": 3},
                 {"review_id": "r2", "reason": "typo", "severity": 1}]:
        ctx = SerializationContext("flags", MessageField.VALUE)
        producer.produce("flags", key=keys(flag["review_id"]), value=flags(flag, ctx))
    producer.flush(10)
    ksql("CREATE STREAM flags WITH (KAFKA_TOPIC='flags', VALUE_FORMAT='JSON_SR');")
    ksql(
        "CREATE STREAM severe WITH (VALUE_FORMAT='JSON_SR') AS "
        "SELECT review_id, severity FROM flags WHERE severity > 2;",
        {"auto.offset.reset": "earliest"},
    )
    severe = JSONDeserializer(None, schema_registry_client=registry)

    def read_severe(msg):
        return severe(msg.value(), SerializationContext(msg.topic(), MessageField.VALUE))

    got = consume("SEVERE", 1, read_severe)
    assert got == [{"REVIEW_ID": "r1", "SEVERITY": 3}], got

    # Each kind of schema is checked with its own compatibility rules, as Confluent's
    # registry checks them (the default level, BACKWARD): a changed Protobuf field kind and
    # a narrowed JSON Schema type are refused with 409, compatible changes pass.
    def refused(subject, schema):
        assert not registry.test_compatibility(subject, schema), subject
        try:
            registry.register_schema(subject, schema)
        except SchemaRegistryError as e:
            assert e.http_status_code == 409, e
            return str(e)
        raise AssertionError(f"{subject}: an incompatible schema was registered")

    user_v2 = 'syntax = "proto3"; package com.example; message User { string name = 1; string tier = 2; int32 since = 3; }'
    assert registry.test_compatibility("users-value", Schema(user_v2, "PROTOBUF"))
    why = refused("users-value", Schema(user_v2.replace("string tier", "int64 tier"), "PROTOBUF"))
    assert "FIELD_SCALAR_KIND_CHANGED" in why, why
    narrowed = json.loads(FLAG)
    narrowed["properties"]["severity"] = {"type": "string"}
    why = refused("flags-value", Schema(json.dumps(narrowed), "JSON"))
    assert "TYPE_NARROWED" in why, why
    widened = json.loads(FLAG)
    widened["properties"]["severity"] = {"type": "number"}
    assert registry.test_compatibility("flags-value", Schema(json.dumps(widened), "JSON"))

    # A record whose schema id the registry does not know: to the processing log, and the
    # query goes on with the next record.
    producer.produce("reviews", key=b"bad", value=b"\x00\x00\x00\x03\xe7\x02\x04")
    produce({"review_id": "r4", "user_id": 4, "rating": 1, "text": "late", "price": Decimal("1.00")})
    producer.flush(10)
    got = consume("UNHAPPY", 3, read)
    assert [r["REVIEW_ID"] for r in by_id(got)] == ["r1", "r3", "r4"], got

    def log_entry(msg):
        return json.loads(msg.value())

    logged = consume(PROCESSING_LOG, 1, log_entry)
    text = json.dumps(logged)
    assert "999" in text and "schema" in text.lower(), logged
    print("all checks passed")


if __name__ == "__main__":
    main()

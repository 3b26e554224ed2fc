"""Drives Eddy with ksql-python-ng (PyPI; import name `ksql`), unmodified.

Usage: python3 tests/python/ksql_python_client.py http://127.0.0.1:PORT

Lists streams, creates a stream, inserts rows, and reads them back with push queries over
/query (HTTP/1.1) and over /query-stream with use_http2=True (HTTP/2 cleartext), closes
a running push query with close_query, and inserts rows over /inserts-stream (HTTP/2). Prints one line per check; exits non-zero on the
first failure.
"""

import json
import sys

from ksql import KSQLAPI


def check(what, ok, detail=""):
    print(("ok   " if ok else "FAIL ") + what + ("" if ok else f": {detail}"), flush=True)
    if not ok:
        sys.exit(1)


def main():
    url = sys.argv[1]
    client = KSQLAPI(url, timeout=60)
    check("get_ksql_version", client.get_ksql_version() is not None)

    streams = client.ksql("SHOW STREAMS")[0]["streams"]
    names = [s["name"] for s in streams]
    check("SHOW STREAMS lists the processing log", "EDDY_PROCESSING_LOG" in names, names)

    created = client.create_stream(
        table_name="py_orders",
        columns_type=["id INT KEY", "item VARCHAR", "qty INT"],
        topic="py_orders",
        value_format="JSON",
    )
    check("create_stream", created is True)
    names = [s["name"] for s in client.ksql("SHOW STREAMS")[0]["streams"]]
    check("the new stream is listed", "PY_ORDERS" in names, names)

    for i, (item, qty) in enumerate([("apple", 3), ("pear", 5), ("fig", 7)], start=1):
        client.ksql(f"INSERT INTO py_orders (id, item, qty) VALUES ({i}, '{item}', {qty})")

    expected = [[1, "apple", 3], [2, "pear", 5], [3, "fig", 7]]

    # /query over HTTP/1.1: a chunked JSON array.
    chunks = client.query(
        "SELECT * FROM py_orders EMIT CHANGES LIMIT 3",
        stream_properties={"ksql.streams.auto.offset.reset": "earliest"},
    )
    answer = json.loads("".join(chunks))
    header = answer[0]["header"]
    check("/query header", header["queryId"].startswith("transient_PY_ORDERS_")
          and header["schema"] == "`ID` INTEGER, `ITEM` STRING, `QTY` INTEGER", header)
    rows = sorted(r["row"]["columns"] for r in answer[1:4])
    check("/query rows", rows == expected, rows)
    check("/query final message", answer[4] == {"finalMessage": "Limit Reached"}, answer[4:])

    # /query-stream over HTTP/2 cleartext, parsed into dicts by the client.
    rows = list(client.query(
        "SELECT * FROM py_orders EMIT CHANGES LIMIT 3",
        stream_properties={"auto.offset.reset": "earliest"},
        use_http2=True,
        parse=True,
    ))
    rows.sort(key=lambda r: r["ID"])
    check("/query-stream over HTTP/2 rows", rows == [
        {"ID": 1, "ITEM": "apple", "QTY": 3},
        {"ID": 2, "ITEM": "pear", "QTY": 5},
        {"ID": 3, "ITEM": "fig", "QTY": 7},
    ], rows)

    # A push query without LIMIT over HTTP/2, closed with close_query.
    stream = client.query(
        "SELECT item FROM py_orders WHERE qty > 4 EMIT CHANGES",
        stream_properties={"auto.offset.reset": "earliest"},
        use_http2=True,
    )
    header = json.loads(next(stream))
    check("/query-stream header", header["columnNames"] == ["ITEM"]
          and header["columnTypes"] == ["STRING"], header)
    seen = sorted(json.loads(next(stream))[0] for _ in range(2))
    check("/query-stream rows of a running query", seen == ["fig", "pear"], seen)
    check("close_query", client.close_query(header["queryId"]) is True)
    rest = [chunk for chunk in stream if chunk.strip()]
    check("the closed query's stream ends", rest == [], rest)
    check("close_query of a closed query is refused",
          client.close_query(header["queryId"]) is False)

    # /inserts-stream over HTTP/2: one acknowledgement per row; a bad row is refused alone.
    acks = client.inserts_stream("py_orders", [
        {"ID": 4, "ITEM": "kiwi", "QTY": 9},
        {"ID": 5, "ITEM": "plum", "QTY": "many"},
        {"ID": 6, "ITEM": "lime", "QTY": 2},
    ])
    check("inserts_stream acknowledges each row",
          [(a["status"], a["seq"]) for a in acks] == [("ok", 0), ("error", 1), ("ok", 2)], acks)
    rows = list(client.query(
        "SELECT * FROM py_orders WHERE id > 3 EMIT CHANGES LIMIT 2",
        stream_properties={"auto.offset.reset": "earliest"},
        use_http2=True,
        parse=True,
    ))
    rows.sort(key=lambda r: r["ID"])
    check("inserted rows are read back", rows == [
        {"ID": 4, "ITEM": "kiwi", "QTY": 9},
        {"ID": 6, "ITEM": "lime", "QTY": 2},
    ], rows)
    print("all checks passed")


if __name__ == "__main__":
    main()

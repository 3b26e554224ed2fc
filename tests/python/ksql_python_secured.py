"""Drives an Eddy server with HTTPS and Basic authentication through ksql-python-ng (PyPI;
import name `ksql`), unmodified, with its api_key/secret arguments.

Usage: SSL_CERT_FILE=ca.pem python3 tests/python/ksql_python_secured.py https://127.0.0.1:PORT USER PASSWORD

httpx (under ksql-python-ng) trusts the CA in SSL_CERT_FILE. Checks that wrong credentials
are refused with ksqlDB's 40100, then lists and creates streams, inserts rows and reads them
back with a push query over /query (HTTP/1.1 over TLS) and /query-stream (HTTP/2 over TLS,
chosen through ALPN). Prints one line per check; exits non-zero on the first failure.
"""

import json
import sys

from ksql import KSQLAPI


def check(what, ok, detail=""):
    print(("ok   " if ok else "FAIL ") + what + ("" if ok else f": {detail}"), flush=True)
    if not ok:
        sys.exit(1)


def main():
    url, user, password = sys.argv[1:4]

    # The client asks for /info as it is made; with a wrong password that fails.
    try:
        KSQLAPI(url, timeout=60, api_key=user, secret=password + "x")
        check("a wrong password is refused", False, "the client was made")
    except ValueError as e:
        check("a wrong password is refused with 401 and 40100",
              "401" in str(e) and '"error_code":40100' in str(e), e)

    client = KSQLAPI(url, timeout=60, api_key=user, secret=password)
    names = [s["name"] for s in client.ksql("SHOW STREAMS")[0]["streams"]]
    check("SHOW STREAMS over HTTPS with a login", "EDDY_PROCESSING_LOG" in names, names)

    created = client.create_stream(
        table_name="secure_orders",
        columns_type=["id INT KEY", "item VARCHAR"],
        topic="secure_orders",
        value_format="JSON",
    )
    check("create_stream", created is True)
    for i, item in enumerate(["apple", "pear"], start=1):
        client.ksql(f"INSERT INTO secure_orders (id, item) VALUES ({i}, '{item}')")

    chunks = client.query(
        "SELECT * FROM secure_orders EMIT CHANGES LIMIT 2",
        stream_properties={"ksql.streams.auto.offset.reset": "earliest"},
    )
    answer = json.loads("".join(chunks))
    rows = sorted(r["row"]["columns"] for r in answer[1:3])
    check("/query over HTTP/1.1 and TLS", rows == [[1, "apple"], [2, "pear"]], rows)

    rows = list(client.query(
        "SELECT * FROM secure_orders EMIT CHANGES LIMIT 2",
        stream_properties={"auto.offset.reset": "earliest"},
        use_http2=True,
        parse=True,
    ))
    rows.sort(key=lambda r: r["ID"])
    check("/query-stream over HTTP/2 and TLS", rows == [
        {"ID": 1, "ITEM": "apple"},
        {"ID": 2, "ITEM": "pear"},
    ], rows)
    print("all checks passed")


if __name__ == "__main__":
    main()

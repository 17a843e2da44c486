"""Exit 0 when the named server answers a real protocol request, 1 otherwise.

Used by stack.sh to wait for readiness instead of sleeping a fixed time:
    probe.py kafka 127.0.0.1:9092
    probe.py mongo mongodb://127.0.0.1:27017/
"""

import sys


def kafka_ready(bootstrap: str) -> bool:
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
    try:
        # describe_cluster needs a live controller, not just an open socket
        return bool(admin.describe_cluster().get("brokers"))
    finally:
        admin.close()


def mongo_ready(uri: str) -> bool:
    from pymongo import MongoClient

    client = MongoClient(uri, serverSelectionTimeoutMS=2000)
    try:
        return client.admin.command("ping").get("ok") == 1
    finally:
        client.close()


if __name__ == "__main__":
    kind, address = sys.argv[1], sys.argv[2]
    try:
        ok = kafka_ready(address) if kind == "kafka" else mongo_ready(address)
    except Exception:  # any failure means "not yet"
        ok = False
    sys.exit(0 if ok else 1)

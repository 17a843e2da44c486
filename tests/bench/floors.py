"""Bare floors: the same work without the platform around it, measured in the same run.

- grpc_echo: a gRPC server with no interceptors, no database, no auth, echoing bytes.
- kafka_consume: kafka-python reading 100-byte records as fast as it can.
- pymongo_insert: single-document inserts (latency floor) and 500-document bulk inserts
  (throughput floor) into the same database server.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid

from kafka import KafkaConsumer, KafkaProducer
from pymongo import MongoClient

from tests.bench.harness import LoadResult, closed_loop

ECHO_METHOD = "/bench.Echo/Echo"


def echo_caller(target: str):
    import grpc

    channel = grpc.insecure_channel(target)
    echo = channel.unary_unary(ECHO_METHOD)
    payload = b"x" * 64
    return lambda: echo(payload, timeout=5)


def grpc_echo(ctx) -> LoadResult:
    port = ctx.stack.spare_port(0)  # clear of every service port of this lane
    server = subprocess.Popen([sys.executable, "-m", "tests.bench.echo_server", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.5)
        return closed_loop("tests.bench.floors:echo_caller", (f"127.0.0.1:{port}",), seconds=ctx.seconds)
    finally:
        server.terminate()
        server.wait(10)


def kafka_consume(ctx, records: int = 200_000) -> dict:
    topic = f"bench.floor.{uuid.uuid4().hex[:8]}"
    producer = KafkaProducer(bootstrap_servers=ctx.stack.kafka, linger_ms=20, batch_size=256 * 1024, acks=1)
    value = b"v" * 100
    for i in range(records):
        producer.send(topic, key=str(i % 64).encode(), value=value)
    producer.flush()
    producer.close()
    consumer = KafkaConsumer(topic, bootstrap_servers=ctx.stack.kafka, group_id=f"floor-{topic}",
                             auto_offset_reset="earliest", enable_auto_commit=False, max_poll_records=2000)
    seen, started = 0, None
    deadline = time.monotonic() + 120
    while seen < records and time.monotonic() < deadline:
        for batch in consumer.poll(timeout_ms=500).values():
            if started is None:
                started = time.perf_counter()
            seen += len(batch)
    elapsed = time.perf_counter() - (started or time.perf_counter())
    consumer.close()
    return {"records": seen, "per_second": seen / elapsed if elapsed else 0.0}


def pymongo_insert(ctx, bulk_docs: int = 50_000) -> dict:
    client = MongoClient(ctx.stack.mongodb_uri)
    coll = client[f"{ctx.stack.db_prefix}bench_floor"][f"insert_{uuid.uuid4().hex[:6]}"]
    coll.create_index([("district_id", 1), ("n", 1)])
    latencies = []
    for n in range(500):
        began = time.perf_counter()
        coll.insert_one({"district_id": "d", "n": n, "payload": "x" * 200})
        latencies.append((time.perf_counter() - began) * 1000)
    began = time.perf_counter()
    for start in range(0, bulk_docs, 500):
        coll.insert_many([{"district_id": "d", "n": n, "payload": "x" * 200} for n in range(start, start + 500)],
                         ordered=False)
    bulk_seconds = time.perf_counter() - began
    client.close()
    latencies.sort()
    return {"insert_one_p50_ms": latencies[len(latencies) // 2], "insert_one_p99_ms": latencies[int(len(latencies) * .99)],
            "insert_one_per_second": 1000 / (sum(latencies) / len(latencies)),
            "bulk_per_second": bulk_docs / bulk_seconds, "pid": os.getpid()}

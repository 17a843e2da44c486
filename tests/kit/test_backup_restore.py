"""`stack.sh backup` of the running test stack after real traffic (points ledgers from ordering's
events and admins' adjustments), restored into a fresh data directory on other ports: the same
documents in every database, the same topics and consumer offsets, and the points service
started on the restored stack answers the same balances and ledgers."""

from __future__ import annotations

import os
import subprocess
import time
import uuid

import pytest

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from pymongo import MongoClient

from tests.points.support import Feed, points_stub
from tests.support.grpc_helpers import bearer
from tests.support.stack import STACK
from tests.support.waiting import wait_until
from wenming.common.v1 import common_pb2 as c
from wenming.points.v1 import points_pb2 as pb

VERIFIED = c.HOURS_SOURCE_VERIFIED


def _stack_sh(env: dict[str, str], *args: str) -> None:
    result = subprocess.run([str(STACK), *args], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def _state(mongodb_uri: str, kafka: str, prefix: str) -> dict:
    """Document counts of the run's databases, end offsets of the topics, committed offsets."""
    with MongoClient(mongodb_uri, serverSelectionTimeoutMS=10_000) as client:
        counts = {f"{name}.{collection}": client[name][collection].count_documents({})
                  for name in client.list_database_names() if name.startswith(prefix)
                  for collection in client[name].list_collection_names()}
    consumer = KafkaConsumer(bootstrap_servers=kafka.split(","), group_id=None)
    admin = KafkaAdminClient(bootstrap_servers=kafka.split(","))
    try:
        partitions = [TopicPartition(t, p) for t in consumer.topics() if t.startswith("wenming.")
                      for p in consumer.partitions_for_topic(t) or ()]
        ends = {f"{tp.topic}[{tp.partition}]": o for tp, o in consumer.end_offsets(partitions).items()}
        names = [g["group_id"] if isinstance(g, dict) else g[0] for g in admin.list_groups()]
        groups = {group: {f"{tp.topic}[{tp.partition}]": meta.offset for tp, meta in offsets.items()}
                  for group, offsets in (admin.list_group_offsets(names) if names else {}).items()}
    finally:
        consumer.close()
        admin.close()
    return {"counts": counts, "ends": ends, "groups": groups}


def _settled(mongodb_uri: str, kafka: str, prefix: str, timeout: float = 60.0) -> dict:
    """The state once two looks a few seconds apart agree (consumers and relays have caught up)."""
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        state = _state(mongodb_uri, kafka, prefix)
        if state == last:
            return state
        last = state
        time.sleep(3)
    raise AssertionError("the stack did not settle")


def _ledger(stub, metadata, account_id: str) -> tuple:
    account = stub.GetAccount(pb.GetAccountRequest(account_id=account_id), metadata=metadata, timeout=10).account
    entries, token = [], ""
    while True:
        page = stub.ListLedgerEntries(pb.ListLedgerEntriesRequest(account_id=account_id, page=c.PageRequest(
            page_size=100, page_token=token)), metadata=metadata, timeout=10)
        entries += [(e.entry_id, e.book, e.amount) for e in page.entries]
        token = page.page.next_page_token
        if not token:
            break
    return account.points, account.verified_minutes, account.manual_minutes, sorted(entries)


@pytest.mark.serial  # stops the shared broker or database
def test_a_backup_of_the_running_stack_restores_the_same_ledgers_balances_and_counts(
        stack, registration, district, spawn, tmp_path):
    # real traffic: volunteers, hours confirmed by ordering's events, adjustments by an admin
    points = spawn("points", port_offset=1, log_name="points-backup",
                   extra_env={"POINTS_JOB_INTERVAL_SECONDS": "1"})
    points.wait_serving(90)
    stub = points_stub(points.grpc_target)
    tree = district.small_tree()
    station = tree.stations[0]
    admin = bearer(tree.admins[station.unit_id])
    volunteers = [district.volunteer(tree.courtyards[0].unit_id).volunteer_id for _ in range(2)]
    for vid in volunteers:
        assert wait_until(lambda vid=vid: _known(stub, admin, vid), 30)
    feed = Feed(stack.kafka)
    try:
        for vid in volunteers:
            for minutes in (90, 120, 45):
                order = feed.order(f"ord_{uuid.uuid4().hex[:12]}", courtyard=tree.courtyards[0], handling=station)
                feed.send(feed.hours_confirmed(district.id, order, [(vid, minutes, VERIFIED)], station))
            stub.AdjustPoints(pb.AdjustPointsRequest(account_id=vid, amount=7, reason="备份测试补录",
                                                     idempotency_key=f"backup-{vid}"), metadata=admin, timeout=10)
    finally:
        feed.close()
    for vid in volunteers:
        assert wait_until(lambda vid=vid: _ledger(stub, admin, vid)[1] == 255, 30)
    before = {vid: _ledger(stub, admin, vid) for vid in volunteers}
    state = _settled(stack.mongodb_uri, stack.kafka, stack.db_prefix)

    # the backup, with every service running
    backup = tmp_path / "backup"
    _stack_sh(dict(os.environ, KAFKA_START_SECONDS="300"), "backup", str(backup))
    registration.wait_serving(60)  # the session's stack is back for the tests after this one
    points.wait_serving(60)
    assert {p.name for p in backup.iterdir()} >= {"ferretdb", "kafka", "secrets", "BACKUP", "SHA256SUMS"}

    # restored into a fresh data directory, on ports of its own (the slot's spare ones)
    kafka_port, mongo_port = int(os.environ["KAFKA_PORT"]) + 5, int(os.environ["MONGO_PORT"]) + 5
    restored = dict(os.environ, WENMING_DATA=str(tmp_path / "restored"), KAFKA_PORT=str(kafka_port),
                    KAFKA_START_SECONDS="300",  # loading a copied log is slow on a busy machine
                    MONGO_PORT=str(mongo_port), KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{kafka_port}",
                    MONGODB_URI=f"mongodb://127.0.0.1:{mongo_port}/")
    _stack_sh(restored, "restore", str(backup))
    try:
        _stack_sh(restored, "start")
        after = _state(restored["MONGODB_URI"], restored["KAFKA_BOOTSTRAP_SERVERS"], stack.db_prefix)
        assert after["counts"] == state["counts"]
        assert after["ends"] == state["ends"]
        assert after["groups"] == state["groups"]
        # points on the restored stack: the same balances and ledgers
        on_restored = spawn("points", port_offset=2, log_name="points-restored", extra_env={
            "MONGODB_URI": restored["MONGODB_URI"], "KAFKA_BOOTSTRAP_SERVERS": restored["KAFKA_BOOTSTRAP_SERVERS"]})
        on_restored.wait_serving(90)
        restored_stub = points_stub(on_restored.grpc_target)
        assert {vid: _ledger(restored_stub, admin, vid) for vid in volunteers} == before
    finally:
        _stack_sh(restored, "stop")


def _known(stub, metadata, account_id: str) -> bool:
    try:
        stub.GetAccount(pb.GetAccountRequest(account_id=account_id), metadata=metadata, timeout=5)
        return True
    except Exception:  # NOT_FOUND until points has heard of the volunteer
        return False

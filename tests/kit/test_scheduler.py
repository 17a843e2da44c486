"""Two replicas' copies of a job: only the lease holder works; the lease moves when it lapses."""

from __future__ import annotations

import uuid

from pymongo import MongoClient

from services.common.scheduler import LeasedJob


def test_only_one_replica_holds_the_lease_until_it_lapses(stack):
    client = MongoClient(stack.mongodb_uri)
    leases = client[f"{stack.db_prefix}kit"][f"leases_{uuid.uuid4().hex[:6]}"]
    runs = {"a": 0, "b": 0}

    def work(name):
        def inner() -> int:
            runs[name] += 1
            return 1
        return inner

    a = LeasedJob("escalate", leases, work("a"), interval_seconds=1, lease_seconds=1.0)
    b = LeasedJob("escalate", leases, work("b"), interval_seconds=1, lease_seconds=1.0)
    for _ in range(5):
        a.run_once()
        b.run_once()
    assert runs == {"a": 5, "b": 0}
    import time
    time.sleep(1.2)  # a stops renewing; its lease lapses and b takes over
    b.run_once()
    assert runs["b"] == 1
    a.run_once()
    assert runs["a"] == 5
    client.close()

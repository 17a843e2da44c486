"""Conditional single-document updates are atomic on the database the suite runs against.

Every concurrency rule of the platform stands on this (one claim wins, capacity, stock,
balances). Stock FerretDB v1 on SQLite fails it; the patched local build must pass, and so does
any real MongoDB given through MONGODB_URI.
"""

from __future__ import annotations

import threading
import uuid

from pymongo import MongoClient, ReturnDocument, UpdateOne


def _run_parallel(target, n: int) -> None:
    threads = [threading.Thread(target=target, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def test_concurrent_increments_lose_nothing(stack):
    client = MongoClient(stack.mongodb_uri, maxPoolSize=40)
    coll = client[f"{stack.db_prefix}kit"][f"counter_{uuid.uuid4().hex[:6]}"]
    coll.insert_one({"_id": "c", "seq": 0})
    seen: list[int] = []
    lock = threading.Lock()

    def work(_):
        for _ in range(25):
            doc = coll.find_one_and_update({"_id": "c"}, {"$inc": {"seq": 1}}, return_document=ReturnDocument.AFTER)
            with lock:
                seen.append(doc["seq"])

    _run_parallel(work, 20)
    assert coll.find_one({"_id": "c"})["seq"] == 500
    assert sorted(seen) == list(range(1, 501))
    client.close()


def test_exactly_one_conditional_claim_wins_and_capacity_holds(stack):
    client = MongoClient(stack.mongodb_uri, maxPoolSize=60)
    db = client[f"{stack.db_prefix}kit"]
    orders, slots = db[f"claims_{uuid.uuid4().hex[:6]}"], db[f"slots_{uuid.uuid4().hex[:6]}"]
    orders.insert_one({"_id": "o", "status": "OPEN"})
    slots.insert_one({"_id": "a", "taken": 0})
    winners: list[int] = []
    signed: list[int] = []

    def claim(i):
        if orders.update_one({"_id": "o", "status": "OPEN"}, {"$set": {"status": "CLAIMED", "by": i}}).modified_count:
            winners.append(i)

    def sign_up(i):
        if slots.update_one({"_id": "a", "taken": {"$lt": 30}}, {"$inc": {"taken": 1}}).modified_count:
            signed.append(i)

    _run_parallel(claim, 50)
    _run_parallel(sign_up, 100)
    assert len(winners) == 1 and orders.find_one({"_id": "o"})["by"] == winners[0]
    assert len(signed) == 30 and slots.find_one({"_id": "a"})["taken"] == 30
    client.close()


def test_a_bulk_write_of_hundreds_of_conditional_updates_completes(stack):
    """The ledger writes every account of a poll, the outbox relay every published document, in
    one bulk write: stock FerretDB hung past ~100 statements (infra/local/ferretdb/
    close-per-statement.patch) and held the collection's write lock while it did."""
    client = MongoClient(stack.mongodb_uri, socketTimeoutMS=20_000)
    coll = client[f"{stack.db_prefix}kit"][f"bulk_{uuid.uuid4().hex[:6]}"]
    coll.insert_many([{"_id": f"a{n:03d}", "version": 0, "minutes": 0} for n in range(300)])
    result = coll.bulk_write([UpdateOne({"_id": f"a{n:03d}", "version": 0},
                                        {"$inc": {"minutes": n, "version": 1}, "$set": {"marks.ordering-0": 7}})
                              for n in range(300)], ordered=False)
    assert result.modified_count == 300
    coll.insert_one({"_id": "after"})  # the collection takes writes again
    assert sum(d["minutes"] for d in coll.find({"version": 1})) == sum(range(300))
    client.close()

"""Filters the local FerretDB hands to SQLite (infra/local/ferretdb/index-pushdown.patch) give the
same answers as MongoDB, and the common ones are pushed down at all.

The pushed-down WHERE clause only pre-selects rows; FerretDB still applies the whole filter. What
can go wrong is a row the clause leaves out that MongoDB would match: arrays holding the value,
mixed types, `_id` lists. Those cases are here, and they run against any real MongoDB given by
MONGODB_URI too (where the pushdown check is skipped: `filterPushdown` is FerretDB's explain field).
"""

from __future__ import annotations

import uuid

import pytest
from bson import ObjectId

OID = ObjectId("6b1654f06ae2edc6bc65924a")  # fixed: parallel test workers must collect the same test ids
DOCS = [
    {"_id": "a", "district_id": "d1", "status": 3, "open": True, "tags": "x"},
    {"_id": "b", "district_id": "d1", "status": 4, "open": False, "tags": ["x", "y"]},
    {"_id": "c", "district_id": "d2", "status": 3, "open": True, "tags": ["y"]},
    {"_id": "d", "district_id": ["d1", "d3"], "status": 5, "open": True, "tags": []},
    {"_id": "e", "district_id": "d1", "status": 3.0, "open": True, "ref": OID},
    {"_id": "f", "district_id": "d1", "status": "3", "open": True},
]

CASES = [
    ({"district_id": "d1"}, {"a", "b", "d", "e", "f"}, True),
    ({"district_id": "d1", "status": 3}, {"a", "e"}, True),  # 3.0 equals 3; "3" does not
    ({"open": False}, {"b"}, True),
    ({"tags": "y"}, {"b", "c"}, True),  # matches inside arrays
    ({"ref": OID}, {"e"}, True),
    ({"_id": {"$in": ["a", "c", "zz"]}}, {"a", "c"}, True),
    ({"district_id": {"$in": ["d2", "d3"]}}, {"c", "d"}, True),
    ({"district_id": "d1", "status": {"$in": [4, 5]}}, {"b", "d"}, True),
    ({"tags": {"$in": ["x"]}, "open": True}, {"a"}, True),
    ({"status": {"$in": ["3", 4]}}, {"b", "f"}, True),
    # not pushed down (nested, double, regex, other operators), still answered right
    ({"status": 3.0}, {"a", "c", "e"}, False),
    ({"district_id": {"$in": []}}, set(), False),
    ({"district_id": {"$in": ["d1"], "$ne": "x"}}, {"a", "b", "d", "e", "f"}, False),
]


@pytest.fixture(scope="module")
def collection(stack, mongo_client):
    coll = mongo_client[f"{stack.db_prefix}kit"][f"pushdown_{uuid.uuid4().hex[:6]}"]
    coll.insert_many(DOCS)
    coll.create_index("district_id")
    yield coll
    coll.drop()


@pytest.mark.parametrize("query, expected, pushed", CASES, ids=[str(q) for q, _, _ in CASES])
def test_pushed_down_filters_match_what_mongodb_matches(collection, query, expected, pushed):
    assert {doc["_id"] for doc in collection.find(query)} == expected
    assert collection.count_documents(query) == len(expected)
    plan = collection.database.command("explain", {"find": collection.name, "filter": query})
    if "filterPushdown" in plan:  # the local FerretDB
        assert plan["filterPushdown"] is pushed

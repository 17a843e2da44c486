"""The kit's ReadCache (services/common/cache.py): served from memory, dropped by this process's
own changes and by events, read again after its maximum age."""

from __future__ import annotations

import threading
import time

from services.common.cache import ReadCache
from wenming.common.v1 import common_pb2


def _counting(values: dict):
    loads: list[str] = []

    def load(key):
        loads.append(key)
        return values[key]
    return load, loads


def test_a_copy_is_loaded_once_then_served_from_memory():
    load, loads = _counting({"d1": "A"})
    cache = ReadCache("t", load, max_age_seconds=60)
    assert [cache.get("d1") for _ in range(5)] == ["A"] * 5
    assert loads == ["d1"]


def test_forget_and_events_about_the_aggregate_drop_the_copy():
    values = {"d1": "A", "d2": "B"}
    load, loads = _counting(values)
    cache = ReadCache("t", load, max_age_seconds=60, aggregate_type="order_policy", forget_all_on=["x.Moved"])
    cache.get("d1"), cache.get("d2")
    values["d1"] = "A2"
    cache.forget("d1")
    assert cache.get("d1") == "A2"
    values["d2"] = "B2"
    cache.changed(common_pb2.EventEnvelope(aggregate_type="menu_item", aggregate_id="d2", event_type="x.Other"))
    assert cache.get("d2") == "B"  # another aggregate's event changes nothing
    cache.changed(common_pb2.EventEnvelope(aggregate_type="order_policy", aggregate_id="d2", event_type="x.Set"))
    assert cache.get("d2") == "B2"
    values["d1"] = "A3"
    cache.changed(common_pb2.EventEnvelope(aggregate_type="unit", aggregate_id="u9", event_type="x.Moved"))
    assert cache.get("d1") == "A3"


def test_a_copy_is_read_again_after_its_maximum_age():
    values = {"d1": "A"}
    load, loads = _counting(values)
    cache = ReadCache("t", load, max_age_seconds=0.05)
    cache.get("d1")
    values["d1"] = "A2"
    time.sleep(0.06)
    assert cache.get("d1") == "A2"


def test_a_failed_load_is_not_kept():
    calls = []

    def load(key):
        calls.append(key)
        if len(calls) == 1:
            raise LookupError("not there yet")
        return "created"
    cache = ReadCache("t", load, max_age_seconds=60)
    try:
        cache.get("u1")
    except LookupError:
        pass
    assert cache.get("u1") == "created"


def test_a_load_overtaken_by_a_change_does_not_store_what_it_read():
    """Read old value → change + forget → the slow load must not put the old value back."""
    values = {"d1": "old"}
    reading, release = threading.Event(), threading.Event()

    def load(key):
        value = values[key]
        reading.set()
        release.wait(5)
        return value
    cache = ReadCache("t", load, max_age_seconds=60)
    slow = threading.Thread(target=cache.get, args=("d1",))
    slow.start()
    reading.wait(5)
    values["d1"] = "new"
    cache.forget("d1")
    release.set()
    slow.join(5)
    reading.clear()
    release.set()
    assert cache.get("d1") == "new"

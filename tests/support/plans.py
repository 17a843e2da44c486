"""What the database does with the queries a service really sends: every `find` a block of
in-process domain calls issues is captured (pymongo command monitoring) and explained, so a
query shape that falls back to reading a whole collection fails its test.

    with captured_finds() as finds:     # the domain built on connect_monitored(...)
        queries.unit_queue(principal, request)
    assert not full_scans(db, finds)

FerretDB (SQLite) reports its plan as SQLite's lines: `SEARCH <table> USING INDEX …` reads
through an index, `SCAN <table>` reads every row. MongoDB reports stages: IXSCAN or COLLSCAN.
"""

from __future__ import annotations

import contextlib
import re
import threading
from dataclasses import dataclass

import mongoengine
from pymongo import monitoring
from pymongo.database import Database

from services.common.mongo import path_as_auth_source

_SEARCH = re.compile(r"SEARCH \S+ USING (?:COVERING |PRIMARY KEY)?INDEX (\S+)")


@dataclass(frozen=True)
class Find:
    collection: str
    filter: dict


class _Listener(monitoring.CommandListener):
    def __init__(self) -> None:
        self.sinks: list[list[Find]] = []
        self.lock = threading.Lock()

    def started(self, event) -> None:
        if event.command_name == "find":
            with self.lock:
                for sink in self.sinks:
                    sink.append(Find(event.command["find"], dict(event.command.get("filter", {}))))

    def succeeded(self, event) -> None:
        pass

    def failed(self, event) -> None:
        pass


_LISTENER = _Listener()


def connect_monitored(uri: str, database: str) -> Database:
    """The default mongoengine connection (what the domain's models use), with finds recorded."""
    mongoengine.disconnect()
    mongoengine.connect(db=database, host=path_as_auth_source(uri), alias="default", tz_aware=True,
                        uuidRepresentation="standard", event_listeners=[_LISTENER])
    return mongoengine.get_db()


@contextlib.contextmanager
def captured_finds():
    sink: list[Find] = []
    with _LISTENER.lock:
        _LISTENER.sinks.append(sink)
    try:
        yield sink
    finally:
        with _LISTENER.lock:
            _LISTENER.sinks.remove(sink)


def plan(db: Database, find: Find) -> tuple[list[str], list[str]]:
    """(indexes read through, collections scanned whole) for one find."""
    explained = db.command("explain", {"find": find.collection, "filter": find.filter})
    planner = explained.get("queryPlanner", {})
    if not planner or planner.get("Plan") == []:
        return ["(no such collection: nothing to read)"], []
    if "Plan" in planner:  # FerretDB on SQLite
        lines = [str(line) for line in planner["Plan"]]
        return ([m.group(1) for line in lines if (m := _SEARCH.search(line))],
                [find.collection for line in lines if re.search(r"\bSCAN\b", line) and "SEARCH" not in line])
    stages, scanned = [], []
    pending = [planner.get("winningPlan", {})]
    while pending:
        stage = pending.pop()
        if stage.get("stage") == "IXSCAN" or stage.get("indexName"):
            stages.append(stage.get("indexName", "?"))
        if stage.get("stage") == "EOF":  # no such collection: nothing to read
            stages.append("EOF")
        if stage.get("stage") == "COLLSCAN":
            scanned.append(find.collection)
        pending += [s for k in ("inputStage", "queryPlan") if (s := stage.get(k))] + list(stage.get("inputStages", ()))
    return stages, scanned


def full_scans(db: Database, finds: list[Find]) -> list[Find]:
    """The finds the database answers by reading a whole collection."""
    return [find for find in finds if plan(db, find)[1] or not plan(db, find)[0]]

"""MongoDB connection: one client per process, shared by mongoengine models and raw pymongo."""

from __future__ import annotations

from typing import Any

import mongoengine
from prometheus_client import Counter, Summary
from pymongo import monitoring
from pymongo.database import Database

# a document as pymongo reads and writes it: the kit's raw documents, filters, updates and outbox entries
RawDoc = dict[str, Any]


# what each service asks of the database, by collection: where its share of the database's work
# comes from (count and total seconds; no buckets, to keep the series few)
COMMAND_SECONDS = Summary("mongodb_command_seconds", "Database commands this process sent and how long they took, "
                          "by command and collection", ["command", "collection"])
COMMAND_FAILURES = Counter("mongodb_command_failures_total", "Database commands that failed, by command and "
                           "collection", ["command", "collection"])


class CommandMetrics(monitoring.CommandListener):
    """Times every command the client sends. pymongo calls it on the thread doing the command."""

    def __init__(self) -> None:
        self._collections: dict[tuple[Any, int], str] = {}  # (connection, request id) -> collection

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        # the collection is the command's own value (find: "units"), or getMore's `collection`
        target = event.command.get(event.command_name)
        if not isinstance(target, str):
            target = event.command.get("collection", "")
        self._collections[(event.connection_id, event.request_id)] = target if isinstance(target, str) else ""

    def _labels(self, event: monitoring.CommandSucceededEvent | monitoring.CommandFailedEvent) -> tuple[str, str]:
        return event.command_name, self._collections.pop((event.connection_id, event.request_id), "")

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        COMMAND_SECONDS.labels(*self._labels(event)).observe(event.duration_micros / 1e6)

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        labels = self._labels(event)
        COMMAND_SECONDS.labels(*labels).observe(event.duration_micros / 1e6)
        COMMAND_FAILURES.labels(*labels).inc()


def path_as_auth_source(uri: str) -> str:
    """mongodb://h/admin?x → mongodb://h/?x&authSource=admin.

    mongoengine prefers a database named in the URI's path over the one it is given, and
    operators hand out URIs whose path is the authentication database ("admin"); every service
    would then write into it. The path only ever meant where the user is defined.
    """
    scheme, sep, rest = uri.partition("://")
    hosts, slash, tail = rest.partition("/")
    path, _, query = tail.partition("?")
    if not slash or not path:
        return uri
    options = [o for o in query.split("&") if o]
    if not any(o.lower().startswith("authsource=") for o in options):
        options.append(f"authSource={path}")
    return f"{scheme}{sep}{hosts}/?{'&'.join(options)}"


def connect(uri: str, database: str, app_name: str, tls: dict[str, Any] | None = None) -> Database[RawDoc]:
    """Connects the default mongoengine alias to `database` and returns the raw pymongo database.

    Short server-selection timeouts turn an unreachable database into a quick UNAVAILABLE
    instead of a request hanging for 30 s. `tls`: config.mongodb_tls options.
    """
    mongoengine.disconnect()
    mongoengine.connect(
        db=database, host=path_as_auth_source(uri), alias="default", appname=app_name, tz_aware=True,
        uuidRepresentation="standard", serverSelectionTimeoutMS=5000, connectTimeoutMS=5000,
        socketTimeoutMS=30000, maxPoolSize=64, event_listeners=[CommandMetrics()], **(tls or {}),
    )
    db: Database[RawDoc] = mongoengine.get_db()
    return db


def ping(db: Database[RawDoc]) -> bool:
    try:
        return db.client.admin.command("ping").get("ok") == 1
    except Exception:  # any failure means "not reachable now"
        return False


def drop_indexes_by_keys(db: Database[RawDoc], obsolete: dict[str, list[list[tuple[str, int]]]]) -> list[str]:
    """Drops every index whose key is one of `obsolete[collection]` (a migration's indexes that
    a new data shape replaced); returns "collection.name" of each dropped."""
    dropped = []
    for collection, specs in obsolete.items():
        for name, info in db[collection].index_information().items():
            if [(field, int(direction)) for field, direction in info["key"]] in specs:
                db[collection].drop_index(name)
                dropped.append(f"{collection}.{name}")
    return dropped

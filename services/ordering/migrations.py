"""Schema migrations of ordering's stored documents, run at start before the service serves.

2 — orders carry their queue key by placement time (it was by id) and the China days the
    schedulers find their deadlines by (orders.SCHEMA_VERSION); every order and activity gets its
    index entry (index.py), pending for the trend roll-up; the indexes of the old query shapes,
    which every order write still paid for, are dropped.

Idempotent and resumable: an order is rewritten (no new version, no event: the fields are derived)
only while it is older than SCHEMA_VERSION and only at the version it was read at — a concurrent
writer upgrades it itself; entries are written only where missing or stale; the migration is
recorded as done only at the end, so a killed one goes on where it stopped. Replicas of the
previous release still running meanwhile write orders without entries: the follower of
ordering's own events (index.py, `repair`) gives them theirs.
"""

from __future__ import annotations

import logging
import time

from pymongo.database import Database

from services.common.clock import clock
from services.common.mongo import drop_indexes_by_keys

from .index import OrderIndex
from .orders import SCHEMA_VERSION, due_days, queue_key

log = logging.getLogger(__name__)

MIGRATION_ID = "ordering"
# the indexes of schema 1's query shapes (the lists now read the index entries)
OBSOLETE_INDEXES = {
    "orders": [
        [("district_id", 1), ("resident_id", 1), ("_id", -1)],
        [("district_id", 1), ("offered_ids", 1), ("_id", -1)],
        [("district_id", 1), ("current.unit_id", 1), ("queue_key", 1)],
        [("district_id", 1), ("current.path", 1), ("queue_key", 1)],
        [("district_id", 1), ("status", 1), ("current.unit_id", 1)],
        [("district_id", 1), ("origin.path", 1), ("placed_at", 1)],
        [("ack_due_at", 1)], [("warn_at", 1)], [("close_due_at", 1)],
    ],
    "activities": [
        [("district_id", 1), ("unit.unit_id", 1), ("starts_at", 1)],
        [("district_id", 1), ("unit.path", 1), ("starts_at", 1)],
    ],
}


def migrate(db: Database, index: OrderIndex) -> dict | None:
    """Brings the database to SCHEMA_VERSION; what it did, or None when there was nothing to do."""
    if (db["migrations"].find_one({"_id": MIGRATION_ID}) or {}).get("schema", 1) >= SCHEMA_VERSION:
        return None
    began = time.monotonic()
    upgraded = 0
    orders = db["orders"]
    for raw in orders.find({"schema_version": {"$ne": SCHEMA_VERSION}}, {"outbox": 0, "trail": 0}):
        fields = {"queue_key": queue_key(raw), **due_days(raw), "schema_version": SCHEMA_VERSION}
        upgraded += orders.update_one({"_id": raw["_id"], "version": raw["version"]}, {"$set": fields}).modified_count
    dropped = drop_indexes_by_keys(db, OBSOLETE_INDEXES)
    entries = index.backfill()
    done = {"schema": SCHEMA_VERSION, "orders_upgraded": upgraded, "entries_written": entries,
            "indexes_dropped": dropped, "seconds": round(time.monotonic() - began, 1), "at": clock.now()}
    db["migrations"].replace_one({"_id": MIGRATION_ID}, done, upsert=True)
    log.info("migrated ordering's documents to schema %d", SCHEMA_VERSION, extra={"migration": done})
    return done



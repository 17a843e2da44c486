"""Schema migrations of registration's stored documents, run at start before the service serves.

2 — units and residents carry their district number (`seq`, in the order they were created) and
    their list keys (index.py); every volunteer gets its `volunteer_scopes` entries; the indexes
    of the old search shapes, which every write still paid for, are dropped.

Idempotent and resumable: a document is upgraded only while older than index.SCHEMA_VERSION (a
number once given is kept), entries are written only where missing or stale, and the migration
is recorded as done only at the end. Units and residents a replica of the previous release
creates meanwhile are upgraded by the follower of registration's own events (`upgrade`).
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict

from services.common.clock import clock
from services.common.mongo import drop_indexes_by_keys

from . import index
from .models import Resident, Unit, Volunteer

log = logging.getLogger(__name__)

MIGRATION_ID = "registration"
BATCH = 500
OBSOLETE_INDEXES = {
    "residents": [[("district_id", 1), ("name", 1)], [("district_id", 1), ("phone_masked", 1)]],
    "volunteers": [[("district_id", 1), ("unit_ids", 1)]],
}


def migrate(domain) -> dict | None:
    """Brings the database to index.SCHEMA_VERSION; what it did, or None when there was nothing to do."""
    db = Unit._get_db()
    if (db["migrations"].find_one({"_id": MIGRATION_ID}) or {}).get("schema", 1) >= index.SCHEMA_VERSION:
        return None
    began = time.monotonic()
    units = upgrade_units([u["_id"] for u in Unit.collection().find(_older(), {"_id": 1})])
    residents = upgrade_residents([r["_id"] for r in Resident.collection().find(_older(), {"_id": 1})])
    entries, versions = 0, {}
    for raw in Volunteer.collection().find({}, {"version": 1}):
        versions[raw["_id"]] = raw["version"]
        if len(versions) >= BATCH:
            entries += domain.volunteers.repair("volunteer", versions)
            versions = {}
    entries += domain.volunteers.repair("volunteer", versions)
    dropped = drop_indexes_by_keys(db, OBSOLETE_INDEXES)
    done = {"schema": index.SCHEMA_VERSION, "units_upgraded": units, "residents_upgraded": residents,
            "volunteers_indexed": entries, "indexes_dropped": dropped,
            "seconds": round(time.monotonic() - began, 1), "at": clock.now()}
    db["migrations"].replace_one({"_id": MIGRATION_ID}, done, upsert=True)
    log.info("migrated registration's documents to schema %d", index.SCHEMA_VERSION, extra={"migration": done})
    return done


def _older() -> dict:
    return {"schema_version": {"$ne": index.SCHEMA_VERSION}}


def _by_district(ids: list[str], model) -> dict[str, list]:
    """The documents of `ids` still to upgrade, per district, in id (creation) order."""
    found = defaultdict(list)
    for at in range(0, len(ids), BATCH):
        for raw in model.collection().find({"_id": {"$in": ids[at:at + BATCH]}, **_older()}, {"outbox": 0}):
            found[raw["district_id"]].append(model.from_raw(raw))
    return {district: sorted(docs, key=lambda d: d.id) for district, docs in found.items()}


def upgrade_units(ids: list[str]) -> int:
    done = 0
    for district, units in _by_district(ids, Unit).items():
        missing = [u for u in units if u.seq is None]
        first = index.reserve(district, index.UNITS, len(missing)) if missing else 0
        numbers = {u.id: first + i for i, u in enumerate(missing)}
        for unit in units:
            seq = unit.seq if unit.seq is not None else numbers[unit.id]
            done += Unit.collection().update_one(
                {"_id": unit.id, **_older()},
                {"$set": {"seq": seq, "schema_version": index.SCHEMA_VERSION,
                          **index.unit_keys(district, list(unit.path), seq)}}).modified_count
    return done


def upgrade_residents(ids: list[str]) -> int:
    done = 0
    for district, residents in _by_district(ids, Resident).items():
        yards = {u.id: u for u in Unit.objects(id__in=sorted({r.courtyard_id for r in residents}))}
        missing = [r for r in residents if r.seq is None]
        first = index.reserve(district, index.RESIDENTS, len(missing)) if missing else 0
        numbers = {r.id: first + i for i, r in enumerate(missing)}
        for resident in residents:
            seq = resident.seq if resident.seq is not None else numbers[resident.id]
            keys = index.resident_keys(district, list(yards[resident.courtyard_id].path), seq, resident.name,
                                       resident.phone_index, resident.phone_masked, resident.courtyard_id)
            done += Resident.collection().update_one(
                {"_id": resident.id, **_older()},
                {"$set": {"seq": seq, "schema_version": index.SCHEMA_VERSION, **keys}}).modified_count
    return done


def upgrade(aggregate_type: str, versions: dict[str, int]) -> int:
    """For the follower: units and residents a replica of the previous release wrote."""
    if aggregate_type == "unit":
        return upgrade_units(sorted(versions))
    if aggregate_type == "resident":
        return upgrade_residents(sorted(versions))
    return 0

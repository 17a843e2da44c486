"""Ordering's index entries (services/common/listing.py explains the shape): what every list,
the dashboard and the calendar read, instead of the orders and activities themselves.

order_index — one small entry per order (`_id` the order's), at the order's version:
    own   district|holding unit|phase|bucket         a unit's own queue, the claim list
    in<i> district|unit at depth i of the holding unit's path|phase|bucket    a subtree's queue, stats
    mine  district|resident                           my orders
    og<i> district|unit at depth i of the origin courtyard's path|placement day    trends, breaches
    rp    district, until the trend roll-up has counted this version (trends.py)
  phase: `w` waiting for acknowledgement (bucket 0, sorted by deadline), `o` the other open
  statuses, `e` ended; bucket: the China day the order was placed — the queue's sort key
  (orders.queue_key) puts the waiting first, then the rest by age, so buckets run 0, days…
order_tasks — one entry per (order, volunteer it was offered to): k = district|volunteer (my tasks)
activity_index — one entry per activity (`_id` the activity's):
    own   district|organizing unit|day of the start  the calendar of the units on a path
    in<i> district|unit at depth i of its path|day    a subtree's calendar
listing_bounds — per district, the first and last day holding orders or activities: where a
  scan with no window starts and ends.

Entries are written right after the aggregate's own write (`record`); a process dying in
between leaves an entry behind, which the follower of ordering's own events repairs (`repair`).
A list still reads the aggregates of its page and checks them, so a late entry never shows
something the order no longer is.
"""

from __future__ import annotations

import datetime as dt
import logging

from pymongo import ASCENDING, InsertOne
from pymongo.database import Database
from pymongo.errors import BulkWriteError

from services.common.clock import CHINA, as_utc, china_day, clock
from services.common.listing import key, put_if_newer, stale_ids

from .orders import OPEN_STATUSES, queue_key, queue_key_time

log = logging.getLogger(__name__)

WAITING, OPEN, ENDED = "w", "o", "e"
DEPTHS = range(4)  # center, institute, station, courtyard
ORDER_KEYS = ("own", *(f"in{i}" for i in DEPTHS), "mine", *(f"og{i}" for i in DEPTHS), "rp")
ACTIVITY_KEYS = ("own", *(f"in{i}" for i in DEPTHS))
TIMES = ("placed_at", "acknowledged_at", "dispatched_at", "accepted_at", "completed_at", "rated_at")
ORDERS, ACTIVITIES = "orders", "activities"
REPAIR_BATCH = 500


def queue_bucket(qk: str) -> int:
    """0 for an order waiting for acknowledgement, else the China day it was placed."""
    return 0 if qk.startswith("0|") else china_day(queue_key_time(qk))


def order_phase(raw: dict, qk: str) -> str:
    if qk.startswith("0|"):
        return WAITING
    return OPEN if raw["status"] in OPEN_STATUSES else ENDED


def order_entry(raw: dict) -> dict:
    """The index entry of a stored order (its raw document)."""
    district, current, origin = raw["district_id"], raw["current"], raw["origin"]
    qk = queue_key(raw)
    phase, bucket = order_phase(raw, qk), queue_bucket(qk)
    placed_day = china_day(raw["placed_at"])
    waiting = phase == WAITING
    entry = {
        "district_id": district, "status": raw["status"], "level": current["level"], "unit": current["unit_id"],
        "qk": qk, "due": raw.get("ack_due_at") if waiting else None, "resident": raw["resident_id"],
        "skills": list(raw.get("required_skills", ())), "certs": list(raw.get("required_certifications", ())),
        "opath": list(origin["path"]), "breaches": raw.get("sla_breaches", 0), "rating": raw.get("rating", 0),
        **{name: raw.get(name) for name in TIMES},
        "own": key(district, current["unit_id"], phase, bucket),
        "mine": key(district, raw["resident_id"]), "rp": district,
    }
    for depth, unit_id in enumerate(current["path"]):
        entry[f"in{depth}"] = key(district, unit_id, phase, bucket)
    for depth, unit_id in enumerate(origin["path"]):
        entry[f"og{depth}"] = key(district, unit_id, placed_day)
    return entry


def activity_sort_key(raw: dict) -> str:
    """The calendar's order: by start, then id (whole seconds: activities start on them)."""
    return f"{as_utc(raw['starts_at']):%Y%m%d%H%M%S}|{raw['_id']}"


def activity_entry(raw: dict) -> dict:
    district, unit = raw["district_id"], raw["unit"]
    day = china_day(raw["starts_at"])
    entry = {"district_id": district, "status": raw["status"], "unit": unit["unit_id"], "sk": activity_sort_key(raw),
             "own": key(district, unit["unit_id"], day)}
    for depth, unit_id in enumerate(unit["path"]):
        entry[f"in{depth}"] = key(district, unit_id, day)
    return entry


class Bounds:
    """The first and last day of a district's orders or activities (`listing_bounds`). Written
    only when a day falls outside what this process knows is stored: days move forward, so
    that is rare (a seed or a test placing orders in the past)."""

    def __init__(self, db: Database):
        self.collection = db["listing_bounds"]
        self._known: dict[str, tuple[int, int]] = {}

    def widen(self, district_id: str, kind: str, day: int) -> None:
        _id = f"{district_id}|{kind}"
        first, last = self._known.get(_id, (day + 1, day - 1))
        if first <= day <= last:
            return
        stored = self.collection.find_one_and_update(
            {"_id": _id}, {"$min": {"first": day}, "$max": {"last": day}, "$set": {"district_id": district_id}},
            upsert=True, return_document=True)
        self._known[_id] = (stored["first"], stored["last"])

    def days(self, district_id: str, kind: str, today: int) -> range:
        """Every day that may hold something, through today (and later ones already stored)."""
        stored = self.collection.find_one({"_id": f"{district_id}|{kind}"}) or {}
        return range(min(stored.get("first", today), today), max(stored.get("last", today), today) + 1)

    def districts(self, kind: str) -> list[str]:
        return sorted(d["district_id"] for d in self.collection.find({"_id": {"$regex": f"\\|{kind}$"}},
                                                                      {"district_id": 1}))


class OrderIndex:
    def __init__(self, db: Database):
        self.db = db
        self.entries = db["order_index"]
        self.tasks = db["order_tasks"]
        self.activities = db["activity_index"]
        self.orders = db["orders"]
        self.activity_docs = db["activities"]
        self.bounds = Bounds(db)

    def ensure_indexes(self) -> None:
        for name in ORDER_KEYS:
            self.entries.create_index([(name, ASCENDING)])
        self.tasks.create_index([("k", ASCENDING)])
        self.tasks.create_index([("order", ASCENDING)])
        for name in ACTIVITY_KEYS:
            self.activities.create_index([(name, ASCENDING)])

    # ---- orders ----

    def record(self, after: dict, before: dict | None = None) -> None:
        """After an order's write: the volunteers it is offered to first (a list checks each
        order it shows, so a surplus entry is harmless and only a missing one would hide a
        task), then its entry; `before` is the order as it was, None for a new one."""
        offered = list(after.get("offered_ids", ()))
        if before is None or list(before.get("offered_ids", ())) != offered:
            previous = None if before is None else before.get("offered_ids", ())
            self._offer(after["district_id"], after["_id"], offered, previous)
        put_if_newer(self.entries, after["_id"], after["version"], order_entry(after))
        self.bounds.widen(after["district_id"], ORDERS, china_day(after["placed_at"]))

    def _offer(self, district_id: str, order_id: str, offered: list[str], previous) -> None:
        if previous is None:
            previous = [t["vol"] for t in self.tasks.find({"order": order_id}, {"vol": 1})]
        added, dropped = set(offered) - set(previous), set(previous) - set(offered)
        if added:
            try:
                self.tasks.bulk_write([InsertOne({"_id": f"{order_id}|{vid}", "district_id": district_id,
                                                  "order": order_id, "vol": vid, "k": key(district_id, vid)})
                                       for vid in sorted(added)], ordered=False)
            except BulkWriteError as exc:  # there already: a repair after a crash
                if any(e.get("code") != 11000 for e in exc.details.get("writeErrors", [])):
                    raise
        if dropped:
            self.tasks.delete_many({"_id": {"$in": [f"{order_id}|{vid}" for vid in sorted(dropped)]}})

    # ---- activities ----

    def record_activity(self, after: dict) -> None:
        put_if_newer(self.activities, after["_id"], after["version"], activity_entry(after))
        self.bounds.widen(after["district_id"], ACTIVITIES, china_day(after["starts_at"]))

    # ---- repair and migration ----

    def repair(self, aggregate_type: str, versions: dict[str, int]) -> int:
        """Brings the entries of these aggregates (id -> version they reached) up to date."""
        if aggregate_type == "order":
            stale = stale_ids(self.entries, versions)
            for raw in self.orders.find({"_id": {"$in": stale}}, {"outbox": 0, "trail": 0}):
                self.record(raw)
        elif aggregate_type == "activity":
            stale = stale_ids(self.activities, versions)
            for raw in self.activity_docs.find({"_id": {"$in": stale}}, {"outbox": 0, "participants": 0}):
                self.record_activity(raw)
        else:
            return 0
        if stale:
            log.warning("repaired the index entries of %d %ss", len(stale), aggregate_type)
        return len(stale)

    def backfill(self) -> int:
        """Entries for every order and activity without an up-to-date one (a database written
        before the index existed); idempotent, and resumable since it skips what is done."""
        done = 0
        for aggregate_type, source in (("order", self.orders), ("activity", self.activity_docs)):
            batch: dict[str, int] = {}
            for raw in source.find({}, {"version": 1}):
                batch[raw["_id"]] = raw.get("version", 0)
                if len(batch) >= REPAIR_BATCH:
                    done += self.repair(aggregate_type, batch)
                    batch = {}
            done += self.repair(aggregate_type, batch)
        return done


def today() -> int:
    return china_day(clock.now())


def day_start(day: int) -> dt.datetime:
    """The moment China day number `day` begins."""
    return dt.datetime.combine(dt.date(1970, 1, 1) + dt.timedelta(days=day), dt.time(), CHINA)

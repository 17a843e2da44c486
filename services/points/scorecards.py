"""Leaderboards, and the loop's figures of a unit (orders, acknowledgements, activities) that
三级创建 grading (grading.py) measures its loop lines from.

Facts come from ordering's events (own consumer group): one document per order and per
activity, kept at the newest snapshot (aggregate version), and one per acknowledgement. The
figures are computed on request from them.
"""

from __future__ import annotations

import datetime as dt

from pymongo.errors import DuplicateKeyError

from services.common import monthly_rules
from services.common.auth import Principal
from services.common.consumer import ConsumedEvent, Outcome
from services.common.pii import mask_name
from services.common.readmodels import unit_ref_msg, upsert_if_newer
from services.common.validation import Validator
from wenming.ordering.v1 import events_pb2 as ordering
from wenming.ordering.v1 import types_pb2 as ordering_types
from wenming.points.v1 import points_pb2 as pb

from .directory import Directory
from .models import AckFact, ActivityFact, LedgerEntry, OrderFact
from .periods import bounds, month_key, months_so_far, validate_period
from .rulebook import RuleBook

OS = ordering_types.OrderStatus
M = pb.LeaderboardMetric
METRIC_FILTER = {M.LEADERBOARD_METRIC_VERIFIED_HOURS: (pb.BOOK_VERIFIED_MINUTES, pb.ACCOUNT_KIND_VOLUNTEER),
                 M.LEADERBOARD_METRIC_VOLUNTEER_POINTS: (pb.BOOK_POINTS, pb.ACCOUNT_KIND_VOLUNTEER),
                 M.LEADERBOARD_METRIC_RESIDENT_POINTS: (pb.BOOK_POINTS, pb.ACCOUNT_KIND_RESIDENT)}


def _at(ts) -> dt.datetime | None:
    return ts.ToDatetime(dt.UTC) if ts.seconds else None


class Facts:
    """Handlers for the scorecard consumer (kit EventConsumer, one event at a time)."""

    def __init__(self, directory: Directory):
        self.directory = directory
        self.orders = OrderFact._get_collection()
        self.acks = AckFact._get_collection()
        self.activities = ActivityFact._get_collection()

    def handlers(self) -> dict:
        return {**{e.DESCRIPTOR.full_name: self._order for e in monthly_rules.ORDER_EVENTS},
                ordering.OrderAcknowledged.DESCRIPTOR.full_name: self._acknowledged,
                **{e.DESCRIPTOR.full_name: self._activity for e in monthly_rules.ACTIVITY_EVENTS}}

    def _order(self, event: ConsumedEvent) -> Outcome:
        o = event.payload.order
        if not o.order_id:
            raise ValueError("order.order_id is empty")
        placed, completed = _at(o.placed_at), _at(o.completed_at)
        return upsert_if_newer(self.orders, o.order_id, event.envelope.aggregate_version, {
            **monthly_rules.order_facts(o),
            "district_id": event.envelope.district_id, "origin_path": list(o.origin_courtyard.path),
            "status": o.status, "one": 1, "cancelled": int(o.status == OS.ORDER_STATUS_CANCELLED),
            "completion_seconds": int((completed - placed).total_seconds()) if completed and placed else 0,
            "rated": int(o.rating > 0)})

    def _acknowledged(self, event: ConsumedEvent) -> Outcome:
        p: ordering.OrderAcknowledged = event.payload
        if p.seconds_to_acknowledge < 0:
            raise ValueError("seconds_to_acknowledge must not be negative")
        if p.order.current_unit.unit_id == p.unit_id:
            path = list(p.order.current_unit.path)
        else:
            unit = self.directory.registry.unit(event.envelope.district_id, p.unit_id)
            path = list(unit["path"]) if unit else [p.unit_id]
        try:
            self.acks.insert_one({"_id": event.event_id, "district_id": event.envelope.district_id,
                                  "order_id": p.order.order_id, "unit_id": p.unit_id, "unit_path": path,
                                  "seconds": p.seconds_to_acknowledge,
                                  "at": event.envelope.occurred_at.ToDatetime(dt.UTC)})
            acked = Outcome.APPLIED
        except DuplicateKeyError:
            acked = Outcome.DUPLICATE
        return Outcome.APPLIED if Outcome.APPLIED in (self._order(event), acked) else Outcome.DUPLICATE

    def _activity(self, event: ConsumedEvent) -> Outcome:
        a = event.payload.activity
        if not a.activity_id:
            raise ValueError("activity.activity_id is empty")
        starts = _at(a.starts_at)
        path = list(a.unit.path)
        station = path[2] if len(path) > 2 else ""  # center, institute, station, courtyard
        return upsert_if_newer(self.activities, a.activity_id, event.envelope.aggregate_version, {
            **monthly_rules.activity_facts(event.payload),
            "district_id": event.envelope.district_id, "unit_path": path, "title": a.title, "station_id": station,
            "item_code": a.district_item_code,
            "station_month": f"{station}|{month_key(starts)}" if station and starts else ""})


class Boards:
    def __init__(self, directory: Directory, rules: RuleBook, facts: Facts):
        self.directory = directory
        self.rules = rules
        self.facts = facts
        self.entries = LedgerEntry._get_collection()

    def leaderboard(self, principal: Principal, req: pb.GetLeaderboardRequest) -> list[pb.LeaderboardRow]:
        v = Validator()
        unit_id = v.unit_or_own("unit_id", req.unit_id, principal.unit_id)
        v.enum("metric", req.metric, pb.LeaderboardMetric)
        period = validate_period(v, "period", req.period)
        limit = v.int_range("limit", req.limit or 10, 1, 100)
        v.check()
        unit = self.directory.unit(principal.district_id, unit_id)
        book, kind = METRIC_FILTER[req.metric]
        start, end = bounds(period)
        rows = list(self.entries.aggregate([
            {"$match": {"district_id": principal.district_id, "book": book, "account_kind": kind,
                        "unit_path": unit["_id"], "earning": True, "occurred_at": {"$gte": start, "$lt": end}}},
            {"$group": {"_id": "$account_id", "total": {"$sum": "$amount"}}},
            {"$match": {"total": {"$gt": 0}}},
            {"$sort": {"total": -1, "_id": 1}},
            {"$limit": limit}]))
        people = self.directory.volunteers(principal.district_id, [r["_id"] for r in rows]) \
            if kind == pb.ACCOUNT_KIND_VOLUNTEER else {}
        return [pb.LeaderboardRow(rank=i + 1, account_id=r["_id"], value=r["total"],
                                  volunteer_number=people.get(r["_id"], {}).get("number", ""),
                                  display_name=mask_name(people.get(r["_id"], {}).get("name", "")))
                for i, r in enumerate(rows)]

    def measure_loop(self, district: str, unit: dict, period: pb.Period) -> pb.UnitScorecard:
        """The loop's figures of the unit's subtree in the period, which Grading grades (its three
        loop lines, and the deprecated GetUnitScorecard's figures)."""
        start, end = bounds(period)
        card = pb.UnitScorecard(unit=unit_ref_msg(unit), period=period)

        stations = set(self.directory.stations_under(district, unit))
        months = months_so_far(period)
        covered = set()
        for a in self.facts.activities.find({"district_id": district, "unit_path": unit["_id"], "completed": 1,
                                             "starts_at": {"$gte": start, "$lt": end}}, {"station_month": 1}):
            card.activities_completed += 1
            station, _, month = a.get("station_month", "").partition("|")
            if station in stations and month in months:
                covered.add(a["station_month"])
        card.stations, card.station_months = len(stations), len(stations) * len(months)
        card.station_months_with_activity = len(covered)

        completion_seconds = rating_sum = 0
        for o in self.facts.orders.find({"district_id": district, "origin_path": unit["_id"],
                                         "placed_at": {"$gte": start, "$lt": end}},
                                        {"completed": 1, "cancelled": 1, "completion_seconds": 1, "rated": 1,
                                         "rating": 1}):
            card.orders += 1
            card.orders_cancelled += o["cancelled"]
            card.orders_completed += o["completed"]
            completion_seconds += o["completion_seconds"]
            card.ratings += o["rated"]
            rating_sum += o["rating"]
        ack_seconds = 0
        for a in self.facts.acks.find({"district_id": district, "unit_path": unit["_id"],
                                       "at": {"$gte": start, "$lt": end}}, {"seconds": 1}):
            card.acknowledgements += 1
            ack_seconds += a["seconds"]
        card.avg_ack_seconds = ack_seconds // card.acknowledgements if card.acknowledgements else 0
        card.avg_completion_seconds = completion_seconds // card.orders_completed if card.orders_completed else 0
        card.satisfaction_centi = rating_sum * 100 // card.ratings if card.ratings else 0
        return card


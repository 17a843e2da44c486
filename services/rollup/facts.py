"""What the roll-up keeps of each district's events: counts' ingredients only, never a name or a
number of a person — a volunteer is an id with the date they registered and whether they serve
in a unit, an order its month's figures, service hours an entry's minutes.

Each record is what points keeps for the same figure (the kit's read models, scorecards.Facts,
the hours ledger), taken from the same events by the same functions (monthly_rules), so a
district's month here is the month its own GetMonthlyReport gives for its center. Snapshots are
kept at the newest aggregate version and entries once per entry id: a re-delivery changes nothing.
"""

from __future__ import annotations

import datetime as dt
from typing import cast

from pymongo import ASCENDING
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from services.common import monthly_rules
from services.common.consumer import ConsumedEvent, Handler, Outcome
from services.common.mongo import RawDoc
from services.common.readmodels import VOLUNTEER_PROFILE_EVENTS, upsert_if_newer
from wenming.points.v1 import events_pb2 as points_events
from wenming.registration.v1 import events_pb2 as reg_events

from .regions import Regions


def _occurred_at(event: ConsumedEvent) -> dt.datetime:
    return event.envelope.occurred_at.ToDatetime(dt.UTC)


class DistrictFacts:
    def __init__(self, db: Database[RawDoc], regions: Regions):
        self.regions = regions
        self.volunteers = db["volunteers"]
        self.teams = db["teams"]
        self.orders = db["orders"]
        self.activities = db["activities"]
        self.hours = db["hours"]

    def ensure_indexes(self) -> None:
        for collection, dated in ((self.volunteers, "registered_at"), (self.teams, "created_at"),
                                  (self.orders, "placed_at"), (self.activities, "starts_at"),
                                  (self.hours, "occurred_at")):
            collection.create_index([("district_id", ASCENDING), (dated, ASCENDING)])

    def handlers(self) -> dict[str, Handler]:
        return {**{e.DESCRIPTOR.full_name: self._guarded(self._volunteer) for e in VOLUNTEER_PROFILE_EVENTS},
                reg_events.TeamCreated.DESCRIPTOR.full_name: self._guarded(self._team),
                **{e.DESCRIPTOR.full_name: self._guarded(self._order) for e in monthly_rules.ORDER_EVENTS},
                **{e.DESCRIPTOR.full_name: self._guarded(self._activity) for e in monthly_rules.ACTIVITY_EVENTS},
                points_events.PointsCredited.DESCRIPTOR.full_name: self._guarded(self._hours)}

    def _guarded(self, handler: Handler) -> Handler:
        """Only the configured districts' events, each from its own release's topics."""
        def apply(event: ConsumedEvent) -> Outcome:
            if not self.regions.hosts(event.topic, event.envelope.district_id):
                return Outcome.SKIPPED
            return handler(event)
        return apply

    def _volunteer(self, event: ConsumedEvent) -> Outcome:
        p = event.payload.profile  # type: ignore[attr-defined]  # every profile event carries the whole profile
        # points counts a volunteer under the first of their service units inside the subtree: for
        # a district's center, any service unit at all
        registered = {"registered_at": _occurred_at(event)} \
            if isinstance(event.payload, reg_events.VolunteerRegistered) else {}
        return upsert_if_newer(self.volunteers, p.volunteer_id, event.envelope.aggregate_version, {
            **registered, "district_id": event.envelope.district_id, "serving": bool(p.service_units)})

    def _team(self, event: ConsumedEvent) -> Outcome:
        p = event.payload_as(reg_events.TeamCreated)
        return upsert_if_newer(self.teams, p.team_id, event.envelope.aggregate_version, {
            "district_id": event.envelope.district_id, "created_at": _occurred_at(event)})

    def _order(self, event: ConsumedEvent) -> Outcome:
        o = event.payload.order  # type: ignore[attr-defined]  # every order event carries the snapshot
        if not o.order_id:
            raise ValueError("order.order_id is empty")
        return upsert_if_newer(self.orders, o.order_id, event.envelope.aggregate_version, {
            **monthly_rules.order_facts(o), "district_id": event.envelope.district_id})

    def _activity(self, event: ConsumedEvent) -> Outcome:
        payload = cast(monthly_rules.ActivityEvent, event.payload)  # registered for ACTIVITY_EVENTS only
        if not payload.activity.activity_id:
            raise ValueError("activity.activity_id is empty")
        return upsert_if_newer(self.activities, payload.activity.activity_id, event.envelope.aggregate_version, {
            **monthly_rules.activity_facts(payload), "district_id": event.envelope.district_id})

    def _hours(self, event: ConsumedEvent) -> Outcome:
        p = event.payload_as(points_events.PointsCredited)
        if p.book not in monthly_rules.HOURS_BOOKS:
            return Outcome.SKIPPED
        if not p.entry_id or not p.occurred_at.seconds:
            raise ValueError("PointsCredited lacks entry_id or occurred_at")
        try:
            self.hours.insert_one({"_id": p.entry_id, "district_id": event.envelope.district_id,
                                   "volunteer_id": p.account_id, "minutes": p.amount,
                                   "occurred_at": p.occurred_at.ToDatetime(dt.UTC)})
            return Outcome.APPLIED
        except DuplicateKeyError:
            return Outcome.DUPLICATE

"""Points' commendations (表彰/嘉许) as media needs them: which volunteer a commendation is of, its
year, level and title, and whether it was revoked — kept from points' CommendationRecorded /
CommendationRevoked events, so an honour roll entry can name one without calling points.

The handlers are idempotent: a snapshot is applied only when newer (aggregate version)."""

from __future__ import annotations

from pymongo.database import Database

from services.common.consumer import ConsumedEvent, Outcome
from services.common.readmodels import upsert_if_newer
from wenming.points.v1 import events_pb2 as points_events


class CommendationRefs:
    def __init__(self, db: Database):
        self.collection = db["commendation_refs"]

    def get(self, district_id: str, commendation_id: str) -> dict | None:
        return self.collection.find_one({"_id": commendation_id, "district_id": district_id})

    def handlers(self) -> dict:
        return {points_events.CommendationRecorded.DESCRIPTOR.full_name: self._snapshot,
                points_events.CommendationRevoked.DESCRIPTOR.full_name: self._snapshot}

    def _snapshot(self, event: ConsumedEvent) -> Outcome:
        # both events carry the whole commendation
        c = event.payload.commendation  # type: ignore[attr-defined]
        if not c.commendation_id:
            raise ValueError("commendation event without a commendation id")
        return upsert_if_newer(self.collection, c.commendation_id, event.envelope.aggregate_version, {
            "district_id": event.envelope.district_id, "volunteer_id": c.volunteer_id, "year": c.year,
            "level": c.level, "title": c.title, "revoked": c.revoked})

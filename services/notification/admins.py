"""Who administers which unit, kept from registration's AdminAccountCreated events: the admins
of the unit an order waits at are the ones told about it."""

from __future__ import annotations

from pymongo import ASCENDING
from pymongo.database import Database

from services.common.consumer import ConsumedEvent, Outcome
from services.common.readmodels import upsert_if_newer
from wenming.registration.v1 import events_pb2 as reg_events


class UnitAdmins:
    def __init__(self, db: Database):
        self.collection = db["registry_admins"]

    def ensure_indexes(self) -> None:
        self.collection.create_index([("district_id", ASCENDING), ("unit_id", ASCENDING)])

    def handlers(self) -> dict:
        return {reg_events.AdminAccountCreated.DESCRIPTOR.full_name: self._created}

    def _created(self, event: ConsumedEvent) -> Outcome:
        p = event.payload_as(reg_events.AdminAccountCreated)
        if not p.account_id or not p.unit.unit_id:
            raise ValueError("AdminAccountCreated without account or unit")
        return upsert_if_newer(self.collection, p.account_id, event.envelope.aggregate_version,
                               {"district_id": event.envelope.district_id, "unit_id": p.unit.unit_id})

    def of_unit(self, district_id: str, unit_id: str) -> list[str]:
        return sorted(d["_id"] for d in self.collection.find({"district_id": district_id, "unit_id": unit_id},
                                                            {"_id": 1}))

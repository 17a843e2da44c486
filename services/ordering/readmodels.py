"""Read models ordering keeps from other services' events (docs/design.md §2: no reading their databases).

- units, volunteers, teams and residents: the kit's RegistrationReadModels
  (wenming.registration.v1.events); residents for orders placed on a resident's behalf;
- certifications: training's CertificationGranted/Revoked/Expired, for matching. Expiry is also
  checked against the clock at match time, so a certificate past its date stops counting even
  before training announces CertificationExpired.

All handlers are idempotent: a snapshot is stored only when newer than the stored copy.
"""

from __future__ import annotations

import datetime as dt

from pymongo import ASCENDING
from pymongo.database import Database

from services.common.clock import as_utc, clock
from services.common.consumer import ConsumedEvent, Outcome
from services.common.readmodels import RegistrationReadModels, upsert_if_newer
from wenming.common.v1 import common_pb2
from wenming.training.v1 import events_pb2 as training_events

L = common_pb2.UnitLevel
# a unit's level from its position on a path: center, institute, station, courtyard
LEVEL_BY_DEPTH = (L.UNIT_LEVEL_CENTER, L.UNIT_LEVEL_INSTITUTE, L.UNIT_LEVEL_STATION, L.UNIT_LEVEL_COURTYARD)

GRANTED, REVOKED, EXPIRED = "granted", "revoked", "expired"


class Registry:
    """Registration's data as ordering sees it: the kit's units, volunteers, teams and residents."""

    def __init__(self, db: Database):
        self.registration = RegistrationReadModels(db)
        self.units = self.registration.units
        self.volunteers = self.registration.volunteers
        self.resident = self.registration.resident
        self.volunteer = self.registration.volunteer
        self.team = self.registration.team
        self.unit = self.registration.unit

    def ensure_indexes(self) -> None:
        self.registration.ensure_indexes()

    def handlers(self) -> dict:
        return self.registration.handlers()

    def unit_ref(self, district_id: str, path: list[str]) -> dict:
        """The unit at the end of `path` as ordering stores it; the name is filled in once the
        unit's UnitCreated has arrived (the path alone already says the level)."""
        unit_id = path[-1]
        unit = self.unit(district_id, unit_id)
        return {"unit_id": unit_id, "level": LEVEL_BY_DEPTH[len(path) - 1],
                "name": (unit or {}).get("name", ""), "path": list(path)}


class Certifications:
    """Which volunteer holds which certification code, from training's events."""

    def __init__(self, db: Database):
        self.collection = db["certifications"]

    def ensure_indexes(self) -> None:
        self.collection.create_index([("district_id", ASCENDING), ("volunteer_id", ASCENDING), ("code", ASCENDING)])

    def handlers(self) -> dict:
        e = training_events
        return {
            e.CertificationGranted.DESCRIPTOR.full_name: lambda ev: self._store(ev, GRANTED),
            e.CertificationRevoked.DESCRIPTOR.full_name: lambda ev: self._store(ev, REVOKED),
            e.CertificationExpired.DESCRIPTOR.full_name: lambda ev: self._store(ev, EXPIRED),
        }

    def _store(self, event: ConsumedEvent, state: str) -> Outcome:
        cert = event.payload.certification
        if not cert.certification_id or not cert.volunteer_id or not cert.code:
            raise ValueError("certification without id, volunteer or code")
        expires = cert.expires_at.ToDatetime(dt.UTC) if cert.HasField("expires_at") else None
        return upsert_if_newer(self.collection, cert.certification_id, event.envelope.aggregate_version, {
            "district_id": event.envelope.district_id, "volunteer_id": cert.volunteer_id, "code": cert.code,
            "name": cert.name, "expires_at": expires, "state": state})

    def valid_codes(self, district_id: str, volunteer_ids: list[str]) -> dict[str, set[str]]:
        """volunteer id -> the certification codes they hold now (granted, not expired)."""
        now = clock.now()
        held: dict[str, set[str]] = {v: set() for v in volunteer_ids}
        for doc in self.collection.find({"district_id": district_id, "volunteer_id": {"$in": volunteer_ids},
                                         "state": GRANTED}, {"volunteer_id": 1, "code": 1, "expires_at": 1}):
            expires = doc.get("expires_at")
            if expires is None or as_utc(expires) > now:
                held[doc["volunteer_id"]].add(doc["code"])
        return held

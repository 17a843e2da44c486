"""Local copies of registration's units, volunteers, teams and residents, kept from its events.

A service never reads another's database (docs/design.md §2): ordering, points, training and media
each keep these read models in their own database and stay correct while registration is down.
Every handler is idempotent: snapshots are applied only when newer than what is stored
(aggregate version), and deltas only once per version.

    models = RegistrationReadModels(db)
    consumer = EventConsumer(..., topics=[events_topic("registration")], handlers=models.handlers())
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from pymongo import ASCENDING
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from wenming.common.v1 import common_pb2
from wenming.registration.v1 import events_pb2 as reg_events

from .consumer import ConsumedEvent, Outcome
from .mongo import RawDoc


def upsert_if_newer(collection: Collection[RawDoc], _id: str, version: int, fields: RawDoc) -> Outcome:
    """Stores `fields` at `version` unless the stored copy is as new or newer."""
    try:
        collection.update_one({"_id": _id, "version": {"$lt": version}}, {"$set": {**fields, "version": version}},
                              upsert=True)
        return Outcome.APPLIED
    except DuplicateKeyError:  # exists with version >= incoming: a replay or an older event
        return Outcome.DUPLICATE


def unit_ref_doc(ref: common_pb2.UnitRef) -> RawDoc:
    """A UnitRef message as the services store it on their documents."""
    return {"unit_id": ref.unit_id, "level": ref.level, "name": ref.name, "path": list(ref.path)}


def stored_unit_ref(unit: RawDoc) -> RawDoc:
    """The stored form of a UnitRef, from a unit of the read model (its id in `_id`) or a stored ref."""
    return {"unit_id": unit.get("unit_id") or unit["_id"], "level": unit["level"], "name": unit["name"],
            "path": list(unit["path"])}


def unit_ref_msg(unit: RawDoc | None) -> common_pb2.UnitRef:
    """A stored ref or a unit of the read model as messages carry it; empty for none."""
    if not unit:
        return common_pb2.UnitRef()
    ref = stored_unit_ref(unit)
    return common_pb2.UnitRef(unit_id=ref["unit_id"], level=ref["level"], name=ref["name"], path=ref["path"])


VOLUNTEER_PROFILE_EVENTS = (reg_events.VolunteerRegistered, reg_events.VolunteerApproved,
                            reg_events.VolunteerSuspended, reg_events.VolunteerReinstated, reg_events.VolunteerUpdated)


class RegistrationReadModels:
    def __init__(self, db: Database[RawDoc]):
        self.units = db["registry_units"]
        self.volunteers = db["registry_volunteers"]
        self.teams = db["registry_teams"]
        self.residents = db["registry_residents"]

    def ensure_indexes(self) -> None:
        self.units.create_index([("district_id", ASCENDING), ("path", ASCENDING)])
        self.units.create_index([("district_id", ASCENDING), ("parent_id", ASCENDING)])
        self.volunteers.create_index([("district_id", ASCENDING), ("scope", ASCENDING)])
        self.volunteers.create_index([("district_id", ASCENDING), ("skills", ASCENDING)])
        self.teams.create_index([("district_id", ASCENDING), ("unit_path", ASCENDING)])
        self.residents.create_index([("district_id", ASCENDING), ("courtyard.path", ASCENDING)])

    def handlers(self) -> RawDoc:
        e = reg_events
        return {
            e.UnitCreated.DESCRIPTOR.full_name: self._unit_created,
            e.UnitRenamed.DESCRIPTOR.full_name: self._unit_renamed,
            e.UnitMoved.DESCRIPTOR.full_name: self._unit_moved,
            **{m.DESCRIPTOR.full_name: self._volunteer_profile for m in VOLUNTEER_PROFILE_EVENTS},
            e.TeamCreated.DESCRIPTOR.full_name: self._team_created,
            e.TeamMemberAdded.DESCRIPTOR.full_name: self._team_member_added,
            e.TeamMemberRemoved.DESCRIPTOR.full_name: self._team_member_removed,
            e.ResidentRegistered.DESCRIPTOR.full_name: self._resident_registered,
        }

    # ---- queries ----

    def unit(self, district_id: str, unit_id: str) -> RawDoc | None:
        return self.units.find_one({"_id": unit_id, "district_id": district_id})

    def volunteer(self, district_id: str, volunteer_id: str) -> RawDoc | None:
        return self.volunteers.find_one({"_id": volunteer_id, "district_id": district_id})

    def team(self, district_id: str, team_id: str) -> RawDoc | None:
        return self.teams.find_one({"_id": team_id, "district_id": district_id})

    def resident(self, district_id: str, resident_id: str) -> RawDoc | None:
        """{courtyard: {unit_id, level, name, path}} of a resident (群众), for orders placed on
        their behalf and for their points account."""
        return self.residents.find_one({"_id": resident_id, "district_id": district_id})

    # ---- units ----
    #
    # Events of different aggregates travel in different partitions, so a child's UnitCreated can
    # arrive after its parent's UnitMoved, and a VolunteerRegistered after a move of its unit.
    # Paths are therefore never taken from an event alone: a unit's path is its parent's stored
    # path plus itself whenever the parent is known, and every write of a unit repairs what
    # hangs below it (descendant units, volunteers, teams). Whatever the arrival order, the
    # copies converge on registration's tree.

    def _unit_created(self, event: ConsumedEvent) -> Outcome:
        u = event.payload_as(reg_events.UnitCreated).unit
        outcome = upsert_if_newer(self.units, u.unit_id, event.envelope.aggregate_version, {
            "district_id": event.envelope.district_id, "name": u.name, "level": u.level,
            "parent_id": u.parent_unit_id,
            "path": self._path_under_parent(event.envelope.district_id, u.parent_unit_id, u.unit_id, u.path)})
        self._repair_below(event.envelope.district_id, u.unit_id)
        return outcome

    def _unit_renamed(self, event: ConsumedEvent) -> Outcome:
        renamed = event.payload_as(reg_events.UnitRenamed)
        result = self.units.update_one({"_id": renamed.unit_id, "version": {"$lt": event.envelope.aggregate_version}},
                                       {"$set": {"name": renamed.new_name,
                                                 "version": event.envelope.aggregate_version}})
        return Outcome.APPLIED if result.modified_count else Outcome.DUPLICATE

    def _unit_moved(self, event: ConsumedEvent) -> Outcome:
        p = event.payload_as(reg_events.UnitMoved)
        district = event.envelope.district_id
        result = self.units.update_one(
            {"_id": p.unit_id, "version": {"$lt": event.envelope.aggregate_version}},
            {"$set": {"parent_id": p.new_parent_unit_id,
                      "path": self._path_under_parent(district, p.new_parent_unit_id, p.unit_id, p.new_path),
                      "version": event.envelope.aggregate_version}})
        self._repair_below(district, p.unit_id)
        return Outcome.APPLIED if result.modified_count else Outcome.DUPLICATE

    def _path_under_parent(self, district_id: str, parent_id: str, unit_id: str, event_path: Iterable[str]) -> list[str]:
        parent = self.unit(district_id, parent_id) if parent_id else None
        return list(parent["path"]) + [unit_id] if parent else list(event_path)

    def _repair_below(self, district_id: str, unit_id: str) -> None:
        """Descendants' paths from their parents', then the volunteers and teams under them."""
        pending = [unit_id]
        while pending:
            parent = self.unit(district_id, pending.pop())
            if parent is None:
                continue
            for child in self.units.find({"district_id": district_id, "parent_id": parent["_id"]}, {"path": 1}):
                path = list(parent["path"]) + [child["_id"]]
                if path != list(child["path"]):
                    self.units.update_one({"_id": child["_id"]}, {"$set": {"path": path}})
                pending.append(child["_id"])
        for doc in self.volunteers.find({"district_id": district_id, "scope": unit_id}, {"units": 1}):
            units = self._current_refs(district_id, doc["units"])
            if units != doc["units"]:
                self.volunteers.update_one({"_id": doc["_id"]}, {"$set": {"units": units, "scope": _scope(units)}})
        for doc in self.teams.find({"district_id": district_id, "unit_path": unit_id}, {"unit_id": 1, "unit_path": 1}):
            path = self._current_path(district_id, doc["unit_id"], doc["unit_path"])
            if path != list(doc["unit_path"]):
                self.teams.update_one({"_id": doc["_id"]}, {"$set": {"unit_path": path}})
        for doc in self.residents.find({"district_id": district_id, "courtyard.path": unit_id}, {"courtyard": 1}):
            courtyard = self._current_refs(district_id, [doc["courtyard"]])[0]
            if courtyard != doc["courtyard"]:
                self.residents.update_one({"_id": doc["_id"]}, {"$set": {"courtyard": courtyard}})

    def _current_path(self, district_id: str, unit_id: str, fallback: Iterable[str]) -> list[str]:
        unit = self.unit(district_id, unit_id)
        return list(unit["path"]) if unit else list(fallback)

    def _current_refs(self, district_id: str, refs: list[RawDoc]) -> list[RawDoc]:
        return [{**ref, "path": self._current_path(district_id, ref["unit_id"], ref["path"])} for ref in refs]

    # ---- volunteers ----

    def _volunteer_profile(self, event: ConsumedEvent) -> Outcome:
        # every event of VOLUNTEER_PROFILE_EVENTS carries the whole profile
        p = event.payload.profile  # type: ignore[attr-defined]
        units = self._current_refs(event.envelope.district_id, [unit_ref_doc(u) for u in p.service_units])
        # when they registered: a month's report counts the new and those registered by its end
        registered = {"registered_at": _occurred_at(event)} \
            if isinstance(event.payload, reg_events.VolunteerRegistered) else {}
        return upsert_if_newer(self.volunteers, p.volunteer_id, event.envelope.aggregate_version, {**registered,
            "district_id": event.envelope.district_id, "number": p.volunteer_number, "name": p.name,
            "gender": p.gender, "birth_year": p.birth_year, "political_status": p.political_status,
            "skills": list(p.skills), "units": units, "unit_ids": [u["unit_id"] for u in units],
            "scope": _scope(units), "weekdays": list(p.availability.weekdays),
            "periods": list(p.availability.periods), "status": p.status})

    # ---- residents ----

    def _resident_registered(self, event: ConsumedEvent) -> Outcome:
        p = event.payload_as(reg_events.ResidentRegistered)
        courtyard = self._current_refs(event.envelope.district_id, [unit_ref_doc(p.courtyard)])[0]
        return upsert_if_newer(self.residents, p.resident_id, event.envelope.aggregate_version, {
            "district_id": event.envelope.district_id, "courtyard": courtyard})

    # ---- teams ----

    def _team_created(self, event: ConsumedEvent) -> Outcome:
        p = event.payload_as(reg_events.TeamCreated)
        district = event.envelope.district_id
        return upsert_if_newer(self.teams, p.team_id, event.envelope.aggregate_version, {
            "district_id": district, "name": p.name, "level": p.level, "unit_id": p.unit.unit_id,
            "unit_path": self._current_path(district, p.unit.unit_id, p.unit.path), "specialty": p.specialty, "leader_id": p.leader_volunteer_id,
            "member_ids": [p.leader_volunteer_id], "created_at": _occurred_at(event)})

    def _team_member_added(self, event: ConsumedEvent) -> Outcome:
        added = event.payload_as(reg_events.TeamMemberAdded)
        return self._team_delta(event, added.team_id, {"$addToSet": {"member_ids": added.volunteer_id}})

    def _team_member_removed(self, event: ConsumedEvent) -> Outcome:
        removed = event.payload_as(reg_events.TeamMemberRemoved)
        return self._team_delta(event, removed.team_id, {"$pullAll": {"member_ids": [removed.volunteer_id]}})

    def _team_delta(self, event: ConsumedEvent, team_id: str, update: RawDoc) -> Outcome:
        # events of one team arrive in order (same key, same partition); a version at or below
        # the stored one is a replay
        result = self.teams.update_one(
            {"_id": team_id, "version": {"$lt": event.envelope.aggregate_version}},
            {**update, "$set": {"version": event.envelope.aggregate_version}})
        return Outcome.APPLIED if result.modified_count else Outcome.DUPLICATE


def _occurred_at(event: ConsumedEvent) -> dt.datetime | None:
    return event.envelope.occurred_at.ToDatetime(dt.UTC) if event.envelope.occurred_at.seconds else None


def _scope(units: list[RawDoc]) -> list[str]:
    """Every unit id on the paths of the volunteer's service units: `scope: X` finds the
    volunteers serving anywhere in X's subtree."""
    return sorted({unit_id for u in units for unit_id in u["path"]})

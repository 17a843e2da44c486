"""The trainer pool (师资库): who teaches, what, for which units, when; rated by trainees.

A trainer entry is kept by the admins of its owner unit. It serves units (and their subtrees);
it may teach sessions of any unit it serves, above it or below it. Ratings live on the sessions
trainees rated (one per trainee and session) and are summed here on read.
"""

from __future__ import annotations

import builtins
from services.common.auth import Principal, Role, require_role
from services.common.clock import clock
from services.common.errors import AlreadyExists, FailedPrecondition, PermissionDenied
from services.common.events import EventSource
from services.common.ids import decode_page_token, encode_page_token, new_id
from services.common.validation import Validator
from services.common.readmodels import stored_unit_ref, unit_ref_msg
from wenming.common.v1 import common_pb2
from wenming.training.v1 import events_pb2, training_pb2 as pb

from .directory import ACTIVE_VOLUNTEER, Directory
from .models import Session, Trainer

UPDATABLE = ("title", "specialties", "served_unit_ids", "availability", "bio", "active")
MAX_SERVED_UNITS = 20


def snapshot(trainer: Trainer) -> events_pb2.TrainerSnapshot:
    return events_pb2.TrainerSnapshot(
        trainer_id=trainer.id, name=trainer.name, volunteer_id=trainer.volunteer_id,
        specialties=list(trainer.specialties), served_unit_ids=list(trainer.served_unit_ids),
        owner_unit=unit_ref_msg(trainer.owner_unit), active=trainer.active)


def _availability(v: Validator, availability: common_pb2.Availability) -> dict:
    return {"weekdays": v.enums("availability.weekdays", list(availability.weekdays), common_pb2.Weekday, max_count=7),
            "periods": v.enums("availability.periods", list(availability.periods), common_pb2.DayPeriod, max_count=3)}


def _specialties(v: Validator, values) -> list[int]:
    specialties = v.enums("specialties", list(values), common_pb2.Skill, max_count=16)
    if not specialties:
        v.fail("specialties", "needs at least one specialty")
    return specialties


class TrainerPool:
    def __init__(self, directory: Directory, events: EventSource):
        self.directory = directory
        self.events = events

    # ---- reads ----

    def load(self, district_id: str, trainer_id: str) -> Trainer:
        return Trainer.in_district(district_id, trainer_id, "trainer")

    def ratings(self, district_id: str, trainer_ids: list[str]) -> dict[str, tuple[int, int]]:
        """trainer id -> (sum of ratings, number of ratings), from the rated sessions they taught.
        Summed here: FerretDB v1 computes only the first accumulator of a $group."""
        totals: dict[str, tuple[int, int]] = {}
        for row in Session.collection().find({"district_id": district_id, "trainer_id": {"$in": trainer_ids},
                                              "rating_count": {"$gt": 0}},
                                             {"trainer_id": 1, "rating_sum": 1, "rating_count": 1}):
            total, count = totals.get(row["trainer_id"], (0, 0))
            totals[row["trainer_id"]] = (total + row["rating_sum"], count + row["rating_count"])
        return totals

    def get(self, principal: Principal, trainer_id: str) -> Trainer:
        v = Validator()
        trainer_id = v.ident("trainer_id", trainer_id)
        v.check()
        trainer = self.load(principal.district_id, trainer_id)
        is_self = principal.role == Role.ROLE_VOLUNTEER and trainer.volunteer_id == principal.subject
        if not is_self and principal.role not in (Role.ROLE_UNIT_ADMIN, Role.ROLE_SERVICE):
            raise PermissionDenied("the trainer pool is for unit admins and the trainer themself")
        return trainer

    def list(self, principal: Principal, req: pb.ListTrainersRequest) -> tuple[list[Trainer], str]:
        v = Validator()
        unit_id = v.unit_or_own("unit_id", req.unit_id, principal.unit_id)
        v.enum("specialty", req.specialty, common_pb2.Skill, required=False)
        size = v.page_size("page.page_size", req.page.page_size)
        after = decode_page_token(req.page.page_token)
        v.check()
        require_role(principal, Role.ROLE_UNIT_ADMIN, Role.ROLE_SERVICE)
        unit = self.directory.unit(principal.district_id, unit_id)
        query: dict = {"district_id": principal.district_id,
                       "$or": [{"served_unit_ids": {"$in": list(unit["path"])}}, {"served_scope": unit["_id"]}]}
        if req.specialty:
            query["specialties"] = req.specialty
        if not req.include_inactive:
            query["active"] = True
        if after:
            query["_id"] = {"$gt": after}
        found = [Trainer.from_raw(r) for r in Trainer.collection().find(query, {"outbox": 0}).sort("_id", 1)
                 .limit(size + 1)]
        token = encode_page_token(found[size - 1].id) if len(found) > size else ""
        return found[:size], token

    def for_session(self, district_id: str, trainer_id: str, unit: dict) -> Trainer:
        """An active trainer who may teach at `unit`."""
        trainer = self.load(district_id, trainer_id)
        if not trainer.active:
            raise FailedPrecondition(f"trainer {trainer.name} is inactive")
        serves = set(trainer.served_unit_ids) & set(unit["path"]) or unit["_id"] in trainer.served_scope
        if not serves:
            raise FailedPrecondition(f"trainer {trainer.name} does not serve {unit['name']}")
        return trainer

    # ---- writes ----

    def _served_units(self, principal: Principal, unit_ids: builtins.list[str]) -> builtins.list[dict]:
        units = [self.directory.unit(principal.district_id, unit_id) for unit_id in unit_ids]
        for unit in units:
            if not principal.manages(unit["path"]):
                raise PermissionDenied(f"unit {unit['_id']} is outside your unit's subtree")
        return units

    @staticmethod
    def _served_fields(units: builtins.list[dict]) -> dict:
        return {"served_unit_ids": [u["_id"] for u in units], "served_units": [stored_unit_ref(u) for u in units],
                "served_scope": sorted({i for u in units for i in u["path"]})}

    def _event(self, payload, trainer: Trainer, version: int, actor: str) -> dict:
        return self.events.new(payload, district_id=trainer.district_id, aggregate_type="trainer",
                               aggregate_id=trainer.id, version=version, actor_id=actor, occurred_at=clock.now())

    def register(self, principal: Principal, req: pb.RegisterTrainerRequest) -> Trainer:
        v = Validator()
        owner_id = v.unit_or_own("owner_unit_id", req.owner_unit_id, principal.unit_id)
        name = v.text("name", req.name, max_len=30)
        title = v.text("title", req.title, max_len=40, required=False)
        volunteer_id = v.ident("volunteer_id", req.volunteer_id, required=False)
        specialties = _specialties(v, req.specialties)
        served_ids = v.ids("served_unit_ids", list(req.served_unit_ids), min_count=1, max_count=MAX_SERVED_UNITS)
        availability = _availability(v, req.availability)
        bio = v.text("bio", req.bio, max_len=500, required=False, multiline=True)
        v.check()
        owner = self.directory.unit(principal.district_id, owner_id)
        self.directory.require_admin_of_unit(principal, owner)
        served = self._served_units(principal, served_ids)
        if volunteer_id:
            volunteer = self.directory.volunteer(principal.district_id, volunteer_id)
            if volunteer["status"] != ACTIVE_VOLUNTEER:
                raise FailedPrecondition("only an ACTIVE volunteer can be a trainer")
            if Trainer.objects(district_id=principal.district_id, volunteer_id=volunteer_id).first() is not None:
                raise AlreadyExists("this volunteer is already in the trainer pool")
        trainer = Trainer(id=new_id("trn"), district_id=principal.district_id, name=name, title=title,
                          volunteer_id=volunteer_id, specialties=specialties, owner_unit=stored_unit_ref(owner),
                          owner_path=list(owner["path"]), availability=availability, bio=bio, active=True,
                          created_at=clock.now(), **self._served_fields(served))
        trainer.insert([self._event(events_pb2.TrainerRegistered(trainer=snapshot(trainer)), trainer, 1,
                                    principal.subject)])
        return trainer

    def update(self, principal: Principal, req: pb.UpdateTrainerRequest) -> Trainer:
        v = Validator()
        trainer_id = v.ident("trainer_id", req.trainer_id)
        fields = v.update_fields("update_fields", req.update_fields, UPDATABLE)
        changes: dict = {}
        if "title" in fields:
            changes["title"] = v.text("title", req.title, max_len=40, required=False)
        if "specialties" in fields:
            changes["specialties"] = _specialties(v, req.specialties)
        served_ids = None
        if "served_unit_ids" in fields:
            served_ids = v.ids("served_unit_ids", list(req.served_unit_ids), min_count=1, max_count=MAX_SERVED_UNITS)
        if "availability" in fields:
            changes["availability"] = _availability(v, req.availability)
        if "bio" in fields:
            changes["bio"] = v.text("bio", req.bio, max_len=500, required=False, multiline=True)
        if "active" in fields:
            changes["active"] = req.active
        v.check()
        trainer = self.load(principal.district_id, trainer_id)
        self.directory.require_admin_of_unit(principal, {**trainer.owner_unit, "district_id": trainer.district_id},
                                             "trainer")
        if served_ids is not None:
            changes.update(self._served_fields(self._served_units(principal, served_ids)))
        preview = Trainer.from_raw({**trainer.to_mongo().to_dict(), **changes})
        event = self._event(events_pb2.TrainerUpdated(trainer=snapshot(preview), changed_fields=fields), trainer,
                            trainer.version + 1, principal.subject)
        changed = Trainer.change({"_id": trainer.id, "version": trainer.version}, {"$set": changes}, [event])
        if changed is None:
            raise FailedPrecondition("the trainer changed meanwhile; reload and retry")
        return changed

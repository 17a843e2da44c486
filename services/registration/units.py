"""The district's unit tree: 中心 → 实践所 → 实践站 → 小院.

Every unit stores its path (center … itself), so "inside an admin's subtree" is "the admin's
unit id is on the path", and the keys of its path (index.py) so that a subtree is read through
an index on any server. A move rewrites the subtree's paths and keys, and those of the residents
and volunteers under it, after the moved unit's own write (which carries the UnitMoved event);
the `moving` flag makes a crash in between finish on the next start.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from pymongo.errors import DuplicateKeyError

from services.common.auth import Principal, require_manages
from services.common.cache import ReadCache
from services.common.clock import clock
from services.common.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from services.common.events import EventSource
from services.common.ids import decode_page_token, encode_page_token, new_id
from services.common.listing import key, scan
from services.common.pii import PiiVault, mask_phone
from services.common.validation import Validator
from wenming.common.v1 import common_pb2
from wenming.registration.v1 import events_pb2
from wenming.registration.v1 import registration_pb2 as pb

from . import index
from .models import Household, Resident, Team, Unit, Volunteer

log = logging.getLogger(__name__)

L = common_pb2.UnitLevel
LEVEL_ORDER = (L.UNIT_LEVEL_CENTER, L.UNIT_LEVEL_INSTITUTE, L.UNIT_LEVEL_STATION, L.UNIT_LEVEL_COURTYARD)
MAX_NAME = 60


def child_level(level: int) -> int | None:
    i = LEVEL_ORDER.index(level)
    return LEVEL_ORDER[i + 1] if i + 1 < len(LEVEL_ORDER) else None


def unit_ref(unit: Unit) -> common_pb2.UnitRef:
    return common_pb2.UnitRef(unit_id=unit.id, level=unit.level, name=unit.name, path=list(unit.path))


def snapshot(unit: Unit) -> events_pb2.UnitSnapshot:
    return events_pb2.UnitSnapshot(unit_id=unit.id, name=unit.name, level=unit.level, parent_unit_id=unit.parent_id,
                                   path=list(unit.path), head_name=unit.head_name)


@dataclass
class NewUnit:
    name: str
    level: int
    head_name: str
    head_phone: str


class UnitDirectory:
    def __init__(self, vault: PiiVault, events: EventSource, scopes: index.VolunteerScopes):
        self.vault = vault
        self.events = events
        self.scopes = scopes
        # GetUnit's units by id, until an event about the unit says otherwise; a move rewrites its
        # whole subtree's paths with one event, so after one every unit is read again
        self.cache = ReadCache("units", self._load, max_age_seconds=60.0, aggregate_type="unit",
                               forget_all_on=[events_pb2.UnitMoved.DESCRIPTOR.full_name])

    @staticmethod
    def _load(unit_id: str) -> Unit:
        unit = Unit.objects(id=unit_id).first()
        if unit is None:
            raise NotFound("unit", unit_id)  # not kept: the unit may be created a moment later
        return unit

    # ---- reads ----

    def get(self, district_id: str, unit_id: str) -> Unit:
        unit = Unit.objects(id=unit_id, district_id=district_id).first()
        if unit is None:
            raise NotFound("unit", unit_id)
        return unit

    def get_many(self, district_id: str, unit_ids: list[str], field: str) -> list[Unit]:
        """Units in the order asked; NotFound naming the first unknown id."""
        found = {u.id: u for u in Unit.objects(id__in=unit_ids, district_id=district_id)}
        for unit_id in unit_ids:
            if unit_id not in found:
                raise NotFound("unit", unit_id)
        return [found[i] for i in unit_ids]

    def subtree_ids(self, district_id: str, root: Unit) -> list[str] | None:
        """Ids in root's subtree, or None when root is the center (the whole district)."""
        if not root.parent_id:
            return None
        return [u["_id"] for u in self._subtree(district_id, root, {"_id": 1})]

    @staticmethod
    def _cursor(district_id: str, after: str | None) -> int | None:
        """The page token is the last unit shown; the list continues after its number."""
        if after is None:
            return None
        unit = Unit.objects(id=after, district_id=district_id).only("seq").first()
        if unit is None:
            raise InvalidArgument.field("page.page_token", "is not a token returned by this API")
        return unit.seq

    def _subtree(self, district_id: str, root: Unit, projection: dict | None = None):
        """Every unit of root's subtree, root included (through its keys)."""
        depth = len(root.path) - 1
        keys = [key(district_id, root.id, b) for b in index.buckets(district_id, index.UNITS, depth)]
        return Unit.collection().find({f"sub{depth}": {"$in": keys}}, projection)

    def read(self, principal: Principal, unit_id: str) -> Unit:
        v = Validator()
        unit_id = v.ident("unit_id", unit_id)
        v.check()
        unit = self.cache.get(unit_id)
        if unit.district_id != principal.district_id:
            raise NotFound("unit", unit_id)
        return unit

    def list_subtree(self, principal: Principal, root_id: str, level: int, page_size: int, page_token: str):
        v = Validator()
        root_id = v.unit_or_own("root_unit_id", root_id, principal.unit_id)
        v.enum("level", level, common_pb2.UnitLevel, required=False)
        size = v.page_size("page.page_size", page_size)
        after = decode_page_token(page_token)
        v.check()
        root = self.get(principal.district_id, root_id)
        district, depth = principal.district_id, len(root.path) - 1
        cursor = self._cursor(district, after)

        def fetch(chunk: list[int]):
            return Unit.collection().find({f"sub{depth}": {"$in": [key(district, root.id, b) for b in chunk]}},
                                          {"outbox": 0})

        page = scan(fetch, index.buckets(district, index.UNITS, depth), sort_key=lambda u: u["seq"], size=size,
                    after=cursor, bucket_of=lambda seq: index.bucket(seq, depth),
                    accept=lambda u: not level or u["level"] == level)
        units = [Unit.from_raw(raw) for raw in page.entries]
        return units, encode_page_token(units[-1].id) if page.more else ""

    def stats(self, principal: Principal, unit_id: str) -> tuple[Unit, dict[str, int]]:
        """Counts in a unit's subtree, for admins of that subtree."""
        v = Validator()
        unit_id = v.ident("unit_id", unit_id, required=False) or principal.unit_id
        v.check()
        root = self.get(principal.district_id, unit_id)
        require_manages(principal, root.district_id, root.path)
        district = root.district_id
        units = Unit.collection()
        counts = {name: units.count_documents({"district_id": district, "path": root.id, "level": level})
                  for name, level in (("institutes", L.UNIT_LEVEL_INSTITUTE), ("stations", L.UNIT_LEVEL_STATION),
                                      ("courtyards", L.UNIT_LEVEL_COURTYARD))}
        subtree = self.subtree_ids(district, root)
        in_subtree = {} if subtree is None else {"unit_ids": {"$in": subtree}}
        volunteers = Volunteer.collection()
        for name, status in (("volunteers_active", pb.VOLUNTEER_STATUS_ACTIVE),
                             ("volunteers_pending", pb.VOLUNTEER_STATUS_PENDING),
                             ("volunteers_suspended", pb.VOLUNTEER_STATUS_SUSPENDED)):
            counts[name] = volunteers.count_documents({"district_id": district, "status": status, **in_subtree})
        counts["teams"] = Team.collection().count_documents({"district_id": district, "unit_path": root.id})
        counts["residents"] = Resident.collection().count_documents(
            {"district_id": district, **({} if subtree is None else {"courtyard_id": {"$in": subtree}})})
        return root, counts

    # ---- writes ----

    def validate_new(self, v: Validator, name: str, level: int, head_name: str, head_phone: str) -> NewUnit:
        name = v.text("name", name, max_len=MAX_NAME)
        v.enum("level", level, common_pb2.UnitLevel)
        head_name = v.text("head_name", head_name, max_len=50, required=False)
        return NewUnit(name, level, head_name, v.mobile("head_phone", head_phone, required=False))

    def _build(self, district_id: str, parent: Unit | None, spec: NewUnit) -> Unit:
        unit_id = new_id("unit")
        path = (list(parent.path) if parent else []) + [unit_id]
        seq = index.reserve(district_id, index.UNITS)
        unit = Unit(
            id=unit_id, district_id=district_id, name=spec.name, level=spec.level,
            parent_id=parent.id if parent else "", path=path, head_name=spec.head_name, created_at=clock.now(),
            seq=seq, schema_version=index.SCHEMA_VERSION, **index.unit_keys(district_id, path, seq),
        )
        if spec.head_phone:
            unit.head_phone_cipher = self.vault.encrypt(spec.head_phone, district_id=district_id, field="unit.head_phone")
            unit.head_phone_masked = mask_phone(spec.head_phone)
        return unit

    def _insert(self, unit: Unit, actor_id: str) -> Unit:
        event = self.events.new(events_pb2.UnitCreated(unit=snapshot(unit)), district_id=unit.district_id,
                                aggregate_type="unit", aggregate_id=unit.id, version=1, actor_id=actor_id)
        try:
            unit.insert([event])
        except DuplicateKeyError:
            raise AlreadyExists(f"a unit named {unit.name!r} already exists under the same parent") from None
        return unit

    def create_center(self, district_id: str, name: str, head_name: str = "", head_phone: str = "") -> Unit:
        """The root of a new district (bootstrap only; there is no RPC for it)."""
        v = Validator()
        district_id = v.ident("district_id", district_id)
        spec = self.validate_new(v, name, L.UNIT_LEVEL_CENTER, head_name, head_phone)
        v.check()
        existing = Unit.objects(district_id=district_id, parent_id="").first()
        if existing is not None:
            return existing
        return self._insert(self._build(district_id, None, spec), actor_id="")

    def create(self, principal: Principal, parent_id: str, name: str, level: int, head_name: str, head_phone: str) -> Unit:
        v = Validator()
        parent_id = v.ident("parent_unit_id", parent_id)
        spec = self.validate_new(v, name, level, head_name, head_phone)
        v.check()
        parent = self.get(principal.district_id, parent_id)
        require_manages(principal, parent.district_id, parent.path)
        expected = child_level(parent.level)
        if expected is None:
            raise FailedPrecondition("a courtyard (小院) is the lowest level and cannot have child units")
        if level != expected:
            raise InvalidArgument.field(
                "level", f"a child of a {L.Name(parent.level)} must be {L.Name(expected)}, not {L.Name(level)}")
        return self._insert(self._build(principal.district_id, parent, spec), principal.subject)

    def rename(self, principal: Principal, unit_id: str, name: str, expected_version: int) -> Unit:
        v = Validator()
        unit_id = v.ident("unit_id", unit_id)
        name = v.text("name", name, max_len=MAX_NAME)
        if expected_version < 0:
            v.fail("expected_version", "must not be negative")
        v.check()
        unit = self.get(principal.district_id, unit_id)
        require_manages(principal, unit.district_id, unit.path)
        if name == unit.name:
            return unit
        version = expected_version or unit.version
        event = self.events.new(events_pb2.UnitRenamed(unit_id=unit.id, old_name=unit.name, new_name=name),
                                district_id=unit.district_id, aggregate_type="unit", aggregate_id=unit.id,
                                version=version + 1, actor_id=principal.subject)
        try:
            renamed = Unit.change({"_id": unit.id, "version": version}, {"$set": {"name": name}}, [event])
        except DuplicateKeyError:
            raise AlreadyExists(f"a unit named {name!r} already exists under the same parent") from None
        if renamed is None:
            raise FailedPrecondition("the unit changed since you read it (version mismatch); reload and retry")
        self.cache.forget(unit.id)
        return renamed

    def move(self, principal: Principal, unit_id: str, new_parent_id: str) -> Unit:
        v = Validator()
        unit_id = v.ident("unit_id", unit_id)
        new_parent_id = v.ident("new_parent_unit_id", new_parent_id)
        v.check()
        unit = self.get(principal.district_id, unit_id)
        if not unit.parent_id:
            raise FailedPrecondition("the center is the root of the district and cannot move")
        new_parent = self.get(principal.district_id, new_parent_id)
        old_parent = self.get(principal.district_id, unit.parent_id)
        require_manages(principal, unit.district_id, old_parent.path, "unit's current parent")
        require_manages(principal, unit.district_id, new_parent.path, "new parent")
        if child_level(new_parent.level) != unit.level:
            raise InvalidArgument.field(
                "new_parent_unit_id", f"a {L.Name(unit.level)} needs a parent of the level above it, "
                                      f"not a {L.Name(new_parent.level)}")
        if new_parent.id == unit.parent_id:
            return unit
        new_path = list(new_parent.path) + [unit.id]
        event = self.events.new(
            events_pb2.UnitMoved(unit_id=unit.id, old_parent_unit_id=unit.parent_id, new_parent_unit_id=new_parent.id,
                                 old_path=list(unit.path), new_path=new_path),
            district_id=unit.district_id, aggregate_type="unit", aggregate_id=unit.id, version=unit.version + 1,
            actor_id=principal.subject)
        try:
            moved = Unit.change({"_id": unit.id, "version": unit.version},
                                {"$set": {"parent_id": new_parent.id, "path": new_path, "moving": 1,
                                          **index.unit_keys(unit.district_id, new_path, unit.seq)}}, [event])
        except DuplicateKeyError:
            raise AlreadyExists(f"the new parent already has a unit named {unit.name!r}") from None
        if moved is None:
            raise FailedPrecondition("the unit changed since you read it; reload and retry")
        self.finish_move(moved)
        self.cache.forget_all()
        return Unit.objects(id=moved.id).first()

    def finish_move(self, moved: Unit) -> None:
        """Rewrites every descendant's path and keys from its parent's, level by level, then the
        keys of the residents and volunteers under the moved unit (idempotent)."""
        coll = Unit.collection()
        start = LEVEL_ORDER.index(moved.level) + 1
        for level in LEVEL_ORDER[start:]:
            for raw in coll.find({"district_id": moved.district_id, "path": moved.id, "level": level},
                                 {"parent_id": 1, "path": 1, "seq": 1}):
                parent = coll.find_one({"_id": raw["parent_id"]}, {"path": 1})
                path = list(parent["path"]) + [raw["_id"]]
                if path != raw["path"]:
                    coll.update_one({"_id": raw["_id"]}, {"$set": {
                        "path": path, **index.unit_keys(moved.district_id, path, raw["seq"])}})
        self._rekey_people(moved)
        coll.update_one({"_id": moved.id}, {"$set": {"moving": 0}})

    def _rekey_people(self, moved: Unit) -> None:
        district = moved.district_id
        units = {u.id: u for u in Unit.objects(district_id=district, path=moved.id)}
        courtyards = [key(district, u.id) for u in units.values() if u.level == L.UNIT_LEVEL_COURTYARD]
        for raw in Resident.collection().find({"cy": {"$in": courtyards}}, {"outbox": 0}):
            resident = Resident.from_raw(raw)
            keys = index.resident_keys(district, list(units[resident.courtyard_id].path), resident.seq,
                                       resident.name, resident.phone_index, resident.phone_masked, resident.courtyard_id)
            Resident.collection().update_one({"_id": resident.id}, {"$set": keys})
        for raw in Household.collection().find({"uk": {"$in": [key(district, u) for u in units]}},
                                               {"unit_id": 1, "seq": 1}):
            Household.collection().update_one({"_id": raw["_id"]}, {"$set": index.household_keys(
                district, list(units[raw["unit_id"]].path), raw["seq"])})
        serving = {e["vol"] for e in self.scopes.collection.find({"u": key(district, moved.id)}, {"vol": 1})}
        for volunteer in Volunteer.objects(id__in=sorted(serving)):
            self.scopes.record(volunteer, self.get_many(district, list(volunteer.unit_ids), "unit_ids"))

    def resume_interrupted_moves(self) -> int:
        pending = list(Unit.objects(moving=1))
        for unit in pending:
            log.warning("finishing an interrupted move of unit %s", unit.id)
            self.finish_move(unit)
        return len(pending)


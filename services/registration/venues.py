"""Venues (阵地) and their function rooms (功能室): a unit's places, what they hold and when they open.

Admins of the unit's subtree (the unit's own, or above it) create, change and retire them. An
admin whose unit lies under the venue's unit (a courtyard below its station) may see and book
them too (bookings.py): the station's 活动室 serves its courtyards. Admins elsewhere see nothing.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass

from pymongo.errors import DuplicateKeyError

from services.common.auth import Principal, Role, require_district, require_manages, require_role
from services.common.errors import AlreadyExists, FailedPrecondition, PermissionDenied
from services.common.clock import clock
from services.common.events import EventSource
from services.common.ids import decode_page_token, encode_page_token, new_id
from services.common.validation import Validator, valid_id
from wenming.registration.v1 import events_pb2, registration_pb2 as pb

from .models import AdminAccount, Room, Unit, Venue
from .room_schedule import validate_opening_hours
from .translate import room_msg, venue_msg
from .units import UnitDirectory, unit_ref

ACTIVE, RETIRED = pb.VENUE_STATUS_ACTIVE, pb.VENUE_STATUS_RETIRED
VENUE_FIELDS = ("name", "kind", "address", "manager_account_ids")
ROOM_FIELDS = ("name", "kind", "capacity", "opening_hours")
MAX_MANAGERS = 10
MAX_CAPACITY = 10_000
AGGREGATE_TYPES = {Venue: "venue", Room: "room"}


@dataclass
class Place:
    """A venue with its unit (as it is now), what every rule about the venue reads."""

    venue: Venue
    unit: Unit


def may_use(principal: Principal, unit: Unit) -> bool:
    """Admins who manage the unit, and admins of units below it (the station's rooms serve its
    courtyards); services too."""
    return principal.manages(unit.path) or (principal.is_admin and unit.id in principal.unit_path)


def require_use(principal: Principal, place: Place) -> None:
    require_district(principal, place.venue.district_id)
    if not may_use(principal, place.unit):
        raise PermissionDenied("这个阵地不在您的单位范围内")


def _room_fields(v: Validator, req, fields) -> dict:
    """The room fields of `req` named in `fields`, validated, as stored."""
    changes: dict = {}
    if "name" in fields:
        changes["name"] = v.text("name", req.name, max_len=60)
    if "kind" in fields:
        changes["kind"] = v.enum("kind", req.kind, pb.RoomKind)
    if "capacity" in fields:
        changes["capacity"] = v.int_range("capacity", req.capacity, 1, MAX_CAPACITY)
    if "opening_hours" in fields:
        changes["opening_hours"] = [{"weekday": p.weekday, "opens": p.opens, "closes": p.closes}
                                    for p in validate_opening_hours(v, "opening_hours", req.opening_hours)]
    return changes


class VenueRegistry:
    def __init__(self, units: UnitDirectory, events: EventSource):
        self.units = units
        self.events = events

    # ---- reading ----

    def place(self, district_id: str, venue_id: str) -> Place:
        venue = Venue.in_district(district_id, venue_id, "venue")
        return Place(venue, self.units.get(district_id, venue.unit_id))

    def _managed_place(self, principal: Principal, venue_id: str, field: str = "venue_id") -> Place:
        place = self.place(principal.district_id, valid_id(field, venue_id))
        require_manages(principal, place.venue.district_id, place.unit.path, "venue")
        return place

    def room(self, principal: Principal, room_id: str) -> tuple[Room, Place]:
        room = Room.in_district(principal.district_id, valid_id("room_id", room_id), "room")
        return room, self.place(room.district_id, room.venue_id)

    def rooms_of(self, venue_ids: list[str]) -> dict[str, list[Room]]:
        found: dict[str, list[Room]] = {venue_id: [] for venue_id in venue_ids}
        for raw in Room.collection().find({"venue_id": {"$in": venue_ids}}, {"outbox": 0}).sort("_id", 1):
            found[raw["venue_id"]].append(Room.from_raw(raw))
        return found

    def get(self, principal: Principal, venue_id: str) -> Place:
        require_role(principal, Role.ROLE_UNIT_ADMIN, Role.ROLE_SERVICE)
        place = self.place(principal.district_id, valid_id("venue_id", venue_id))
        require_use(principal, place)
        return place

    def subtree_query(self, principal: Principal, unit_id: str) -> tuple[Unit, dict]:
        """The subtree's root (managed by the caller) and the filter of what belongs to its units."""
        v = Validator()
        unit_id = v.ident("unit_id", unit_id, required=False) or principal.unit_id
        v.check()
        root = self.units.get(principal.district_id, unit_id)
        require_manages(principal, root.district_id, root.path)
        unit_ids = self.units.subtree_ids(root.district_id, root)
        query: dict = {"district_id": root.district_id}
        if unit_ids is not None:  # None: the center, the whole district
            query["unit_id"] = {"$in": unit_ids}
        return root, query

    def list(self, principal: Principal, req: pb.ListVenuesRequest) -> tuple[list[Place], str]:
        v = Validator()
        size = v.page_size("page.page_size", req.page.page_size)
        after = decode_page_token(req.page.page_token)
        v.check()
        _, query = self.subtree_query(principal, req.unit_id)
        if not req.include_retired:
            query["status"] = ACTIVE
        if after:
            query["_id"] = {"$gt": after}
        venues = [Venue.from_raw(r) for r in
                  Venue.collection().find(query, {"outbox": 0}).sort("_id", 1).limit(size + 1)]
        next_token = encode_page_token(venues[size - 1].id) if len(venues) > size else ""
        units = {u.id: u for u in self.units.get_many(principal.district_id,
                                                       list({v.unit_id for v in venues[:size]}), "unit_id")}
        return [Place(venue, units[venue.unit_id]) for venue in venues[:size]], next_token

    # ---- venues ----

    def _managers(self, v: Validator, unit_id: str, account_ids: builtins.list[str]) -> builtins.list[dict]:
        """The named admin accounts as stored managers; each must be an admin of the venue's own unit."""
        accounts = {a.id: a for a in AdminAccount.objects(id__in=account_ids)}
        managers = []
        for i, account_id in enumerate(account_ids):
            account = accounts.get(account_id)
            if account is None or account.unit_id != unit_id:
                v.fail(f"manager_account_ids[{i}]", "不是这个单位的管理员账号")
            else:
                managers.append({"account_id": account.id, "display_name": account.display_name})
        return managers

    def _event(self, payload, aggregate: Venue | Room, version: int, principal: Principal) -> dict:
        return self.events.new(payload, district_id=aggregate.district_id, aggregate_type=AGGREGATE_TYPES[type(aggregate)],
                               aggregate_id=aggregate.id, version=version, actor_id=principal.subject)

    def _change(self, principal: Principal, current, changes: dict, expected_version: int, payload_of, what: str):
        """One version-guarded write of `changes` (as stored) to `current`, a Venue or a Room, with
        the event `payload_of(the aggregate as changed)`; `what` names it in refusals (阵地, 功能室)."""
        model = type(current)
        if expected_version and expected_version != current.version:
            raise FailedPrecondition(f"{what}已被他人修改（版本 {current.version}），请刷新后再试")
        changed = model.from_raw({**current.to_mongo().to_dict(), **changes})
        changed.version = current.version + 1
        event = self._event(payload_of(changed), current, changed.version, principal)
        try:
            saved = model.change({"_id": current.id, "version": current.version}, {"$set": changes}, [event])
        except DuplicateKeyError:
            raise AlreadyExists(f"已有同名的{what}") from None
        if saved is None:
            raise FailedPrecondition(f"{what}已被他人修改，请刷新后再试")
        return saved

    def create(self, principal: Principal, req: pb.CreateVenueRequest) -> Place:
        v = Validator()
        unit_id = v.ident("unit_id", req.unit_id)
        name = v.text("name", req.name, max_len=60)
        kind = v.enum("kind", req.kind, pb.VenueKind)
        address = v.text("address", req.address, max_len=120, required=False)
        manager_ids = v.ids("manager_account_ids", list(req.manager_account_ids), max_count=MAX_MANAGERS)
        v.check()
        unit = self.units.get(principal.district_id, unit_id)
        require_manages(principal, unit.district_id, unit.path)
        managers = self._managers(v, unit.id, manager_ids)
        v.check()
        venue = Venue.from_raw({"_id": new_id("venue"), "district_id": unit.district_id, "unit_id": unit.id,
                                "name": name, "kind": kind, "address": address, "managers": managers,
                                "status": ACTIVE, "created_at": clock.now()})
        event = self._event(events_pb2.VenueCreated(venue=venue_msg(venue, unit, [])), venue, 1, principal)
        try:
            venue.insert([event])
        except DuplicateKeyError:
            raise AlreadyExists(f"这个单位已有名为“{name}”的阵地") from None
        return Place(venue, unit)

    def update(self, principal: Principal, req: pb.UpdateVenueRequest) -> Place:
        v = Validator()
        fields = v.update_fields("update_fields", req.update_fields, VENUE_FIELDS)
        changes: dict = {}
        if "name" in fields:
            changes["name"] = v.text("name", req.name, max_len=60)
        if "kind" in fields:
            changes["kind"] = v.enum("kind", req.kind, pb.VenueKind)
        if "address" in fields:
            changes["address"] = v.text("address", req.address, max_len=120, required=False)
        manager_ids = v.ids("manager_account_ids", list(req.manager_account_ids), max_count=MAX_MANAGERS)
        v.check()
        place = self._managed_place(principal, req.venue_id)
        if "manager_account_ids" in fields:
            changes["managers"] = self._managers(v, place.unit.id, manager_ids)
            v.check()
        return self._change_place(principal, place, changes, req.expected_version,
                                  lambda msg: events_pb2.VenueUpdated(venue=msg, changed_fields=fields))

    def retire(self, principal: Principal, venue_id: str) -> Place:
        place = self._managed_place(principal, venue_id)
        if place.venue.status == RETIRED:
            raise FailedPrecondition("这个阵地已经停用")
        return self._change_place(principal, place, {"status": RETIRED}, 0,
                                  lambda msg: events_pb2.VenueRetired(venue=msg))

    def _change_place(self, principal: Principal, place: Place, changes: dict, expected_version: int,
                      payload) -> Place:
        venue = self._change(principal, place.venue, changes, expected_version,
                             lambda changed: payload(venue_msg(changed, place.unit, [])), "阵地")
        return Place(venue, place.unit)

    # ---- rooms ----

    def create_room(self, principal: Principal, req: pb.CreateRoomRequest) -> Room:
        v = Validator()
        venue_id = v.ident("venue_id", req.venue_id)
        changes = _room_fields(v, req, ROOM_FIELDS)
        v.check()
        place = self._managed_place(principal, venue_id)
        if place.venue.status == RETIRED:
            raise FailedPrecondition("这个阵地已经停用，不能再添加功能室")
        room = Room.from_raw({"_id": new_id("room"), "district_id": place.venue.district_id,
                              "venue_id": place.venue.id, "unit_id": place.unit.id, "status": ACTIVE,
                              "created_at": clock.now(), **changes})
        event = self._event(events_pb2.RoomCreated(room=room_msg(room), unit=unit_ref(place.unit)), room, 1, principal)
        try:
            room.insert([event])
        except DuplicateKeyError:
            raise AlreadyExists(f"这个阵地已有名为“{room.name}”的功能室") from None
        return room

    def update_room(self, principal: Principal, req: pb.UpdateRoomRequest) -> Room:
        v = Validator()
        fields = v.update_fields("update_fields", req.update_fields, ROOM_FIELDS)
        changes = _room_fields(v, req, fields)
        v.check()
        room, place = self._managed_room(principal, req.room_id)
        return self._change(principal, room, changes, req.expected_version,
                            lambda changed: events_pb2.RoomUpdated(room=room_msg(changed), unit=unit_ref(place.unit),
                                                                   changed_fields=fields), "功能室")

    def retire_room(self, principal: Principal, room_id: str) -> Room:
        room, place = self._managed_room(principal, room_id)
        if room.status == RETIRED:
            raise FailedPrecondition("这个功能室已经停用")
        return self._change(principal, room, {"status": RETIRED}, 0,
                            lambda changed: events_pb2.RoomRetired(room=room_msg(changed), unit=unit_ref(place.unit)),
                            "功能室")

    def _managed_room(self, principal: Principal, room_id: str) -> tuple[Room, Place]:
        room, place = self.room(principal, room_id)
        require_manages(principal, room.district_id, place.unit.path, "room")
        return room, place

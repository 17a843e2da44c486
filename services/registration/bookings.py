"""Room bookings (功能室预约) and the usage they add up to.

No double booking, also when two people book at the same moment: every booking of one room on
one China day lives in ONE document, RoomDay `"<room id>:<YYYY-MM-DD>"`. A booking reads that
document, checks the new range against its bookings, and writes the new list back only if the
document's `version` is still the one it read (or, for the day's first booking, inserts the
document, whose `_id` is unique). Of two overlapping requests one write finds the version moved
(or the `_id` taken), reads again and now sees the other booking: refused. Why this shape: the
database has no multi-document transactions and FerretDB no partial or expression indexes, but a
conditional single-document update is atomic on it (the local build is patched for it, see
tests/kit/test_database_atomicity.py) and a unique `_id` holds everywhere. A booking lies inside
one day, so one document always holds everything it can collide with.

A booking's id is `bkg_<ULID>` with the ULID's time set to the booking's start, so the id (with
its room) names the day document holding it, and ids sort by when bookings start.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from prometheus_client import Counter
from pymongo.errors import DuplicateKeyError

from services.common.auth import Principal, Role, require_role
from services.common.clock import as_utc, clock
from services.common.errors import FailedPrecondition, NotFound, PermissionDenied
from services.common.events import EventSource
from services.common.ids import ulid, ulid_millis
from services.common.retry import LOST_RACE, Retry, until_written
from services.common.validation import Validator
from wenming.registration.v1 import events_pb2, registration_pb2 as pb

from .models import Booking, Room, RoomDay, Unit, Venue
from .room_schedule import (
    MonthUsage, Period, booked_minutes, china_midnight_after, china_time, day_of, fits_opening_hours, month_of,
    months_between, opening_hours_text, overlaps, parse_day, parse_month, WEEKDAY_NAMES,
)
from .translate import booking_msg
from .venues import ACTIVE, Place, VenueRegistry, require_use

BOOKED, CANCELLED = pb.ROOM_BOOKING_STATUS_BOOKED, pb.ROOM_BOOKING_STATUS_CANCELLED
BOOKING_PREFIX = "bkg_"
CONFLICTS = Retry(max_attempts=8, backoff=LOST_RACE)  # version races lost in a row before ABORTED
MAX_DAYS_AHEAD = 366
MAX_LISTED_DAYS = 31
MAX_USAGE_MONTHS = 12

BOOKINGS = Counter("registration_room_bookings_total", "Room bookings made, refused and cancelled",
                   ["outcome"])  # booked, overlapping, outside_hours, cancelled
BOOKING_RACES = Counter("registration_room_booking_races_total",
                        "Room-day writes that lost to a concurrent one and were tried again")


@dataclass
class RoomUsage:
    room: Room
    venue: Venue
    unit: Unit
    months: dict[str, MonthUsage]


@dataclass
class Usage:
    months: list[str]
    rooms: list[RoomUsage] = field(default_factory=list)
    units: list[tuple[Unit, dict[str, MonthUsage]]] = field(default_factory=list)
    total: dict[str, MonthUsage] = field(default_factory=dict)


def _by_month(months: list[str]) -> dict[str, MonthUsage]:
    return {month: MonthUsage() for month in months}


class RoomBookings:
    def __init__(self, venues: VenueRegistry, events: EventSource):
        self.venues = venues
        self.events = events

    def _usable_room(self, principal: Principal, room_id: str) -> tuple[Room, Place]:
        require_role(principal, Role.ROLE_UNIT_ADMIN, Role.ROLE_SERVICE)
        room, place = self.venues.room(principal, room_id)
        require_use(principal, place)
        return room, place

    def book(self, principal: Principal, req: pb.BookRoomRequest) -> tuple[Booking, Room, Place]:
        v = Validator()
        room_id = v.ident("room_id", req.room_id)
        starts = v.timestamp("starts_at", req)
        ends = v.timestamp("ends_at", req)
        purpose = v.text("purpose", req.purpose, max_len=100)
        activity_id = v.ident("activity_id", req.activity_id, required=False)
        session_id = v.ident("training_session_id", req.training_session_id, required=False)
        if starts and ends:
            _check_range(v, starts, ends, clock.now())
        v.check()
        room, place = self._usable_room(principal, room_id)
        if room.status != ACTIVE or place.venue.status != ACTIVE:
            raise FailedPrecondition("这个功能室已停用，不能预约")
        periods = [Period(p.weekday, p.opens, p.closes) for p in room.opening_hours]
        if not fits_opening_hours(periods, starts, ends):
            BOOKINGS.labels("outside_hours").inc()
            weekday = china_time(starts).isoweekday()
            raise FailedPrecondition(f"不在开放时间内：周{WEEKDAY_NAMES[weekday - 1]}开放 "
                                     f"{opening_hours_text(periods, weekday)}")
        booking = Booking(booking_id=BOOKING_PREFIX + ulid(int(starts.timestamp() * 1000)), starts_at=starts,
                          ends_at=ends, purpose=purpose, activity_id=activity_id, training_session_id=session_id,
                          booked_by=principal.subject, booked_by_name=principal.display_name,
                          booked_at=clock.now(), status=BOOKED)

        def add(bookings: list[Booking]) -> tuple[list[Booking], Booking]:
            for other in bookings:
                if other.status == BOOKED and overlaps(starts, ends, other.starts_at, other.ends_at):
                    BOOKINGS.labels("overlapping").inc()
                    raise FailedPrecondition(
                        f"该时段已被预约：{_clock(other.starts_at)}–{_clock(other.ends_at)} {other.purpose}")
            return [*bookings, booking], booking

        self._write_day(principal, room, place, day_of(starts), add, events_pb2.RoomBooked)
        BOOKINGS.labels("booked").inc()
        return booking, room, place

    def cancel(self, principal: Principal, req: pb.CancelRoomBookingRequest) -> tuple[Booking, Room, Place]:
        v = Validator()
        room_id = v.ident("room_id", req.room_id)
        starts_ms = _booking_start_ms(v, req.booking_id)
        reason = v.text("reason", req.reason, max_len=100, required=False)
        v.check()
        room, place = self._usable_room(principal, room_id)
        now = clock.now()
        day = day_of(dt.datetime.fromtimestamp(starts_ms / 1000, dt.UTC))

        def cancel(bookings: list[Booking]) -> tuple[list[Booking], Booking]:
            found = next((b for b in bookings if b.booking_id == req.booking_id), None)
            if found is None:
                raise NotFound("booking", req.booking_id)
            if principal.subject != found.booked_by and not principal.manages(place.unit.path):
                raise PermissionDenied("只有预约人或阵地所属单位的管理员可以取消这个预约")
            if found.status == CANCELLED:
                raise FailedPrecondition("这个预约已经取消")
            if as_utc(found.starts_at) <= now:
                raise FailedPrecondition("预约已经开始，不能取消")
            found.status, found.cancelled_at = CANCELLED, now
            found.cancelled_by, found.cancel_reason = principal.subject, reason
            return bookings, found

        cancelled = self._write_day(principal, room, place, day, cancel, events_pb2.RoomBookingCancelled)
        BOOKINGS.labels("cancelled").inc()
        return cancelled, room, place

    def _write_day(self, principal: Principal, room: Room, place: Place, day: str,
                   change: Callable[[list[Booking]], tuple[list[Booking], Booking]], payload_type) -> Booking:
        """Applies `change` (the day's bookings as stored → the new list and the booking it made
        or changed; it raises a refusal) and writes the list guarded by the version read: a lost
        race reads again and checks again. Returns the booking, as stored."""
        day_id = f"{room.id}:{day}"

        def attempt() -> Booking | None:
            raw = RoomDay.collection().find_one({"_id": day_id}, {"outbox": 0})
            stored = [Booking._from_son(b) for b in raw["bookings"]] if raw else []
            bookings, booking = change(stored)
            version = raw["version"] + 1 if raw else 1
            event = self.events.new(payload_type(booking=booking_msg(booking, room, place.unit)),
                                    district_id=room.district_id, aggregate_type="room_day", aggregate_id=day_id,
                                    version=version, actor_id=principal.subject)
            documents = [b.to_mongo().to_dict() for b in bookings]
            if raw is None:
                try:
                    RoomDay.insert_raw({"_id": day_id, "district_id": room.district_id, "room_id": room.id,
                                        "venue_id": room.venue_id, "unit_id": room.unit_id, "day": day,
                                        "month_key": f"{room.id}:{month_of(day)}", "bookings": documents}, [event])
                    return booking
                except DuplicateKeyError:
                    pass  # the day's first booking raced another: read the document it wrote
            elif RoomDay.change({"_id": day_id, "version": raw["version"]}, {"$set": {"bookings": documents}},
                                [event]) is not None:
                return booking
            BOOKING_RACES.inc()
            return None

        return until_written(CONFLICTS, attempt, "预约的人较多，请稍后再试")

    def list(self, principal: Principal, req: pb.ListRoomBookingsRequest) -> tuple[list[Booking], Room, Place]:
        v = Validator()
        room_id = v.ident("room_id", req.room_id)
        first = parse_day(v, "from_date", req.from_date)
        days = v.int_range("days", req.days or 7, 1, MAX_LISTED_DAYS)
        v.check()
        room, place = self._usable_room(principal, room_id)
        ids = [f"{room.id}:{first + dt.timedelta(days=i)}" for i in range(days)]
        bookings = [Booking._from_son(b) for raw in RoomDay.collection().find({"_id": {"$in": ids}}, {"bookings": 1})
                    for b in raw["bookings"]]
        return sorted(bookings, key=lambda b: b.starts_at), room, place

    def usage(self, principal: Principal, req: pb.GetVenueUsageRequest) -> Usage:
        require_role(principal, Role.ROLE_UNIT_ADMIN, Role.ROLE_SERVICE)
        v = Validator()
        first = parse_month(v, "from_month", req.from_month)
        last = parse_month(v, "to_month", req.to_month) if req.to_month else first
        months = months_between(first, last) if first and last else []
        if first and last and not 1 <= len(months) <= MAX_USAGE_MONTHS:
            v.fail("to_month", f"应在起始月份之后，且最多 {MAX_USAGE_MONTHS} 个月")
        v.check()
        _, query = self.venues.subtree_query(principal, req.unit_id)
        rooms = [Room.from_raw(r) for r in Room.collection().find(query, {"outbox": 0}).sort("_id", 1)]
        venues = {r["_id"]: Venue.from_raw(r) for r in Venue.collection().find(
            {"_id": {"$in": list({room.venue_id for room in rooms})}}, {"outbox": 0})}
        units = {u.id: u for u in self.venues.units.get_many(principal.district_id,
                                                             list({room.unit_id for room in rooms}), "unit_id")}
        usage = Usage(months=months, total=_by_month(months))
        per_room = {room.id: RoomUsage(room, venues[room.venue_id], units[room.unit_id], _by_month(months))
                    for room in rooms}
        keys = [f"{room.id}:{month}" for room in rooms for month in months]
        for raw in RoomDay.collection().find({"month_key": {"$in": keys}}, {"room_id": 1, "day": 1, "bookings": 1}):
            month = per_room[raw["room_id"]].months[month_of(raw["day"])]
            for b in raw["bookings"]:
                if b["status"] == BOOKED:
                    month.add(MonthUsage(1, booked_minutes(b["starts_at"], b["ends_at"])))
        per_unit: dict[str, dict[str, MonthUsage]] = {}
        for room_usage in per_room.values():
            unit_months = per_unit.setdefault(room_usage.unit.id, _by_month(months))
            for month, figures in room_usage.months.items():
                unit_months[month].add(figures)
                usage.total[month].add(figures)
        usage.rooms = list(per_room.values())
        usage.units = [(units[unit_id], figures) for unit_id, figures in per_unit.items()]
        return usage


def _clock(moment: dt.datetime) -> str:
    return china_time(moment).strftime("%H:%M")


def _check_range(v: Validator, starts: dt.datetime, ends: dt.datetime, now: dt.datetime) -> None:
    """Whole minutes, the end after the start on the same China day, not past, within a year."""
    for name, moment in (("starts_at", starts), ("ends_at", ends)):
        if moment.second or moment.microsecond:
            v.fail(name, "应为整分钟")
    if ends <= starts:
        v.fail("ends_at", "结束时间应晚于开始时间")
    elif ends > china_midnight_after(starts):
        v.fail("ends_at", "预约不能跨天")
    if starts < now:
        v.fail("starts_at", "不能预约已经过去的时间")
    elif starts > now + dt.timedelta(days=MAX_DAYS_AHEAD):
        v.fail("starts_at", f"最多提前 {MAX_DAYS_AHEAD} 天预约")


def _booking_start_ms(v: Validator, booking_id: str) -> int:
    """The start a booking id carries (module docstring); 0 after recording a violation."""
    value = (booking_id or "").strip()
    millis = ulid_millis(value[len(BOOKING_PREFIX):]) if value.startswith(BOOKING_PREFIX) else None
    if millis is None:
        v.fail("booking_id", "不是有效的预约编号")
        return 0
    return millis

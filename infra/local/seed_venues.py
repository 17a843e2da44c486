"""Seeds the demo district's venues (阵地) through registration's API: every institute's 实践所 and
every station's 实践站 with their function rooms and opening hours, a square (广场) at the first
station, each managed by its unit's admin, and the coming week's bookings of the first stations'
rooms (some by their courtyards), so the app shows schedules and this month's usage.

Called by seed_demo.seed() right after registration was seeded (venues are registration's).
"""

from __future__ import annotations

import datetime as dt

from google.protobuf.timestamp_pb2 import Timestamp

from services.common.clock import CHINA
from wenming.registration.v1 import registration_pb2 as reg

WORKDAYS, SATURDAY = range(1, 6), 6
ROOM_HOURS = ([(d, 9 * 60, 12 * 60) for d in WORKDAYS] + [(d, 14 * 60 + 30, 18 * 60) for d in WORKDAYS]
              + [(SATURDAY, 9 * 60, 12 * 60)])
SQUARE_HOURS = [(d, 7 * 60, 21 * 60) for d in range(1, 8)]
INSTITUTE_ROOMS = [("培训室", reg.ROOM_KIND_TRAINING, 60), ("图书室", reg.ROOM_KIND_LIBRARY, 20),
                   ("活动室", reg.ROOM_KIND_ACTIVITY, 40)]
STATION_ROOMS = [("活动室", reg.ROOM_KIND_ACTIVITY, 30), ("图书室", reg.ROOM_KIND_LIBRARY, 15)]
# (the n-th coming workday, China hour from, hour to, purpose) booked in the first stations' 活动室
WEEK_PLAN = [(0, 9, 11, "理论宣讲：身边人讲身边事"), (0, 15, 17, "小院议事会"), (1, 10, 12, "老年人智能手机培训"),
             (2, 15, 18, "亲子阅读"), (3, 9, 12, "健康义诊")]
BOOKED_STATIONS = 3


def _hours(periods) -> list[reg.OpeningPeriod]:
    return [reg.OpeningPeriod(weekday=d, opens_minute=o, closes_minute=c) for d, o, c in periods]


def _at(day: dt.date, hour: int) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(dt.datetime(day.year, day.month, day.day, hour, tzinfo=CHINA).astimezone(dt.UTC))
    return ts


def _venue(stub, admin, admin_id: str, unit: reg.Unit, name: str, kind: int, rooms, hours) -> list[reg.Room]:
    venue = stub.CreateVenue(reg.CreateVenueRequest(unit_id=unit.unit_id, name=name, kind=kind,
                                                    address=f"{unit.name}院内", manager_account_ids=[admin_id]),
                             metadata=admin, timeout=10).venue
    return [stub.CreateRoom(reg.CreateRoomRequest(venue_id=venue.venue_id, name=room, kind=room_kind,
                                                  capacity=capacity, opening_hours=_hours(hours)),
                            metadata=admin, timeout=10).room
            for room, room_kind, capacity in rooms]


def seed(ctx) -> None:
    stub = ctx.registration.stub
    rooms_made = booked = 0
    today = dt.datetime.now(CHINA).date()
    workdays = [day for day in (today + dt.timedelta(days=i) for i in range(1, 10)) if day.isoweekday() in WORKDAYS]
    for units, kind, rooms in ((ctx.institutes, reg.VENUE_KIND_PRACTICE_INSTITUTE, INSTITUTE_ROOMS),
                               (ctx.stations, reg.VENUE_KIND_PRACTICE_STATION, STATION_ROOMS)):
        for n, unit in enumerate(units):
            admin, claims = ctx.registration.login(reg.PRINCIPAL_KIND_ADMIN, ctx.admin_logins[unit.unit_id])
            made = _venue(stub, admin, claims.subject, unit, unit.name, kind, rooms, ROOM_HOURS)
            rooms_made += len(made)
            if kind == reg.VENUE_KIND_PRACTICE_STATION and n == 0:
                rooms_made += len(_venue(stub, admin, claims.subject, unit, f"{unit.name.replace('新时代文明实践站', '')}"
                                         "文化广场", reg.VENUE_KIND_SQUARE, [("广场舞台", reg.ROOM_KIND_OTHER, 300)],
                                         SQUARE_HOURS))
            if kind != reg.VENUE_KIND_PRACTICE_STATION or n >= BOOKED_STATIONS:
                continue
            courtyard = next(c for c in ctx.courtyards if c.parent_unit_id == unit.unit_id)
            yard_admin = ctx.login_admin(courtyard.unit_id)
            for i, (workday, start, end, purpose) in enumerate(WEEK_PLAN):
                day = workdays[workday]
                stub.BookRoom(reg.BookRoomRequest(room_id=made[0].room_id, starts_at=_at(day, start),
                                                  ends_at=_at(day, end), purpose=purpose),
                              metadata=yard_admin if i % 2 else admin, timeout=10)
                booked += 1
    print(f"  venues: {len(ctx.institutes) + len(ctx.stations) + 1} with {rooms_made} rooms, {booked} bookings "
          "in the coming days", flush=True)

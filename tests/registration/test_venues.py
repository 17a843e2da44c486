"""Venues (阵地), function rooms and bookings over real gRPC against the real broker and database:
the flow with its events, no double booking under concurrent requests, the refusals."""

from __future__ import annotations

import datetime as dt
import threading

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from services.common.clock import CHINA
from tests.support.grpc_helpers import bearer, expect_error
from wenming.registration.v1 import registration_pb2 as reg

EVERY_DAY_8_TO_20 = [reg.OpeningPeriod(weekday=d, opens_minute=8 * 60, closes_minute=20 * 60) for d in range(1, 8)]


def at(day: dt.date, hour: int, minute: int = 0) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=CHINA).astimezone(dt.UTC))
    return ts


def future_day(days: int = 3) -> dt.date:
    return (dt.datetime.now(CHINA) + dt.timedelta(days=days)).date()


@pytest.fixture
def station_room(district):
    """The small tree, a venue of station 0 managed by its admin, and its 活动室 open 08:00–20:00."""
    tree = district.small_tree()
    station = tree.stations[0]
    token = tree.admins[station.unit_id]
    admin_id = district.stub.VerifyToken(reg.VerifyTokenRequest(access_token=token), timeout=5).claims.subject
    venue = district.stub.CreateVenue(reg.CreateVenueRequest(
        unit_id=station.unit_id, name="新时代文明实践站", kind=reg.VENUE_KIND_PRACTICE_STATION, address="幸福路1号",
        manager_account_ids=[admin_id]), metadata=bearer(token), timeout=10).venue
    room = district.stub.CreateRoom(reg.CreateRoomRequest(
        venue_id=venue.venue_id, name="活动室", kind=reg.ROOM_KIND_ACTIVITY, capacity=40,
        opening_hours=EVERY_DAY_8_TO_20), metadata=bearer(token), timeout=10).room
    return tree, venue, room, token


def book(district, token: str, room_id: str, day: dt.date, start: int, end: int, purpose: str = "道德讲堂"):
    return district.stub.BookRoom(reg.BookRoomRequest(room_id=room_id, starts_at=at(day, start),
                                                      ends_at=at(day, end), purpose=purpose),
                                  metadata=bearer(token), timeout=10).booking


def test_a_station_books_its_room_sees_the_usage_and_cancels(district, registration_events, station_room):
    tree, venue, room, token = station_room
    assert venue.managers[0].display_name.endswith("管理员") and venue.unit.unit_id == tree.stations[0].unit_id
    day = future_day()
    first = book(district, token, room.room_id, day, 9, 11)
    # the courtyard below the station books the station's room too
    yard = tree.admins[tree.courtyards[0].unit_id]
    second = district.stub.BookRoom(reg.BookRoomRequest(
        room_id=room.room_id, starts_at=at(day, 14), ends_at=at(day, 16), purpose="小院议事",
        activity_id="act_01JD3Q8Y6P4M2T5R7W9X0Z1B3C"), metadata=bearer(yard), timeout=10).booking
    assert second.activity_id == "act_01JD3Q8Y6P4M2T5R7W9X0Z1B3C"

    listed = district.stub.ListRoomBookings(reg.ListRoomBookingsRequest(
        room_id=room.room_id, from_date=day.isoformat(), days=1), metadata=bearer(token), timeout=10).bookings
    assert [b.booking_id for b in listed] == [first.booking_id, second.booking_id]

    month = day.strftime("%Y-%m")
    usage = district.stub.GetVenueUsage(reg.GetVenueUsageRequest(unit_id=tree.institute.unit_id, from_month=month),
                                        metadata=bearer(tree.admins[tree.institute.unit_id]), timeout=10)
    assert [(m.month, m.bookings, m.booked_minutes) for m in usage.total] == [(month, 2, 240)]
    assert [(r.room_id, r.months[0].booked_minutes) for r in usage.rooms] == [(room.room_id, 240)]
    assert [u.unit.unit_id for u in usage.units] == [tree.stations[0].unit_id]

    # the courtyard may cancel its own booking, not the station's
    with expect_error(grpc.StatusCode.PERMISSION_DENIED):
        district.stub.CancelRoomBooking(reg.CancelRoomBookingRequest(room_id=room.room_id,
                                                                     booking_id=first.booking_id),
                                        metadata=bearer(yard), timeout=10)
    cancelled = district.stub.CancelRoomBooking(reg.CancelRoomBookingRequest(
        room_id=room.room_id, booking_id=second.booking_id, reason="改期"), metadata=bearer(yard), timeout=10).booking
    assert cancelled.status == reg.ROOM_BOOKING_STATUS_CANCELLED and cancelled.cancel_reason == "改期"
    usage = district.stub.GetVenueUsage(reg.GetVenueUsageRequest(from_month=month), metadata=bearer(token), timeout=10)
    assert [(m.bookings, m.booked_minutes) for m in usage.total] == [(1, 120)]
    # the freed slot can be booked again
    book(district, token, room.room_id, day, 15, 16)

    types = [envelope.event_type.rsplit(".", 1)[1] for envelope, _, _ in
             registration_events.events(district.id, at_least=1, timeout=20, settle=2.0)]
    assert {"VenueCreated", "RoomCreated", "RoomBooked", "RoomBookingCancelled"} <= set(types)
    assert types.count("RoomBooked") == 3 and types.count("RoomBookingCancelled") == 1


def book_at_once(district, token: str, room_id: str, day: dt.date, ranges: list[tuple[int, int]]) -> list[str]:
    """Books every (hour from, hour to) from its own thread, all released together; the outcomes."""
    outcomes: list[str] = []
    barrier = threading.Barrier(len(ranges))

    def attempt(start: int, end: int) -> None:
        barrier.wait()
        try:
            book(district, token, room_id, day, start, end)
            outcomes.append("booked")
        except grpc.RpcError as error:
            outcomes.append(error.code().name)

    threads = [threading.Thread(target=attempt, args=hours) for hours in ranges]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return outcomes


def test_overlapping_bookings_made_at_once_leave_exactly_one(district, station_room):
    _, _, room, token = station_room
    day = future_day(4)
    # eight requests that all hold 10:00–11:00
    outcomes = book_at_once(district, token, room.room_id, day,
                            [(9, 11), (10, 12), (10, 11), (9, 12), (10, 13), (9, 13), (10, 14), (8, 12)])
    assert sorted(outcomes) == ["FAILED_PRECONDITION"] * 7 + ["booked"], outcomes
    stored = district.stub.ListRoomBookings(reg.ListRoomBookingsRequest(room_id=room.room_id,
                                                                        from_date=day.isoformat(), days=1),
                                            metadata=bearer(token), timeout=10).bookings
    assert len(stored) == 1


def test_bookings_that_do_not_overlap_all_succeed_when_made_at_once(district, station_room):
    """Each lost version race reads the day again and succeeds when nothing overlaps."""
    _, _, room, token = station_room
    hours = [(h, h + 1) for h in range(8, 16)]
    assert book_at_once(district, token, room.room_id, future_day(5), hours) == ["booked"] * len(hours)


def test_refusals_name_the_field_or_say_why(district, station_room):
    tree, venue, room, token = station_room
    day = future_day()
    book(district, token, room.room_id, day, 9, 11)
    with expect_error(grpc.StatusCode.FAILED_PRECONDITION, contains="该时段已被预约"):
        book(district, token, room.room_id, day, 10, 12)
    with expect_error(grpc.StatusCode.FAILED_PRECONDITION, contains="不在开放时间内"):
        book(district, token, room.room_id, day, 6, 9)
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field="ends_at"):
        book(district, token, room.room_id, day, 12, 11)
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field="starts_at"):
        book(district, token, room.room_id, future_day(-2), 9, 10)
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field="purpose"):
        book(district, token, room.room_id, day, 13, 14, purpose="")
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field="opening_hours[0].closes_minute"):
        district.stub.CreateRoom(reg.CreateRoomRequest(
            venue_id=venue.venue_id, name="图书室", kind=reg.ROOM_KIND_LIBRARY, capacity=10,
            opening_hours=[reg.OpeningPeriod(weekday=1, opens_minute=600, closes_minute=500)]),
            metadata=bearer(token), timeout=10)
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field="manager_account_ids[0]"):
        # the institute's admin is no admin of the station
        institute_admin = district.stub.VerifyToken(reg.VerifyTokenRequest(
            access_token=tree.admins[tree.institute.unit_id]), timeout=5).claims.subject
        district.stub.UpdateVenue(reg.UpdateVenueRequest(venue_id=venue.venue_id,
                                                         update_fields=["manager_account_ids"],
                                                         manager_account_ids=[institute_admin]),
                                  metadata=bearer(token), timeout=10)
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field="booking_id"):
        district.stub.CancelRoomBooking(reg.CancelRoomBookingRequest(room_id=room.room_id, booking_id="bkg_x"),
                                        metadata=bearer(token), timeout=10)
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field="to_month"):
        district.stub.GetVenueUsage(reg.GetVenueUsageRequest(from_month="2026-01", to_month="2027-06"),
                                    metadata=bearer(token), timeout=10)
    # a retired room takes no new booking but keeps the ones it has
    district.stub.RetireRoom(reg.RetireRoomRequest(room_id=room.room_id), metadata=bearer(token), timeout=10)
    with expect_error(grpc.StatusCode.FAILED_PRECONDITION, contains="已停用"):
        book(district, token, room.room_id, day, 14, 15)
    assert len(district.stub.ListRoomBookings(reg.ListRoomBookingsRequest(
        room_id=room.room_id, from_date=day.isoformat()), metadata=bearer(token), timeout=10).bookings) == 1


def test_an_admin_of_another_station_is_refused_everything(district, station_room):
    tree, venue, room, token = station_room
    booking = book(district, token, room.room_id, future_day(), 9, 10)
    other_station = bearer(tree.admins[tree.stations[1].unit_id])
    other_yard = bearer(tree.admins[tree.courtyards[2].unit_id])  # under station 1
    calls = [
        lambda m: district.stub.GetVenue(reg.GetVenueRequest(venue_id=venue.venue_id), metadata=m, timeout=5),
        lambda m: district.stub.UpdateVenue(reg.UpdateVenueRequest(venue_id=venue.venue_id, update_fields=["name"],
                                                                   name="改名"), metadata=m, timeout=5),
        lambda m: district.stub.RetireVenue(reg.RetireVenueRequest(venue_id=venue.venue_id), metadata=m, timeout=5),
        lambda m: district.stub.ListVenues(reg.ListVenuesRequest(unit_id=tree.stations[0].unit_id), metadata=m,
                                           timeout=5),
        lambda m: district.stub.CreateRoom(reg.CreateRoomRequest(venue_id=venue.venue_id, name="x",
                                                                 kind=reg.ROOM_KIND_OTHER, capacity=1,
                                                                 opening_hours=EVERY_DAY_8_TO_20),
                                           metadata=m, timeout=5),
        lambda m: district.stub.UpdateRoom(reg.UpdateRoomRequest(room_id=room.room_id, update_fields=["capacity"],
                                                                 capacity=2), metadata=m, timeout=5),
        lambda m: district.stub.RetireRoom(reg.RetireRoomRequest(room_id=room.room_id), metadata=m, timeout=5),
        lambda m: district.stub.BookRoom(reg.BookRoomRequest(room_id=room.room_id, starts_at=at(future_day(), 12),
                                                             ends_at=at(future_day(), 13), purpose="越权"),
                                         metadata=m, timeout=5),
        lambda m: district.stub.CancelRoomBooking(reg.CancelRoomBookingRequest(room_id=room.room_id,
                                                                               booking_id=booking.booking_id),
                                                  metadata=m, timeout=5),
        lambda m: district.stub.ListRoomBookings(reg.ListRoomBookingsRequest(room_id=room.room_id,
                                                                             from_date=future_day().isoformat()),
                                                 metadata=m, timeout=5),
        lambda m: district.stub.GetVenueUsage(reg.GetVenueUsageRequest(unit_id=tree.stations[0].unit_id,
                                                                       from_month="2026-01"), metadata=m, timeout=5),
    ]
    for metadata in (other_station, other_yard):
        for call in calls:
            with expect_error(grpc.StatusCode.PERMISSION_DENIED):
                call(metadata)
    # and their own lists do not show it
    assert not district.stub.ListVenues(reg.ListVenuesRequest(), metadata=other_station, timeout=5).venues
    # the institute above manages it
    institute = bearer(tree.admins[tree.institute.unit_id])
    listed = district.stub.ListVenues(reg.ListVenuesRequest(), metadata=institute, timeout=5).venues
    assert [(v.venue_id, [r.room_id for r in v.rooms]) for v in listed] == [(venue.venue_id, [room.room_id])]

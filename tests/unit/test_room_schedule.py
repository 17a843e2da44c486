"""A room's time rules (services/registration/room_schedule.py), without a database."""

from __future__ import annotations

import datetime as dt

from services.common.clock import CHINA
from services.common.validation import Validator
from services.registration.room_schedule import (
    Period, fits_opening_hours, months_between, opening_hours_text, overlaps, parse_day, parse_month,
    validate_opening_hours,
)
from wenming.registration.v1 import registration_pb2 as pb

WEEKDAYS_9_TO_12 = [Period(d, 9 * 60, 12 * 60) for d in range(1, 6)]


def china(day: int, hour: int, minute: int = 0) -> dt.datetime:
    """2026-03-<day> (the 2nd is a Monday) at hour:minute China time."""
    return dt.datetime(2026, 3, day, hour, minute, tzinfo=CHINA)


def test_a_booking_must_lie_in_one_period_of_its_china_weekday():
    assert fits_opening_hours(WEEKDAYS_9_TO_12, china(2, 9), china(2, 12))
    assert not fits_opening_hours(WEEKDAYS_9_TO_12, china(2, 8, 30), china(2, 10))
    assert not fits_opening_hours(WEEKDAYS_9_TO_12, china(2, 11), china(2, 12, 1))
    assert not fits_opening_hours(WEEKDAYS_9_TO_12, china(7, 9), china(7, 10))  # Saturday: closed


def test_china_time_decides_the_weekday_not_utc():
    # Monday 07:30 China time is Sunday 23:30 UTC
    monday_morning = [Period(1, 7 * 60, 8 * 60)]
    assert fits_opening_hours(monday_morning, china(2, 7, 30).astimezone(dt.UTC), china(2, 8).astimezone(dt.UTC))


def test_a_range_past_midnight_fits_no_period():
    all_day = [Period(d, 0, 24 * 60) for d in range(1, 8)]
    assert fits_opening_hours(all_day, china(2, 22), china(3, 0))
    assert not fits_opening_hours(all_day, china(2, 22), china(3, 1))


def test_ranges_are_half_open():
    assert not overlaps(china(2, 9), china(2, 10), china(2, 10), china(2, 11))
    assert overlaps(china(2, 9), china(2, 10, 1), china(2, 10), china(2, 11))
    assert overlaps(china(2, 9), china(2, 12), china(2, 10), china(2, 11))


def test_opening_hours_are_checked_by_position_and_overlap():
    v = Validator()
    periods = [pb.OpeningPeriod(weekday=1, opens_minute=540, closes_minute=720),
               pb.OpeningPeriod(weekday=8, opens_minute=540, closes_minute=720),
               pb.OpeningPeriod(weekday=2, opens_minute=720, closes_minute=540),
               pb.OpeningPeriod(weekday=1, opens_minute=600, closes_minute=660)]
    valid = validate_opening_hours(v, "opening_hours", periods)
    fields = [field for field, _ in v.violations]
    assert fields == ["opening_hours[1].weekday", "opening_hours[2].closes_minute", "opening_hours[3]"]
    assert valid == [Period(1, 540, 720), Period(1, 600, 660)]
    empty = Validator()
    validate_opening_hours(empty, "opening_hours", [])
    assert [field for field, _ in empty.violations] == ["opening_hours"]


def test_opening_hours_read_as_people_write_them():
    periods = [Period(1, 540, 720), Period(1, 840, 1080)]
    assert opening_hours_text(periods, 1) == "09:00–12:00、14:00–18:00"
    assert opening_hours_text(periods, 6) == "不开放"


def test_months_and_days_parse_or_name_the_field():
    v = Validator()
    assert parse_month(v, "from_month", "2026-11") == (2026, 11)
    assert parse_month(v, "to_month", "2026-13") is None
    assert parse_day(v, "from_date", "2026-02-30") is None
    assert parse_day(v, "from_date", "2026-02-28") == dt.date(2026, 2, 28)
    assert [field for field, _ in v.violations] == ["to_month", "from_date"]
    assert months_between((2025, 11), (2026, 2)) == ["2025-11", "2025-12", "2026-01", "2026-02"]
    assert months_between((2026, 2), (2026, 1)) == []

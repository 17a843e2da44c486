"""Calendar periods in China time (UTC+8), as leaderboards and scorecards count them."""

from __future__ import annotations

import datetime as dt

from services.common.clock import CHINA, clock
from services.common.validation import Validator
from wenming.points.v1 import points_pb2 as pb



def validate_period(v: Validator, field: str, period: pb.Period) -> pb.Period:
    """The period asked for; year 0 means the current year (China time)."""
    year = period.year or clock.now().astimezone(CHINA).year
    v.int_range(f"{field}.year", year, 2000, 2100)
    v.int_range(f"{field}.month", period.month, 0, 12)
    return pb.Period(year=year, month=period.month)


def bounds(period: pb.Period) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) of the period in UTC."""
    if period.month:
        start = dt.datetime(period.year, period.month, 1, tzinfo=CHINA)
        end = dt.datetime(period.year + (period.month == 12), period.month % 12 + 1, 1, tzinfo=CHINA)
    else:
        start = dt.datetime(period.year, 1, 1, tzinfo=CHINA)
        end = dt.datetime(period.year + 1, 1, 1, tzinfo=CHINA)
    return start.astimezone(dt.UTC), end.astimezone(dt.UTC)


def month_key(at: dt.datetime) -> str:
    return at.astimezone(CHINA).strftime("%Y-%m")


def months_so_far(period: pb.Period) -> list[str]:
    """The months of the period that have begun (future months are not held against a unit)."""
    now = clock.now().astimezone(CHINA)
    months = [period.month] if period.month else list(range(1, 13))
    return [f"{period.year}-{m:02d}" for m in months if (period.year, m) <= (now.year, now.month)]

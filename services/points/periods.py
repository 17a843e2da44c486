"""Calendar periods in China time (UTC+8), as leaderboards and scorecards count them."""

from __future__ import annotations

import datetime as dt

from services.common.clock import CHINA, clock
from services.common.validation import Validator
from wenming.points.v1 import points_pb2 as pb



def validate_period(v: Validator, field: str, period: pb.Period) -> pb.Period:
    """The period asked for (a month, a quarter or a year); year 0 means the current year (China
    time)."""
    year = period.year or clock.now().astimezone(CHINA).year
    # messages a person reads are Simplified Chinese (docs/map.md): the export command line prints them as they come
    if not 2000 <= year <= 2100:
        v.fail(f"{field}.year", f"年份应在 2000 至 2100 之间（收到 {year}）")
    if not 0 <= period.month <= 12:
        v.fail(f"{field}.month", f"月份应为 1 至 12，全季或全年为 0（收到 {period.month}）")
    if not 0 <= period.quarter <= 4:
        v.fail(f"{field}.quarter", f"季度应为 1 至 4，按月或全年为 0（收到 {period.quarter}）")
    if period.month and period.quarter:
        v.fail(f"{field}.quarter", "与月份只能选一个")
    return pb.Period(year=year, month=period.month, quarter=period.quarter)


def months_of(period: pb.Period) -> list[int]:
    if period.month:
        return [period.month]
    if period.quarter:
        return [3 * period.quarter - 2, 3 * period.quarter - 1, 3 * period.quarter]
    return list(range(1, 13))


def bounds(period: pb.Period) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) of the period in UTC."""
    months = months_of(period)
    start = dt.datetime(period.year, months[0], 1, tzinfo=CHINA)
    end = dt.datetime(period.year + (months[-1] == 12), months[-1] % 12 + 1, 1, tzinfo=CHINA)
    return start.astimezone(dt.UTC), end.astimezone(dt.UTC)


def month_key(at: dt.datetime) -> str:
    return at.astimezone(CHINA).strftime("%Y-%m")


def months_so_far(period: pb.Period) -> list[str]:
    """The months of the period that have begun (future months are not held against a unit)."""
    now = clock.now().astimezone(CHINA)
    return [f"{period.year}-{m:02d}" for m in months_of(period) if (period.year, m) <= (now.year, now.month)]

"""The rules of a room's time, without a database: opening hours, overlaps, a booking's day and
the monthly usage sums. Every time people see is China time (a room opens at 09:00 in 凉州区,
whatever the server's zone).

A booking lies inside one China day and inside one opening period of that day's weekday.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from services.common.clock import CHINA, as_utc
from services.common.validation import Validator

MINUTES_PER_DAY = 24 * 60
MAX_PERIODS = 21  # three a day is plenty for any room
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
WEEKDAY_NAMES = "一二三四五六日"


@dataclass(frozen=True)
class Period:
    weekday: int  # 1 Monday … 7 Sunday
    opens: int    # minutes after midnight
    closes: int


def clock_time(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def validate_opening_hours(v: Validator, field: str, periods: Sequence) -> list[Period]:
    """`periods` (messages with weekday, opens_minute, closes_minute) as Periods, sorted; every
    bad one and every two that overlap on a weekday is recorded on `v` by its position."""
    if not periods:
        v.fail(field, "至少需要一个开放时段")
    if len(periods) > MAX_PERIODS:
        v.fail(field, f"开放时段最多 {MAX_PERIODS} 个")
    out: list[tuple[int, Period]] = []
    for i, p in enumerate(periods):
        where = f"{field}[{i}]"
        if not 1 <= p.weekday <= 7:
            v.fail(f"{where}.weekday", "应为 1（周一）到 7（周日）")
        elif not 0 <= p.opens_minute < p.closes_minute <= MINUTES_PER_DAY:
            v.fail(f"{where}.closes_minute", "关门时间应晚于开门时间，且都在当天之内")
        else:
            out.append((i, Period(p.weekday, p.opens_minute, p.closes_minute)))
    out.sort(key=lambda item: (item[1].weekday, item[1].opens))
    for (_, before), (i, after) in itertools.pairwise(out):
        if before.weekday == after.weekday and after.opens < before.closes:
            v.fail(f"{field}[{i}]", f"与周{WEEKDAY_NAMES[after.weekday - 1]}的另一个开放时段重叠")
    return [period for _, period in out]


def china_time(moment: dt.datetime) -> dt.datetime:
    return as_utc(moment).astimezone(CHINA)


def day_of(moment: dt.datetime) -> str:
    """The China day holding `moment`, YYYY-MM-DD."""
    return china_time(moment).date().isoformat()


def fits_opening_hours(periods: Iterable[Period], starts: dt.datetime, ends: dt.datetime) -> bool:
    """True when [starts, ends) lies inside one opening period of starts' China day (a range past
    midnight ends after minute 1440, so no period holds it)."""
    start = china_time(starts)
    first = start.hour * 60 + start.minute
    last = first + booked_minutes(starts, ends)
    return any(p.weekday == start.isoweekday() and p.opens <= first and last <= p.closes for p in periods)


def china_midnight_after(moment: dt.datetime) -> dt.datetime:
    """The end of moment's China day."""
    local = china_time(moment)
    return dt.datetime.combine(local.date() + dt.timedelta(days=1), dt.time(), tzinfo=CHINA)


def opening_hours_text(periods: Iterable[Period], weekday: int) -> str:
    """e.g. "09:00–12:00、14:00–18:00", or "不开放", for a refusal people read."""
    spans = [f"{clock_time(p.opens)}–{clock_time(p.closes)}" for p in periods if p.weekday == weekday]
    return "、".join(spans) or "不开放"


def overlaps(a_starts: dt.datetime, a_ends: dt.datetime, b_starts: dt.datetime, b_ends: dt.datetime) -> bool:
    """Half-open ranges: one that ends at 10:00 and one that starts at 10:00 do not overlap."""
    return as_utc(a_starts) < as_utc(b_ends) and as_utc(b_starts) < as_utc(a_ends)


def month_of(day: str) -> str:
    return day[:7]


def parse_day(v: Validator, field: str, value: str) -> dt.date | None:
    value = (value or "").strip()
    try:
        if _DAY.match(value):
            return dt.date.fromisoformat(value)
    except ValueError:
        pass
    v.fail(field, "应为日期，例如 2026-03-08")
    return None


def parse_month(v: Validator, field: str, value: str) -> tuple[int, int] | None:
    value = (value or "").strip()
    if not _MONTH.match(value):
        v.fail(field, "应为年月，例如 2026-03")
        return None
    return int(value[:4]), int(value[5:])


def months_between(first: tuple[int, int], last: tuple[int, int]) -> list[str]:
    """Every month from `first` to `last`, both included, as YYYY-MM (empty when last is first's past)."""
    out = []
    year, month = first
    while (year, month) <= last:
        out.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


@dataclass
class MonthUsage:
    bookings: int = 0
    minutes: int = 0

    def add(self, other: MonthUsage) -> None:
        self.bookings += other.bookings
        self.minutes += other.minutes


def booked_minutes(starts: dt.datetime, ends: dt.datetime) -> int:
    return int((as_utc(ends) - as_utc(starts)).total_seconds() // 60)

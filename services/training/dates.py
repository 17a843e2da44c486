"""Calendar arithmetic for expiry and rotation cycles (UTC, whole months and years)."""

from __future__ import annotations

import calendar
import datetime as dt
import re

from services.common.validation import Validator

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def add_months(moment: dt.datetime, months: int) -> dt.datetime:
    """Same day and time `months` later; the 31st becomes the month's last day when needed."""
    total = moment.month - 1 + months
    year, month = moment.year + total // 12, total % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def add_years(moment: dt.datetime, years: int) -> dt.datetime:
    return add_months(moment, 12 * years)


def start_of_day(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def parse_date(v: Validator, field: str, value: str) -> dt.date | None:
    """A YYYY-MM-DD date, or None after recording the violation."""
    value = (value or "").strip()
    if not value:
        v.fail(field, "must not be empty")
        return None
    if not _DATE.match(value):
        v.fail(field, "must be a date written YYYY-MM-DD")
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        v.fail(field, f"{value} is not a calendar date")
        return None

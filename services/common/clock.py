"""Time, controllable in tests.

Services ask `clock.now()` instead of the system clock for every business rule that depends on
time (SLAs, auto-close, expiry). In production it is the system clock. When CLOCK_OFFSET_FILE is
set (tests only), the file holds a number of seconds added to the system clock, re-read when it
changes, so a test can move a running service's time forward without restarting it.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from pathlib import Path

UTC = dt.UTC
# China Standard Time: days, months and years people count (periods, certificates, availability)
CHINA = dt.timezone(dt.timedelta(hours=8), "CST")


class Clock:
    def __init__(self, offset_file: str | None = None):
        self._path = Path(offset_file) if offset_file else None
        self._mtime_ns = -1
        self._offset = 0.0
        self._lock = threading.Lock()

    def _current_offset(self) -> float:
        if self._path is None:
            return 0.0
        try:
            mtime = self._path.stat().st_mtime_ns
        except FileNotFoundError:
            return 0.0
        if mtime != self._mtime_ns:
            with self._lock:
                try:
                    self._offset = float(self._path.read_text().strip() or 0)
                except (OSError, ValueError):
                    pass  # a half-written file: keep the previous offset
                self._mtime_ns = mtime
        return self._offset

    def now(self) -> dt.datetime:
        return dt.datetime.now(UTC) + dt.timedelta(seconds=self._current_offset())

    def timestamp(self) -> float:
        return self.now().timestamp()

    def now_as_stored(self) -> dt.datetime:
        """now() as the database keeps it (milliseconds): an answer or event built from a document
        just written says what a later read of it says."""
        now = self.now()
        return now.replace(microsecond=now.microsecond // 1000 * 1000)


clock = Clock(os.environ.get("CLOCK_OFFSET_FILE"))


def as_utc(value: dt.datetime) -> dt.datetime:
    """The database returns naive UTC datetimes from some servers; make them aware."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def china_day(moment: dt.datetime) -> int:
    """The China Standard Time day holding `moment`, as a day number (days since 1970-01-01)."""
    return (as_utc(moment).astimezone(CHINA).date() - dt.date(1970, 1, 1)).days

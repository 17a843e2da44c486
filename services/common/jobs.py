"""What every background job started by a person keeps (imports, exports): who started it, so
its runner acts with that person's rights, and how fast it goes."""

from __future__ import annotations

import datetime as dt
import math

from .auth import Principal
from .events import utcnow


def actor_fields(principal: Principal) -> dict:
    """The starter as stored in the job document."""
    return {"subject": principal.subject, "role": principal.role, "unit_id": principal.unit_id,
            "unit_level": principal.unit_level, "unit_path": list(principal.unit_path),
            "unit_name": principal.unit_name, "display_name": principal.display_name}


def actor_principal(job: dict) -> Principal:
    """The person who started the job: its runner reads and writes with their rights."""
    actor = job["actor"]
    return Principal(subject=actor["subject"], district_id=job["district_id"], role=actor["role"],
                     unit_id=actor["unit_id"], unit_level=actor["unit_level"], unit_path=tuple(actor["unit_path"]),
                     unit_name=actor["unit_name"], display_name=actor["display_name"])


def progress(done: int, total: int, run_started_at: dt.datetime | None, run_rows: int,
             finished_at: dt.datetime | None, running: bool) -> tuple[int, float, int]:
    """(rows done, rows per second, seconds left): the rate of the current run, since the process
    working on the job took it on (`run_rows` were done before), so a restart does not count the
    rows of a dead process as fast work."""
    if run_started_at is None:
        return done, 0.0, 0
    end = finished_at or utcnow()
    elapsed = (end.replace(tzinfo=None) - run_started_at.replace(tzinfo=None)).total_seconds()
    rate = (done - run_rows) / elapsed if elapsed > 0 else 0.0
    left = max(total - done, 0)
    return done, rate, math.ceil(left / rate) if rate > 0 and running else 0

"""What every background job started by a person shares (imports, exports): who started it, so
its runner acts with that person's rights; how fast it goes; and the runner's pass — steps of the
unfinished jobs, oldest first, each step recorded with a write guarded by its position, a step
that keeps failing giving its job up."""

from __future__ import annotations

import datetime as dt
import logging
import math
import time
from collections.abc import Callable

from pymongo import ReturnDocument
from pymongo.collection import Collection
from pymongo.errors import PyMongoError

from .auth import Principal, Role, require_manages, require_role
from .errors import NotFound
from .clock import clock
from .mongo import RawDoc
from .validation import valid_id

log = logging.getLogger(__name__)

# a pass of a runner stays well inside its job's 30-second lease (scheduler.py), so no second
# replica takes the jobs over; long, since the runner waits its interval between passes
PASS_SECONDS = 20.0
MAX_FAILURES = 3  # passes in a row a step may fail before its job is given up


def actor_fields(principal: Principal) -> RawDoc:
    """The starter as stored in the job document."""
    return {"subject": principal.subject, "role": principal.role, "unit_id": principal.unit_id,
            "unit_level": principal.unit_level, "unit_path": list(principal.unit_path),
            "unit_name": principal.unit_name, "display_name": principal.display_name}


def actor_principal(job: RawDoc) -> Principal:
    """The person who started the job: its runner reads and writes with their rights."""
    actor = job["actor"]
    return Principal(subject=actor["subject"], district_id=job["district_id"], role=actor["role"],
                     unit_id=actor["unit_id"], unit_level=actor["unit_level"], unit_path=tuple(actor["unit_path"]),
                     unit_name=actor["unit_name"], display_name=actor["display_name"])


def readable(jobs: Collection[RawDoc], principal: Principal, job_id: str, what: str) -> RawDoc:
    """A job of the caller's district that they may see: admins of the unit it was started for
    and of the units above (without the starter's details)."""
    job_id = valid_id("job_id", job_id)
    require_role(principal, Role.ROLE_UNIT_ADMIN)
    job = jobs.find_one({"_id": job_id, "district_id": principal.district_id}, {"actor": 0})
    if job is None:
        raise NotFound(what, job_id)
    require_manages(principal, job["district_id"], job["unit_path"], what)
    return job


def progress(done: int, total: int, run_started_at: dt.datetime | None, run_rows: int,
             finished_at: dt.datetime | None, running: bool) -> tuple[int, float, int]:
    """(rows done, rows per second, seconds left): the rate of the current run, since the process
    working on the job took it on (`run_rows` were done before), so a restart does not count the
    rows of a dead process as fast work."""
    if run_started_at is None:
        return done, 0.0, 0
    end = finished_at or clock.now()
    elapsed = (end.replace(tzinfo=None) - run_started_at.replace(tzinfo=None)).total_seconds()
    rate = (done - run_rows) / elapsed if elapsed > 0 else 0.0
    left = max(total - done, 0)
    return done, rate, math.ceil(left / rate) if rate > 0 and running else 0


def run_pass(kind: str, pending: list[RawDoc], position: str, step: Callable[[RawDoc], RawDoc | None],
             failed: Callable[[RawDoc], None]) -> int:
    """Steps of `pending` jobs in order for at most PASS_SECONDS; how many. `step` does the job's
    next step and returns the job as it is then, or None when it is done (or another runner moved
    it on); a step that raises is `failed`, except for the database being away: then the whole
    pass is tried again (scheduler.py)."""
    deadline = time.monotonic() + PASS_SECONDS
    done = 0
    for job in pending:
        current: RawDoc | None = job
        try:
            while current is not None and time.monotonic() < deadline:
                job = current  # the job as the step gets it: what a failure is counted against
                current = step(job)
                done += 1
        except PyMongoError:
            raise
        except Exception as exc:
            # the type only: what a row held must not reach the log
            log.error("%s job %s: step %d failed (%s)", kind, job["_id"], job[position], type(exc).__name__)
            failed(job)
    return done


def count_failure(jobs: Collection[RawDoc], job: RawDoc, position: str, given_up: RawDoc) -> bool:
    """Counts a failure of the job's step at `position`; the MAX_FAILURES-th in a row sets the job
    to `given_up`, so it does not hold up every job after it. True when it was given up."""
    n = job[position]
    # no projection: FerretDB does not take one with findAndModify
    counted = jobs.find_one_and_update({"_id": job["_id"], position: n}, {"$inc": {"failures": 1}},
                                       return_document=ReturnDocument.AFTER)
    if counted is None or counted["failures"] < MAX_FAILURES:
        return False
    return bool(jobs.update_one({"_id": job["_id"], position: n}, {"$set": given_up}).matched_count)

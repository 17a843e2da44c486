"""Periodic jobs that are safe with several replicas running.

A job runs only in the replica holding its lease (a document in the service's own database,
taken and renewed with conditional updates), so normally one replica does the work. The job
itself must still be correct if two replicas ever ran it at once (for example after a lease
expired mid-run): every change it makes is a conditional single-document update, so a second
run finds nothing left to do.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
from collections.abc import Callable

from prometheus_client import Counter
from pymongo.collection import Collection
from pymongo.errors import DuplicateKeyError, PyMongoError

from .clock import clock
from .mongo import RawDoc
from .threads import StoppableThread

log = logging.getLogger(__name__)

# `job_name`, not `job`: Prometheus's own target label is called job
JOB_RUNS = Counter("scheduler_job_runs_total", "Periodic job passes", ["job_name", "result"])


class LeasedJob(StoppableThread):
    def __init__(self, name: str, leases: Collection[RawDoc], work: Callable[[], int], interval_seconds: float,
                 lease_seconds: float = 30.0):
        super().__init__(f"job-{name}")
        self.job = name
        self._leases = leases
        self._work = work
        self._interval = interval_seconds
        self._lease = dt.timedelta(seconds=lease_seconds)
        self._owner = f"{socket.gethostname()}:{os.getpid()}:{id(self)}"
        for result in ("ok", "error"):  # visible from zero, so increase() sees the first failure
            JOB_RUNS.labels(name, result)

    def holds_lease(self) -> bool:
        now = clock.now()
        try:
            result = self._leases.update_one(
                {"_id": self.job, "$or": [{"owner": self._owner}, {"until": {"$lt": now}}]},
                {"$set": {"owner": self._owner, "until": now + self._lease}},
            )
            if result.matched_count:
                return True
            self._leases.insert_one({"_id": self.job, "owner": self._owner, "until": now + self._lease})
            return True
        except DuplicateKeyError:
            return False  # another replica holds it

    def run_once(self) -> int:
        """One pass if this replica holds the lease; returns how many things the job changed."""
        if not self.holds_lease():
            return 0
        changed = self._work()
        JOB_RUNS.labels(self.job, "ok").inc()
        return changed

    def run(self) -> None:
        while not self._stopping.is_set():
            try:
                self.run_once()
            except PyMongoError:
                JOB_RUNS.labels(self.job, "error").inc()
                log.warning("job %s: database unavailable, next pass in %.0fs", self.job, self._interval)
            except Exception:
                JOB_RUNS.labels(self.job, "error").inc()
                log.exception("job %s failed", self.job)
            self._stopping.wait(self._interval)

    def stop(self, timeout: float = 5.0) -> None:
        """Stops after the current pass and hands the lease over at once (a replica shutting down
        in a rolling update does not leave the job idle until its lease runs out)."""
        super().stop(timeout)
        try:
            self._leases.delete_one({"_id": self.job, "owner": self._owner})
        except PyMongoError:
            pass  # the lease then simply expires

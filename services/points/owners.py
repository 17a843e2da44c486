"""Who is working on a posting or a redemption, and whether that process still lives.

Every process that serves calls holds a lease (`ledger_owners`, `_id` = this process's owner id,
`until` renewed every second) and stamps it on the journals and redemptions it starts. A lease
that ran out belongs to a process that died (kill -9, a lost node): recovery and a client's retry
may then finish its work at once, instead of waiting until no request could still be running
(POINTS_RECOVERY_AFTER_SECONDS, which stays the rule for work without an owner). An owner whose
own renewals have not got through for a while stops touching balances (`fresh()`): by the time
anyone takes its lease for expired, it no longer writes.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import time
import uuid

from pymongo.errors import PyMongoError

from services.common.clock import clock
from services.common.threads import StoppableThread

log = logging.getLogger(__name__)

LEASE_SECONDS = 5.0
RENEW_SECONDS = 1.0
# an owner writes only while its last renewal is younger than this: two renewals' margin before
# others may take its lease for expired
FRESH_SECONDS = LEASE_SECONDS - 2 * RENEW_SECONDS


class Owners(StoppableThread):
    """This process's lease, and the liveness of others'."""

    def __init__(self, collection):
        super().__init__("points-owner-lease")
        self.collection = collection
        self.id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._renewed = float("-inf")  # monotonic time of the last renewal that got through

    def renew(self) -> None:
        started = time.monotonic()
        try:
            self.collection.update_one({"_id": self.id},
                                       {"$set": {"until": clock.now() + dt.timedelta(seconds=LEASE_SECONDS)}},
                                       upsert=True)
        except PyMongoError as exc:
            log.warning("owner lease not renewed: %s", type(exc).__name__)
            return
        self._renewed = started

    def fresh(self) -> bool:
        if time.monotonic() - self._renewed < FRESH_SECONDS:
            return True
        self.renew()  # the first call of a process may come before the thread's first renewal
        return time.monotonic() - self._renewed < FRESH_SECONDS

    def dead(self, owner_ids) -> set[str]:
        """Those of `owner_ids` whose lease ran out or never existed (this process is alive)."""
        wanted = {o for o in owner_ids if o and o != self.id}
        if not wanted:
            return set()
        alive = {d["_id"] for d in self.collection.find({"_id": {"$in": sorted(wanted)}, "until": {"$gte": clock.now()}},
                                                        {"_id": 1})}
        return wanted - alive

    def bury_dead(self) -> int:
        """Removes the leases that ran out (processes killed without a goodbye): called after
        their work was ended; an owner merely late with its renewal writes its lease again."""
        return self.collection.delete_many({"until": {"$lt": clock.now()}}).deleted_count

    def run(self) -> None:
        while not self._stopping.is_set():
            self.renew()
            self._stopping.wait(RENEW_SECONDS)

    def stop(self, timeout: float = 5.0) -> None:
        """After the drain: nothing of this process is in progress any more, so no one need wait
        for its lease to run out."""
        super().stop(timeout)
        try:
            self.collection.delete_one({"_id": self.id})
        except PyMongoError:
            pass  # it runs out by itself

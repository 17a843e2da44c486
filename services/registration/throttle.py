"""Login throttling: failed logins counted per account and per client address, in the database
so every replica counts the same; too many in a window lock that account or address out for a
while, and the answer says for how long (RESOURCE_EXHAUSTED, google.rpc.RetryInfo, and a Chinese
message the app shows as it is).

- Per account: LOGIN_MAX_FAILURES_PER_ACCOUNT (5) in LOGIN_FAILURE_WINDOW_SECONDS (900) locks the
  account for LOGIN_LOCKOUT_SECONDS (900). A login naming nobody is counted under the same kind of
  key (a keyed hash of what was typed), so trying does not tell which logins exist.
- Per address: LOGIN_MAX_FAILURES_PER_ADDRESS (50): higher, since many people share one address
  behind a carrier's NAT.
- While locked, even the right password is refused (no password oracle); a success clears the
  account's count, never the address's.

The keys never hold personal data: an account by its id (or a keyed hash of the login typed), an
address as given.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from prometheus_client import Counter
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from services.common.clock import as_utc, clock
from services.common.errors import ResourceExhausted

from .models import LoginFailures

LOCKOUTS = Counter("registration_login_lockouts_total", "Accounts or addresses locked out after failed logins",
                   ["scope"])
for _scope in ("account", "address"):
    LOCKOUTS.labels(_scope)


@dataclass(frozen=True)
class Limits:
    per_account: int = 5
    per_address: int = 50
    window_seconds: int = 900
    lockout_seconds: int = 900


@dataclass(frozen=True)
class Keys:
    account: str
    address: str  # "" when the address is unknown

    @classmethod
    def of(cls, district_id: str, account: str, address: str) -> Keys:
        return cls(f"account:{district_id}:{account}", f"address:{address}" if address else "")

    def all(self) -> list[str]:
        return [k for k in (self.account, self.address) if k]


def too_many(retry_after_seconds: float) -> ResourceExhausted:
    minutes = max(1, math.ceil(retry_after_seconds / 60))
    return ResourceExhausted(f"尝试次数过多，请{minutes}分钟后再试", retry_after_seconds=math.ceil(retry_after_seconds))


class LoginThrottle:
    def __init__(self, limits: Limits):
        self.limits = limits

    def check(self, keys: Keys) -> None:
        """RESOURCE_EXHAUSTED while the account or the address is locked out."""
        now = clock.now()
        locked = [as_utc(doc["locked_until"]) for doc in LoginFailures.objects(id__in=keys.all()).as_pymongo()
                  if doc.get("locked_until") and as_utc(doc["locked_until"]) > now]
        if locked:
            raise too_many((max(locked) - now).total_seconds())

    def failed(self, keys: Keys) -> None:
        """Counts a failure against both keys, locking out a key that reached its limit."""
        for key, limit, scope in ((keys.account, self.limits.per_account, "account"),
                                  (keys.address, self.limits.per_address, "address")):
            if key and self._count(key) >= limit and self._lock(key):
                LOCKOUTS.labels(scope).inc()

    def succeeded(self, keys: Keys) -> None:
        LoginFailures.objects(id=keys.account).delete()

    def _count(self, key: str) -> int:
        """One more failure in the key's current window (a new window when the last one is over)."""
        now = clock.now()
        collection = LoginFailures._get_collection()
        window_open = now - dt.timedelta(seconds=self.limits.window_seconds)
        doc = collection.find_one_and_update({"_id": key, "window_start": {"$gt": window_open}},
                                             {"$inc": {"failures": 1}, "$set": {"updated_at": now}},
                                             return_document=ReturnDocument.AFTER)
        if doc is not None:
            return doc["failures"]
        fresh = {"failures": 1, "window_start": now, "updated_at": now}
        try:  # no window, or an old one: this failure opens a new one (a lockout in force stays)
            if collection.update_one({"_id": key, "window_start": {"$lte": window_open}}, {"$set": fresh}).matched_count:
                return 1
            collection.insert_one({"_id": key, **fresh})
            return 1
        except DuplicateKeyError:  # another replica opened it a moment ago
            return self._count(key)

    def _lock(self, key: str) -> bool:
        """Locks the key unless it is locked already; True when this call locked it."""
        now = clock.now()
        until = now + dt.timedelta(seconds=self.limits.lockout_seconds)
        result = LoginFailures._get_collection().update_one(
            {"_id": key, "$or": [{"locked_until": None}, {"locked_until": {"$lte": now}}]},
            {"$set": {"locked_until": until, "updated_at": now}})
        return bool(result.matched_count)

    def purge(self) -> int:
        """Counts whose window and lockout are both long over (job)."""
        horizon = clock.now() - dt.timedelta(seconds=self.limits.window_seconds + self.limits.lockout_seconds)
        return LoginFailures.objects(updated_at__lt=horizon).delete()

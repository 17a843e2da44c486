"""The district's order policy: how long each level has to acknowledge an order (四必接), and how
long a resident has to rate before an unrated order closes by itself.

A district that has set nothing gets the defaults; only the center's admin may change them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from services.common.auth import Principal
from services.common.cache import ReadCache
from services.common.clock import clock
from services.common.errors import PermissionDenied
from services.common.validation import Validator
from wenming.common.v1 import common_pb2
from wenming.ordering.v1 import ordering_pb2 as pb

from .models import OrderPolicy

L = common_pb2.UnitLevel
LEVELS = (L.UNIT_LEVEL_COURTYARD, L.UNIT_LEVEL_STATION, L.UNIT_LEVEL_INSTITUTE, L.UNIT_LEVEL_CENTER)
DEFAULT_ACK_MINUTES = {L.UNIT_LEVEL_COURTYARD: 120, L.UNIT_LEVEL_STATION: 240, L.UNIT_LEVEL_INSTITUTE: 480,
                       L.UNIT_LEVEL_CENTER: 1440}
MIN_ACK_MINUTES, MAX_ACK_MINUTES = 5, 7 * 24 * 60
MAX_RATING_WINDOW_DAYS = 90


@dataclass(frozen=True)
class Policy:
    district_id: str
    ack_minutes: dict[int, int]
    rating_window_days: int
    defaults: bool

    def acknowledge_within(self, level: int) -> dt.timedelta:
        return dt.timedelta(minutes=self.ack_minutes[level])

    @property
    def rating_window(self) -> dt.timedelta:
        return dt.timedelta(days=self.rating_window_days)


# a change made through another process or replica shows within this long (the policy's changes
# carry no event); one made through this process at once
CACHE_SECONDS = 5.0


class Policies:
    def __init__(self, default_rating_window_days: int):
        self.default_rating_window_days = default_rating_window_days
        # read by GetOrderPolicy and by every PlaceOrder
        self._cache = ReadCache("order-policies", self._load, max_age_seconds=CACHE_SECONDS)

    def get(self, district_id: str) -> Policy:
        return self._cache.get(district_id)

    def _load(self, district_id: str) -> Policy:
        stored = OrderPolicy._get_collection().find_one({"_id": district_id})
        if stored is None:
            return Policy(district_id, dict(DEFAULT_ACK_MINUTES), self.default_rating_window_days, defaults=True)
        minutes = {level: stored["acknowledge_minutes"].get(L.Name(level), DEFAULT_ACK_MINUTES[level])
                   for level in LEVELS}
        return Policy(district_id, minutes, stored["rating_window_days"], defaults=False)

    def read(self, principal: Principal) -> Policy:
        return self.get(principal.district_id)

    def set(self, principal: Principal, req: pb.SetOrderPolicyRequest) -> Policy:
        v = Validator()
        changes: dict[int, int] = {}
        for i, sla in enumerate(req.acknowledge):
            field = f"acknowledge[{i}]"
            v.enum(f"{field}.level", sla.level, common_pb2.UnitLevel)
            if sla.level in changes:
                v.fail(f"{field}.level", "is listed twice")
            v.int_range(f"{field}.minutes", sla.minutes, MIN_ACK_MINUTES, MAX_ACK_MINUTES)
            changes[sla.level] = sla.minutes
        if req.rating_window_days:
            v.int_range("rating_window_days", req.rating_window_days, 1, MAX_RATING_WINDOW_DAYS)
        if not req.acknowledge and not req.rating_window_days:
            v.fail("acknowledge", "set at least one level's minutes or rating_window_days")
        v.check()
        if not principal.is_center_admin:
            raise PermissionDenied("only an admin of the district's center may change the order policy")
        current = self.get(principal.district_id)
        minutes = {**current.ack_minutes, **changes}
        window = req.rating_window_days or current.rating_window_days
        OrderPolicy(id=principal.district_id, acknowledge_minutes={L.Name(k): m for k, m in minutes.items()},
                    rating_window_days=window, updated_by=principal.subject, updated_at=clock.now()).save()
        self._cache.forget(principal.district_id)
        return Policy(principal.district_id, minutes, window, defaults=False)


def policy_msg(policy: Policy) -> pb.OrderPolicy:
    return pb.OrderPolicy(
        district_id=policy.district_id,
        acknowledge=[pb.AcknowledgeSla(level=level, minutes=policy.ack_minutes[level]) for level in LEVELS],
        rating_window_days=policy.rating_window_days, defaults=policy.defaults)

"""The district's point rules: read (cached briefly, the consumer asks per batch) and set by a
center admin with a version check."""

from __future__ import annotations

import threading
import time

from pymongo.errors import DuplicateKeyError

from services.common.auth import Principal
from services.common.clock import clock
from services.common.errors import FailedPrecondition, PermissionDenied
from services.common.validation import Validator
from wenming.points.v1 import points_pb2 as pb

from . import rules as r
from .models import RulesDocument

CACHE_SECONDS = 5.0


class RuleBook:
    def __init__(self) -> None:
        self._cache: dict[str, tuple[float, r.Rules]] = {}
        self._lock = threading.Lock()

    def for_district(self, district_id: str) -> r.Rules:
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(district_id)
        if cached and now - cached[0] < CACHE_SECONDS:
            return cached[1]
        rules = r.from_document(RulesDocument._get_collection().find_one({"_id": district_id}))
        with self._lock:
            self._cache[district_id] = (now, rules)
        return rules

    def get(self, principal: Principal) -> r.Rules:
        return self.for_district(principal.district_id)

    def set(self, principal: Principal, req: pb.SetPointRulesRequest) -> r.Rules:
        v = Validator()
        rules = r.validate(v, req.rules)
        if req.expected_version < 0:
            v.fail("expected_version", "must not be negative")
        v.check()
        if not principal.is_center_admin:
            raise PermissionDenied("only an admin of the district's center may set the point rules")
        coll = RulesDocument._get_collection()
        doc = {**r.to_document(rules), "updated_at": clock.now(), "updated_by": principal.subject,
               "version": req.expected_version + 1}
        if req.expected_version == 0:
            try:
                coll.insert_one({"_id": principal.district_id, **doc})
            except DuplicateKeyError:
                raise FailedPrecondition("the rules were set meanwhile (version mismatch); reload and retry") from None
        elif coll.update_one({"_id": principal.district_id, "version": req.expected_version},
                             {"$set": doc}).matched_count == 0:
            raise FailedPrecondition("the rules changed since you read them (version mismatch); reload and retry")
        with self._lock:
            self._cache.pop(principal.district_id, None)
        return self.for_district(principal.district_id)

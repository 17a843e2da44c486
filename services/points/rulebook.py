"""The district's point rules: read (cached briefly, the consumer asks per batch) and set by a
center admin with a version check."""

from __future__ import annotations

from pymongo.errors import DuplicateKeyError

from services.common.auth import Principal
from services.common.cache import ReadCache
from services.common.clock import clock
from services.common.errors import FailedPrecondition, PermissionDenied
from services.common.validation import Validator
from wenming.points.v1 import points_pb2 as pb

from . import rules as r
from .models import RulesDocument

# a change made through another process or replica shows within this long (rules carry no event);
# one made through this process at once
CACHE_SECONDS = 5.0


class RuleBook:
    def __init__(self) -> None:
        # read by GetPointRules and by the ledger consumer for every batch
        self._cache = ReadCache("point-rules", self._load, max_age_seconds=CACHE_SECONDS)

    def for_district(self, district_id: str) -> r.Rules:
        return self._cache.get(district_id)

    @staticmethod
    def _load(district_id: str) -> r.Rules:
        return r.from_document(RulesDocument._get_collection().find_one({"_id": district_id}))

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
        self._cache.forget(principal.district_id)
        return self.for_district(principal.district_id)

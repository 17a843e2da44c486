"""The district's menu taxonomy (类 and 项): read by everyone of the district (the app groups the
menu by it), checked by every PublishMenuItem and PlanActivity naming a district item, replaced
whole by the center's admins with a version check. Each change is one write carrying a
DistrictTaxonomySet event, so other services keep what they need (points: mandatory items).
The rules are taxonomy_rules.py.
"""

from __future__ import annotations

from collections.abc import Collection

from pymongo.errors import DuplicateKeyError

from services.common.auth import Principal
from services.common.cache import ReadCache
from services.common.clock import clock
from services.common.errors import FailedPrecondition, PermissionDenied
from services.common.events import EventSource
from services.common.validation import Validator
from wenming.ordering.v1 import events_pb2
from wenming.ordering.v1 import ordering_pb2 as pb

from . import taxonomy_rules as rules
from .models import DistrictTaxonomy, MenuItem
from .taxonomy_rules import Taxonomy

AGGREGATE = "district_taxonomy"


class Taxonomies:
    def __init__(self, events: EventSource):
        self.events = events
        # read by the menu page and every PublishMenuItem / PlanActivity naming an item; the
        # service's own DistrictTaxonomySet drops a copy in every replica
        self.cache = ReadCache("district-taxonomies", self._load, max_age_seconds=60.0, aggregate_type=AGGREGATE)

    def get(self, district_id: str) -> Taxonomy:
        return self.cache.get(district_id)

    @staticmethod
    def _load(district_id: str) -> Taxonomy:
        return rules.from_document(district_id, DistrictTaxonomy.collection().find_one({"_id": district_id},
                                                                                     {"outbox": 0}))

    def read(self, principal: Principal) -> Taxonomy:
        return self.get(principal.district_id)

    def set(self, principal: Principal, req: pb.SetDistrictTaxonomyRequest) -> Taxonomy:
        v = Validator()
        categories = rules.validate(v, list(req.categories))
        if req.expected_version < 0:
            v.fail("expected_version", "must not be negative")
        v.check()
        if not principal.is_center_admin:
            raise PermissionDenied("只有区县文明实践中心的管理员可以设置服务菜单分类")
        district = principal.district_id
        stored = self._load(district)
        if rules.is_replay(stored, req.expected_version, categories):
            return stored
        if stored.version != req.expected_version:
            raise FailedPrecondition("服务菜单分类已被修改（版本不符），请刷新后重试")
        self._refuse_removing_used_items(district, rules.item_codes(stored.categories) - rules.item_codes(categories))
        version = req.expected_version + 1
        now = clock.now_as_stored()  # what a later read gives back, so a repeat answers the same
        after = Taxonomy(district, categories or rules.national_default(district).categories, version,
                         principal.subject, now, defaults=not categories)
        event = self.events.new(events_pb2.DistrictTaxonomySet(taxonomy=rules.taxonomy_msg(after)),
                                district_id=district, aggregate_type=AGGREGATE, aggregate_id=district,
                                version=version, actor_id=principal.subject, occurred_at=now)
        fields = {"categories": rules.to_document(categories), "updated_by": principal.subject, "updated_at": now}
        if req.expected_version == 0:
            try:
                DistrictTaxonomy.insert_raw({"_id": district, "district_id": district, **fields}, [event])
            except DuplicateKeyError:
                raise FailedPrecondition("服务菜单分类已被修改（版本不符），请刷新后重试") from None
        elif DistrictTaxonomy.change({"_id": district, "version": req.expected_version}, {"$set": fields},
                                     [event]) is None:
            raise FailedPrecondition("服务菜单分类已被修改（版本不符），请刷新后重试")
        self.cache.forget(district)
        return after

    @staticmethod
    def _refuse_removing_used_items(district_id: str, removed: Collection[str]) -> None:
        """An item still on the menu keeps its place: retire the menu items first."""
        if not removed:
            return
        used = MenuItem.collection().find_one({"district_id": district_id, "retired": False,
                                               "district_item_code": {"$in": sorted(removed)}},
                                              {"name": 1, "district_item_code": 1})
        if used is not None:
            raise FailedPrecondition(f"项目 {used['district_item_code']} 仍用于菜单「{used['name']}」，请先下架该菜单项")

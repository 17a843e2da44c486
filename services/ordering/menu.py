"""The service menu (服务菜单/项目清单).

The center publishes items for the whole district; a lower unit extends the menu for its own
subtree. An item is offered at a unit when its owner is on that unit's path, and it can only be
handled at its owner's level or below (a station cannot publish an item the center must handle).
Retiring an item takes it off the menu; orders keep their own copy of what they need from it.
"""

from __future__ import annotations

import re

from services.common.auth import Principal, Role, require_manages, require_role
from services.common.cache import ReadCache
from services.common.clock import clock
from services.common.errors import FailedPrecondition, InvalidArgument, NotFound
from services.common.events import EventSource
from services.common.ids import decode_page_token, encode_page_token, new_id
from services.common.validation import Validator
from wenming.common.v1 import common_pb2
from wenming.ordering.v1 import events_pb2
from wenming.ordering.v1 import ordering_pb2 as pb

from .models import MenuItem, UnitRefDoc
from .readmodels import Registry
from .taxonomy import Taxonomies
from .taxonomy_rules import resolve
from .translate import unit_ref_msg

CODE = re.compile(r"^[a-z0-9][a-z0-9_.-]{1,39}$")
CODE_RULE = "must be 2 to 40 of a-z, 0-9, '_', '.' or '-'"
MIN_MINUTES, MAX_MINUTES = 10, 24 * 60


def menu_event(item: MenuItem) -> events_pb2.MenuItemPublished:
    return events_pb2.MenuItemPublished(
        item_id=item.id, name=item.name, category=item.category, handling_level=item.handling_level,
        owner_unit=unit_ref_msg(item.owner), required_skills=list(item.required_skills),
        required_certifications=list(item.required_certifications), expected_minutes=item.expected_minutes,
        district_item_code=item.district_item_code)


class MenuBook:
    def __init__(self, registry: Registry, taxonomies: Taxonomies, events: EventSource):
        self.registry = registry
        self.taxonomies = taxonomies
        self.events = events
        # the items orders are placed on, as last read, until an event about the item (retired)
        # says otherwise
        self.cache = ReadCache("menu-items", self._load, max_age_seconds=60.0, aggregate_type="menu_item")

    # ---- reads ----

    def get(self, district_id: str, item_id: str) -> MenuItem:
        return MenuItem.in_district(district_id, item_id, "menu item")

    def offered(self, district_id: str, item_id: str) -> MenuItem:
        """The item an order is placed on (cached: read on every PlaceOrder)."""
        item = self.cache.get(item_id)
        if item.district_id != district_id:
            raise NotFound("menu item", item_id)
        return item

    @staticmethod
    def _load(item_id: str) -> MenuItem:
        raw = MenuItem.collection().find_one({"_id": item_id}, {"outbox": 0})
        if raw is None:
            raise NotFound("menu item", item_id)  # not kept: it may be published a moment later
        return MenuItem.from_raw(raw)

    def read(self, principal: Principal, item_id: str) -> MenuItem:
        v = Validator()
        item_id = v.ident("item_id", item_id)
        v.check()
        return self.get(principal.district_id, item_id)

    def unit_path(self, principal: Principal, unit_id: str, field: str) -> list[str]:
        """The path of the caller's unit, or of another unit of the district (read model)."""
        if not unit_id or unit_id == principal.unit_id:
            if not principal.unit_id:
                raise InvalidArgument.field(field, "must be set (your token names no unit)")
            return list(principal.unit_path)
        unit = self.registry.unit(principal.district_id, unit_id)
        if unit is None:
            raise NotFound("unit", unit_id)
        return list(unit["path"])

    def list(self, principal: Principal, req: pb.ListMenuRequest) -> tuple[list[MenuItem], str]:
        v = Validator()
        unit_id = v.ident("unit_id", req.unit_id, required=False)
        v.enum("category", req.category, common_pb2.ServiceCategory, required=False)
        size = v.page_size("page.page_size", req.page.page_size)
        after = decode_page_token(req.page.page_token)
        v.check()
        path = self.unit_path(principal, unit_id, "unit_id")
        query: dict = {"district_id": principal.district_id, "owner.unit_id": {"$in": path}}
        if req.category:
            query["category"] = req.category
        if not req.include_retired:
            query["retired"] = False
        if after:
            query["_id"] = {"$gt": after}
        found = [MenuItem.from_raw(r) for r in
                 MenuItem.collection().find(query, {"outbox": 0}).sort("_id", 1).limit(size + 1)]
        token = encode_page_token(found[size - 1].id) if len(found) > size else ""
        return found[:size], token

    # ---- writes ----

    def publish(self, principal: Principal, req: pb.PublishMenuItemRequest) -> MenuItem:
        v = Validator()
        owner_id = v.ident("owner_unit_id", req.owner_unit_id, required=False)
        name = v.text("name", req.name, max_len=60)
        description = v.text("description", req.description, max_len=500, required=False, multiline=True)
        item_code = v.regex("district_item_code", req.district_item_code, CODE, CODE_RULE, required=False)
        # with a district item the category may be left out: the item's category decides it
        v.enum("category", req.category, common_pb2.ServiceCategory, required=not item_code)
        v.enum("handling_level", req.handling_level, common_pb2.UnitLevel)
        skills = v.enums("required_skills", list(req.required_skills), common_pb2.Skill, max_count=10)
        if len(req.required_certifications) > 10:
            v.fail("required_certifications", f"allows at most 10 items (got {len(req.required_certifications)})")
        certifications: list[str] = []
        for i, code in enumerate(req.required_certifications):
            code = v.regex(f"required_certifications[{i}]", code, CODE, CODE_RULE)
            if code in certifications:
                v.fail(f"required_certifications[{i}]", "is listed twice")
            certifications.append(code)
        v.int_range("expected_minutes", req.expected_minutes, MIN_MINUTES, MAX_MINUTES)
        points_rule = v.regex("points_rule", req.points_rule, CODE, CODE_RULE, required=False)
        v.check()

        require_role(principal, Role.ROLE_UNIT_ADMIN)
        path = self.unit_path(principal, owner_id, "owner_unit_id")
        require_manages(principal, principal.district_id, path)
        category = resolve(self.taxonomies.get(principal.district_id), item_code, req.category)
        owner = self.registry.unit_ref(principal.district_id, path)
        if not owner["name"] and owner["unit_id"] == principal.unit_id:
            owner["name"] = principal.unit_name
        if req.handling_level < owner["level"]:
            L = common_pb2.UnitLevel
            raise InvalidArgument.field(
                "handling_level", f"an item of a {L.Name(owner['level'])} is handled there or below, "
                                  f"not at {L.Name(req.handling_level)}")
        item = MenuItem(
            id=new_id("item"), district_id=principal.district_id, name=name, description=description,
            category=category, district_item_code=item_code, handling_level=req.handling_level,
            owner=UnitRefDoc(**owner), required_skills=skills,
            required_certifications=certifications, expected_minutes=req.expected_minutes, points_rule=points_rule,
            published_by=principal.subject, published_at=clock.now())
        event = self.events.new(menu_event(item), district_id=item.district_id, aggregate_type="menu_item",
                                aggregate_id=item.id, version=1, actor_id=principal.subject)
        item.insert([event])
        return item

    def retire(self, principal: Principal, item_id: str, reason: str) -> MenuItem:
        v = Validator()
        item_id = v.ident("item_id", item_id)
        reason = v.text("reason", reason, max_len=200)
        v.check()
        require_role(principal, Role.ROLE_UNIT_ADMIN)
        item = self.get(principal.district_id, item_id)
        require_manages(principal, item.district_id, item.owner.path, "menu item")
        if item.retired:
            raise FailedPrecondition("this menu item is already retired")
        event = self.events.new(events_pb2.MenuItemRetired(item_id=item.id), district_id=item.district_id,
                                aggregate_type="menu_item", aggregate_id=item.id, version=item.version + 1,
                                actor_id=principal.subject)
        retired = MenuItem.change({"_id": item.id, "version": item.version, "retired": False},
                                  {"$set": {"retired": True, "retired_reason": reason, "retired_at": clock.now()}},
                                  [event])
        if retired is None:
            raise FailedPrecondition("the menu item changed meanwhile; reload and retry")
        self.cache.forget(item.id)
        return retired
